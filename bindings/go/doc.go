// Package psyne is the Go binding of libpsyne: bounded channels that move
// byte messages, each with a uint32 type, within a process (memory://NAME),
// between processes through shared memory (ipc://NAME), and over sockets
// (tcp://, unix://, ws://) as libpsyne provides them, with zero-copy
// reservations and views where the transport allows it.
//
// It is a cgo package over libpsyne's C ABI (include/psyne.h), found with
// pkg-config ("#cgo pkg-config: psyne"; the build tag psyne_static uses
// psyne-static.pc and links libpsyne.a). Install libpsyne, or point
// PKG_CONFIG_PATH at a build tree's psyne-uninstalled.pc:
//
//	PKG_CONFIG_PATH=/path/to/build/pkgconfig go test ./...
//
// # Channels
//
// NewChannel (or NewChannelBuilder) opens a channel from a URI, a ring size
// in bytes, a ChannelMode and a ChannelType:
//
//	ch, err := psyne.NewChannel("memory://jobs", 64<<10, psyne.ModeSPSC, psyne.TypeMulti)
//	if err != nil {
//		return err
//	}
//	defer ch.Close()
//	err = ch.SendData([]byte("hello"), 1)                 // never waits: ErrChannelFull when full
//	data, msgType, err := ch.ReceiveData(1024, time.Second) // waits up to a second
//
// Every handle opened on the same memory:// name in one process shares one
// ring; a ring size of 0 attaches to an existing one.
//
// # Goroutines
//
// A Channel may be used by any number of goroutines in every mode. On a
// single-producer side (ModeSPSC, ModeSPMC) or single-consumer side
// (ModeSPSC, ModeMPSC) the goroutines of this process take turns, so the
// library's refusal of concurrent use of such a side never shows; a held
// Message or View keeps its turn until it is finished.
//
// # Network channels
//
// "tcp://HOST:PORT" connects and "tcp://:PORT" listens; "unix://PATH"
// connects and "unix://PATH?role=listen" listens. Both ends send and
// receive. A connector connects in the background and retries until the
// listener answers, its messages waiting in the ring meanwhile. Over a
// dropped connection delivery is at-most-once. LocalAddress reports a
// listener's address (the real port for port 0) and ExtendedMetrics the
// transport's counters (wire bytes, connects, peers, ...). See docs/GO.md,
// "Network channels".
//
// # Waiting, contexts and timeouts
//
// The plain receive calls take a time.Duration: 0 does not wait, a positive
// value waits up to that long (ErrTimeout), a negative one waits without
// limit. SendContext, ReceiveContext, ReserveContext and ReceiveViewContext
// wait until their context ends and then return an error that wraps
// ctx.Err(); the wait inside libpsyne is cancelled through a psyne_cancel_t
// token, so nothing is left blocked behind.
//
// # Zero-copy
//
// ReserveMessage returns a Message whose Data is writable memory inside the
// ring; Send publishes it. ReceiveView returns a View whose Data is the
// message in the ring; Release frees it. On memory:// and ipc:// the receiver
// reads the very bytes the sender wrote.
//
// # Exclusive sides
//
// Channel.Producer and Channel.Consumer take a side of the channel once, for
// one goroutine: their calls (the Channel's send and receive calls, plus
// ReceiveIntoContext) take no lock and allocate nothing, and their zero-copy
// messages, ProducerMessage and ConsumerView, are small values naming the
// side's one reused message slot. A call made while another goroutine is in
// one on the same side fails with ErrInvalidArgument. On a single side
// (ModeSPSC and ModeSPMC senders, ModeSPSC and ModeMPSC receivers) the side
// is the only sender (receiver) until its Close. SendAndReserve and
// ReleaseAndReceive finish a message and take the next in one call into
// libpsyne.
//
// # Errors
//
// Flow conditions (ErrChannelFull, ErrNoMessage, ErrTimeout,
// ErrChannelStopped) are returned as the bare sentinel, as io.EOF is, so
// err == psyne.ErrTimeout works; the same conditions with a cause (a
// context's deadline, a closed Channel) and every real failure are an *Error
// that matches one sentinel (ErrInvalidArgument, ErrOutOfMemory,
// ErrChannelFull, ErrNoMessage, ErrChannelStopped, ErrUnsupported, ErrIO,
// ErrTimeout, ErrCancelled, ErrUnknown) with errors.Is, and carries
// libpsyne's explanation in Detail.
//
// # Lifetime
//
// Close is idempotent, wakes the calls blocked on the handle and waits for
// them; a Channel that becomes unreachable is closed by a cleanup.
package psyne
