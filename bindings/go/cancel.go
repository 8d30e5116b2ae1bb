package psyne

// #include "wrap.h"
import "C"

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// canceler owns one psyne_cancel_t. Triggering it wakes every libpsyne call
// waiting on it with PSYNE_ERROR_CANCELLED. The C object is freed by a
// cleanup when the canceler is garbage collected (cancelers are pooled).
type canceler struct {
	c     *C.psyne_cancel_t
	fired atomic.Bool
}

func newCanceler() (*canceler, error) {
	r := C.gopsyne_cancel_new()
	if err := takeError("psyne_cancel_new", r.rc, r.detail); err != nil {
		return nil, err
	}
	k := &canceler{c: r.c}
	runtime.AddCleanup(k, func(c *C.psyne_cancel_t) { C.gopsyne_cancel_free(c) }, r.c)
	return k, nil
}

// trigger wakes the calls waiting on k.
func (k *canceler) trigger() {
	k.fired.Store(true)
	C.gopsyne_cancel_trigger(k.c)
	runtime.KeepAlive(k)
}

var cancelPool sync.Pool

// errClosedSignal tells enter that the channel closed while a wait was armed.
var errClosedSignal = errors.New("closed")

// getCanceler returns an armed canceler from the pool or a new one.
func getCanceler() (*canceler, error) {
	if k, _ := cancelPool.Get().(*canceler); k != nil {
		return k, nil
	}
	return newCanceler()
}

// putCanceler re-arms k if it fired and returns it to the pool. The caller
// guarantees nobody can trigger k any more.
func putCanceler(k *canceler) {
	k.rearm()
	cancelPool.Put(k)
}

// rearm resets k if it fired. The caller guarantees nobody triggers k
// meanwhile, or that a trigger lost to the reset no longer matters.
func (k *canceler) rearm() {
	if k.fired.Load() {
		C.gopsyne_cancel_reset(k.c)
		k.fired.Store(false)
	}
}

// ctxWait connects one waiting C call to a context: a pooled canceler that
// context.AfterFunc triggers when ctx is done, and that Close triggers too
// (it is registered with the channel). No goroutine waits on the context:
// AfterFunc runs the trigger only if the context ends during the call.
type ctxWait struct {
	s    *chanState
	k    *canceler
	stop func() bool
	done chan struct{}
}

// begin arms w for ctx. For a context that can never be cancelled the
// channel's own close canceler is used and nothing is registered.
func (w *ctxWait) begin(s *chanState, ctx context.Context) error {
	w.s = s
	if ctx == nil || ctx.Done() == nil {
		w.k = s.closeTok
		return nil
	}
	k, err := getCanceler()
	if err != nil {
		return err
	}
	s.waitMu.Lock()
	if s.closed.Load() {
		s.waitMu.Unlock()
		putCanceler(k)
		return errClosedSignal
	}
	s.waiting[k] = struct{}{}
	s.waitMu.Unlock()
	w.k = k
	w.done = make(chan struct{})
	done := w.done
	w.stop = context.AfterFunc(ctx, func() {
		k.trigger()
		close(done)
	})
	return nil
}

// end disarms w after the C call returned; the canceler goes back to the pool.
func (w *ctxWait) end() {
	if w.stop == nil {
		return
	}
	if !w.stop() {
		<-w.done // the trigger ran or is running: let it finish first
	}
	s := w.s
	s.waitMu.Lock()
	delete(s.waiting, w.k)
	s.waitMu.Unlock()
	putCanceler(w.k)
	w.stop = nil
}

// handle is the C token to pass to the call.
func (w *ctxWait) handle() C.gopsyne_handle { return w.k.handle() }

// handle is k's psyne_cancel_t as the wrappers take it.
func (k *canceler) handle() C.gopsyne_handle { return C.gopsyne_handle(uintptr(unsafe.Pointer(k.c))) }
