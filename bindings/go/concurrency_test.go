package psyne

import (
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sendID sends an 8-byte id, retrying while the ring is full.
func sendID(t testing.TB, ch *Channel, id uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], id)
	for {
		err := ch.SendData(b[:], uint32(id%1000))
		if err == nil {
			return
		}
		if !errors.Is(err, ErrChannelFull) {
			t.Errorf("SendData(%d): %v", id, err)
			return
		}
		runtime.Gosched()
	}
}

// exactlyOnce runs producers×perProducer sends and consumers receivers, and
// checks that every message arrives once. The receivers use all the
// receive paths.
func exactlyOnce(t *testing.T, mode ChannelMode, producers, consumers, perProducer int) {
	ch := openMem(t, 4096, mode, TypeMulti)
	total := producers * perProducer
	seen := make([]atomic.Int32, total)
	var received atomic.Int64
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < perProducer; i++ {
				id := uint64(p*perProducer + i)
				if i%3 == 1 { // zero-copy path too
					for {
						m, err := ch.ReserveMessage(8)
						if errors.Is(err, ErrChannelFull) {
							runtime.Gosched()
							continue
						}
						if err != nil {
							t.Errorf("ReserveMessage: %v", err)
							return
						}
						binary.LittleEndian.PutUint64(m.Data(), id)
						if err := m.Send(uint32(id % 1000)); err != nil {
							t.Errorf("Send: %v", err)
						}
						break
					}
					continue
				}
				if i%3 == 2 {
					var b [8]byte
					binary.LittleEndian.PutUint64(b[:], id)
					if err := ch.SendContext(context.Background(), b[:], uint32(id%1000)); err != nil {
						t.Errorf("SendContext: %v", err)
					}
					continue
				}
				sendID(t, ch, id)
			}
		}(p)
	}
	var cwg sync.WaitGroup
	for c := 0; c < consumers; c++ {
		cwg.Add(1)
		go func(c int) {
			defer cwg.Done()
			for k := 0; received.Load() < int64(total); k++ {
				var data []byte
				var typ uint32
				var err error
				switch (k + c) % 4 {
				case 0:
					data, typ, err = ch.ReceiveData(64, 5*time.Millisecond)
				case 1:
					data, typ, err = ch.ReceiveMessage(5 * time.Millisecond)
				case 2:
					var v *View
					v, err = ch.ReceiveView(5 * time.Millisecond)
					if err == nil {
						data, typ = append([]byte(nil), v.Data()...), v.Type()
						if rerr := v.Release(); rerr != nil {
							t.Errorf("Release: %v", rerr)
						}
					}
				case 3:
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
					data, typ, err = ch.ReceiveContext(ctx, 64)
					cancel()
					if errors.Is(err, context.DeadlineExceeded) {
						err = ErrTimeout
					}
				}
				if errors.Is(err, ErrTimeout) || errors.Is(err, ErrNoMessage) {
					continue
				}
				if err != nil {
					t.Errorf("receive: %v", err)
					return
				}
				if len(data) != 8 {
					t.Errorf("message of %d bytes", len(data))
					return
				}
				id := binary.LittleEndian.Uint64(data)
				if id >= uint64(total) || typ != uint32(id%1000) {
					t.Errorf("bad message id %d type %d", id, typ)
					return
				}
				if seen[id].Add(1) != 1 {
					t.Errorf("message %d received twice", id)
				}
				received.Add(1)
			}
		}(c)
	}
	finish(t, "producers", wg.Wait)
	finish(t, "consumers", cwg.Wait)
	eachOnce(t, seen)
}

func TestMPMCExactlyOnce(t *testing.T) { exactlyOnce(t, ModeMPMC, 4, 4, 2000) }

func TestMPSCManyGoroutineSenders(t *testing.T) { exactlyOnce(t, ModeMPSC, 8, 1, 500) }

// On single sides the binding serialises goroutines: no ErrInvalidArgument
// (the library's refusal of a second concurrent sender/receiver) ever shows.
func TestSPSCSerialised(t *testing.T) { exactlyOnce(t, ModeSPSC, 4, 3, 500) }

func TestSPMCSerialised(t *testing.T) { exactlyOnce(t, ModeSPMC, 3, 3, 500) }

// Two handles on one memory:// name share the ring, so they share the side
// locks too.
func TestSPSCTwoHandlesSameName(t *testing.T) {
	a, b := twoHandles(t, "memory", 4096, ModeSPSC)
	const n = 2000
	var wg sync.WaitGroup
	for _, h := range []*Channel{a, b} {
		wg.Add(1)
		go func(h *Channel) {
			defer wg.Done()
			for i := 0; i < n; i++ {
				sendID(t, h, uint64(i))
			}
		}(h)
	}
	got := 0
	finish(t, "receiving", func() {
		for got < 2*n {
			h := a
			if got%2 == 1 {
				h = b
			}
			_, _, err := h.ReceiveData(8, 5*time.Millisecond)
			if errors.Is(err, ErrTimeout) {
				continue
			}
			if err != nil {
				t.Errorf("ReceiveData: %v", err)
				return
			}
			got++
		}
	})
	wg.Wait()
}

// A held reservation on a single-producer side makes other goroutines wait
// (instead of failing), and a waiting ...Context call still honours its
// context.
func TestHeldReservationSerialises(t *testing.T) {
	ch := openMem(t, 4096, ModeSPSC, TypeMulti)
	m, err := ch.ReserveMessage(4)
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() { sent <- ch.SendData([]byte("second"), 2) }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = ch.SendContext(ctx, []byte("x"), 1)
	mustIs(t, err, ErrTimeout)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SendContext waiting for a held reservation: %v", err)
	}
	select {
	case err := <-sent:
		t.Fatalf("SendData did not wait for the held reservation: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	copy(m.Data(), "frst")
	if err := m.Send(1); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-sent:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(long):
		t.Fatal("SendData still waiting after the reservation was sent")
	}
	for _, want := range []string{"frst", "second"} {
		got, _, err := ch.ReceiveData(16, time.Second)
		if err != nil || string(got) != want {
			t.Fatalf("got %q %v, want %q", got, err, want)
		}
	}
	// Same on the receive side with a held view.
	ch.SendData([]byte("a"), 1)
	v, err := ch.ReceiveView(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = ch.ReceiveData(16, 20*time.Millisecond)
	mustIs(t, err, ErrTimeout)
	v.Release()
}

func TestContextCancelBlockedReceive(t *testing.T) {
	base := runtime.NumGoroutine()
	ch := openMem(t, 4096, ModeSPSC, TypeMulti)
	for _, name := range []string{"ReceiveContext", "ReceiveViewContext"} {
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			var err error
			if name == "ReceiveContext" {
				_, _, err = ch.ReceiveContext(ctx, 64)
			} else {
				_, err = ch.ReceiveViewContext(ctx)
			}
			errc <- err
		}()
		time.Sleep(30 * time.Millisecond) // let it block inside libpsyne
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("%s: %v, want context.Canceled", name, err)
			}
			mustIs(t, err, ErrCancelled)
		case <-time.After(long):
			t.Fatalf("%s did not return after cancel", name)
		}
	}
	// The channel still works afterwards.
	ch.SendData([]byte("after"), 1)
	got, _, err := ch.ReceiveContext(context.Background(), 64)
	if err != nil || string(got) != "after" {
		t.Fatalf("after cancel: %q %v", got, err)
	}
	// An already-cancelled context fails at once, even with a message queued.
	ch.SendData([]byte("queued"), 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err = ch.ReceiveContext(ctx, 64)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
	goroutinesBack(t, base)
}

func TestContextDeadlineBlockedReceive(t *testing.T) {
	base := runtime.NumGoroutine()
	ch := openMem(t, 4096, ModeMPMC, TypeMulti)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := ch.ReceiveContext(ctx, 64)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReceiveContext: %v, want context.DeadlineExceeded", err)
	}
	mustIs(t, err, ErrTimeout)
	if time.Since(start) < 40*time.Millisecond {
		t.Errorf("returned before the deadline")
	}
	goroutinesBack(t, base)
}

func TestContextBlockedSendOnFullChannel(t *testing.T) {
	base := runtime.NumGoroutine()
	ch := openMem(t, 256, ModeMPSC, TypeMulti)
	for ch.SendData(make([]byte, 40), 1) == nil {
	}
	// cancel
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 2)
	go func() { errc <- ch.SendContext(ctx, make([]byte, 40), 1) }()
	go func() {
		_, err := ch.ReserveContext(ctx, 40)
		errc <- err
	}()
	time.Sleep(30 * time.Millisecond)
	cancel()
	for i := 0; i < 2; i++ {
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrCancelled) {
				t.Fatalf("blocked send after cancel: %v", err)
			}
		case <-time.After(long):
			t.Fatal("blocked send did not return after cancel")
		}
	}
	// deadline
	dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer dcancel()
	err := ch.SendContext(dctx, make([]byte, 40), 1)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("blocked send past deadline: %v", err)
	}
	// room appears: a waiting send completes
	done := make(chan error, 1)
	go func() { done <- ch.SendContext(context.Background(), []byte("late"), 9) }()
	time.Sleep(20 * time.Millisecond)
	if _, _, err := ch.ReceiveData(64, time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(long):
		t.Fatal("SendContext did not complete when room appeared")
	}
	goroutinesBack(t, base)
}

func TestCloseIdempotentAndAfterClose(t *testing.T) {
	ch, err := NewChannel(uniq(t, "memory"), 1024, ModeSPSC, TypeMulti)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	check := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, ErrClosed) || !errors.Is(err, ErrChannelStopped) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
	check("SendData", ch.SendData([]byte("x"), 1))
	check("SendContext", ch.SendContext(context.Background(), []byte("x"), 1))
	_, _, err = ch.ReceiveData(8, 0)
	check("ReceiveData", err)
	_, _, err = ch.ReceiveContext(context.Background(), 8)
	check("ReceiveContext", err)
	_, _, err = ch.ReceiveMessage(0)
	check("ReceiveMessage", err)
	_, _, err = ch.ReceiveInto(nil, 0)
	check("ReceiveInto", err)
	_, err = ch.ReceiveView(0)
	check("ReceiveView", err)
	_, err = ch.ReceiveViewContext(context.Background())
	check("ReceiveViewContext", err)
	_, err = ch.ReserveMessage(1)
	check("ReserveMessage", err)
	_, err = ch.ReserveContext(context.Background(), 1)
	check("ReserveContext", err)
	check("Stop", ch.Stop())
	_, err = ch.IsStopped()
	check("IsStopped", err)
	_, err = ch.Metrics()
	check("Metrics", err)
	check("ResetMetrics", ch.ResetMetrics())
	check("EnableMetrics", ch.EnableMetrics(true))
	_, err = ch.BufferSize()
	check("BufferSize", err)
	_, err = ch.MaxMessageSize()
	check("MaxMessageSize", err)
	if !strings.Contains(ch.SendData(nil, 0).Error(), "closed") {
		t.Error("closed error text does not say closed")
	}
}

// Close wakes every call blocked on the handle and waits for them.
func TestCloseWakesBlockedCalls(t *testing.T) {
	base := runtime.NumGoroutine()
	ch, err := NewChannel(uniq(t, "memory"), 256, ModeSPSC, TypeMulti)
	if err != nil {
		t.Fatal(err)
	}
	full, err := NewChannel(uniq(t, "memory"), 256, ModeMPMC, TypeMulti)
	if err != nil {
		t.Fatal(err)
	}
	for full.SendData(make([]byte, 40), 1) == nil {
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := map[string]func() error{
		"ReceiveData(-1)": func() error { _, _, err := ch.ReceiveData(8, -1); return err },
		"ReceiveContext(bg)": func() error {
			_, _, err := ch.ReceiveContext(context.Background(), 8)
			return err
		},
		"ReceiveView(1h)":      func() error { _, err := ch.ReceiveView(time.Hour); return err },
		"SendContext(full)":    func() error { return full.SendContext(ctx, make([]byte, 40), 1) },
		"ReserveContext(full)": func() error { _, err := full.ReserveContext(context.Background(), 40); return err },
	}
	errc := make(chan error, len(calls))
	for name, f := range calls {
		go func(name string, f func() error) {
			err := f()
			if !errors.Is(err, ErrClosed) || !errors.Is(err, ErrChannelStopped) {
				t.Errorf("%s after Close: %v", name, err)
			}
			errc <- err
		}(name, f)
	}
	time.Sleep(40 * time.Millisecond)
	finish(t, "Close", func() { ch.Close(); full.Close() })
	for range calls {
		select {
		case <-errc:
		case <-time.After(long):
			t.Fatal("a blocked call did not return after Close")
		}
	}
	goroutinesBack(t, base)
}

// Close races with every kind of use; run with -race. Nothing may crash or
// return an unexpected error.
func TestCloseRacingWithUse(t *testing.T) {
	for round := 0; round < 20; round++ {
		ch, err := NewChannel(uniq(t, "memory"), 1024, []ChannelMode{ModeSPSC, ModeMPMC, ModeMPSC, ModeSPMC}[round%4], TypeMulti)
		if err != nil {
			t.Fatal(err)
		}
		ok := func(err error) bool {
			return err == nil || errors.Is(err, ErrClosed) || errors.Is(err, ErrChannelFull) ||
				errors.Is(err, ErrNoMessage) || errors.Is(err, ErrTimeout) || errors.Is(err, context.Canceled)
		}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for g := 0; g < 6; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					var err error
					switch (g + i) % 6 {
					case 0:
						err = ch.SendData([]byte("payload"), 1)
					case 1:
						_, _, err = ch.ReceiveData(64, time.Millisecond)
					case 2:
						var m *Message
						if m, err = ch.ReserveMessage(16); err == nil {
							copy(m.Data(), "reserved")
							err = m.Send(2)
						}
					case 3:
						var v *View
						if v, err = ch.ReceiveView(time.Millisecond); err == nil {
							_ = v.Data()
							err = v.Release()
						}
					case 4:
						ctx, cancel := context.WithCancel(context.Background())
						go cancel()
						_, _, err = ch.ReceiveContext(ctx, 64)
					case 5:
						_, err = ch.Metrics()
					}
					if !ok(err) {
						t.Errorf("unexpected error: %v", err)
						return
					}
					if errors.Is(err, ErrClosed) {
						return
					}
				}
			}(g)
		}
		time.Sleep(time.Duration(round%5) * time.Millisecond)
		var cw sync.WaitGroup
		for k := 0; k < 3; k++ { // concurrent Close calls
			cw.Add(1)
			go func() { defer cw.Done(); ch.Close() }()
		}
		finish(t, "Close", cw.Wait)
		close(stop)
		finish(t, "users", wg.Wait)
	}
}

// Messages and views outstanding at Close stay valid; the handle is
// destroyed after the last one is finished, in either order (each side
// counts its own outstanding handles).
func TestCloseWithOutstandingMessage(t *testing.T) {
	for _, viewLast := range []bool{false, true} {
		uri := uniq(t, "memory")
		ch, err := NewChannel(uri, 1024, ModeSPSC, TypeMulti)
		if err != nil {
			t.Fatal(err)
		}
		ch.SendData([]byte("in ring"), 1)
		m, err := ch.ReserveMessage(4)
		if err != nil {
			t.Fatal(err)
		}
		v, err := ch.ReceiveView(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		finish(t, "Close with outstanding message and view", func() { ch.Close() })
		copy(m.Data(), "late")
		first, last := "View", "Message"
		finishFirst, finishLast := func() {
			if string(v.Data()) != "in ring" {
				t.Fatalf("view after Close: %q", v.Data())
			}
			if err := v.Release(); err != nil {
				t.Fatal(err)
			}
		}, func() {
			if err := m.Cancel(); err != nil {
				t.Fatal(err)
			}
		}
		if viewLast {
			first, last = last, first
			finishFirst, finishLast = finishLast, finishFirst
		}
		finishFirst()
		// The ring still exists until the other one is finished.
		b, err := NewChannel(uri, 0, ModeSPSC, TypeMulti)
		if err != nil {
			t.Fatalf("%s finished: ring gone while a %s was outstanding: %v", first, last, err)
		}
		b.Close()
		finishLast()
		_, err = NewChannel(uri, 0, ModeSPSC, TypeMulti)
		mustIs(t, err, ErrInvalidArgument) // destroyed with the last one
	}
}
