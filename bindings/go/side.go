package psyne

// #include "wrap.h"
import "C"

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// A Producer is the sending side of a channel, held exclusively (made by
// Channel.Producer, over libpsyne's psyne_producer_t). It takes its side
// once, when it is made, so its calls skip what a Channel does on every
// call for its many goroutines: no lock, no allocation, and its zero-copy
// messages are one slot of its own, reused for every reservation.
//
// A Producer is for one goroutine at a time (it may be handed to another,
// e.g. through a Go channel). A call made while another goroutine's call on
// the same Producer is still running is not waited for: it fails with
// ErrInvalidArgument (the Data and Len of its messages are plain reads and
// are not checked). Use one Producer per sending goroutine: on a
// multi-producer channel (ModeMPSC, ModeMPMC) any number may be made; on a
// single-producer channel (ModeSPSC, ModeSPMC) it is the only sender while
// it lives, and sends through any Channel handle, and a second Producer,
// fail with ErrInvalidArgument until it is closed.
//
// A Producer holds at most one reservation (ProducerMessage) at a time:
// SendData, SendContext and the reserve calls fail with ErrInvalidArgument
// until the held one is sent or cancelled.
//
// A Producer keeps the channel open, also after Close of the Channel it was
// made from. Its Close is idempotent, wakes a call blocked in the Producer
// (it fails with an error matching ErrClosed and ErrChannelStopped), waits
// for it to return, cancels a reservation still held and gives the side
// back. A Producer that becomes unreachable without Close is closed by a
// cleanup, but on a single-producer channel the side stays taken until
// then: Close it.
type Producer struct {
	sideCore
	h   C.gopsyne_handle // the psyne_producer_t
	msg C.gopsyne_handle // its own message handle, while seq is odd
}

// A Consumer is the receiving side of a channel, held exclusively (made by
// Channel.Consumer, over libpsyne's psyne_consumer_t), as a Producer is the
// sending side; everything said there holds with receive for send. On a
// single-consumer channel (ModeSPSC, ModeMPSC) it is the only receiver while
// it lives; on ModeSPMC and ModeMPMC any number may be made, one per
// receiving goroutine. It holds at most one received message (ConsumerView)
// at a time: the receive calls fail with ErrInvalidArgument until the held
// one is released. Its Close releases a message still held.
type Consumer struct {
	sideCore
	h    C.gopsyne_handle // the psyne_consumer_t
	msg  C.gopsyne_handle // its own message handle, while seq is odd
	hint int              // buffer size ReceiveData tries first
}

// sideCore is what a Producer and a Consumer share: the state that detects
// concurrent use and lets Close wait for the call in flight, the cancel
// token of waiting calls, and the sequence number of the side's message.
type sideCore struct {
	// state is sideLive, plus sideBusy while a call runs, plus sideClosing
	// once Close began. The zero value (not made by Channel.Producer or
	// Channel.Consumer) refuses every call. Only the goroutine using the
	// side touches the cache line, so the two compare-and-swaps per call
	// do not move it between CPUs.
	state atomic.Uint32

	// seq numbers the side's messages: odd while one is held (the held
	// message's number), even otherwise. Written only by calls holding
	// sideBusy; a ProducerMessage or ConsumerView is valid while it
	// carries the current odd number.
	seq uint64

	// tok wakes a waiting C call: Close triggers it, and so does the
	// context of a ...Context call (through stopCtx's AfterFunc). One token
	// serves every call, as there is one call at a time.
	tok       *canceler
	tokh      C.gopsyne_handle // tok's psyne_cancel_t
	armCtx    context.Context  // a context to arm if the call has to wait
	stopCtx   func() bool      // set while a call waits on a context that can end
	onCtxDone func()           // triggers tok, then signals ctxFired
	ctxFired  chan struct{}    // onCtxDone ran (buffered: never blocks)
	exited    chan struct{}    // the call Close waits for has returned (buffered)

	closeOnce sync.Once
	closeErr  error
	cleanup   runtime.Cleanup
	what      string // "Producer" or "Consumer", for error texts
}

const (
	sideLive    = 1 << iota // made by Channel.Producer / Channel.Consumer
	sideBusy                // a call is running
	sideClosing             // Close began: every later call is refused
)

func (s *sideCore) init(what string) error {
	tok, err := newCanceler()
	if err != nil {
		return err
	}
	s.tok = tok
	s.tokh = tok.handle()
	s.what = what
	s.onCtxDone = s.ctxDone
	s.ctxFired = make(chan struct{}, 1)
	s.exited = make(chan struct{}, 1)
	s.state.Store(sideLive)
	return nil
}

// enter starts a call: one compare-and-swap when the side is idle.
func (s *sideCore) enter(op string) error {
	if s != nil && s.state.CompareAndSwap(sideLive, sideLive|sideBusy) {
		return nil
	}
	return s.refuse(op)
}

// refuse is the error of a call that could not start.
func (s *sideCore) refuse(op string) error {
	if s == nil || s.state.Load() == 0 {
		return newError(op, ErrInvalidArgument, "not a Producer or Consumer made by Channel.Producer or Channel.Consumer")
	}
	if s.state.Load()&sideClosing != 0 {
		return closedError(op)
	}
	return newError(op, ErrInvalidArgument, "this "+s.what+" is in use by another goroutine: a "+s.what+" is for one goroutine at a time (make one per goroutine)")
}

// exit ends a call started by enter; if Close began meanwhile, it tells
// Close that the call is over.
func (s *sideCore) exit() {
	if !s.state.CompareAndSwap(sideLive|sideBusy, sideLive) {
		s.state.Store(sideLive | sideClosing)
		s.exited <- struct{}{}
	}
}

// begin starts a call with wait parameters w: enter, and for a waiting
// call, an ended context is refused. A context that can end is armed to
// trigger tok only when the call has to wait (see waitError): the first
// attempt does not wait, so a call that finds room or a message at once
// registers nothing and allocates nothing.
func (s *sideCore) begin(op string, w *waitParams) error {
	if err := s.enter(op); err != nil {
		return err
	}
	if w.nowait || w.ctx == nil {
		return nil
	}
	if err := w.ctx.Err(); err != nil {
		s.exit()
		return contextError(op, err, "")
	}
	if w.ctx.Done() != nil {
		s.armCtx = w.ctx
	}
	return nil
}

func (s *sideCore) ctxDone() {
	s.tok.trigger()
	s.ctxFired <- struct{}{}
}

// end ends a call started by begin: the context is disarmed (after its
// trigger finished, if it ran) and the token re-armed for the next call.
func (s *sideCore) end(w *waitParams) {
	if !w.nowait {
		s.armCtx = nil
		if s.stopCtx != nil {
			if !s.stopCtx() {
				<-s.ctxFired
			}
			s.stopCtx = nil
		}
		// A trigger by Close that this reset loses does not matter: no
		// call starts after Close began.
		if s.state.Load()&sideClosing == 0 {
			s.tok.rearm()
		}
	}
	s.exit()
}

// waitArgs returns the C timeout and cancel token for one attempt.
func (s *sideCore) waitArgs(w *waitParams) (C.uint32_t, C.gopsyne_handle) {
	if w.nowait || s.armCtx != nil {
		return 0, 0
	}
	if w.deadline.IsZero() {
		return waitForever, s.tokh
	}
	return msUntil(w.deadline), s.tokh
}

// waitError maps the failure of a call; see waitError.
func (s *sideCore) waitError(op string, w *waitParams, rc C.int32_t, detail *C.char) (error, bool) {
	if w.nowait {
		return takeError(op, rc, detail), false
	}
	if ctx := s.armCtx; ctx != nil {
		s.armCtx = nil
		if code := ErrorCode(rc); code == ErrNoMessage || code == ErrChannelFull {
			takeError(op, rc, detail) // the first attempt's: now wait
			s.stopCtx = context.AfterFunc(ctx, s.onCtxDone)
			return nil, true
		}
	}
	return waitError(op, w, rc, detail, s.state.Load()&sideClosing != 0)
}

// shut is the body of Close: refuse new calls, wake and wait for the call
// in flight, then free the C handle with free.
func (s *sideCore) shut(op string, free func() C.gopsyne_result) error {
	if s.state.Load() == 0 {
		return nil // the zero value holds nothing
	}
	first := false
	s.closeOnce.Do(func() {
		first = true
		if s.state.Or(sideClosing)&sideBusy != 0 {
			s.tok.trigger()
			<-s.exited
		}
		s.cleanup.Stop()
		r := free()
		s.closeErr = takeError(op, r.rc, r.detail)
	})
	if !first {
		return nil
	}
	return s.closeErr
}

// valid reports whether a message numbered seq is the side's held one.
func (s *sideCore) valid(seq uint64) bool {
	return s.seq == seq && s.state.Load()&sideClosing == 0
}

// holding starts a call that finishes the side's message numbered seq
// (what names it in errors): enter, unless the message is no longer the
// held one.
func (s *sideCore) holding(op, what string, seq uint64) error {
	if s == nil {
		return zeroMessageError(op)
	}
	if err := s.enter(op); err != nil {
		return err
	}
	if s.seq != seq {
		s.exit()
		return finishedError(op, what)
	}
	return nil
}

// finished ends a call that finished the held message with result r.
func (s *sideCore) finished(op string, r C.gopsyne_result) error {
	s.seq++
	s.exit()
	return takeError(op, r.rc, r.detail)
}

func finishedError(op, what string) error {
	return newError(op, ErrInvalidArgument, what+" already finished (a side's message is valid until it is sent, cancelled or released)")
}

func zeroMessageError(op string) error {
	return newError(op, ErrInvalidArgument, "no message (the zero value)")
}

// Producer takes the sending side of the channel; see Producer. On a
// single-producer channel it fails with ErrInvalidArgument while another
// Producer lives or a send or reservation through a Channel handle is in
// progress (a Message held counts).
func (c *Channel) Producer() (*Producer, error) {
	defer runtime.KeepAlive(c)
	const op = "Channel.Producer"
	s := c.state()
	if err := s.enterNow(op, sendSide, nil); err != nil {
		return nil, err
	}
	r := C.gopsyne_producer_new(s.ch)
	s.exitNow(sendSide, nil)
	if err := takeError(op, r.rc, r.detail); err != nil {
		return nil, err
	}
	p := &Producer{h: r.side}
	if err := p.init("Producer"); err != nil {
		freeProducer(p.h)
		return nil, err
	}
	p.cleanup = runtime.AddCleanup(p, freeProducer, p.h)
	return p, nil
}

func freeProducer(p C.gopsyne_handle) {
	r := C.gopsyne_producer_free(p)
	takeError("", r.rc, r.detail)
}

// Consumer takes the receiving side of the channel; see Consumer. On a
// single-consumer channel it fails with ErrInvalidArgument while another
// Consumer lives or a receive through a Channel handle is in progress (a
// View held counts).
func (c *Channel) Consumer() (*Consumer, error) {
	defer runtime.KeepAlive(c)
	const op = "Channel.Consumer"
	s := c.state()
	if err := s.enterNow(op, recvSide, nil); err != nil {
		return nil, err
	}
	r := C.gopsyne_consumer_new(s.ch)
	s.exitNow(recvSide, nil)
	if err := takeError(op, r.rc, r.detail); err != nil {
		return nil, err
	}
	k := &Consumer{h: r.side, hint: minRecvGuess}
	if err := k.init("Consumer"); err != nil {
		freeConsumer(k.h)
		return nil, err
	}
	k.cleanup = runtime.AddCleanup(k, freeConsumer, k.h)
	return k, nil
}

func freeConsumer(c C.gopsyne_handle) {
	r := C.gopsyne_consumer_free(c)
	takeError("", r.rc, r.detail)
}

// core returns p's sideCore, nil for a nil Producer.
func (p *Producer) core() *sideCore {
	if p == nil {
		return nil
	}
	return &p.sideCore
}

func (c *Consumer) core() *sideCore {
	if c == nil {
		return nil
	}
	return &c.sideCore
}

// Close gives the side back; see Producer. It returns the error of
// psyne_producer_free, and nil when called again.
func (p *Producer) Close() error {
	if p == nil {
		return nil
	}
	return p.shut("Producer.Close", func() C.gopsyne_result { return C.gopsyne_producer_free(p.h) })
}

// Close gives the side back; see Consumer. It returns the error of
// psyne_consumer_free, and nil when called again.
func (c *Consumer) Close() error {
	if c == nil {
		return nil
	}
	return c.shut("Consumer.Close", func() C.gopsyne_result { return C.gopsyne_consumer_free(c.h) })
}

// SendData copies data into the channel as one message of type msgType. It
// never waits: a full ring is ErrChannelFull at once.
func (p *Producer) SendData(data []byte, msgType uint32) error {
	return p.sendData("Producer.SendData", data, msgType, waitParams{nowait: true})
}

// SendContext is SendData that waits for room until ctx is done; the error
// of an ended context wraps ctx.Err().
func (p *Producer) SendContext(ctx context.Context, data []byte, msgType uint32) error {
	return p.sendData("Producer.SendContext", data, msgType, ctxParams(ctx))
}

func (p *Producer) sendData(op string, data []byte, msgType uint32, w waitParams) error {
	if err := p.core().begin(op, &w); err != nil {
		return err
	}
	for {
		ms, tok := p.waitArgs(&w)
		r := C.gopsyne_producer_send_data(p.h, bytePtr(data), C.size_t(len(data)), C.uint32_t(msgType), ms, tok)
		if r.rc == 0 {
			p.end(&w)
			return nil
		}
		if err, retry := p.waitError(op, &w, r.rc, r.detail); !retry {
			p.end(&w)
			return err
		}
	}
}

// ReserveMessage reserves size contiguous bytes in the ring for a zero-copy
// send, without allocating. It never waits for room: a full ring is
// ErrChannelFull at once.
func (p *Producer) ReserveMessage(size int) (ProducerMessage, error) {
	return p.reserve("Producer.ReserveMessage", size, waitParams{nowait: true})
}

// ReserveContext is ReserveMessage that waits for room until ctx is done;
// the error of an ended context wraps ctx.Err().
func (p *Producer) ReserveContext(ctx context.Context, size int) (ProducerMessage, error) {
	return p.reserve("Producer.ReserveContext", size, ctxParams(ctx))
}

func (p *Producer) reserve(op string, size int, w waitParams) (ProducerMessage, error) {
	if size < 0 {
		return ProducerMessage{}, newError(op, ErrInvalidArgument, "size must not be negative")
	}
	if err := p.core().begin(op, &w); err != nil {
		return ProducerMessage{}, err
	}
	for {
		ms, tok := p.waitArgs(&w)
		r := C.gopsyne_producer_reserve(p.h, C.size_t(size), ms, tok)
		if r.rc == 0 {
			p.msg = r.msg
			p.seq++
			m := ProducerMessage{p: p, seq: p.seq, data: unsafe.Slice((*byte)(r.data), int(r.size))}
			p.end(&w)
			return m, nil
		}
		if err, retry := p.waitError(op, &w, r.rc, r.detail); !retry {
			p.end(&w)
			return ProducerMessage{}, err
		}
	}
}

// A ProducerMessage is a Producer's zero-copy reservation: Data is writable
// memory inside the ring. Fill it, then Send it (or Cancel it). It is a
// small value naming the Producer's one message slot, so reserving
// allocates nothing; copies of it are the same message. Once it is sent or
// cancelled (or its Producer closed), every copy is finished for good:
// Data returns nil and Send and Cancel fail with ErrInvalidArgument (with
// ErrClosed after Close), also after the Producer reserved its next
// message. The zero value is no message.
type ProducerMessage struct {
	p    *Producer
	seq  uint64
	data []byte
}

// Data returns the reserved bytes: the ring memory itself, not a copy. The
// slice must not be used after Send or Cancel (it then points at memory that
// receivers own); Data returns nil once the message is finished.
func (m ProducerMessage) Data() []byte {
	if m.p == nil || !m.p.valid(m.seq) {
		return nil
	}
	return m.data
}

// Len returns the number of reserved bytes.
func (m ProducerMessage) Len() int { return len(m.data) }

// Send commits the message with type msgType; a receiver then reads the very
// bytes written through Data. A non-zero msgType on a TypeSingle channel is
// refused with ErrInvalidArgument and the reservation is kept: Send it again
// with 0, or Cancel it.
func (m ProducerMessage) Send(msgType uint32) error {
	const op = "ProducerMessage.Send"
	p := m.p
	if err := p.core().holding(op, "message", m.seq); err != nil {
		return err
	}
	r := C.gopsyne_msg_send(p.msg, C.uint32_t(msgType))
	if ErrorCode(r.rc) != ErrInvalidArgument {
		// Refused before anything was consumed (a non-zero type on a
		// TypeSingle channel) keeps the reservation; anything else ends it.
		p.seq++
	}
	p.exit()
	return takeError(op, r.rc, r.detail)
}

// Cancel gives the reserved space back without sending anything.
func (m ProducerMessage) Cancel() error {
	const op = "ProducerMessage.Cancel"
	p := m.p
	if err := p.core().holding(op, "message", m.seq); err != nil {
		return err
	}
	return p.finished(op, C.gopsyne_msg_cancel(p.msg))
}

// ReceiveInto copies the next message into buf and returns its length and
// type, without allocating. timeout 0 does not wait (ErrNoMessage when
// empty); a positive timeout waits up to that long (ErrTimeout); a negative
// one waits until a message comes or the channel is stopped, or the
// Consumer closed. If buf is too small the message stays queued and
// ReceiveInto returns the needed length with an error matching
// ErrInvalidArgument.
func (c *Consumer) ReceiveInto(buf []byte, timeout time.Duration) (int, uint32, error) {
	return c.receiveInto("Consumer.ReceiveInto", buf, timeoutParams(timeout))
}

// ReceiveIntoContext is ReceiveInto that waits until a message comes or ctx
// is done; the error of an ended context wraps ctx.Err().
func (c *Consumer) ReceiveIntoContext(ctx context.Context, buf []byte) (int, uint32, error) {
	return c.receiveInto("Consumer.ReceiveIntoContext", buf, ctxParams(ctx))
}

func (c *Consumer) receiveInto(op string, buf []byte, w waitParams) (int, uint32, error) {
	if err := c.core().begin(op, &w); err != nil {
		return 0, 0, err
	}
	for {
		ms, tok := c.waitArgs(&w)
		r := C.gopsyne_consumer_receive_data(c.h, bytePtr(buf), C.size_t(len(buf)), ms, tok)
		if r.rc == 0 {
			c.end(&w)
			return int(r.received), uint32(r._type), nil
		}
		if ErrorCode(r.rc) == ErrInvalidArgument && int(r.received) > len(buf) {
			c.end(&w)
			return int(r.received), 0, takeError(op, r.rc, r.detail)
		}
		if err, retry := c.waitError(op, &w, r.rc, r.detail); !retry {
			c.end(&w)
			return 0, 0, err
		}
	}
}

// ReceiveData returns the next message, copied into a new slice, and its
// type. timeout is as for ReceiveInto. A message longer than maxSize is not
// taken: the error matches ErrInvalidArgument, its detail says the needed
// size, and the message stays queued. Like Channel.ReceiveData it allocates
// what recent messages needed, not maxSize.
func (c *Consumer) ReceiveData(maxSize int, timeout time.Duration) ([]byte, uint32, error) {
	return c.receiveData("Consumer.ReceiveData", maxSize, timeoutParams(timeout))
}

// ReceiveContext is ReceiveData that waits until a message comes or ctx is
// done; the error of an ended context wraps ctx.Err().
func (c *Consumer) ReceiveContext(ctx context.Context, maxSize int) ([]byte, uint32, error) {
	return c.receiveData("Consumer.ReceiveContext", maxSize, ctxParams(ctx))
}

func (c *Consumer) receiveData(op string, maxSize int, w waitParams) ([]byte, uint32, error) {
	if maxSize < 0 {
		return nil, 0, newError(op, ErrInvalidArgument, "maxSize must not be negative")
	}
	if err := c.core().begin(op, &w); err != nil {
		return nil, 0, err
	}
	n := min(c.hint, maxSize)
	for {
		buf := make([]byte, n)
		ms, tok := c.waitArgs(&w)
		r := C.gopsyne_consumer_receive_data(c.h, bytePtr(buf), C.size_t(n), ms, tok)
		if r.rc == 0 {
			got := int(r.received)
			c.hint = guessFor(got)
			c.end(&w)
			return buf[:got:got], uint32(r._type), nil
		}
		if ErrorCode(r.rc) == ErrInvalidArgument && int(r.received) > n && int(r.received) <= maxSize {
			takeError(op, r.rc, r.detail) // too small for this one: retry at its size
			n = int(r.received)
			continue
		}
		if err, retry := c.waitError(op, &w, r.rc, r.detail); !retry {
			c.end(&w)
			return nil, 0, err
		}
	}
}

// ReceiveMessage returns the next message, whatever its size, copied out of
// the ring into a new slice, and its type. timeout is as for ReceiveInto.
func (c *Consumer) ReceiveMessage(timeout time.Duration) ([]byte, uint32, error) {
	const op = "Consumer.ReceiveMessage"
	v, err := c.receiveView(op, timeoutParams(timeout))
	if err != nil {
		return nil, 0, err
	}
	out := make([]byte, len(v.data))
	copy(out, v.data)
	if err := v.release(op); err != nil {
		return nil, 0, err
	}
	return out, v.typ, nil
}

// ReceiveView takes the next message without copying it, and without
// allocating. timeout is as for ReceiveInto.
func (c *Consumer) ReceiveView(timeout time.Duration) (ConsumerView, error) {
	return c.receiveView("Consumer.ReceiveView", timeoutParams(timeout))
}

// ReceiveViewContext is ReceiveView that waits until a message comes or ctx
// is done; the error of an ended context wraps ctx.Err().
func (c *Consumer) ReceiveViewContext(ctx context.Context) (ConsumerView, error) {
	return c.receiveView("Consumer.ReceiveViewContext", ctxParams(ctx))
}

func (c *Consumer) receiveView(op string, w waitParams) (ConsumerView, error) {
	if err := c.core().begin(op, &w); err != nil {
		return ConsumerView{}, err
	}
	ms, tok := c.waitArgs(&w)
	return c.viewResult(op, &w, C.gopsyne_consumer_receive(c.h, ms, tok))
}

// viewResult ends a receive call started with begin whose first attempt
// returned r, retrying while a deadline beyond the C timeout allows.
func (c *Consumer) viewResult(op string, w *waitParams, r C.gopsyne_msg_result) (ConsumerView, error) {
	for {
		if r.rc == 0 {
			c.msg = r.msg
			c.seq++
			v := ConsumerView{c: c, seq: c.seq, typ: uint32(r._type), data: unsafe.Slice((*byte)(r.data), int(r.size))}
			c.end(w)
			return v, nil
		}
		if err, retry := c.waitError(op, w, r.rc, r.detail); !retry {
			c.end(w)
			return ConsumerView{}, err
		}
		ms, tok := c.waitArgs(w)
		r = C.gopsyne_consumer_receive(c.h, ms, tok)
	}
}

// A ConsumerView is a message a Consumer received, read in place: Data is
// the bytes inside the ring that the sender wrote (zero-copy on memory://
// and ipc://). Release it when done. Like a ProducerMessage it is a small
// value naming the Consumer's one message slot, valid until Release (or
// the Consumer's Close); after that every copy is refused. The zero value
// is no message.
type ConsumerView struct {
	c    *Consumer
	seq  uint64
	data []byte
	typ  uint32
}

// Data returns the message bytes inside the ring. Treat them as read-only;
// they must not be used after Release (Data returns nil then).
func (v ConsumerView) Data() []byte {
	if v.c == nil || !v.c.valid(v.seq) {
		return nil
	}
	return v.data
}

// Type returns the message type (always 0 on a TypeSingle channel).
func (v ConsumerView) Type() uint32 { return v.typ }

// Len returns the message length in bytes.
func (v ConsumerView) Len() int { return len(v.data) }

// Release frees the message's space in the ring.
func (v ConsumerView) Release() error {
	return v.release("ConsumerView.Release")
}

func (v ConsumerView) release(op string) error {
	c := v.c
	if err := c.core().holding(op, "view", v.seq); err != nil {
		return err
	}
	return c.finished(op, C.gopsyne_msg_release(c.msg))
}

// ReleaseAndReceive releases v, as Release does, and takes the next message,
// as ReceiveView(timeout) does, in one call into libpsyne instead of two:
// the loop of a steady consumer. If the release fails nothing is received;
// otherwise v is finished and an error is the receive's.
func (v ConsumerView) ReleaseAndReceive(timeout time.Duration) (ConsumerView, error) {
	const op = "ConsumerView.ReleaseAndReceive"
	c := v.c
	if err := c.core().holding(op, "view", v.seq); err != nil {
		return ConsumerView{}, err
	}
	w := timeoutParams(timeout) // begin's other part: no context to arm
	ms, tok := c.waitArgs(&w)
	r := C.gopsyne_consumer_release_receive(c.h, c.msg, ms, tok)
	c.seq++ // v is finished, as after Release
	if !r.sent {
		c.end(&w)
		return ConsumerView{}, takeError(op, r.rc, r.detail)
	}
	return c.viewResult(op, &w, r)
}

// SendAndReserve sends m with type msgType, as Send does, and reserves the
// next message of size bytes, as ReserveMessage does (never waiting), in one
// call into libpsyne instead of two: the loop of a steady producer. If the
// send fails, nothing is reserved and m is as after a failed Send (kept on
// ErrInvalidArgument); otherwise m is finished and an error is the
// reservation's, e.g. ErrChannelFull (then wait with ReserveContext). On an
// error, m.Data() is nil once m is finished.
func (m ProducerMessage) SendAndReserve(msgType uint32, size int) (ProducerMessage, error) {
	const op = "ProducerMessage.SendAndReserve"
	if size < 0 {
		return ProducerMessage{}, newError(op, ErrInvalidArgument, "size must not be negative")
	}
	p := m.p
	if err := p.core().holding(op, "message", m.seq); err != nil {
		return ProducerMessage{}, err
	}
	r := C.gopsyne_producer_send_reserve(p.h, p.msg, C.uint32_t(msgType), C.size_t(size))
	if !r.sent {
		if ErrorCode(r.rc) != ErrInvalidArgument {
			p.seq++ // as in Send: only a refused type keeps the reservation
		}
		p.exit()
		return ProducerMessage{}, takeError(op, r.rc, r.detail)
	}
	p.seq++ // m is sent
	if r.rc != 0 {
		p.exit()
		return ProducerMessage{}, takeError(op, r.rc, r.detail)
	}
	p.msg = r.msg
	p.seq++
	next := ProducerMessage{p: p, seq: p.seq, data: unsafe.Slice((*byte)(r.data), int(r.size))}
	p.exit()
	return next, nil
}
