package psyne

import (
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// sideLock serialises the goroutines using a single-producer or
// single-consumer side of a channel. It is a mutex whose waits can be
// abandoned (timeout, context, Close), which sync.Mutex cannot do, and that
// hands itself to its waiters in FIFO order. Uncontended, lock and unlock
// are one compare-and-swap each.
type sideLock struct {
	// state is lockFree, lockHeld, or lockWaiters (held, and waiters is not
	// empty). The last is only set and cleared under mu.
	state   atomic.Int32
	mu      sync.Mutex
	waiters []chan struct{} // FIFO; unlock hands the lock to the first
}

const (
	lockFree    = 0
	lockHeld    = 1
	lockWaiters = 2
)

// lockResult says why lock returned.
type lockResult int

const (
	lockAcquired lockResult = iota
	lockDone                // the done channel (a context) closed
	lockTimedOut            // the deadline passed
	lockClosed              // the channel handle was closed
)

// lock acquires l. It gives up when done or closing is closed, or when a
// non-zero deadline passes. A nil channel never fires.
func (l *sideLock) lock(done <-chan struct{}, deadline time.Time, closing <-chan struct{}) lockResult {
	if l.state.CompareAndSwap(lockFree, lockHeld) {
		return lockAcquired
	}
	return l.lockSlow(done, deadline, closing)
}

func (l *sideLock) lockSlow(done <-chan struct{}, deadline time.Time, closing <-chan struct{}) lockResult {
	l.mu.Lock()
	for {
		switch l.state.Load() {
		case lockFree:
			if l.state.CompareAndSwap(lockFree, lockHeld) {
				l.mu.Unlock()
				return lockAcquired
			}
			continue
		case lockHeld:
			if !l.state.CompareAndSwap(lockHeld, lockWaiters) {
				continue // released meanwhile
			}
		}
		break
	}
	w := make(chan struct{}, 1)
	l.waiters = append(l.waiters, w)
	l.mu.Unlock()

	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	var why lockResult
	select {
	case <-w:
		return lockAcquired
	case <-done:
		why = lockDone
	case <-timeout:
		why = lockTimedOut
	case <-closing:
		why = lockClosed
	}
	l.mu.Lock()
	for i, x := range l.waiters {
		if x == w {
			l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
			if len(l.waiters) == 0 {
				l.state.Store(lockHeld)
			}
			l.mu.Unlock()
			return why
		}
	}
	l.mu.Unlock()
	// unlock handed us the lock while we were giving up: pass it on.
	<-w
	l.unlock()
	return why
}

// unlock releases l, handing it to the longest waiter if there is one.
func (l *sideLock) unlock() {
	if l.state.CompareAndSwap(lockHeld, lockFree) {
		return
	}
	l.mu.Lock()
	if len(l.waiters) == 0 { // cannot happen: lockWaiters implies waiters
		l.state.Store(lockFree)
		l.mu.Unlock()
		return
	}
	w := l.waiters[0]
	l.waiters[0] = nil
	l.waiters = l.waiters[1:]
	if len(l.waiters) == 0 {
		l.state.Store(lockHeld) // held by w now, nobody waiting
	}
	l.mu.Unlock()
	w <- struct{}{} // buffered: never blocks
}

// sideLocks are the two locks of one ring. Handles opened in this process on
// the same memory:// or ipc:// name share one ring, so they share the locks
// too (a registry keyed by scheme and name, reference counted).
type sideLocks struct {
	// Each lock on cache lines of its own: the sender and the receiver take
	// theirs on every call, from different CPUs.
	send  sideLock
	_     [128]byte
	recv  sideLock
	_     [128]byte
	key   string
	refs  int
	known bool // mode and typ are those of the ring
	mode  ChannelMode
	typ   ChannelType
}

var (
	registryMu sync.Mutex
	registry   = map[string]*sideLocks{}
)

// ringKey returns the registry key of a URI naming a shared ring
// ("memory://jobs?x=1" -> "memory://jobs"), or "" for other URIs.
func ringKey(uri string) string {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return ""
	}
	scheme = strings.ToLower(scheme)
	if scheme != "memory" && scheme != "ipc" {
		return ""
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	if u, err := url.PathUnescape(rest); err == nil {
		rest = u
	}
	return scheme + "://" + rest
}

// acquireLocks returns the side locks for uri, shared with every other open
// handle on the same ring, and the ring's mode and type. A handle opened with
// buffer size 0 attaches and adopts the ring's configuration, whatever mode
// it passed: the registry remembers the configuration of the handle that
// gave a size; when none did in this process (an ipc:// ring made by another
// process), both sides are treated as single, which is always safe.
func acquireLocks(uri string, bufferSize int, mode ChannelMode, typ ChannelType) (*sideLocks, ChannelMode, ChannelType) {
	key := ringKey(uri)
	if key == "" {
		return &sideLocks{}, mode, typ
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	l := registry[key]
	if l == nil {
		l = &sideLocks{key: key}
		registry[key] = l
	}
	l.refs++
	switch {
	case bufferSize != 0:
		l.known, l.mode, l.typ = true, mode, typ
	case l.known:
		mode, typ = l.mode, l.typ
	default:
		mode = ModeSPSC
	}
	return l, mode, typ
}

// releaseLocks drops a reference taken by acquireLocks.
func releaseLocks(l *sideLocks) {
	if l == nil || l.key == "" {
		return
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	l.refs--
	if l.refs == 0 && registry[l.key] == l {
		delete(registry, l.key)
	}
}

func (r lockResult) ok() bool { return r == lockAcquired }
