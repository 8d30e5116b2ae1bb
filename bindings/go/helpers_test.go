package psyne

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// long is the generous limit for anything that should happen "promptly":
// tests never assert speed, only that a call returns at all.
const long = 20 * time.Second

var nameSeq atomic.Int64

// uniq returns a channel URI no other test uses.
func uniq(t testing.TB, scheme string) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, t.Name())
	if len(name) > 100 {
		name = name[:100]
	}
	return fmt.Sprintf("%s://go-%s-%d-%d", scheme, name, os.Getpid(), nameSeq.Add(1))
}

// openMem opens a fresh memory:// channel closed at the end of the test.
func openMem(t testing.TB, size int, mode ChannelMode, typ ChannelType) *Channel {
	t.Helper()
	ch, err := NewChannel(uniq(t, "memory"), size, mode, typ)
	if err != nil {
		t.Fatalf("NewChannel: %v", err)
	}
	t.Cleanup(func() { ch.Close() })
	return ch
}

// twoHandles opens a fresh channel of scheme (memory or ipc) with a ring of
// size bytes and attaches a second handle to it (size 0); both are closed at
// the end of the test.
func twoHandles(t testing.TB, scheme string, size int, mode ChannelMode) (*Channel, *Channel) {
	t.Helper()
	uri := uniq(t, scheme)
	a, err := NewChannel(uri, size, mode, TypeMulti)
	if err != nil {
		t.Fatalf("NewChannel(%q): %v", uri, err)
	}
	t.Cleanup(func() { a.Close() })
	b, err := NewChannel(uri, 0, mode, TypeMulti)
	if err != nil {
		t.Fatalf("attach to %q: %v", uri, err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

// eachOnce fails unless every message id was counted exactly once.
func eachOnce(t testing.TB, seen []atomic.Int32) {
	t.Helper()
	for id := range seen {
		if n := seen[id].Load(); n != 1 {
			t.Fatalf("message %d received %d times", id, n)
		}
	}
}

// mustIs fails unless errors.Is(err, target), and err is either the bare
// sentinel of a flow condition or an *Error.
func mustIs(t testing.TB, err error, target error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %v", target)
	}
	if !errors.Is(err, target) {
		t.Fatalf("got %v (%T), want errors.Is(err, %v)", err, err, target)
	}
	if code, ok := err.(ErrorCode); ok {
		switch code {
		case ErrChannelFull, ErrNoMessage, ErrTimeout, ErrChannelStopped:
			return
		}
		t.Fatalf("bare %v: only flow conditions are returned bare", code)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not a *psyne.Error", err)
	}
}

// finish runs f in a goroutine and fails the test if it has not returned
// within the generous limit.
func finish(t testing.TB, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(long):
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("%s did not return within %v\n%s", what, long, buf[:n])
	}
}

// eventually polls cond until it holds or the generous limit passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(long)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still false after %v", what, long)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// goroutinesBack waits until the number of goroutines is back to at most n.
func goroutinesBack(t testing.TB, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("goroutines back to %d", n), func() bool {
		return runtime.NumGoroutine() <= n
	})
}
