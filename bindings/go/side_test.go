package psyne

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// openSides opens a memory:// channel and takes both its sides, all closed
// at the end of the test.
func openSides(t testing.TB, size int, mode ChannelMode, typ ChannelType) (*Channel, *Producer, *Consumer) {
	t.Helper()
	ch := openMem(t, size, mode, typ)
	tx, err := ch.Producer()
	if err != nil {
		t.Fatalf("Producer: %v", err)
	}
	t.Cleanup(func() { tx.Close() })
	rx, err := ch.Consumer()
	if err != nil {
		t.Fatalf("Consumer: %v", err)
	}
	t.Cleanup(func() { rx.Close() })
	return ch, tx, rx
}

// sendLater sends text through tx from another goroutine 10 ms from now;
// the returned channel closes when that send returned (the Producer is
// then free for this goroutine again).
func sendLater(tx *Producer, text string) <-chan struct{} {
	done := make(chan struct{})
	time.AfterFunc(10*time.Millisecond, func() {
		defer close(done)
		tx.SendData([]byte(text), 2)
	})
	return done
}

func TestSideRoundTrips(t *testing.T) {
	_, tx, rx := openSides(t, 4096, ModeSPSC, TypeMulti)
	ctx := context.Background()
	buf := make([]byte, 64)

	// Copying, every send and receive call.
	if err := tx.SendData([]byte("copied"), 1); err != nil {
		t.Fatal(err)
	}
	n, typ, err := rx.ReceiveInto(buf, time.Second)
	if err != nil || string(buf[:n]) != "copied" || typ != 1 {
		t.Fatalf("ReceiveInto: %q %d %v", buf[:n], typ, err)
	}
	if err := tx.SendContext(ctx, []byte("ctx"), 2); err != nil {
		t.Fatal(err)
	}
	n, typ, err = rx.ReceiveIntoContext(ctx, buf)
	if err != nil || string(buf[:n]) != "ctx" || typ != 2 {
		t.Fatalf("ReceiveIntoContext: %q %d %v", buf[:n], typ, err)
	}
	tx.SendData([]byte("data"), 3)
	data, typ, err := rx.ReceiveData(64, 0)
	if err != nil || string(data) != "data" || typ != 3 {
		t.Fatalf("ReceiveData: %q %d %v", data, typ, err)
	}
	tx.SendData([]byte("context"), 4)
	data, typ, err = rx.ReceiveContext(ctx, 64)
	if err != nil || string(data) != "context" || typ != 4 {
		t.Fatalf("ReceiveContext: %q %d %v", data, typ, err)
	}
	big := bytes.Repeat([]byte("m"), 1000)
	tx.SendData(big, 5)
	data, typ, err = rx.ReceiveMessage(time.Second)
	if err != nil || !bytes.Equal(data, big) || typ != 5 {
		t.Fatalf("ReceiveMessage: %d bytes, type %d, %v", len(data), typ, err)
	}

	// Zero-copy: the receiver reads the very bytes written through Data.
	m, err := tx.ReserveMessage(5)
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != 5 || len(m.Data()) != 5 {
		t.Fatalf("reservation of %d/%d bytes", m.Len(), len(m.Data()))
	}
	copy(m.Data(), "zero!")
	if err := m.Send(7); err != nil {
		t.Fatal(err)
	}
	v, err := rx.ReceiveView(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(v.Data()) != "zero!" || v.Type() != 7 || v.Len() != 5 {
		t.Fatalf("view %q type %d len %d", v.Data(), v.Type(), v.Len())
	}
	if err := v.Release(); err != nil {
		t.Fatal(err)
	}
	m, err = tx.ReserveContext(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	copy(m.Data(), "ctx")
	m.Send(8)
	v, err = rx.ReceiveViewContext(ctx)
	if err != nil || string(v.Data()) != "ctx" || v.Type() != 8 {
		t.Fatalf("ReceiveViewContext: %q %d %v", v.Data(), v.Type(), err)
	}
	v.Release()

	// A cancelled reservation sends nothing.
	m, _ = tx.ReserveMessage(16)
	if err := m.Cancel(); err != nil {
		t.Fatal(err)
	}
	_, err = rx.ReceiveView(0)
	mustIs(t, err, ErrNoMessage)

	// Empty messages, both ways.
	m, err = tx.ReserveMessage(0)
	if err != nil || m.Len() != 0 {
		t.Fatalf("empty reservation: %d %v", m.Len(), err)
	}
	m.Send(9)
	tx.SendData(nil, 10)
	v, err = rx.ReceiveView(time.Second)
	if err != nil || v.Len() != 0 || v.Type() != 9 {
		t.Fatalf("empty view: %d %d %v", v.Len(), v.Type(), err)
	}
	v.Release()
	n, typ, err = rx.ReceiveInto(nil, time.Second)
	if err != nil || n != 0 || typ != 10 {
		t.Fatalf("empty ReceiveInto: %d %d %v", n, typ, err)
	}

	_, err = tx.ReserveMessage(-1)
	mustIs(t, err, ErrInvalidArgument)
	_, _, err = rx.ReceiveData(-1, 0)
	mustIs(t, err, ErrInvalidArgument)
	max, _ := openMem(t, 4096, ModeSPSC, TypeMulti).MaxMessageSize()
	_, err = tx.ReserveMessage(max + 1)
	mustIs(t, err, ErrInvalidArgument)
	mustIs(t, tx.SendData(make([]byte, max+1), 0), ErrInvalidArgument)
}

func TestSideFusedCalls(t *testing.T) {
	ch, tx, rx := openSides(t, 1024, ModeSPSC, TypeMulti)
	// SendAndReserve until the ring is full: every message but the last
	// reservation arrives, in order, byte-exact.
	m, err := tx.ReserveMessage(8)
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	for {
		binary.LittleEndian.PutUint64(m.Data(), uint64(sent))
		next, err := m.SendAndReserve(uint32(sent), 8)
		if m.Data() != nil {
			t.Fatal("a message stayed valid after SendAndReserve sent it")
		}
		sent++
		if err != nil {
			mustIs(t, err, ErrChannelFull)
			if next.Data() != nil {
				t.Fatal("a failed SendAndReserve returned a message")
			}
			break
		}
		m = next
	}
	if sent < 10 {
		t.Fatalf("only %d messages fit a 1 KiB ring", sent)
	}
	// ReleaseAndReceive through all of them; at the end it reports the
	// empty channel and the view it released is finished.
	v, err := rx.ReceiveView(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < sent; i++ {
		if got := binary.LittleEndian.Uint64(v.Data()); got != uint64(i) || v.Type() != uint32(i) {
			t.Fatalf("message %d: id %d type %d", i, got, v.Type())
		}
		last := v
		v, err = v.ReleaseAndReceive(0)
		if last.Data() != nil {
			t.Fatal("a view stayed valid after ReleaseAndReceive released it")
		}
		if i == sent-1 {
			mustIs(t, err, ErrNoMessage)
		} else if err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
	}
	if m, _ := ch.Metrics(); m.MessagesReceived != uint64(sent) {
		t.Fatalf("%d received, want %d", m.MessagesReceived, sent)
	}

	// A waiting ReleaseAndReceive wakes for the next message.
	tx.SendData([]byte("a"), 1)
	v, _ = rx.ReceiveView(time.Second)
	later := sendLater(tx, "b")
	v, err = v.ReleaseAndReceive(-1)
	if err != nil || string(v.Data()) != "b" {
		t.Fatalf("waiting ReleaseAndReceive: %q %v", v.Data(), err)
	}
	<-later
	v, err = v.ReleaseAndReceive(20 * time.Millisecond)
	mustIs(t, err, ErrTimeout)

	// Finished and zero-valued messages are refused and change nothing.
	_, err = v.ReleaseAndReceive(0)
	mustIs(t, err, ErrInvalidArgument)
	_, err = m.SendAndReserve(0, 8)
	mustIs(t, err, ErrInvalidArgument)
	_, err = ProducerMessage{}.SendAndReserve(0, 8)
	mustIs(t, err, ErrInvalidArgument)
	_, err = ConsumerView{}.ReleaseAndReceive(0)
	mustIs(t, err, ErrInvalidArgument)
	m, _ = tx.ReserveMessage(4)
	_, err = m.SendAndReserve(0, -1)
	mustIs(t, err, ErrInvalidArgument)
	if m.Data() == nil {
		t.Fatal("a refused SendAndReserve finished the message")
	}
	m.Cancel()
}

func TestSideNoAllocations(t *testing.T) {
	_, tx, rx := openSides(t, 1<<16, ModeSPSC, TypeMulti)
	payload := make([]byte, 64)
	buf := make([]byte, 64)
	check := func(name string, f func() error) {
		t.Helper()
		var err error
		if n := testing.AllocsPerRun(200, func() {
			if e := f(); e != nil {
				err = e
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations per message", name, n)
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	check("SendData+ReceiveInto", func() error {
		if err := tx.SendData(payload, 1); err != nil {
			return err
		}
		_, _, err := rx.ReceiveInto(buf, -1)
		return err
	})
	check("ReserveMessage+Send, ReceiveView+Release", func() error {
		m, err := tx.ReserveMessage(64)
		if err != nil {
			return err
		}
		copy(m.Data(), payload)
		if err := m.Send(1); err != nil {
			return err
		}
		v, err := rx.ReceiveView(-1)
		if err != nil {
			return err
		}
		return v.Release()
	})
	// With a context that can end: armed only when a call has to wait.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	check("SendContext+ReceiveIntoContext, cancellable context", func() error {
		if err := tx.SendContext(ctx, payload, 1); err != nil {
			return err
		}
		_, _, err := rx.ReceiveIntoContext(ctx, buf)
		return err
	})
	check("ReserveContext+Send, ReceiveViewContext+Release, cancellable context", func() error {
		m, err := tx.ReserveContext(ctx, 64)
		if err != nil {
			return err
		}
		copy(m.Data(), payload)
		if err := m.Send(1); err != nil {
			return err
		}
		v, err := rx.ReceiveViewContext(ctx)
		if err != nil {
			return err
		}
		return v.Release()
	})
	m, _ := tx.ReserveMessage(64)
	m, _ = m.SendAndReserve(1, 64)
	v, _ := rx.ReceiveView(0)
	check("SendAndReserve, ReleaseAndReceive", func() error {
		var err error
		if m, err = m.SendAndReserve(1, 64); err != nil {
			return err
		}
		v, err = v.ReleaseAndReceive(-1)
		return err
	})
}

func TestSideExclusiveOnSingleSides(t *testing.T) {
	ch := openMem(t, 4096, ModeSPSC, TypeMulti)
	tx, err := ch.Producer()
	if err != nil {
		t.Fatal(err)
	}
	rx, err := ch.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	// While the sides live, the Channel neither sends nor receives, and no
	// second side is made.
	mustIs(t, ch.SendData([]byte("x"), 0), ErrInvalidArgument)
	mustIs(t, ch.SendContext(context.Background(), []byte("x"), 0), ErrInvalidArgument)
	_, err = ch.ReserveMessage(1)
	mustIs(t, err, ErrInvalidArgument)
	_, err = ch.Producer()
	mustIs(t, err, ErrInvalidArgument)
	tx.SendData([]byte("queued"), 1)
	_, _, err = ch.ReceiveData(64, 0)
	mustIs(t, err, ErrInvalidArgument)
	_, err = ch.ReceiveView(0)
	mustIs(t, err, ErrInvalidArgument)
	_, err = ch.Consumer()
	mustIs(t, err, ErrInvalidArgument)
	// A handle opened on the same ring is refused too.
	other, err := NewChannel(ch.URI(), 0, ModeSPSC, TypeMulti)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	mustIs(t, other.SendData([]byte("x"), 0), ErrInvalidArgument)

	// Closed, they give their sides back.
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rx.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ch.SendData([]byte("again"), 2); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"queued", "again"} {
		data, _, err := ch.ReceiveData(64, time.Second)
		if err != nil || string(data) != want {
			t.Fatalf("after Close: %q %v, want %q", data, err, want)
		}
	}
	// And a Channel's held Message keeps a Producer from being made.
	m, _ := ch.ReserveMessage(1)
	_, err = ch.Producer()
	mustIs(t, err, ErrInvalidArgument)
	m.Cancel()
	tx, err = ch.Producer()
	if err != nil {
		t.Fatal(err)
	}
	tx.Close()
}

func TestSideOneMessageAtATime(t *testing.T) {
	_, tx, rx := openSides(t, 4096, ModeSPSC, TypeMulti)
	m, _ := tx.ReserveMessage(4)
	mustIs(t, tx.SendData([]byte("x"), 0), ErrInvalidArgument)
	mustIs(t, tx.SendContext(context.Background(), []byte("x"), 0), ErrInvalidArgument)
	_, err := tx.ReserveMessage(4)
	mustIs(t, err, ErrInvalidArgument)
	copy(m.Data(), "kept")
	if err := m.Send(1); err != nil {
		t.Fatal(err)
	}
	tx.SendData([]byte("next"), 2)

	v, _ := rx.ReceiveView(time.Second)
	_, err = rx.ReceiveView(0)
	mustIs(t, err, ErrInvalidArgument)
	_, _, err = rx.ReceiveInto(make([]byte, 8), 0)
	mustIs(t, err, ErrInvalidArgument)
	_, _, err = rx.ReceiveData(8, 0)
	mustIs(t, err, ErrInvalidArgument)
	if string(v.Data()) != "kept" {
		t.Fatalf("held view changed: %q", v.Data())
	}
	v.Release()
	data, typ, err := rx.ReceiveData(8, time.Second)
	if err != nil || string(data) != "next" || typ != 2 {
		t.Fatalf("after release: %q %d %v", data, typ, err)
	}
}

func TestSideMessageMisuse(t *testing.T) {
	_, tx, rx := openSides(t, 4096, ModeSPSC, TypeMulti)
	m, _ := tx.ReserveMessage(3)
	copy(m.Data(), "one")
	stale := m
	if err := m.Send(1); err != nil {
		t.Fatal(err)
	}
	if m.Data() != nil || stale.Data() != nil {
		t.Fatal("Data after Send")
	}
	mustIs(t, m.Send(1), ErrInvalidArgument)
	mustIs(t, m.Cancel(), ErrInvalidArgument)
	// The slot is reused for the next reservation, but the old message
	// stays finished: it must not send (or cancel) the new one.
	next, _ := tx.ReserveMessage(3)
	copy(next.Data(), "two")
	mustIs(t, stale.Send(9), ErrInvalidArgument)
	mustIs(t, stale.Cancel(), ErrInvalidArgument)
	if stale.Data() != nil || string(next.Data()) != "two" {
		t.Fatal("the stale message reached the new one")
	}
	next.Send(2)

	v, _ := rx.ReceiveView(time.Second)
	old := v
	if err := v.Release(); err != nil {
		t.Fatal(err)
	}
	mustIs(t, v.Release(), ErrInvalidArgument)
	if v.Data() != nil || v.Type() != 1 {
		t.Fatal("view after Release")
	}
	v2, _ := rx.ReceiveView(time.Second)
	mustIs(t, old.Release(), ErrInvalidArgument)
	if string(v2.Data()) != "two" || v2.Type() != 2 {
		t.Fatalf("the stale view reached the new one: %q", v2.Data())
	}
	v2.Release()

	// Zero values are no message.
	var zm ProducerMessage
	var zv ConsumerView
	mustIs(t, zm.Send(0), ErrInvalidArgument)
	mustIs(t, zm.Cancel(), ErrInvalidArgument)
	mustIs(t, zv.Release(), ErrInvalidArgument)
	if zm.Data() != nil || zv.Data() != nil || zm.Len() != 0 || zv.Len() != 0 {
		t.Fatal("zero message has data")
	}
}

func TestSideSingleType(t *testing.T) {
	_, tx, rx := openSides(t, 4096, ModeSPSC, TypeSingle)
	m, _ := tx.ReserveMessage(2)
	copy(m.Data(), "ok")
	mustIs(t, m.Send(5), ErrInvalidArgument) // the reservation is kept
	if m.Data() == nil {
		t.Fatal("refused Send finished the message")
	}
	_, err := m.SendAndReserve(5, 2)
	mustIs(t, err, ErrInvalidArgument)
	if err := m.Send(0); err != nil {
		t.Fatal(err)
	}
	mustIs(t, tx.SendData([]byte("x"), 3), ErrInvalidArgument)
	v, err := rx.ReceiveView(time.Second)
	if err != nil || string(v.Data()) != "ok" || v.Type() != 0 {
		t.Fatalf("%q %d %v", v.Data(), v.Type(), err)
	}
	v.Release()
}

func TestSideFlowErrors(t *testing.T) {
	_, tx, rx := openSides(t, 256, ModeSPSC, TypeMulti)
	buf := make([]byte, 64)
	_, _, err := rx.ReceiveInto(buf, 0)
	mustIs(t, err, ErrNoMessage)
	_, _, err = rx.ReceiveInto(buf, 20*time.Millisecond)
	mustIs(t, err, ErrTimeout)
	_, err = rx.ReceiveView(20 * time.Millisecond)
	mustIs(t, err, ErrTimeout)
	_, _, err = rx.ReceiveData(64, 20*time.Millisecond)
	mustIs(t, err, ErrTimeout)
	_, _, err = rx.ReceiveMessage(0)
	mustIs(t, err, ErrNoMessage)
	for tx.SendData(make([]byte, 32), 0) == nil {
	}
	mustIs(t, tx.SendData(make([]byte, 32), 0), ErrChannelFull)
	_, err = tx.ReserveMessage(32)
	mustIs(t, err, ErrChannelFull)

	// Too small: the needed length, and the message stays queued.
	n, _, err := rx.ReceiveInto(make([]byte, 4), 0)
	mustIs(t, err, ErrInvalidArgument)
	if n != 32 {
		t.Fatalf("needed length %d, want 32", n)
	}
	_, _, err = rx.ReceiveData(4, 0)
	mustIs(t, err, ErrInvalidArgument)
	if !strings.Contains(err.Error(), "32") {
		t.Fatalf("detail does not say the size: %v", err)
	}
	if n, _, err := rx.ReceiveInto(buf, 0); err != nil || n != 32 {
		t.Fatalf("after too small: %d %v", n, err)
	}
}

func TestSideReceiveDataGrows(t *testing.T) {
	_, tx, rx := openSides(t, 1<<16, ModeSPSC, TypeMulti)
	for _, size := range []int{10, 3000, 100, 20000} {
		msg := bytes.Repeat([]byte{byte(size)}, size)
		tx.SendData(msg, uint32(size))
		data, typ, err := rx.ReceiveData(1<<15, time.Second)
		if err != nil || !bytes.Equal(data, msg) || typ != uint32(size) {
			t.Fatalf("size %d: %d bytes, type %d, %v", size, len(data), typ, err)
		}
	}
}

func TestSideContexts(t *testing.T) {
	_, tx, rx := openSides(t, 256, ModeSPSC, TypeMulti)
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	_, _, err := rx.ReceiveContext(done, 64)
	mustIs(t, err, ErrCancelled)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ended context: %v", err)
	}

	// Cancel wakes a blocked receive; so does a deadline.
	for _, name := range []string{"ReceiveContext", "ReceiveIntoContext", "ReceiveViewContext"} {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(20*time.Millisecond, cancel)
		var err error
		finish(t, name, func() {
			switch name {
			case "ReceiveContext":
				_, _, err = rx.ReceiveContext(ctx, 64)
			case "ReceiveIntoContext":
				_, _, err = rx.ReceiveIntoContext(ctx, make([]byte, 8))
			default:
				_, err = rx.ReceiveViewContext(ctx)
			}
		})
		if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrCancelled) {
			t.Fatalf("%s cancelled: %v", name, err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err = rx.ReceiveViewContext(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrTimeout) {
			t.Fatalf("deadline: %v", err)
		}
	}

	// The token fired by a context is re-armed: the next waits time out
	// rather than fail as cancelled, and receive what comes.
	_, _, err = rx.ReceiveInto(make([]byte, 8), 20*time.Millisecond)
	mustIs(t, err, ErrTimeout)
	sent := sendLater(tx, "late")
	data, _, err := rx.ReceiveContext(context.Background(), 64)
	if err != nil || string(data) != "late" {
		t.Fatalf("after cancellations: %q %v", data, err)
	}
	<-sent // the Producer is this goroutine's again

	// Senders wait for room on a full ring until their context ends, and
	// go on when a receiver makes room.
	for tx.SendData(make([]byte, 32), 0) == nil {
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	err = tx.SendContext(ctx, make([]byte, 32), 0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("SendContext on a full ring: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	_, err = tx.ReserveContext(ctx, 32)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("ReserveContext on a full ring: %v", err)
	}
	_, err = tx.ReserveContext(done, 1)
	mustIs(t, err, ErrCancelled)
	go func() {
		time.Sleep(10 * time.Millisecond)
		for {
			if _, _, err := rx.ReceiveData(64, 0); err != nil {
				return
			}
		}
	}()
	ctx, cancel = context.WithTimeout(context.Background(), long)
	defer cancel()
	m, err := tx.ReserveContext(ctx, 32)
	if err != nil {
		t.Fatalf("ReserveContext after room was made: %v", err)
	}
	m.Cancel()
}

func TestSideConcurrentUseRefused(t *testing.T) {
	_, tx, rx := openSides(t, 4096, ModeSPSC, TypeMulti)
	ctx, cancel := context.WithCancel(context.Background())
	blocked := make(chan error, 1)
	go func() {
		_, err := rx.ReceiveViewContext(ctx)
		blocked <- err
	}()
	// While that goroutine waits in the Consumer, another is refused at
	// once, and the waiting one is not disturbed.
	eventually(t, "the goroutine waits in the consumer", func() bool {
		return rx.state.Load()&sideBusy != 0
	})
	_, _, err := rx.ReceiveInto(make([]byte, 8), 0)
	mustIs(t, err, ErrInvalidArgument)
	if !strings.Contains(err.Error(), "another goroutine") {
		t.Fatalf("concurrent use: %v", err)
	}
	tx.SendData([]byte("for the first"), 1)
	select {
	case err := <-blocked:
		if err != nil {
			t.Fatalf("the waiting receive: %v", err)
		}
	case <-time.After(long):
		t.Fatal("the waiting receive did not get the message")
	}
	cancel()
}

func TestSideCloseWakesBlockedCalls(t *testing.T) {
	for _, name := range []string{"ReceiveInto", "ReceiveViewContext", "ReleaseAndReceive", "SendContext", "ReserveContext"} {
		t.Run(name, func(t *testing.T) {
			_, tx, rx := openSides(t, 256, ModeSPSC, TypeMulti)
			var closer interface{ Close() error } = rx
			call := func() error {
				switch name {
				case "ReceiveInto":
					_, _, err := rx.ReceiveInto(make([]byte, 8), -1)
					return err
				case "ReceiveViewContext":
					_, err := rx.ReceiveViewContext(context.Background())
					return err
				case "ReleaseAndReceive":
					tx.SendData([]byte("x"), 0)
					v, err := rx.ReceiveView(time.Second)
					if err != nil {
						return err
					}
					_, err = v.ReleaseAndReceive(-1)
					return err
				}
				for tx.SendData(make([]byte, 32), 0) == nil {
				}
				if name == "SendContext" {
					return tx.SendContext(context.Background(), make([]byte, 32), 0)
				}
				_, err := tx.ReserveContext(context.Background(), 32)
				return err
			}
			if strings.HasPrefix(name, "S") || strings.HasPrefix(name, "Reserve") {
				closer = tx
			}
			errc := make(chan error, 1)
			go func() { errc <- call() }()
			time.Sleep(20 * time.Millisecond) // usually blocked by now; either way Close must win
			finish(t, "Close", func() {
				if err := closer.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			select {
			case err := <-errc:
				mustIs(t, err, ErrClosed)
				mustIs(t, err, ErrChannelStopped)
			case <-time.After(long):
				t.Fatal("the blocked call did not return after Close")
			}
			if err := closer.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
		})
	}
}

func TestSideCloseIdempotentAndAfterClose(t *testing.T) {
	ch, tx, rx := openSides(t, 4096, ModeSPSC, TypeMulti)
	tx.SendData([]byte("held"), 1)
	m, _ := tx.ReserveMessage(4)
	copy(m.Data(), "lost")
	v, _ := rx.ReceiveView(time.Second)
	for i := 0; i < 2; i++ {
		if err := tx.Close(); err != nil {
			t.Fatalf("Producer.Close #%d: %v", i+1, err)
		}
		if err := rx.Close(); err != nil {
			t.Fatalf("Consumer.Close #%d: %v", i+1, err)
		}
	}
	// Every call, and the messages the sides held, now fail as closed.
	mustIs(t, tx.SendData([]byte("x"), 0), ErrClosed)
	_, err := tx.ReserveMessage(1)
	mustIs(t, err, ErrClosed)
	mustIs(t, m.Send(0), ErrClosed)
	mustIs(t, m.Cancel(), ErrClosed)
	_, err = m.SendAndReserve(0, 1)
	mustIs(t, err, ErrClosed)
	_, _, err = rx.ReceiveInto(make([]byte, 8), 0)
	mustIs(t, err, ErrClosed)
	_, err = rx.ReceiveView(0)
	mustIs(t, err, ErrClosed)
	mustIs(t, v.Release(), ErrClosed)
	_, err = v.ReleaseAndReceive(0)
	mustIs(t, err, ErrClosed)
	if m.Data() != nil || v.Data() != nil {
		t.Fatal("a closed side's message still has data")
	}
	// Closing cancelled the reservation and released the view: the ring
	// is empty and usable through the Channel.
	if _, _, err := ch.ReceiveData(64, 0); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("after the sides closed: %v", err)
	}
	if err := ch.SendData([]byte("again"), 2); err != nil {
		t.Fatal(err)
	}
	if data, _, err := ch.ReceiveData(64, time.Second); err != nil || string(data) != "again" {
		t.Fatalf("%q %v", data, err)
	}
}

func TestSideCloseRacingWithUse(t *testing.T) {
	for round := 0; round < 20; round++ {
		_, tx, rx := openSides(t, 4096, ModeSPSC, TypeMulti)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { // producer: copying, zero-copy and fused, until closed
			defer wg.Done()
			for i := 0; ; i++ {
				var err error
				switch i % 3 {
				case 0:
					err = tx.SendContext(context.Background(), []byte("copy"), 1)
				case 1:
					var m ProducerMessage
					if m, err = tx.ReserveContext(context.Background(), 4); err == nil {
						copy(m.Data(), "zero")
						err = m.Send(2)
					}
				case 2:
					var m ProducerMessage
					if m, err = tx.ReserveMessage(4); err == nil {
						copy(m.Data(), "fuse")
						if m, err = m.SendAndReserve(3, 4); err == nil {
							err = m.Cancel()
						}
					}
				}
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil && !errors.Is(err, ErrChannelFull) {
					t.Errorf("producer: %v", err)
					return
				}
			}
		}()
		go func() { // consumer, until closed
			defer wg.Done()
			buf := make([]byte, 8)
			for i := 0; ; i++ {
				var err error
				if i%2 == 0 {
					_, _, err = rx.ReceiveInto(buf, -1)
				} else {
					var v ConsumerView
					if v, err = rx.ReceiveView(-1); err == nil {
						if v.Len() != 4 {
							t.Errorf("view of %d bytes", v.Len())
						}
						err = v.Release()
					}
				}
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("consumer: %v", err)
					return
				}
			}
		}()
		time.Sleep(time.Duration(round%5) * time.Millisecond)
		finish(t, "Close of both sides", func() {
			tx.Close()
			rx.Close()
		})
		finish(t, "the goroutines", wg.Wait)
	}
}

func TestSideStop(t *testing.T) {
	ch, tx, rx := openSides(t, 4096, ModeSPSC, TypeMulti)
	tx.SendData([]byte("queued"), 1)
	errc := make(chan error, 1)
	ch.Stop()
	mustIs(t, tx.SendData([]byte("x"), 0), ErrChannelStopped)
	_, err := tx.ReserveMessage(1)
	mustIs(t, err, ErrChannelStopped)
	data, _, err := rx.ReceiveData(64, time.Second) // drained first
	if err != nil || string(data) != "queued" {
		t.Fatalf("drain after stop: %q %v", data, err)
	}
	go func() { _, err := rx.ReceiveView(-1); errc <- err }()
	select {
	case err := <-errc:
		mustIs(t, err, ErrChannelStopped)
		if errors.Is(err, ErrClosed) {
			t.Fatal("a stopped channel is not a closed side")
		}
	case <-time.After(long):
		t.Fatal("receive on a stopped channel did not return")
	}
}

func TestSideStopWakesBlockedReceive(t *testing.T) {
	ch, _, rx := openSides(t, 4096, ModeSPSC, TypeMulti)
	errc := make(chan error, 1)
	go func() { _, _, err := rx.ReceiveContext(context.Background(), 64); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	ch.Stop()
	select {
	case err := <-errc:
		mustIs(t, err, ErrChannelStopped)
	case <-time.After(long):
		t.Fatal("Stop did not wake the blocked receive")
	}
}

func TestSideOutlivesChannel(t *testing.T) {
	ch, err := NewChannel(uniq(t, "memory"), 4096, ModeSPSC, TypeMulti)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := ch.Producer()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	rx, err := ch.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = ch.Producer()
	mustIs(t, err, ErrClosed)
	_, err = ch.Consumer()
	mustIs(t, err, ErrClosed)
	m, err := tx.ReserveMessage(5)
	if err != nil {
		t.Fatalf("Producer after its Channel closed: %v", err)
	}
	copy(m.Data(), "still")
	m.Send(1)
	v, err := rx.ReceiveView(time.Second)
	if err != nil || string(v.Data()) != "still" {
		t.Fatalf("Consumer after its Channel closed: %q %v", v.Data(), err)
	}
	v.Release()
}

func TestSideNilAndZero(t *testing.T) {
	var tx *Producer
	var rx *Consumer
	mustIs(t, tx.SendData(nil, 0), ErrInvalidArgument)
	_, err := tx.ReserveContext(context.Background(), 1)
	mustIs(t, err, ErrInvalidArgument)
	_, _, err = rx.ReceiveInto(nil, 0)
	mustIs(t, err, ErrInvalidArgument)
	_, err = rx.ReceiveView(-1)
	mustIs(t, err, ErrInvalidArgument)
	if tx.Close() != nil || rx.Close() != nil {
		t.Fatal("Close of nil sides")
	}
	var ztx Producer
	var zrx Consumer
	mustIs(t, ztx.SendData([]byte("x"), 0), ErrInvalidArgument)
	_, err = zrx.ReceiveViewContext(context.Background())
	mustIs(t, err, ErrInvalidArgument)
	if ztx.Close() != nil || zrx.Close() != nil {
		t.Fatal("Close of zero sides")
	}
	var ch *Channel
	_, err = ch.Producer()
	mustIs(t, err, ErrInvalidArgument)
	_, err = ch.Consumer()
	mustIs(t, err, ErrInvalidArgument)
}

func TestSideCleanupGivesSideBack(t *testing.T) {
	ch := openMem(t, 4096, ModeSPSC, TypeMulti)
	func() {
		tx, err := ch.Producer()
		if err != nil {
			t.Fatal(err)
		}
		tx.SendData([]byte("from a forgotten producer"), 1)
	}()
	// The forgotten Producer holds the single side until the garbage
	// collector runs its cleanup.
	eventually(t, "the cleanup gives the side back", func() bool {
		runtime.GC()
		return ch.SendData([]byte("x"), 0) == nil
	})
	func() {
		rx, err := ch.Consumer()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rx.ReceiveView(time.Second); err != nil { // held when forgotten
			t.Fatal(err)
		}
	}()
	eventually(t, "the cleanup gives the receiving side back", func() bool {
		runtime.GC()
		data, _, err := ch.ReceiveData(64, 0)
		return err == nil && string(data) == "x"
	})
}

// One Producer and one Consumer per goroutine on a multi-producer,
// multi-consumer channel: every message arrives exactly once, byte-exact,
// whichever calls send and receive it.
func TestSideMPMCExactlyOnce(t *testing.T) {
	const producers, consumers, perProducer = 4, 4, 2000
	ch := openMem(t, 1<<14, ModeMPMC, TypeMulti)
	total := producers * perProducer
	seen := make([]atomic.Int32, total)
	var received atomic.Int64
	body := func(id uint64) []byte {
		b := make([]byte, 8+int(id%57))
		binary.LittleEndian.PutUint64(b, id)
		for i := 8; i < len(b); i++ {
			b[i] = byte(id) ^ byte(i)
		}
		return b
	}
	var pwg, cwg sync.WaitGroup
	for p := 0; p < producers; p++ {
		tx, err := ch.Producer()
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		pwg.Add(1)
		go func(p int) {
			defer pwg.Done()
			ctx := context.Background()
			var m ProducerMessage
			for i := 0; i < perProducer; i++ {
				id := uint64(p*perProducer + i)
				b := body(id)
				var err error
				switch i % 3 {
				case 0:
					err = tx.SendContext(ctx, b, uint32(id%1000))
				case 1:
					if m, err = tx.ReserveContext(ctx, len(b)); err == nil {
						copy(m.Data(), b)
						err = m.Send(uint32(id % 1000))
					}
				case 2: // the fused call, falling back to a wait when full
					if m, err = tx.ReserveContext(ctx, len(b)); err == nil {
						copy(m.Data(), b)
						m, err = m.SendAndReserve(uint32(id%1000), 1)
						if err == nil {
							err = m.Cancel()
						} else if errors.Is(err, ErrChannelFull) {
							err = nil
						}
					}
				}
				if err != nil {
					t.Errorf("producer %d: %v", p, err)
					return
				}
			}
		}(p)
	}
	for c := 0; c < consumers; c++ {
		rx, err := ch.Consumer()
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		cwg.Add(1)
		go func(c int) {
			defer cwg.Done()
			buf := make([]byte, 128)
			check := func(data []byte, typ uint32) bool {
				if len(data) < 8 {
					t.Errorf("message of %d bytes", len(data))
					return false
				}
				id := binary.LittleEndian.Uint64(data)
				if id >= uint64(total) || typ != uint32(id%1000) || !bytes.Equal(data, body(id)) {
					t.Errorf("bad message id %d type %d (%d bytes)", id, typ, len(data))
					return false
				}
				if seen[id].Add(1) != 1 {
					t.Errorf("message %d received twice", id)
				}
				received.Add(1)
				return true
			}
			var v ConsumerView
			for i := 0; received.Load() < int64(total); i++ {
				var err error
				switch i % 3 {
				case 0:
					var n int
					var typ uint32
					if n, typ, err = rx.ReceiveInto(buf, 5*time.Millisecond); err == nil && !check(buf[:n], typ) {
						return
					}
				case 1:
					if v, err = rx.ReceiveView(5 * time.Millisecond); err == nil {
						if !check(v.Data(), v.Type()) {
							return
						}
						err = v.Release()
					}
				case 2:
					if v, err = rx.ReceiveView(5 * time.Millisecond); err == nil && check(v.Data(), v.Type()) {
						if v, err = v.ReleaseAndReceive(5 * time.Millisecond); err == nil {
							if !check(v.Data(), v.Type()) {
								return
							}
							err = v.Release()
						}
					}
				}
				if errors.Is(err, ErrTimeout) || errors.Is(err, ErrNoMessage) {
					continue
				}
				if err != nil {
					t.Errorf("consumer %d: %v", c, err)
					return
				}
			}
		}(c)
	}
	finish(t, "producers", pwg.Wait)
	finish(t, "consumers", cwg.Wait)
	eachOnce(t, seen)
}

// Sides on the other modes: the single side refuses a second side, the
// multi side takes several.
func TestSideModes(t *testing.T) {
	for _, mode := range []ChannelMode{ModeSPSC, ModeSPMC, ModeMPSC, ModeMPMC} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			ch := openMem(t, 4096, mode, TypeMulti)
			a, err := ch.Producer()
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := ch.Producer()
			if mode.singleProducer() {
				mustIs(t, err, ErrInvalidArgument)
			} else if err != nil {
				t.Fatal(err)
			} else {
				defer b.Close()
			}
			c, err := ch.Consumer()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			d, err := ch.Consumer()
			if mode.singleConsumer() {
				mustIs(t, err, ErrInvalidArgument)
			} else if err != nil {
				t.Fatal(err)
			} else {
				defer d.Close()
			}
			a.SendData([]byte(mode.String()), 1)
			data, _, err := c.ReceiveData(16, time.Second)
			if err != nil || string(data) != mode.String() {
				t.Fatalf("%q %v", data, err)
			}
		})
	}
}

// sideStream sends n messages through a Producer of from (alternately copied
// and zero-copy, sizes 900+i, repetitive so that compression has work) and
// receives them through a Consumer of to (alternately as views and copies),
// checking every byte.
func sideStream(t *testing.T, from, to *Channel, n int) {
	t.Helper()
	tx, err := from.Producer()
	if err != nil {
		t.Fatalf("Producer: %v", err)
	}
	defer tx.Close()
	rx, err := to.Consumer()
	if err != nil {
		t.Fatalf("Consumer: %v", err)
	}
	defer rx.Close()
	body := func(i int) []byte { return bytes.Repeat([]byte{byte(i), byte(i >> 8), 'x'}, (900+i)/3) }
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	for i := 0; i < n; i++ {
		b := body(i)
		if i%2 == 0 {
			if err := tx.SendContext(ctx, b, uint32(i)); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
			continue
		}
		m, err := tx.ReserveContext(ctx, len(b))
		if err != nil {
			t.Fatalf("reserve %d: %v", i, err)
		}
		copy(m.Data(), b)
		if err := m.Send(uint32(i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	for i := 0; i < n; i++ {
		var data []byte
		var typ uint32
		if i%2 == 0 {
			v, err := rx.ReceiveViewContext(ctx)
			if err != nil {
				t.Fatalf("receive %d: %v", i, err)
			}
			data, typ = bytes.Clone(v.Data()), v.Type()
			v.Release()
		} else if data, typ, err = rx.ReceiveContext(ctx, 4096); err != nil {
			t.Fatalf("receive %d: %v", i, err)
		}
		if !bytes.Equal(data, body(i)) || typ != uint32(i) {
			t.Fatalf("message %d: %d bytes of type %d, or wrong bytes", i, len(data), typ)
		}
	}
}

func TestSideTransports(t *testing.T) {
	t.Run("ipc", func(t *testing.T) {
		a, b := twoHandles(t, "ipc", 1<<16, ModeSPSC)
		sideStream(t, a, b, 60)
	})
	t.Run("compressed", func(t *testing.T) {
		uri := uniq(t, "memory")
		cfg := CompressionConfig{Type: CompressionLZ4, MinSizeThreshold: 64, EnableChecksum: true}
		a, err := NewChannelWithCompression(uri, 1<<16, ModeSPSC, TypeMulti, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		sideStream(t, a, a, 60)
		if m, _ := a.ExtendedMetrics(); m.MessagesCompressed == 0 {
			t.Fatal("nothing was compressed")
		}
	})
	for _, scheme := range []string{"tcp", "unix"} {
		t.Run(scheme, func(t *testing.T) {
			l, uri := listenNet(t, scheme, "", 1<<16, ModeSPSC)
			c := dial(t, uri, 1<<16, ModeSPSC)
			sideStream(t, c, l, 60)
		})
	}
}
