package psyne

import (
	"context"
	"errors"
	"strconv"
	"strings"
)

// ErrorCode is a libpsyne result code (psyne_error_t). The sentinel errors
// below are ErrorCode values. The flow conditions — ErrChannelFull,
// ErrNoMessage, ErrTimeout and ErrChannelStopped from libpsyne — are
// returned as the bare sentinel, as io.EOF is, so that both forms work:
//
//	if err == psyne.ErrTimeout { ... }
//	if errors.Is(err, psyne.ErrChannelFull) { ... }
//
// Every other error (a real failure, or a flow condition with a cause: a
// context's end, a closed Channel) is an *Error with the operation and
// libpsyne's detail text, whose Code matches exactly one sentinel with
// errors.Is.
type ErrorCode int32

// Sentinel errors, one per psyne_error_t code (the numbers are the C values).
const (
	// ErrInvalidArgument: a bad URI, option, size or enum value, a message
	// larger than the channel allows, a receive buffer that is too small
	// (the detail text says the needed size), a non-zero type on a
	// TypeSingle channel, or a Message/View used after it was finished.
	ErrInvalidArgument ErrorCode = -1
	// ErrOutOfMemory: the ring could not be allocated.
	ErrOutOfMemory ErrorCode = -2
	// ErrChannelFull: a non-blocking send or reservation found no room.
	ErrChannelFull ErrorCode = -3
	// ErrNoMessage: a non-blocking receive found the channel empty.
	ErrNoMessage ErrorCode = -4
	// ErrChannelStopped: the channel was stopped (receivers first drain
	// what is queued), or this handle was closed (see ErrClosed).
	ErrChannelStopped ErrorCode = -5
	// ErrUnsupported: the transport or feature is not available in this
	// build of libpsyne.
	ErrUnsupported ErrorCode = -6
	// ErrIO: an operating-system error.
	ErrIO ErrorCode = -7
	// ErrTimeout: a waiting call ran out of time, or a context deadline
	// passed (then the error also matches context.DeadlineExceeded).
	ErrTimeout ErrorCode = -8
	// ErrCancelled: a waiting call was cancelled; for the ...Context methods
	// the error also matches context.Canceled.
	ErrCancelled ErrorCode = -9
	// ErrUnknown: an internal error in libpsyne, or a result code this
	// version of the package does not know.
	ErrUnknown ErrorCode = -99
)

// ErrClosed is wrapped by every error from a call made on (or woken by) a
// closed Channel, Producer or Consumer (and by a Producer's or Consumer's
// message after its Close). Such errors have Code ErrChannelStopped, so both
// errors.Is(err, ErrClosed) and errors.Is(err, ErrChannelStopped) hold.
var ErrClosed = errors.New("psyne: channel closed")

// String returns the name of the code, e.g. "channel full": libpsyne's
// (psyne_error_string), so Rust, C and Go share one table of names.
func (c ErrorCode) String() string {
	if name := codeName(c); name != "unknown error code" {
		return name
	}
	return "error code " + strconv.Itoa(int(c))
}

// Error implements the error interface: "psyne: " followed by the code name.
func (c ErrorCode) Error() string { return "psyne: " + c.String() }

// Error is the error type returned by every function of this package.
type Error struct {
	// Op is the operation that failed, e.g. "SendData" or "NewChannel".
	Op string
	// Code is the libpsyne result code; errors.Is(err, Code) holds.
	Code ErrorCode
	// Detail is libpsyne's explanation (psyne_last_error_message), read
	// on the OS thread of the failing call; it may be empty.
	Detail string

	cause error // context.Canceled, context.DeadlineExceeded or ErrClosed
}

// newError builds an *Error, folding codes this package does not know into
// ErrUnknown so that errors.Is always finds a sentinel.
func newError(op string, code ErrorCode, detail string) *Error {
	switch code {
	case ErrInvalidArgument, ErrOutOfMemory, ErrChannelFull, ErrNoMessage, ErrChannelStopped,
		ErrUnsupported, ErrIO, ErrTimeout, ErrCancelled, ErrUnknown:
	default:
		if detail != "" {
			detail = code.String() + ": " + detail
		} else {
			detail = code.String()
		}
		code = ErrUnknown
	}
	return &Error{Op: op, Code: code, Detail: detail}
}

// bare returns the sentinel itself for a flow condition without a cause
// (see ErrorCode), e otherwise.
func bare(e *Error) error {
	if e.cause == nil {
		switch e.Code {
		case ErrChannelFull, ErrNoMessage, ErrTimeout, ErrChannelStopped:
			return e.Code
		}
	}
	return e
}

// Timeout reports whether the code is ErrTimeout.
func (c ErrorCode) Timeout() bool { return c == ErrTimeout }

// closedError is the error of a call on a closed Channel.
func closedError(op string) *Error {
	return &Error{Op: op, Code: ErrChannelStopped, Detail: "channel is closed", cause: ErrClosed}
}

// contextError is the error of a ...Context call whose context ended;
// it wraps ctxErr.
func contextError(op string, ctxErr error, detail string) *Error {
	code := ErrCancelled
	if errors.Is(ctxErr, context.DeadlineExceeded) {
		code = ErrTimeout
	}
	return &Error{Op: op, Code: code, Detail: detail, cause: ctxErr}
}

// Error formats the error as "psyne: Op: code: detail". libpsyne's detail
// text starts with the C function and the code ("psyne_send_data: channel
// full"); the message shows it without the function name, and without
// repeating the code.
func (e *Error) Error() string {
	s := "psyne: "
	if e.Op != "" {
		s += e.Op + ": "
	}
	if e.cause == ErrClosed {
		return s + "channel closed"
	}
	d := e.Detail
	if strings.HasPrefix(d, "psyne_") {
		if i := strings.Index(d, ": "); i > 0 {
			d = d[i+2:]
		}
	}
	head := e.Code.String()
	if e.cause != nil {
		head = e.cause.Error()
	}
	switch {
	case d == "":
		return s + head
	case e.cause == nil && strings.HasPrefix(d, head):
		return s + d
	}
	return s + head + ": " + d
}

// Is reports whether target is the sentinel ErrorCode of e.
func (e *Error) Is(target error) bool {
	c, ok := target.(ErrorCode)
	return ok && c == e.Code
}

// Unwrap returns the context error or ErrClosed that caused e, if any.
func (e *Error) Unwrap() error { return e.cause }

// Timeout reports whether the error is a timeout (as net.Error does).
func (e *Error) Timeout() bool { return e.Code == ErrTimeout }
