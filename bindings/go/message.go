package psyne

// #include "wrap.h"
import "C"

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"
)

// A Message is a zero-copy reservation: Data is writable memory inside the
// channel's ring. Fill it, then Send it (or Cancel it). Until then the space
// is held, and on a single-producer side (ModeSPSC, ModeSPMC) the other
// senders of this process wait. A Message is meant for one goroutine;
// finishing it twice is refused with ErrInvalidArgument.
type Message struct {
	s    *chanState
	msg  C.gopsyne_handle
	data []byte
	lock *sideLock
	done atomic.Bool
}

// ReserveMessage reserves size contiguous bytes in the ring. It never waits
// for room: a full ring is ErrChannelFull at once. (On a single-producer side
// it waits for this process's other senders.)
func (c *Channel) ReserveMessage(size int) (*Message, error) {
	defer runtime.KeepAlive(c)
	return c.state().reserve("ReserveMessage", size, waitParams{nowait: true})
}

// ReserveContext is ReserveMessage that waits for room until ctx is done;
// the error of an ended context wraps ctx.Err().
func (c *Channel) ReserveContext(ctx context.Context, size int) (*Message, error) {
	defer runtime.KeepAlive(c)
	return c.state().reserve("ReserveContext", size, ctxParams(ctx))
}

func (s *chanState) reserve(op string, size int, p waitParams) (*Message, error) {
	if size < 0 {
		return nil, newError(op, ErrInvalidArgument, "size must not be negative")
	}
	var g guard
	if err := s.enter(op, &p, sendSide, s.sendLockOrNil(), &g); err != nil {
		return nil, err
	}
	s.pending[sendSide].Add(1)
	for {
		ms, tok := g.params(&p)
		r := C.gopsyne_reserve(s.chh, C.size_t(size), ms, tok)
		if r.rc == 0 {
			m := &Message{s: s, msg: r.msg, lock: g.lock}
			m.data = unsafe.Slice((*byte)(r.data), int(r.size))
			g.keepLock = true
			g.exit()
			return m, nil
		}
		if err, retry := g.waitError(op, &p, r.rc, r.detail); !retry {
			g.exit()
			s.endPending(sendSide)
			return nil, err
		}
	}
}

// Data returns the reserved bytes: the ring memory itself, not a copy. The
// slice must not be used after Send or Cancel (it then points at memory that
// receivers own); Data returns nil once the message is finished.
func (m *Message) Data() []byte {
	if m.done.Load() {
		return nil
	}
	return m.data
}

// Len returns the number of reserved bytes.
func (m *Message) Len() int { return len(m.data) }

// Send commits the message with type msgType; a receiver then reads the very
// bytes written through Data. A non-zero msgType on a TypeSingle channel is
// refused with ErrInvalidArgument and the reservation is kept: Send it again
// with 0, or Cancel it.
func (m *Message) Send(msgType uint32) error {
	const op = "Message.Send"
	if !m.done.CompareAndSwap(false, true) {
		return newError(op, ErrInvalidArgument, "message already sent or cancelled")
	}
	r := C.gopsyne_msg_send(m.msg, C.uint32_t(msgType))
	if ErrorCode(r.rc) == ErrInvalidArgument {
		// Refused before anything was consumed (a non-zero type on a
		// TypeSingle channel): the reservation is still held.
		m.done.Store(false)
		return takeError(op, r.rc, r.detail)
	}
	m.finish()
	if r.rc != 0 {
		return takeError(op, r.rc, r.detail)
	}
	return nil
}

// Cancel gives the reserved space back without sending anything.
func (m *Message) Cancel() error {
	const op = "Message.Cancel"
	if !m.done.CompareAndSwap(false, true) {
		return newError(op, ErrInvalidArgument, "message already sent or cancelled")
	}
	r := C.gopsyne_msg_cancel(m.msg)
	m.finish()
	return takeError(op, r.rc, r.detail)
}

func (m *Message) finish() {
	if m.lock != nil {
		m.lock.unlock()
	}
	m.s.endPending(sendSide)
}

// A View is a received message read in place: Data is the bytes inside the
// ring that the sender wrote (zero-copy on memory:// and ipc://). Release it
// when done; until then its space is held and, on a single-consumer side
// (ModeSPSC, ModeMPSC), the other receivers of this process wait. A View is
// meant for one goroutine.
type View struct {
	s    *chanState
	msg  C.gopsyne_handle
	data []byte
	typ  uint32
	lock *sideLock
	done atomic.Bool
}

// ReceiveView takes the next message without copying it. timeout is as for
// ReceiveData.
func (c *Channel) ReceiveView(timeout time.Duration) (*View, error) {
	defer runtime.KeepAlive(c)
	return c.state().receiveView("ReceiveView", timeoutParams(timeout))
}

// ReceiveViewContext is ReceiveView that waits until a message comes or ctx
// is done; the error of an ended context wraps ctx.Err().
func (c *Channel) ReceiveViewContext(ctx context.Context) (*View, error) {
	defer runtime.KeepAlive(c)
	return c.state().receiveView("ReceiveViewContext", ctxParams(ctx))
}

func (s *chanState) receiveView(op string, p waitParams) (*View, error) {
	var g guard
	if err := s.enter(op, &p, recvSide, s.recvLockOrNil(), &g); err != nil {
		return nil, err
	}
	s.pending[recvSide].Add(1)
	for {
		ms, tok := g.params(&p)
		r := C.gopsyne_msg_receive(s.chh, ms, tok)
		if r.rc == 0 {
			v := &View{s: s, msg: r.msg, typ: uint32(r._type), lock: g.lock}
			v.data = unsafe.Slice((*byte)(r.data), int(r.size))
			g.keepLock = true
			g.exit()
			return v, nil
		}
		if err, retry := g.waitError(op, &p, r.rc, r.detail); !retry {
			g.exit()
			s.endPending(recvSide)
			return nil, err
		}
	}
}

// Data returns the message bytes inside the ring. Treat them as read-only;
// they must not be used after Release (Data returns nil then).
func (v *View) Data() []byte {
	if v.done.Load() {
		return nil
	}
	return v.data
}

// Type returns the message type (always 0 on a TypeSingle channel).
func (v *View) Type() uint32 { return v.typ }

// Len returns the message length in bytes.
func (v *View) Len() int { return len(v.data) }

// Release frees the message's space in the ring.
func (v *View) Release() error {
	const op = "View.Release"
	if !v.done.CompareAndSwap(false, true) {
		return newError(op, ErrInvalidArgument, "view already released")
	}
	r := C.gopsyne_msg_release(v.msg)
	if v.lock != nil {
		v.lock.unlock()
	}
	v.s.endPending(recvSide)
	return takeError(op, r.rc, r.detail)
}
