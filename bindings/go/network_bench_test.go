package psyne

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"
)

// Ping-pong of 64-byte messages over loopback: the client goroutine sends
// one message and waits for its echo, which another goroutine sends back;
// one op is one round trip. Go's own net.Conn runs beside psyne in the same
// run, with the framing a Go program would otherwise write: a 4-byte
// length prefix, the frame written with one Write, read through a
// bufio.Reader. Besides the mean (ns/op) each reports the median and the
// 99th percentile of the round trips (p50-ns, p99-ns).
//
//	go test -run '^$' -bench NetPingPong -benchtime 2s
func BenchmarkNetPingPong64(b *testing.B) {
	for _, scheme := range []string{"tcp", "unix"} {
		b.Run("psyne-"+scheme, func(b *testing.B) {
			l, uri := listenNet(b, scheme, "", 1<<16, ModeSPSC)
			c := dial(b, uri, 1<<16, ModeSPSC)
			done := echo(l)
			payload := make([]byte, 64)
			buf := make([]byte, 64)
			// The first round trip waits for the connection.
			if err := c.SendData(payload, 1); err != nil {
				b.Fatal(err)
			}
			if _, _, err := c.ReceiveInto(buf, long); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(64)
			b.ReportAllocs()
			var lat latencies
			for b.Loop() {
				t0 := time.Now()
				if err := c.SendData(payload, 1); err != nil {
					b.Fatal(err)
				}
				if n, _, err := c.ReceiveInto(buf, -1); err != nil || n != 64 {
					b.Fatal(n, err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			lat.report(b)
			l.Close()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
		b.Run("net.Conn-"+scheme, func(b *testing.B) {
			addr := "127.0.0.1:0"
			if scheme == "unix" {
				addr = sockPath(b)
			}
			ln, err := net.Listen(scheme, addr)
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			done := make(chan error, 1)
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					done <- err
					return
				}
				defer conn.Close()
				r := bufio.NewReader(conn)
				frame := make([]byte, 4+64<<10)
				for {
					n, err := readFrame(r, frame)
					if err == nil {
						_, err = conn.Write(frame[:4+n])
					}
					if err != nil {
						if errors.Is(err, io.EOF) {
							err = nil
						}
						done <- err
						return
					}
				}
			}()
			conn, err := net.Dial(scheme, ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			r := bufio.NewReader(conn)
			out := make([]byte, 4+64)
			binary.LittleEndian.PutUint32(out, 64)
			in := make([]byte, 4+64)
			b.SetBytes(64)
			b.ReportAllocs()
			var lat latencies
			for b.Loop() {
				t0 := time.Now()
				if _, err := conn.Write(out); err != nil {
					b.Fatal(err)
				}
				if n, err := readFrame(r, in); err != nil || n != 64 {
					b.Fatal(n, err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			lat.report(b)
			conn.Close()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// latencies are the round trips of one benchmark run.
type latencies []time.Duration

// report adds the median and the 99th percentile to b's results.
func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	b.ReportMetric(float64(l[len(l)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(l[len(l)*99/100].Nanoseconds()), "p99-ns")
}

// readFrame reads one length-prefixed frame into frame (prefix included)
// and returns the payload length.
func readFrame(r *bufio.Reader, frame []byte) (int, error) {
	if _, err := io.ReadFull(r, frame[:4]); err != nil {
		return 0, err
	}
	n := int(binary.LittleEndian.Uint32(frame))
	if n > len(frame)-4 {
		return 0, errors.New("frame too long")
	}
	_, err := io.ReadFull(r, frame[4:4+n])
	return n, err
}
