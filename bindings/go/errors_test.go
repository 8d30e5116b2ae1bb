package psyne

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Every code maps to exactly one sentinel; unknown codes map to ErrUnknown.
func TestErrorMapping(t *testing.T) {
	sentinels := []ErrorCode{ErrInvalidArgument, ErrOutOfMemory, ErrChannelFull, ErrNoMessage,
		ErrChannelStopped, ErrUnsupported, ErrIO, ErrTimeout, ErrCancelled, ErrUnknown}
	wantVal := map[ErrorCode]int32{ErrInvalidArgument: -1, ErrOutOfMemory: -2, ErrChannelFull: -3,
		ErrNoMessage: -4, ErrChannelStopped: -5, ErrUnsupported: -6, ErrIO: -7, ErrTimeout: -8,
		ErrCancelled: -9, ErrUnknown: -99}
	for _, code := range sentinels {
		if int32(code) != wantVal[code] {
			t.Errorf("%v = %d, want %d", code, int32(code), wantVal[code])
		}
		err := error(newError("Op", code, "detail text"))
		matches := 0
		for _, s := range sentinels {
			if errors.Is(err, s) {
				matches++
				if s != code {
					t.Errorf("%v matches %v", code, s)
				}
			}
		}
		if matches != 1 {
			t.Errorf("%v matches %d sentinels", code, matches)
		}
		if !strings.Contains(err.Error(), "detail text") || !strings.Contains(err.Error(), code.String()) ||
			!strings.HasPrefix(err.Error(), "psyne: Op: ") {
			t.Errorf("Error() = %q", err.Error())
		}
		if !strings.HasPrefix(code.Error(), "psyne: ") {
			t.Errorf("ErrorCode.Error() = %q", code.Error())
		}
		if err.(*Error).Timeout() != (code == ErrTimeout) {
			t.Errorf("%v: Timeout() = %v", code, err.(*Error).Timeout())
		}
	}
	err := newError("Op", ErrorCode(-42), "odd")
	if !errors.Is(err, ErrUnknown) || !strings.Contains(err.Detail, "-42") {
		t.Errorf("unknown code: %v", err)
	}
	if e := newError("Op", ErrIO, ""); e.Error() != "psyne: Op: I/O error" {
		t.Errorf("no detail: %q", e.Error())
	}
	ce := contextError("Op", context.Canceled, "")
	if !errors.Is(ce, context.Canceled) || !errors.Is(ce, ErrCancelled) || errors.Is(ce, ErrTimeout) {
		t.Errorf("context error: %v", ce)
	}
	de := contextError("Op", context.DeadlineExceeded, "")
	if !errors.Is(de, context.DeadlineExceeded) || !errors.Is(de, ErrTimeout) || !de.Timeout() {
		t.Errorf("deadline error: %v", de)
	}
	cl := closedError("Op")
	if !errors.Is(cl, ErrClosed) || !errors.Is(cl, ErrChannelStopped) || cl.Error() != "psyne: Op: channel closed" {
		t.Errorf("closed error: %v", cl)
	}
}

// Real failures carry the library's detail text (see also
// TestNewChannelErrors and the other tests); flow conditions are the bare
// sentinels, so that the idiom err == psyne.ErrTimeout works.
func TestLibraryDetailText(t *testing.T) {
	ch := openMem(t, 64, ModeSPSC, TypeMulti)
	check := func(err, want error) {
		t.Helper()
		mustIs(t, err, want)
		if err.(*Error).Detail == "" {
			t.Errorf("%v: no detail text from libpsyne", err)
		}
	}
	_, _, err := ch.ReceiveData(8, 0)
	if err != ErrNoMessage {
		t.Errorf("empty: got %#v, want the bare ErrNoMessage", err)
	}
	_, _, err = ch.ReceiveData(8, 5*time.Millisecond)
	if err != ErrTimeout || !err.(ErrorCode).Timeout() {
		t.Errorf("timeout: got %#v, want the bare ErrTimeout", err)
	}
	for err == nil || errors.Is(err, ErrNoMessage) || errors.Is(err, ErrTimeout) {
		err = ch.SendData(make([]byte, 8), 1)
	}
	if err != ErrChannelFull {
		t.Errorf("full: got %#v, want the bare ErrChannelFull", err)
	}
	check(ch.SendData(make([]byte, 1000), 1), ErrInvalidArgument)
	_, _, err = ch.ReceiveData(1, 0)
	check(err, ErrInvalidArgument)
}

func TestSideLock(t *testing.T) {
	var l sideLock
	if l.lock(nil, time.Time{}, nil) != lockAcquired {
		t.Fatal("lock of a free sideLock failed")
	}
	if r := l.lock(nil, time.Now().Add(10*time.Millisecond), nil); r != lockTimedOut {
		t.Fatalf("deadline: %v", r)
	}
	done := make(chan struct{})
	close(done)
	if r := l.lock(done, time.Time{}, nil); r != lockDone {
		t.Fatalf("done: %v", r)
	}
	closing := make(chan struct{})
	close(closing)
	if r := l.lock(nil, time.Time{}, closing); r != lockClosed {
		t.Fatalf("closing: %v", r)
	}
	got := make(chan lockResult)
	for i := 0; i < 3; i++ {
		go func() {
			r := l.lock(nil, time.Time{}, nil)
			got <- r
			l.unlock()
		}()
	}
	time.Sleep(10 * time.Millisecond)
	l.unlock()
	for i := 0; i < 3; i++ {
		if r := <-got; r != lockAcquired {
			t.Fatalf("waiter %d: %v", i, r)
		}
	}
	if !l.lock(nil, time.Time{}, nil).ok() {
		t.Fatal("lock after handoffs failed")
	}
	l.unlock()
	if l.state.Load() != lockFree || len(l.waiters) != 0 {
		t.Fatalf("lock state after all: state=%d waiters=%d", l.state.Load(), len(l.waiters))
	}
}

func TestRingKey(t *testing.T) {
	for in, want := range map[string]string{
		"memory://jobs":         "memory://jobs",
		"MEMORY://jobs?x=1":     "memory://jobs",
		"ipc://frames#frag":     "ipc://frames",
		"tcp://localhost:80":    "",
		"memory://a%20b":        "memory://a b",
		"no-scheme":             "",
		"unix:///tmp/x.sock":    "",
		"ws://localhost:9000/x": "",
	} {
		if got := ringKey(in); got != want {
			t.Errorf("ringKey(%q) = %q, want %q", in, got, want)
		}
	}
}
