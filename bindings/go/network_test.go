package psyne

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Tests of tcp:// and unix:// channels through the binding: echo both ways,
// the extended metrics, LocalAddress, a connector started before its
// listener, and contexts on network channels. Every test uses its own
// address: tcp listeners bind port 0 on 127.0.0.1, unix ones a fresh path.

// sockPath returns a fresh unix socket path (short: sun_path holds 108 bytes).
func sockPath(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "psyne-go-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, fmt.Sprintf("s%d.sock", nameSeq.Add(1)))
}

// listenNet opens a listener on a fresh address ("tcp" or "unix", with the
// extra URI options opts) and returns it with the URI connectors use.
func listenNet(t testing.TB, scheme, opts string, size int, mode ChannelMode) (*Channel, string) {
	t.Helper()
	q := "?role=listen"
	if opts != "" {
		q += "&" + opts
	}
	var uri string
	switch scheme {
	case "tcp":
		uri = "tcp://127.0.0.1:0" + q
	case "unix":
		uri = "unix://" + sockPath(t) + q
	default:
		t.Fatalf("scheme %q", scheme)
	}
	l, err := NewChannel(uri, size, mode, TypeMulti)
	if err != nil {
		t.Fatalf("NewChannel(%q): %v", uri, err)
	}
	t.Cleanup(func() { l.Close() })
	addr, err := l.LocalAddress()
	if err != nil {
		t.Fatalf("LocalAddress: %v", err)
	}
	return l, scheme + "://" + addr
}

// dial opens a connector on uri, closed at the end of the test.
func dial(t testing.TB, uri string, size int, mode ChannelMode) *Channel {
	t.Helper()
	c, err := NewChannel(uri, size, mode, TypeMulti)
	if err != nil {
		t.Fatalf("NewChannel(%q): %v", uri, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// extMetrics returns ch's extended metrics, failing the test on error.
func extMetrics(t testing.TB, ch *Channel) ExtendedMetrics {
	t.Helper()
	m, err := ch.ExtendedMetrics()
	if err != nil {
		t.Fatalf("ExtendedMetrics: %v", err)
	}
	return *m
}

// echo receives every message on ch and sends it back with its type until
// ch is closed or stopped; the returned channel gets the count and the
// first unexpected error.
func echo(ch *Channel) <-chan error {
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, typ, err := ch.ReceiveInto(buf, -1)
			if err != nil {
				if errors.Is(err, ErrChannelStopped) {
					err = nil
				}
				done <- err
				return
			}
			if err := ch.SendContext(context.Background(), buf[:n], typ); err != nil {
				if errors.Is(err, ErrChannelStopped) {
					err = nil
				}
				done <- err
				return
			}
		}
	}()
	return done
}

func TestNetworkEcho(t *testing.T) {
	for _, scheme := range []string{"tcp", "unix"} {
		t.Run(scheme, func(t *testing.T) {
			l, uri := listenNet(t, scheme, "", 1<<16, ModeSPSC)
			echoed := echo(l)
			c := dial(t, uri, 1<<16, ModeSPSC)
			const n = 500
			finish(t, "echo of 500 messages", func() {
				for i := 0; i < n; i++ {
					msg := make([]byte, i%100) // 0..99 bytes, empty ones too
					for j := range msg {
						msg[j] = byte(i + j)
					}
					ctx, cancel := context.WithTimeout(context.Background(), long)
					err := c.SendContext(ctx, msg, uint32(i))
					if err == nil {
						var got []byte
						var typ uint32
						got, typ, err = c.ReceiveContext(ctx, 1024)
						if err == nil && (string(got) != string(msg) || typ != uint32(i)) {
							err = fmt.Errorf("message %d: got %d bytes of type %d, want %d bytes of type %d", i, len(got), typ, len(msg), i)
						}
					}
					cancel()
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
			if t.Failed() {
				return
			}
			// Every message went out and came back: the counters agree.
			payload := uint64(0)
			for i := 0; i < n; i++ {
				payload += uint64(i % 100)
			}
			wire := uint64(32+n*16) + payload // HELLO, then a 16-byte header per message
			var mc, ml ExtendedMetrics
			eventually(t, "the wire counters of both ends", func() bool {
				mc, ml = extMetrics(t, c), extMetrics(t, l)
				return mc.WireBytesSent == wire && ml.WireBytesReceived == wire &&
					ml.WireBytesSent == wire && mc.WireBytesReceived == wire
			})
			for _, m := range []ExtendedMetrics{mc, ml} {
				if m.MessagesSent != n || m.MessagesReceived != n || m.BytesSent != payload || m.BytesReceived != payload {
					t.Errorf("messages/bytes: %+v, want %d messages and %d bytes each way", m, n, payload)
				}
				if m.Connects != 1 || m.Peers != 1 || m.Reconnects != 0 {
					t.Errorf("connections: %+v, want 1 connect, 1 peer, no reconnect", m)
				}
				if m.ChecksumFailures != 0 || m.FramesRefused != 0 || m.MessagesCompressed != 0 {
					t.Errorf("failures: %+v", m)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			finish(t, "the echo goroutine", func() {
				if err := <-echoed; err != nil {
					t.Errorf("echo: %v", err)
				}
			})
		})
	}
}

// A listener counts its peers as they come and go; ResetMetrics zeroes the
// counters but not the present (peers).
func TestNetworkPeersAndReset(t *testing.T) {
	for _, scheme := range []string{"tcp", "unix"} {
		t.Run(scheme, func(t *testing.T) {
			l, uri := listenNet(t, scheme, "", 1<<16, ModeMPSC)
			var conns []*Channel
			for i := 0; i < 3; i++ {
				conns = append(conns, dial(t, uri, 1<<14, ModeSPSC))
			}
			eventually(t, "3 peers", func() bool {
				m := extMetrics(t, l)
				return m.Peers == 3 && m.Connects == 3
			})
			for i, c := range conns {
				if err := c.SendContext(context.Background(), []byte("hi"), uint32(i)); err != nil {
					t.Fatal(err)
				}
			}
			seen := map[uint32]bool{}
			for range conns {
				data, typ, err := l.ReceiveData(16, long)
				if err != nil || string(data) != "hi" {
					t.Fatalf("ReceiveData: %q %v", data, err)
				}
				seen[typ] = true
			}
			if len(seen) != 3 {
				t.Fatalf("types seen: %v", seen)
			}
			if err := conns[0].Close(); err != nil {
				t.Fatal(err)
			}
			eventually(t, "2 peers after a connector closed", func() bool { return extMetrics(t, l).Peers == 2 })
			if err := l.ResetMetrics(); err != nil {
				t.Fatal(err)
			}
			m := extMetrics(t, l)
			if m.Peers != 2 || m.Connects != 0 || m.MessagesReceived != 0 || m.WireBytesReceived != 0 {
				t.Fatalf("after ResetMetrics: %+v, want 2 peers and zero counters", m)
			}
		})
	}
}

func TestLocalAddress(t *testing.T) {
	t.Run("tcp port 0", func(t *testing.T) {
		l, err := NewChannel("tcp://127.0.0.1:0?role=listen", 4096, ModeSPSC, TypeMulti)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addr, err := l.LocalAddress()
		if err != nil {
			t.Fatal(err)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" {
			t.Fatalf("LocalAddress = %q (%v), want 127.0.0.1:PORT", addr, err)
		}
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			t.Fatalf("LocalAddress = %q: the port the system chose is missing", addr)
		}
		// The port is really ours: Go's own dialer reaches it.
		conn, err := net.DialTimeout("tcp", addr, long)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		conn.Close()
	})
	t.Run("tcp wildcard", func(t *testing.T) {
		l, err := NewChannel("tcp://:0", 4096, ModeSPSC, TypeMulti) // empty host: listens
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addr, err := l.LocalAddress()
		if err != nil {
			t.Fatal(err)
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil || port == "0" {
			t.Fatalf("LocalAddress = %q (%v), want HOST:PORT with a real port", addr, err)
		}
		// A connector on localhost and that port reaches the listener.
		c := dial(t, "tcp://localhost:"+port, 4096, ModeSPSC)
		if err := c.SendData([]byte("x"), 3); err != nil {
			t.Fatal(err)
		}
		if data, typ, err := l.ReceiveData(8, long); err != nil || string(data) != "x" || typ != 3 {
			t.Fatalf("ReceiveData: %q %d %v", data, typ, err)
		}
	})
	t.Run("unix", func(t *testing.T) {
		path := sockPath(t)
		l, err := NewChannel("unix://"+path+"?role=listen", 4096, ModeSPSC, TypeMulti)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if addr, err := l.LocalAddress(); err != nil || addr != path {
			t.Fatalf("LocalAddress = %q, %v; want %q", addr, err, path)
		}
		c := dial(t, "unix://"+path, 4096, ModeSPSC)
		if addr, err := c.LocalAddress(); err != nil || addr != path {
			t.Fatalf("connector LocalAddress = %q, %v; want %q", addr, err, path)
		}
	})
	t.Run("connector", func(t *testing.T) {
		c := dial(t, "tcp://127.0.0.1:9?reconnect_max=1000", 4096, ModeSPSC) // nobody listens: fine
		if addr, err := c.LocalAddress(); err != nil || addr != "127.0.0.1:9" {
			t.Fatalf("LocalAddress = %q, %v; want the address it connects to", addr, err)
		}
	})
	t.Run("memory and ipc", func(t *testing.T) {
		for _, scheme := range []string{"memory", "ipc"} {
			ch, err := NewChannel(uniq(t, scheme), 4096, ModeSPSC, TypeMulti)
			if err != nil {
				t.Fatal(err)
			}
			addr, err := ch.LocalAddress()
			mustIs(t, err, ErrUnsupported)
			if addr != "" {
				t.Fatalf("%s: LocalAddress = %q with an error", scheme, addr)
			}
			ch.Close()
		}
	})
	t.Run("closed", func(t *testing.T) {
		l, _ := listenNet(t, "tcp", "", 4096, ModeSPSC)
		l.Close()
		_, err := l.LocalAddress()
		mustIs(t, err, ErrClosed)
		_, err = l.ExtendedMetrics()
		mustIs(t, err, ErrClosed)
	})
}

// On memory:// the extended metrics are the six counters, with wire bytes
// equal to the payload bytes and no connections.
func TestExtendedMetricsMemory(t *testing.T) {
	ch := openMem(t, 4096, ModeSPSC, TypeMulti)
	for i := 0; i < 3; i++ {
		if err := ch.SendData(make([]byte, 10), 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := ch.ReceiveData(64, 0); err != nil {
		t.Fatal(err)
	}
	m := extMetrics(t, ch)
	b, err := ch.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	six := Metrics{m.MessagesSent, m.BytesSent, m.MessagesReceived, m.BytesReceived, m.SendBlocks, m.ReceiveBlocks}
	if six != *b {
		t.Fatalf("the six counters differ: %+v vs Metrics %+v", six, *b)
	}
	if m.MessagesSent != 3 || m.BytesSent != 30 || m.MessagesReceived != 1 || m.BytesReceived != 10 {
		t.Fatalf("%+v", m)
	}
	if m.WireBytesSent != 30 || m.WireBytesReceived != 10 || m.Connects != 0 || m.Peers != 0 {
		t.Fatalf("wire/connection counters on memory://: %+v", m)
	}
	if m.QueuedBytes == 0 || m.HighWaterBytes < m.QueuedBytes {
		t.Fatalf("depth: queued %d, high water %d", m.QueuedBytes, m.HighWaterBytes)
	}
}

// A connector opened before anyone listens keeps its messages in its ring
// and delivers them once the listener is up.
func TestConnectorBeforeListener(t *testing.T) {
	for _, scheme := range []string{"tcp", "unix"} {
		t.Run(scheme, func(t *testing.T) {
			var listenURI, connectURI string
			if scheme == "tcp" {
				// A port that was free a moment ago.
				probe, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addr := probe.Addr().String()
				probe.Close()
				listenURI, connectURI = "tcp://"+addr+"?role=listen", "tcp://"+addr
			} else {
				p := sockPath(t)
				listenURI, connectURI = "unix://"+p+"?role=listen", "unix://"+p
			}
			c := dial(t, connectURI+"?reconnect_max=50", 1<<16, ModeSPSC)
			for i := 0; i < 10; i++ {
				if err := c.SendData([]byte{byte(i), byte(i)}, uint32(i)); err != nil {
					t.Fatalf("SendData %d before the listener: %v", i, err)
				}
			}
			time.Sleep(200 * time.Millisecond) // a few failed attempts
			if m := extMetrics(t, c); m.Connects != 0 || m.Peers != 0 || m.MessagesSent != 10 {
				t.Fatalf("before the listener: %+v", m)
			}
			l, err := NewChannel(listenURI, 1<<16, ModeSPSC, TypeMulti)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			for i := 0; i < 10; i++ {
				data, typ, err := l.ReceiveData(16, long)
				if err != nil || string(data) != string([]byte{byte(i), byte(i)}) || typ != uint32(i) {
					t.Fatalf("message %d: %v %d %v", i, data, typ, err)
				}
			}
			if m := extMetrics(t, c); m.Connects != 1 || m.Peers != 1 {
				t.Fatalf("after the listener came up: %+v", m)
			}
		})
	}
}

// ReceiveContext on a network channel returns when its context is cancelled
// or its deadline passes, leaves no goroutine behind, and the channel keeps
// working afterwards.
func TestNetworkReceiveContext(t *testing.T) {
	for _, scheme := range []string{"tcp", "unix"} {
		t.Run(scheme, func(t *testing.T) {
			l, uri := listenNet(t, scheme, "", 1<<16, ModeSPSC)
			c := dial(t, uri, 1<<16, ModeSPSC)
			eventually(t, "connected", func() bool { return extMetrics(t, c).Peers == 1 })
			base := runtime.NumGoroutine()

			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			finish(t, "ReceiveContext after cancel", func() {
				_, _, err := c.ReceiveContext(ctx, 64)
				if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrCancelled) {
					t.Errorf("cancelled ReceiveContext: %v", err)
				}
			})
			ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel2()
			finish(t, "ReceiveContext past its deadline", func() {
				_, _, err := l.ReceiveContext(ctx2, 64)
				if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrTimeout) {
					t.Errorf("ReceiveContext past its deadline: %v", err)
				}
			})
			goroutinesBack(t, base)

			// Still usable both ways, and a waiting receive gets the message.
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				data, typ, err := c.ReceiveContext(context.Background(), 64)
				if err != nil || string(data) != "after" || typ != 9 {
					t.Errorf("ReceiveContext after the cancellations: %q %d %v", data, typ, err)
				}
			}()
			if err := l.SendContext(context.Background(), []byte("after"), 9); err != nil {
				t.Fatal(err)
			}
			finish(t, "the waiting receive", wg.Wait)

			// Close wakes a receive blocked on a network channel.
			errc := make(chan error, 1)
			go func() {
				_, _, err := l.ReceiveContext(context.Background(), 64)
				errc <- err
			}()
			time.Sleep(20 * time.Millisecond)
			l.Close()
			finish(t, "a receive woken by Close", func() { mustIs(t, <-errc, ErrClosed) })
		})
	}
}

// The options of the network URIs reach libpsyne: a bad value is refused
// with ErrInvalidArgument, and the checksum option shows on the wire as
// frames the other end verifies.
func TestNetworkOptions(t *testing.T) {
	for _, uri := range []string{
		"tcp://127.0.0.1:0?role=sideways",
		"tcp://127.0.0.1:0?max_peers=0",
		"tcp://127.0.0.1:0?handshake_timeout=0",
		"tcp://127.0.0.1:1?reconnect_max=1",
		"unix:///tmp/psyne-go-never.sock?broadcast=maybe",
		"memory://x?broadcast=on",
	} {
		ch, err := NewChannel(uri, 4096, ModeSPSC, TypeMulti)
		if err == nil {
			ch.Close()
			t.Errorf("%s: accepted", uri)
			continue
		}
		mustIs(t, err, ErrInvalidArgument)
	}

	l, uri := listenNet(t, "tcp", "checksum=on&max_peers=1", 1<<16, ModeSPSC)
	c := dial(t, uri+"?checksum=on", 1<<16, ModeSPSC)
	if err := c.SendData([]byte("sum"), 1); err != nil {
		t.Fatal(err)
	}
	if data, _, err := l.ReceiveData(8, long); err != nil || string(data) != "sum" {
		t.Fatalf("ReceiveData: %q %v", data, err)
	}
	// max_peers=1: a second connector is refused by the listener.
	dial(t, uri+"?reconnect_max=10000", 4096, ModeSPSC)
	eventually(t, "the second peer refused", func() bool { return extMetrics(t, l).FramesRefused >= 1 })
	if m := extMetrics(t, l); m.Peers != 1 || m.ChecksumFailures != 0 {
		t.Fatalf("listener: %+v", m)
	}
}

// Broadcast: every peer of a broadcast listener gets every message.
func TestNetworkBroadcast(t *testing.T) {
	l, uri := listenNet(t, "unix", "broadcast=on", 1<<16, ModeSPSC)
	peers := []*Channel{dial(t, uri, 1<<16, ModeSPSC), dial(t, uri, 1<<16, ModeSPSC)}
	eventually(t, "2 peers", func() bool { return extMetrics(t, l).Peers == 2 })
	for i := uint32(0); i < 100; i++ {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], i)
		if err := l.SendContext(context.Background(), b[:], i); err != nil {
			t.Fatal(err)
		}
	}
	for p, c := range peers {
		for i := uint32(0); i < 100; i++ {
			data, typ, err := c.ReceiveData(8, long)
			if err != nil || len(data) != 4 || binary.LittleEndian.Uint32(data) != i || typ != i {
				t.Fatalf("peer %d, message %d: %v %d %v", p, i, data, typ, err)
			}
		}
	}
}

// Stop on a connector sends what is queued before it closes the
// connection; once Peers is 0 the handle can be closed without losing
// anything (Close alone waits only up to the linger time).
func TestNetworkStopFlushes(t *testing.T) {
	for _, scheme := range []string{"tcp", "unix"} {
		t.Run(scheme, func(t *testing.T) {
			l, uri := listenNet(t, scheme, "", 1<<20, ModeSPSC)
			c := dial(t, uri, 1<<20, ModeSPSC)
			eventually(t, "connected", func() bool { return extMetrics(t, c).Peers == 1 })
			const n = 1000
			for i := 0; i < n; i++ {
				if err := c.SendContext(context.Background(), make([]byte, 100), uint32(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Stop(); err != nil {
				t.Fatal(err)
			}
			mustIs(t, c.SendData([]byte("late"), 0), ErrChannelStopped)
			eventually(t, "the connector to flush and close", func() bool { return extMetrics(t, c).Peers == 0 })
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				_, typ, err := l.ReceiveData(128, long)
				if err != nil || typ != uint32(i) {
					t.Fatalf("message %d: type %d, %v", i, typ, err)
				}
			}
			if _, _, err := l.ReceiveData(128, 0); !errors.Is(err, ErrNoMessage) {
				t.Fatalf("after %d messages: %v", n, err)
			}
		})
	}
}

// The zero-copy calls work on a network end's local rings: a Message
// reserved in the connector's send ring arrives as a View in the
// listener's receive ring.
func TestNetworkZeroCopy(t *testing.T) {
	for _, scheme := range []string{"tcp", "unix"} {
		t.Run(scheme, func(t *testing.T) {
			l, uri := listenNet(t, scheme, "", 1<<16, ModeSPSC)
			c := dial(t, uri, 1<<16, ModeSPSC)
			for i := 0; i < 50; i++ {
				m, err := c.ReserveContext(context.Background(), 1000+i)
				if err != nil {
					t.Fatal(err)
				}
				buf := m.Data()
				for j := range buf {
					buf[j] = byte(i ^ j)
				}
				if err := m.Send(uint32(i)); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < 50; i++ {
				v, err := l.ReceiveView(long)
				if err != nil {
					t.Fatal(err)
				}
				data := v.Data()
				ok := len(data) == 1000+i && v.Type() == uint32(i)
				for j := 0; ok && j < len(data); j++ {
					ok = data[j] == byte(i^j)
				}
				if err := v.Release(); err != nil {
					t.Fatal(err)
				}
				if !ok {
					t.Fatalf("view %d: %d bytes of type %d, or wrong bytes", i, len(data), v.Type())
				}
			}
		})
	}
}
