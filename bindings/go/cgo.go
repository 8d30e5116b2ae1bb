package psyne

// The cgo surface of the package. wrap.c holds thin C wrappers around
// include/psyne.h: every wrapper makes the libpsyne call *and*, when it
// fails, copies psyne_last_error_message() within the same C call, so the
// thread-local detail text is read on the very OS thread that produced it.
// (A goroutine may move to another OS thread between two cgo calls, so a
// second call to fetch the text could read another goroutine's error; the
// alternative, runtime.LockOSThread around a call pair, costs two cgo
// crossings per failure and a lock/unlock per call.) Results come back as
// small structs by value. The only Go pointers handed to C are the byte
// buffers of the copying send/receive calls, which C uses only during the
// call: the noescape/nocallback declarations below let such buffers stay
// where they are (no forced heap allocation) and make the calls cheaper.
//
// The library is found with pkg-config: psyne.pc (libpsyne.so), or with the
// build tag psyne_static, psyne-static.pc (libpsyne.a linked into the
// program, which then needs no LD_LIBRARY_PATH). The PSYNE_GO_STATIC define
// is there for Go's build cache, which keys on CPPFLAGS but not on
// pkg-config's output: without it a dynamic build would be reused.

/*
#cgo !psyne_static pkg-config: psyne
#cgo psyne_static pkg-config: psyne-static
#cgo psyne_static CPPFLAGS: -DPSYNE_GO_STATIC=1
#cgo noescape gopsyne_send_data
#cgo nocallback gopsyne_send_data
#cgo noescape gopsyne_send_data_wait
#cgo nocallback gopsyne_send_data_wait
#cgo noescape gopsyne_receive_data
#cgo nocallback gopsyne_receive_data
#cgo noescape gopsyne_get_uri
#cgo nocallback gopsyne_get_uri
#cgo nocallback gopsyne_reserve
#cgo nocallback gopsyne_msg_send
#cgo nocallback gopsyne_msg_cancel
#cgo nocallback gopsyne_msg_release
#cgo nocallback gopsyne_msg_receive
#cgo noescape gopsyne_producer_send_data
#cgo nocallback gopsyne_producer_send_data
#cgo noescape gopsyne_consumer_receive_data
#cgo nocallback gopsyne_consumer_receive_data
#cgo nocallback gopsyne_producer_new
#cgo nocallback gopsyne_producer_free
#cgo nocallback gopsyne_producer_reserve
#cgo nocallback gopsyne_consumer_new
#cgo nocallback gopsyne_consumer_free
#cgo nocallback gopsyne_consumer_receive
#cgo nocallback gopsyne_producer_send_reserve
#cgo nocallback gopsyne_consumer_release_receive
#cgo nocallback gopsyne_cancel_new
#cgo nocallback gopsyne_cancel_trigger
#cgo nocallback gopsyne_cancel_reset
#cgo nocallback gopsyne_cancel_free

#include <stdlib.h>
#include "wrap.h"
*/
import "C"

import (
	"math"
	"time"
	"unsafe"
)

// waitForever is PSYNE_WAIT_FOREVER: a timeout_ms value that never expires.
const waitForever = math.MaxUint32

// maxWaitMs is the longest finite wait one C call can express; longer
// deadlines are reached by calling again.
const maxWaitMs = math.MaxUint32 - 1

// takeError turns a wrapper result into a Go error (nil on success) and frees
// the detail text that the wrapper copied.
func takeError(op string, rc C.int32_t, detail *C.char) error {
	if rc == 0 {
		return nil
	}
	return bare(cError(op, rc, detail))
}

// codeName is libpsyne's name for a result code (psyne_error_string, read
// from the library's one table of codes): "unknown error code" for a value
// that is not one.
func codeName(c ErrorCode) string {
	return C.GoString(C.psyne_error_string(C.int32_t(c)))
}

// cError is takeError for a failure (rc != 0), always as an *Error.
func cError(op string, rc C.int32_t, detail *C.char) *Error {
	d := ""
	if detail != nil {
		d = C.GoString(detail)
		C.free(unsafe.Pointer(detail))
	}
	return newError(op, ErrorCode(rc), d)
}

// msUntil converts the time left until deadline into a C timeout, rounding
// up so that a C timeout never fires before the Go deadline.
func msUntil(deadline time.Time) C.uint32_t {
	d := time.Until(deadline)
	if d <= 0 {
		return 0
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if ms > maxWaitMs {
		ms = maxWaitMs
	}
	return C.uint32_t(ms)
}

// bytePtr returns a pointer to the first byte of b (nil for an empty slice;
// the C wrappers substitute a static byte for nil). The wrappers take
// unsigned char pointers rather than void pointers: cgo knows statically that
// a byte buffer cannot hold Go pointers and skips the run-time pointer check
// it does for every unsafe.Pointer argument (about 14 ns a call).
func bytePtr(b []byte) *C.uchar {
	if len(b) == 0 && cap(b) == 0 {
		return nil
	}
	return (*C.uchar)(unsafe.SliceData(b))
}

// rawRoundTrip is the floor the benchmarks compare against: one
// psyne_send_data and one psyne_receive_data through the C wrappers, with no
// binding logic around them (no locks, no allocation, no error mapping).
func rawRoundTrip(ch C.gopsyne_handle, in, out []byte) bool {
	r := C.gopsyne_send_data(ch, bytePtr(in), C.size_t(len(in)), 1)
	q := C.gopsyne_receive_data(ch, bytePtr(out), C.size_t(len(out)), 0, 0)
	return r.rc == 0 && q.rc == 0
}
