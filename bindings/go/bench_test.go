package psyne

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// Round trips on one goroutine: send one message, receive it. Go's own
// buffered chan []byte runs beside them: "chan" passes the slice (no copy),
// "chan-copy" copies the payload into a fresh slice first, as SendData does.
//
//	go test -run '^$' -bench . -benchtime 2s
func BenchmarkRoundTrip(b *testing.B) {
	for _, size := range []int{64, 4096, 65536} {
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = byte(i)
		}
		b.Run(fmt.Sprintf("%dB/cgo-floor", size), func(b *testing.B) {
			// Two bare cgo calls into libpsyne: what any binding pays.
			ch := openMem(b, 1<<20, ModeSPSC, TypeMulti)
			out := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if !rawRoundTrip(ch.s.chh, payload, out) {
					b.Fatal("raw round trip failed")
				}
			}
		})
		b.Run(fmt.Sprintf("%dB/psyne-copy", size), func(b *testing.B) {
			ch := openMem(b, 1<<20, ModeSPSC, TypeMulti)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := ch.SendData(payload, 1); err != nil {
					b.Fatal(err)
				}
				if _, _, err := ch.ReceiveData(size, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%dB/psyne-into", size), func(b *testing.B) {
			ch := openMem(b, 1<<20, ModeSPSC, TypeMulti)
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := ch.SendData(payload, 1); err != nil {
					b.Fatal(err)
				}
				if _, _, err := ch.ReceiveInto(buf, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%dB/psyne-zerocopy", size), func(b *testing.B) {
			ch := openMem(b, 1<<20, ModeSPSC, TypeMulti)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				m, err := ch.ReserveMessage(size)
				if err != nil {
					b.Fatal(err)
				}
				copy(m.Data(), payload) // produce in place
				if err := m.Send(1); err != nil {
					b.Fatal(err)
				}
				v, err := ch.ReceiveView(0)
				if err != nil {
					b.Fatal(err)
				}
				if len(v.Data()) != size { // consume in place
					b.Fatal("short view")
				}
				if err := v.Release(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%dB/side-into", size), func(b *testing.B) {
			tx, rx := sides(b, openMem(b, 1<<20, ModeSPSC, TypeMulti))
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := tx.SendData(payload, 1); err != nil {
					b.Fatal(err)
				}
				if _, _, err := rx.ReceiveInto(buf, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%dB/side-zerocopy", size), func(b *testing.B) {
			tx, rx := sides(b, openMem(b, 1<<20, ModeSPSC, TypeMulti))
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				m, err := tx.ReserveMessage(size)
				if err != nil {
					b.Fatal(err)
				}
				copy(m.Data(), payload)
				if err := m.Send(1); err != nil {
					b.Fatal(err)
				}
				v, err := rx.ReceiveView(0)
				if err != nil {
					b.Fatal(err)
				}
				if len(v.Data()) != size {
					b.Fatal("short view")
				}
				if err := v.Release(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%dB/side-zerocopy-fused", size), func(b *testing.B) {
			// SendAndReserve and ReleaseAndReceive: a reservation and a
			// view are always held, one crossing into C per side per op.
			tx, rx := sides(b, openMem(b, 1<<20, ModeSPSC, TypeMulti))
			m, err := tx.ReserveMessage(size)
			if err != nil {
				b.Fatal(err)
			}
			copy(m.Data(), payload)
			if m, err = m.SendAndReserve(1, size); err != nil {
				b.Fatal(err)
			}
			v, err := rx.ReceiveView(0)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				copy(m.Data(), payload)
				if m, err = m.SendAndReserve(1, size); err != nil {
					b.Fatal(err)
				}
				if v, err = v.ReleaseAndReceive(0); err != nil {
					b.Fatal(err)
				}
				if len(v.Data()) != size {
					b.Fatal("short view")
				}
			}
		})
		b.Run(fmt.Sprintf("%dB/psyne-copy-MPMC", size), func(b *testing.B) {
			ch := openMem(b, 1<<20, ModeMPMC, TypeMulti)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := ch.SendData(payload, 1); err != nil {
					b.Fatal(err)
				}
				if _, _, err := ch.ReceiveData(size, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%dB/psyne-into-MPMC", size), func(b *testing.B) {
			ch := openMem(b, 1<<20, ModeMPMC, TypeMulti)
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := ch.SendData(payload, 1); err != nil {
					b.Fatal(err)
				}
				if _, _, err := ch.ReceiveInto(buf, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%dB/psyne-copy-ipc", size), func(b *testing.B) {
			ch, err := NewChannel(uniq(b, "ipc"), 1<<20, ModeSPSC, TypeMulti)
			if errors.Is(err, ErrUnsupported) {
				b.Skipf("ipc:// not supported by this libpsyne: %v", err)
			}
			if err != nil {
				b.Fatal(err)
			}
			defer ch.Close()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := ch.SendData(payload, 1); err != nil {
					b.Fatal(err)
				}
				if _, _, err := ch.ReceiveData(size, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%dB/chan", size), func(b *testing.B) {
			c := make(chan []byte, 1024)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				c <- payload
				<-c
			}
		})
		b.Run(fmt.Sprintf("%dB/chan-copy", size), func(b *testing.B) {
			c := make(chan []byte, 1024)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				m := make([]byte, size)
				copy(m, payload)
				c <- m
				<-c
			}
		})
	}
}

// A producer goroutine and a consumer goroutine stream 64-byte messages.
func BenchmarkPipe64(b *testing.B) {
	payload := make([]byte, 64)
	ctx := context.Background()
	b.Run("psyne", func(b *testing.B) {
		ch := openMem(b, 1<<16, ModeSPSC, TypeMulti)
		buf := make([]byte, 64)
		pipe(b, func() error {
			_, _, err := ch.ReceiveInto(buf, -1)
			return err
		}, func() error {
			err := ch.SendData(payload, 1)
			if errors.Is(err, ErrChannelFull) {
				err = ch.SendContext(ctx, payload, 1)
			}
			return err
		})
	})
	b.Run("psyne-zerocopy", func(b *testing.B) {
		ch := openMem(b, 1<<16, ModeSPSC, TypeMulti)
		pipe(b, func() error {
			v, err := ch.ReceiveView(-1)
			if err != nil {
				return err
			}
			return v.Release()
		}, func() error {
			m, err := ch.ReserveMessage(64)
			if errors.Is(err, ErrChannelFull) {
				m, err = ch.ReserveContext(ctx, 64)
			}
			if err != nil {
				return err
			}
			copy(m.Data(), payload)
			return m.Send(1)
		})
	})
	b.Run("side", func(b *testing.B) {
		tx, rx := sides(b, openMem(b, 1<<16, ModeSPSC, TypeMulti))
		buf := make([]byte, 64)
		pipe(b, func() error {
			_, _, err := rx.ReceiveInto(buf, -1)
			return err
		}, func() error {
			err := tx.SendData(payload, 1)
			if errors.Is(err, ErrChannelFull) {
				err = tx.SendContext(ctx, payload, 1)
			}
			return err
		})
	})
	b.Run("side-zerocopy", func(b *testing.B) {
		tx, rx := sides(b, openMem(b, 1<<16, ModeSPSC, TypeMulti))
		pipe(b, func() error {
			v, err := rx.ReceiveView(-1)
			if err != nil {
				return err
			}
			return v.Release()
		}, func() error {
			m, err := tx.ReserveMessage(64)
			if errors.Is(err, ErrChannelFull) {
				m, err = tx.ReserveContext(ctx, 64)
			}
			if err != nil {
				return err
			}
			copy(m.Data(), payload)
			return m.Send(1)
		})
	})
	b.Run("side-zerocopy-fused", func(b *testing.B) {
		// SendAndReserve and ReleaseAndReceive: one crossing into C per
		// message on each side, as for the copying calls.
		tx, rx := sides(b, openMem(b, 1<<16, ModeSPSC, TypeMulti))
		var v ConsumerView
		pipe(b, func() error {
			var err error
			if v.Len() == 0 {
				v, err = rx.ReceiveView(-1)
			} else {
				v, err = v.ReleaseAndReceive(-1)
			}
			return err
		}, fusedSender(tx, ctx, payload))
		if err := v.Release(); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("chan", func(b *testing.B) {
		c := make(chan []byte, 1024)
		b.SetBytes(64)
		n := b.N
		done := make(chan struct{})
		go func() {
			for i := 0; i < n; i++ {
				<-c
			}
			close(done)
		}()
		b.ResetTimer()
		for i := 0; i < n; i++ {
			m := make([]byte, 64)
			copy(m, payload)
			c <- m
		}
		<-done
	})
}

// pipe runs b.N calls of send on this goroutine and b.N calls of receive on
// another (64-byte messages), failing b on the first error of either.
func pipe(b *testing.B, receive, send func() error) {
	b.SetBytes(64)
	n := b.N
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if err := receive(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	b.ResetTimer()
	for i := 0; i < n; i++ {
		if err := send(); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			b.Fatal(err)
		}
	case <-time.After(time.Minute):
		b.Fatal("consumer stuck")
	}
}

// sides makes a Producer and a Consumer of ch, closed at the end of b.
func sides(b *testing.B, ch *Channel) (*Producer, *Consumer) {
	tx, err := ch.Producer()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tx.Close() })
	rx, err := ch.Consumer()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rx.Close() })
	return tx, rx
}

// fusedSender returns a pipe sender that fills a reservation and sends it
// with SendAndReserve, waiting with ReserveContext only when the ring is
// full. The reservation left at the end is cancelled by the Producer's Close.
func fusedSender(tx *Producer, ctx context.Context, payload []byte) func() error {
	var m ProducerMessage
	return func() error {
		var err error
		if m.Len() == 0 {
			if m, err = tx.ReserveContext(ctx, len(payload)); err != nil {
				return err
			}
		}
		copy(m.Data(), payload)
		m, err = m.SendAndReserve(1, len(payload))
		if errors.Is(err, ErrChannelFull) {
			m, err = ProducerMessage{}, nil
		}
		return err
	}
}
