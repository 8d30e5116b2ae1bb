package psyne

// #include <stdlib.h>
// #include "wrap.h"
import "C"

import (
	"context"
	"math/bits"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// A Channel is an open handle on a libpsyne channel. All its methods may be
// called from any number of goroutines at once, whatever the ChannelMode:
// on a single-producer side (ModeSPSC, ModeSPMC) the senders of this process
// take turns, and so do the receivers on a single-consumer side (ModeSPSC,
// ModeMPSC); a held Message or View counts as a turn until it is sent,
// cancelled or released. (So a goroutine that holds a Message on such a side
// must not send on the same side before finishing it, as with sync.Mutex.)
//
// Close releases the handle. It is idempotent, wakes the calls blocked on
// this handle (they fail with an error matching ErrClosed and
// ErrChannelStopped) and waits for them to return. A Channel that becomes
// unreachable without Close is closed by a cleanup.
type Channel struct {
	s *chanState
}

// chanState is everything a Channel owns. It is separate from Channel so that
// a cleanup attached to the Channel can close it.
type chanState struct {
	ch   *C.psyne_channel_t
	chh  C.gopsyne_handle // ch, for the per-message wrappers
	uri  string
	mode ChannelMode
	typ  ChannelType

	// rw[side] is read-locked by every call on that side for its duration
	// and both are write-locked by Close, which so waits for in-flight calls
	// after waking them. One per side, each on its own cache lines: with a
	// single lock, every call's RLock/RUnlock moved the lock's line between
	// the sender's and the receiver's CPU. The padding in front keeps them
	// off the line of the fields above, which every call reads.
	_         [128]byte
	rw        [2]paddedRWMutex
	closed    atomic.Bool   // set first by Close
	closing   chan struct{} // closed by Close: wakes side-lock waiters
	closeTok  *canceler     // triggered by Close: wakes waiting C calls without a context of their own
	closeOnce sync.Once
	closeErr  error

	waitMu  sync.Mutex
	waiting map[*canceler]struct{} // cancelers of in-flight ...Context calls

	// Outstanding Messages (pending[sendSide]) and Views (pending[recvSide])
	// keep the C handle alive after Close until the last of them is
	// finished; a counter per side, for the reason rw has one.
	pending    [2]paddedInt64
	handleGone atomic.Bool
	destroyed  atomic.Bool

	locks    *sideLocks
	sendLock *sideLock // nil when senders may run concurrently
	recvLock *sideLock // nil when receivers may run concurrently

	recvHint atomic.Int64 // buffer size ReceiveData tries first
}

// NewChannel opens (creates or attaches to) the channel named by uri with a
// ring of bufferSize bytes (rounded up by libpsyne; 0 attaches to an existing
// memory:// or ipc:// channel of that name).
func NewChannel(uri string, bufferSize int, mode ChannelMode, typ ChannelType) (*Channel, error) {
	return open("NewChannel", uri, bufferSize, mode, typ, nil)
}

// NewChannelWithCompression is NewChannel with a compression configuration.
func NewChannelWithCompression(uri string, bufferSize int, mode ChannelMode, typ ChannelType, cfg CompressionConfig) (*Channel, error) {
	return open("NewChannelWithCompression", uri, bufferSize, mode, typ, &cfg)
}

func open(op, uri string, bufferSize int, mode ChannelMode, typ ChannelType, cfg *CompressionConfig) (*Channel, error) {
	if strings.IndexByte(uri, 0) >= 0 {
		return nil, newError(op, ErrInvalidArgument, "URI contains a NUL byte")
	}
	if bufferSize < 0 {
		return nil, newError(op, ErrInvalidArgument, "buffer size must not be negative")
	}
	curi := C.CString(uri)
	defer C.free(unsafe.Pointer(curi))
	var r C.gopsyne_create_result
	if cfg == nil {
		r = C.gopsyne_channel_create(curi, C.size_t(bufferSize), C.int32_t(mode), C.int32_t(typ), 0, 0, 0, 0, false)
	} else {
		if cfg.MinSizeThreshold < 0 {
			return nil, newError(op, ErrInvalidArgument, "compression MinSizeThreshold must not be negative")
		}
		r = C.gopsyne_channel_create(curi, C.size_t(bufferSize), C.int32_t(mode), C.int32_t(typ),
			1, C.int32_t(cfg.Type), C.int(cfg.Level), C.size_t(cfg.MinSizeThreshold), C.bool(cfg.EnableChecksum))
	}
	if err := takeError(op, r.rc, r.detail); err != nil {
		return nil, err
	}
	tok, err := newCanceler()
	if err != nil {
		C.gopsyne_channel_destroy(r.ch)
		return nil, err
	}
	s := &chanState{
		ch:       r.ch,
		chh:      C.gopsyne_handle(uintptr(unsafe.Pointer(r.ch))),
		uri:      uri,
		mode:     mode,
		typ:      typ,
		closing:  make(chan struct{}),
		closeTok: tok,
		waiting:  map[*canceler]struct{}{},
	}
	if u, err := s.fetchURI(); err == nil {
		s.uri = u
	}
	// The channel's real mode and type: an attach with size 0 adopts the
	// existing channel's, which may differ from the arguments.
	if mt := C.gopsyne_mode_and_type(r.ch); mt.rc == 0 {
		mode, typ = ChannelMode(mt.value&0xff), ChannelType(mt.value>>8)
		s.mode, s.typ = mode, typ
	} else {
		C.free(unsafe.Pointer(mt.detail))
	}
	s.locks, mode, s.typ = acquireLocks(s.uri, 1, mode, typ)
	if mode.singleProducer() {
		s.sendLock = &s.locks.send
	}
	if mode.singleConsumer() {
		s.recvLock = &s.locks.recv
	}
	s.recvHint.Store(minRecvGuess)
	c := &Channel{s: s}
	runtime.AddCleanup(c, func(s *chanState) { s.close() }, s)
	return c, nil
}

func (s *chanState) fetchURI() (string, error) {
	for n := 256; n <= 1<<20; n *= 4 {
		buf := make([]byte, n)
		r := C.gopsyne_get_uri(s.ch, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(n))
		if err := takeError("URI", r.rc, r.detail); err != nil {
			if e, ok := err.(*Error); ok && e.Code == ErrInvalidArgument {
				continue // buffer too small
			}
			return "", err
		}
		if i := strings.IndexByte(string(buf), 0); i >= 0 {
			return string(buf[:i]), nil
		}
	}
	return "", newError("URI", ErrInvalidArgument, "URI too long")
}

// Close releases the handle; see Channel. It returns the error of the
// underlying psyne_channel_destroy, and nil when called again.
// Messages and Views still held stay valid until they are finished; the C
// handle is destroyed after the last of them.
func (c *Channel) Close() error {
	if c == nil || c.s == nil {
		return nil
	}
	return c.s.close()
}

func (s *chanState) close() error {
	first := false
	s.closeOnce.Do(func() {
		first = true
		s.closed.Store(true)
		close(s.closing)
		s.closeTok.trigger()
		s.waitMu.Lock()
		for k := range s.waiting {
			k.trigger()
		}
		s.waitMu.Unlock()
		s.rw[sendSide].Lock() // every in-flight call has returned
		s.rw[recvSide].Lock()
		s.handleGone.Store(true)
		if s.pending[sendSide].Load() == 0 && s.pending[recvSide].Load() == 0 {
			s.closeErr = s.destroy()
		}
		s.rw[recvSide].Unlock()
		s.rw[sendSide].Unlock()
	})
	if !first {
		return nil
	}
	return s.closeErr
}

// destroy frees the C handle exactly once.
func (s *chanState) destroy() error {
	if !s.destroyed.CompareAndSwap(false, true) {
		return nil
	}
	r := C.gopsyne_channel_destroy(s.ch)
	releaseLocks(s.locks)
	return takeError("Close", r.rc, r.detail)
}

// endPending is called when a Message (sendSide) or View (recvSide) is
// finished. Counts only grow under a read lock, so none grows after Close
// set handleGone; of two sides finishing their last at once, the later
// decrement sees the other's zero (sync/atomic is sequentially consistent),
// and destroy runs once even if both see it.
func (s *chanState) endPending(sd side) {
	if s.pending[sd].Add(-1) == 0 && s.handleGone.Load() && s.pending[1-sd].Load() == 0 {
		s.destroy()
	}
}

// waitParams describe how long a call may wait.
type waitParams struct {
	nowait   bool            // do not wait at all
	deadline time.Time       // wait until then (zero: no deadline)
	ctx      context.Context // nil for the plain calls
}

// timeoutParams: 0 = do not wait, negative = wait without limit.
func timeoutParams(timeout time.Duration) waitParams {
	switch {
	case timeout == 0:
		return waitParams{nowait: true}
	case timeout < 0:
		return waitParams{}
	}
	return waitParams{deadline: time.Now().Add(timeout)}
}

func ctxParams(ctx context.Context) waitParams {
	if ctx == nil {
		ctx = context.Background()
	}
	d, _ := ctx.Deadline()
	return waitParams{deadline: d, ctx: ctx}
}

// guard is one call's hold on the channel: the read lock, the side lock if
// the side is single, and the cancel token of a waiting call.
type guard struct {
	s        *chanState
	side     side
	lock     *sideLock
	w        ctxWait
	keepLock bool // the side lock passes to a Message or View
	// armCtx: a cancellable context whose wait is not armed yet. The first
	// attempt does not wait, and only one that finds the ring full (empty)
	// arms it (see waitError): a call that succeeds at once registers
	// nothing and allocates nothing.
	armCtx context.Context
}

// enter starts a call: it fails on a closed channel or an ended context,
// takes the side lock l (nil: none) and arms the cancellation of waits.
func (s *chanState) enter(op string, p *waitParams, sd side, l *sideLock, g *guard) error {
	if p.nowait && p.ctx == nil {
		if err := s.enterNow(op, sd, l); err != nil {
			return err
		}
		g.s, g.side, g.lock = s, sd, l
		return nil
	}
	if s == nil {
		return newError(op, ErrInvalidArgument, "Channel not opened with NewChannel")
	}
	rw := &s.rw[sd]
	rw.RLock()
	if s.closed.Load() {
		rw.RUnlock()
		return closedError(op)
	}
	if p.ctx != nil {
		if err := p.ctx.Err(); err != nil {
			rw.RUnlock()
			return contextError(op, err, "")
		}
	}
	g.s, g.side = s, sd
	if l != nil {
		var done <-chan struct{}
		if p.ctx != nil {
			done = p.ctx.Done()
		}
		var deadline time.Time
		if !p.nowait {
			deadline = p.deadline
		}
		if why := l.lock(done, deadline, s.closing); why != lockAcquired {
			rw.RUnlock()
			switch why {
			case lockDone:
				return contextError(op, p.ctx.Err(), "")
			case lockTimedOut:
				if p.ctx != nil {
					return contextError(op, context.DeadlineExceeded, "")
				}
				return bare(newError(op, ErrTimeout, "timed out waiting for the channel's single "+l.side(s)+" side"))
			}
			return closedError(op)
		}
		g.lock = l
	}
	if !p.nowait && p.ctx != nil && p.ctx.Done() != nil {
		g.armCtx = p.ctx
	} else if !p.nowait {
		if err := g.w.begin(s, p.ctx); err != nil {
			if g.lock != nil {
				g.lock.unlock()
			}
			rw.RUnlock()
			if err == errClosedSignal {
				return closedError(op)
			}
			return err
		}
	}
	return nil
}

// side names the side l guards, for error texts.
func (l *sideLock) side(s *chanState) string {
	if l == s.sendLock {
		return "sender"
	}
	return "receiver"
}

// exit ends the call started by enter.
func (g *guard) exit() {
	g.w.end()
	if g.lock != nil && !g.keepLock {
		g.lock.unlock()
	}
	g.s.rw[g.side].RUnlock()
}

// params returns the C timeout and cancel token for one attempt.
func (g *guard) params(p *waitParams) (C.uint32_t, C.gopsyne_handle) {
	if p.nowait || g.armCtx != nil {
		return 0, 0
	}
	if p.deadline.IsZero() {
		return waitForever, g.w.handle()
	}
	return msUntil(p.deadline), g.w.handle()
}

// waitError maps the failure of an attempt. retry is true when the call
// is to try again: after a first attempt of a context call that found the
// ring full (empty), now armed to wait, and when the C timeout ended before
// the Go deadline (long deadlines need several calls).
func (g *guard) waitError(op string, p *waitParams, rc C.int32_t, detail *C.char) (err error, retry bool) {
	if ctx := g.armCtx; ctx != nil {
		g.armCtx = nil
		if code := ErrorCode(rc); code == ErrNoMessage || code == ErrChannelFull {
			takeError(op, rc, detail) // the first attempt's: now wait
			if err := g.w.begin(g.s, ctx); err != nil {
				if err == errClosedSignal {
					return closedError(op), false
				}
				return err, false
			}
			return nil, true
		}
	}
	return g.s.waitError(op, p, rc, detail)
}

// waitError maps the failure of a waiting call; see guard.waitError.
func (s *chanState) waitError(op string, p *waitParams, rc C.int32_t, detail *C.char) (err error, retry bool) {
	return waitError(op, p, rc, detail, s.closed.Load())
}

// waitError maps the failure of a waiting call on a handle that closed is
// true of once its Close began (Close sets it before waking waiters, so a C
// call that returned because of Close sees it).
func waitError(op string, p *waitParams, rc C.int32_t, detail *C.char, closed bool) (err error, retry bool) {
	code := ErrorCode(rc)
	if !p.nowait && (code == ErrNoMessage || code == ErrChannelFull) {
		code = ErrTimeout // a wait whose deadline had passed before the C call
	}
	switch code {
	case ErrCancelled:
		e := cError(op, rc, detail)
		if p.ctx != nil && p.ctx.Err() != nil {
			return contextError(op, p.ctx.Err(), e.Detail), false
		}
		if closed {
			return closedError(op), false
		}
		return e, false
	case ErrTimeout:
		if !p.deadline.IsZero() && time.Now().Before(p.deadline) {
			takeError(op, rc, detail)
			return nil, true
		}
		e := cError(op, rc, detail)
		if p.ctx != nil {
			return contextError(op, context.DeadlineExceeded, e.Detail), false
		}
		e.Code = ErrTimeout
		return bare(e), false
	}
	return takeError(op, rc, detail), false
}

// SendData copies data into the channel as one message of type msgType. It
// never waits for room: a full ring is ErrChannelFull at once. (On a
// single-producer side it does wait for this process's other senders.)
func (c *Channel) SendData(data []byte, msgType uint32) error {
	s := c.state()
	l := s.sendLockOrNil()
	if err := s.enterNow("SendData", sendSide, l); err != nil {
		return err
	}
	r := C.gopsyne_send_data(s.chh, bytePtr(data), C.size_t(len(data)), C.uint32_t(msgType))
	s.exitNow(sendSide, l)
	runtime.KeepAlive(c)
	if r.rc != 0 {
		return takeError("SendData", r.rc, r.detail)
	}
	return nil
}

// enterNow is enter for a call that does not wait (the hot path): the read
// lock of side sd, and the side lock l if the side is single.
func (s *chanState) enterNow(op string, sd side, l *sideLock) error {
	if s == nil {
		return newError(op, ErrInvalidArgument, "Channel not opened with NewChannel")
	}
	rw := &s.rw[sd]
	rw.RLock()
	if s.closed.Load() {
		rw.RUnlock()
		return closedError(op)
	}
	if l != nil && !l.state.CompareAndSwap(lockFree, lockHeld) {
		if l.lockSlow(nil, time.Time{}, s.closing) != lockAcquired {
			rw.RUnlock()
			return closedError(op)
		}
	}
	return nil
}

// exitNow ends a call started by enterNow.
func (s *chanState) exitNow(sd side, l *sideLock) {
	if l != nil {
		l.unlock()
	}
	s.rw[sd].RUnlock()
}

// side is which read lock a call takes: senders and receivers each their own.
type side int

const (
	sendSide side = iota
	recvSide      // also control calls (metrics, stop, ...)
)

// paddedInt64 keeps each side's counter on cache lines of its own.
type paddedInt64 struct {
	atomic.Int64
	_ [120]byte
}

// paddedRWMutex keeps each side's lock on cache lines of its own.
type paddedRWMutex struct {
	sync.RWMutex
	_ [128 - unsafe.Sizeof(sync.RWMutex{})%128]byte
}

func (s *chanState) sendLockOrNil() *sideLock {
	if s == nil {
		return nil
	}
	return s.sendLock
}

func (s *chanState) recvLockOrNil() *sideLock {
	if s == nil {
		return nil
	}
	return s.recvLock
}

func (c *Channel) state() *chanState {
	if c == nil {
		return nil
	}
	return c.s
}

// SendContext is SendData that waits for room until ctx is done. The error
// of a cancelled or expired context wraps ctx.Err(), so
// errors.Is(err, context.Canceled) (or context.DeadlineExceeded) holds.
// Nothing is left waiting after it returns.
func (c *Channel) SendContext(ctx context.Context, data []byte, msgType uint32) error {
	defer runtime.KeepAlive(c)
	const op = "SendContext"
	s := c.state()
	p := ctxParams(ctx)
	var g guard
	if err := s.enter(op, &p, sendSide, s.sendLockOrNil(), &g); err != nil {
		return err
	}
	defer g.exit()
	for {
		ms, tok := g.params(&p)
		r := C.gopsyne_send_data_wait(s.chh, bytePtr(data), C.size_t(len(data)), C.uint32_t(msgType), ms, tok)
		if r.rc == 0 {
			return nil
		}
		if err, retry := g.waitError(op, &p, r.rc, r.detail); !retry {
			return err
		}
	}
}

// ReceiveData returns the next message, copied into a new slice, and its
// type. timeout 0 does not wait (ErrNoMessage when empty); a positive
// timeout waits up to that long (ErrTimeout); a negative one waits until a
// message comes or the channel is stopped or closed. A message longer than
// maxSize is not taken: the error matches ErrInvalidArgument, its detail
// says the needed size, and the message stays queued.
func (c *Channel) ReceiveData(maxSize int, timeout time.Duration) ([]byte, uint32, error) {
	defer runtime.KeepAlive(c)
	return c.state().receiveData("ReceiveData", maxSize, timeoutParams(timeout))
}

// ReceiveContext is ReceiveData that waits until a message comes or ctx is
// done; the error of an ended context wraps ctx.Err().
func (c *Channel) ReceiveContext(ctx context.Context, maxSize int) ([]byte, uint32, error) {
	defer runtime.KeepAlive(c)
	return c.state().receiveData("ReceiveContext", maxSize, ctxParams(ctx))
}

const (
	minRecvGuess = 64
	maxRecvGuess = 1 << 16
)

func (s *chanState) receiveData(op string, maxSize int, p waitParams) ([]byte, uint32, error) {
	if maxSize < 0 {
		return nil, 0, newError(op, ErrInvalidArgument, "maxSize must not be negative")
	}
	var g guard
	if err := s.enter(op, &p, recvSide, s.recvLockOrNil(), &g); err != nil {
		return nil, 0, err
	}
	defer g.exit()
	// Allocate what the recent messages needed rather than maxSize; a
	// longer message stays queued and is fetched again with its size.
	hint := s.recvHint.Load()
	n := int(hint)
	if n > maxSize {
		n = maxSize
	}
	for {
		buf := make([]byte, n)
		ms, tok := g.params(&p)
		r := C.gopsyne_receive_data(s.chh, bytePtr(buf), C.size_t(n), ms, tok)
		if r.rc == 0 {
			got := int(r.received)
			if h := int64(guessFor(got)); h != hint {
				s.recvHint.Store(h)
			}
			return buf[:got:got], uint32(r._type), nil
		}
		if ErrorCode(r.rc) == ErrInvalidArgument && int(r.received) > n && int(r.received) <= maxSize {
			takeError(op, r.rc, r.detail) // too small for this one: retry at its size
			n = int(r.received)
			continue
		}
		if err, retry := g.waitError(op, &p, r.rc, r.detail); !retry {
			return nil, 0, err
		}
	}
}

// guessFor rounds a message size up to the next power of two within
// [minRecvGuess, maxRecvGuess].
func guessFor(n int) int {
	if n <= minRecvGuess {
		return minRecvGuess
	}
	if n >= maxRecvGuess {
		return maxRecvGuess
	}
	return 1 << bits.Len(uint(n-1))
}

// ReceiveInto copies the next message into buf and returns its length and
// type, without allocating. timeout is as for ReceiveData. If buf is too
// small the message stays queued and ReceiveInto returns the needed length
// with an error matching ErrInvalidArgument.
func (c *Channel) ReceiveInto(buf []byte, timeout time.Duration) (int, uint32, error) {
	defer runtime.KeepAlive(c)
	const op = "ReceiveInto"
	s := c.state()
	p := timeoutParams(timeout)
	var g guard
	if err := s.enter(op, &p, recvSide, s.recvLockOrNil(), &g); err != nil {
		return 0, 0, err
	}
	defer g.exit()
	for {
		ms, tok := g.params(&p)
		r := C.gopsyne_receive_data(s.chh, bytePtr(buf), C.size_t(len(buf)), ms, tok)
		if r.rc == 0 {
			return int(r.received), uint32(r._type), nil
		}
		if ErrorCode(r.rc) == ErrInvalidArgument && int(r.received) > len(buf) {
			return int(r.received), 0, takeError(op, r.rc, r.detail)
		}
		if err, retry := g.waitError(op, &p, r.rc, r.detail); !retry {
			return 0, 0, err
		}
	}
}

// ReceiveMessage returns the next message, whatever its size, copied out of
// the ring into a new slice, and its type. timeout is as for ReceiveData.
func (c *Channel) ReceiveMessage(timeout time.Duration) ([]byte, uint32, error) {
	defer runtime.KeepAlive(c)
	const op = "ReceiveMessage"
	s := c.state()
	p := timeoutParams(timeout)
	var g guard
	if err := s.enter(op, &p, recvSide, s.recvLockOrNil(), &g); err != nil {
		return nil, 0, err
	}
	defer g.exit()
	for {
		ms, tok := g.params(&p)
		r := C.gopsyne_msg_receive(s.chh, ms, tok)
		if r.rc == 0 {
			out := make([]byte, int(r.size))
			copy(out, unsafe.Slice((*byte)(r.data), int(r.size)))
			rr := C.gopsyne_msg_release(r.msg)
			if err := takeError(op, rr.rc, rr.detail); err != nil {
				return nil, 0, err
			}
			return out, uint32(r._type), nil
		}
		if err, retry := g.waitError(op, &p, r.rc, r.detail); !retry {
			return nil, 0, err
		}
	}
}

// Stop stops the channel (all handles on it): blocked senders and receivers
// wake, later sends fail with ErrChannelStopped, and receivers get
// ErrChannelStopped once they have drained what is queued.
func (c *Channel) Stop() error {
	defer runtime.KeepAlive(c)
	return c.state().simple("Stop", func(ch *C.psyne_channel_t) C.gopsyne_result { return C.gopsyne_channel_stop(ch) })
}

// IsStopped reports whether the channel was stopped.
func (c *Channel) IsStopped() (bool, error) {
	defer runtime.KeepAlive(c)
	var v bool
	err := c.state().simple("IsStopped", func(ch *C.psyne_channel_t) C.gopsyne_result {
		r := C.gopsyne_channel_is_stopped(ch)
		v = bool(r.value)
		return C.gopsyne_result{rc: r.rc, detail: r.detail}
	})
	return v && err == nil, err
}

// URI returns the channel's URI as libpsyne reports it (it stays available
// after Close).
func (c *Channel) URI() string {
	if s := c.state(); s != nil {
		return s.uri
	}
	return ""
}

// Mode returns the channel's mode (for a handle that attached with buffer
// size 0, the mode the channel was created with, as libpsyne reports it).
func (c *Channel) Mode() ChannelMode {
	if s := c.state(); s != nil {
		return s.mode
	}
	return 0
}

// Type returns the channel's type (for a handle that attached with buffer
// size 0, the type the channel was created with, as libpsyne reports it).
func (c *Channel) Type() ChannelType {
	if s := c.state(); s != nil {
		return s.typ
	}
	return 0
}

// Metrics returns a snapshot of the channel's counters.
func (c *Channel) Metrics() (*Metrics, error) {
	defer runtime.KeepAlive(c)
	var m Metrics
	err := c.state().simple("Metrics", func(ch *C.psyne_channel_t) C.gopsyne_result {
		r := C.gopsyne_get_metrics(ch)
		m = Metrics{
			MessagesSent:     uint64(r.messages_sent),
			BytesSent:        uint64(r.bytes_sent),
			MessagesReceived: uint64(r.messages_received),
			BytesReceived:    uint64(r.bytes_received),
			SendBlocks:       uint64(r.send_blocks),
			ReceiveBlocks:    uint64(r.receive_blocks),
		}
		return C.gopsyne_result{rc: r.rc, detail: r.detail}
	})
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// ResetMetrics sets the channel's counters to zero.
func (c *Channel) ResetMetrics() error {
	defer runtime.KeepAlive(c)
	return c.state().simple("ResetMetrics", func(ch *C.psyne_channel_t) C.gopsyne_result { return C.gopsyne_reset_metrics(ch) })
}

// EnableMetrics turns the counting of metrics on or off.
func (c *Channel) EnableMetrics(on bool) error {
	defer runtime.KeepAlive(c)
	return c.state().simple("EnableMetrics", func(ch *C.psyne_channel_t) C.gopsyne_result {
		return C.gopsyne_enable_metrics(ch, C.bool(on))
	})
}

// BufferSize returns the ring size in bytes (after libpsyne's rounding).
func (c *Channel) BufferSize() (int, error) {
	defer runtime.KeepAlive(c)
	var v int
	err := c.state().simple("BufferSize", func(ch *C.psyne_channel_t) C.gopsyne_result {
		r := C.gopsyne_buffer_size(ch)
		v = int(r.value)
		return C.gopsyne_result{rc: r.rc, detail: r.detail}
	})
	return v, err
}

// MaxMessageSize returns the largest message the channel accepts.
func (c *Channel) MaxMessageSize() (int, error) {
	defer runtime.KeepAlive(c)
	var v int
	err := c.state().simple("MaxMessageSize", func(ch *C.psyne_channel_t) C.gopsyne_result {
		r := C.gopsyne_max_message_size(ch)
		v = int(r.value)
		return C.gopsyne_result{rc: r.rc, detail: r.detail}
	})
	return v, err
}

// simple runs a short non-waiting C call under the read lock.
func (s *chanState) simple(op string, call func(*C.psyne_channel_t) C.gopsyne_result) error {
	p := waitParams{nowait: true}
	var g guard
	if err := s.enter(op, &p, recvSide, nil, &g); err != nil {
		return err
	}
	r := call(s.ch)
	g.exit()
	return takeError(op, r.rc, r.detail)
}
