package psyne

// #include <stdlib.h>
// #include "network_wrap.h"
import "C"

import (
	"bytes"
	"runtime"
	"unsafe"
)

// ExtendedMetrics are all of a channel's counters
// (psyne_extended_metrics_t): the six of Metrics first, then what the
// network transports add. On memory:// and ipc:// channels the wire bytes
// are what messages took in the ring (the payload bytes, unless messages
// were compressed or checksummed) and the connection counters stay 0.
type ExtendedMetrics struct {
	MessagesSent     uint64 // messages committed by senders
	BytesSent        uint64 // payload bytes committed by senders
	MessagesReceived uint64 // messages taken by receivers
	BytesReceived    uint64 // payload bytes taken by receivers
	SendBlocks       uint64 // times a send found the ring full
	ReceiveBlocks    uint64 // times a receive found the ring empty

	// WireBytesSent counts the bytes written to the sockets, framing
	// included: each connection's 32-byte HELLO and a 16-byte header per
	// message (docs/PROTOCOL.md).
	WireBytesSent uint64
	// WireBytesReceived counts the bytes read from the sockets, framing
	// included.
	WireBytesReceived uint64
	// MessagesCompressed counts the messages sent compressed (those below
	// the threshold or that did not get smaller are not).
	MessagesCompressed uint64
	// ChecksumFailures counts received messages whose CRC32C did not match;
	// they are never delivered: dropped on memory:// and ipc://, the
	// connection reset on sockets.
	ChecksumFailures uint64
	// FramesRefused counts frames and handshakes refused (malformed,
	// oversized, a bad HELLO, one peer too many) and messages dropped
	// because they were larger than the peer accepts.
	FramesRefused uint64
	// Connects counts the connections established, HELLOs exchanged (by a
	// listener: peers accepted; by a connector: reconnects included).
	Connects uint64
	// Reconnects counts the connections a connector re-established after
	// one ended.
	Reconnects uint64
	// Peers is the number of peers connected now.
	Peers uint64
	// QueuedBytes is the depth of the channel now: bytes of messages not
	// yet released, with their record headers and padding (on a socket
	// end, in its send ring and its receive ring together).
	QueuedBytes uint64
	// HighWaterBytes is the deepest QueuedBytes seen since the last reset.
	HighWaterBytes uint64
}

// ExtendedMetrics returns a snapshot of all the channel's counters: the six
// of Metrics, then wire bytes, compression, checksum failures, refused
// frames, connections, peers, depth and high-water mark
// (psyne_channel_get_extended_metrics). ResetMetrics sets the counters to
// zero; Peers and QueuedBytes describe the present and are not reset.
func (c *Channel) ExtendedMetrics() (*ExtendedMetrics, error) {
	defer runtime.KeepAlive(c)
	var m ExtendedMetrics
	err := c.state().simple("ExtendedMetrics", func(ch *C.psyne_channel_t) C.gopsyne_result {
		r := C.gopsyne_get_extended_metrics(ch)
		e := &r.m
		m = ExtendedMetrics{
			MessagesSent:       uint64(e.messages_sent),
			BytesSent:          uint64(e.bytes_sent),
			MessagesReceived:   uint64(e.messages_received),
			BytesReceived:      uint64(e.bytes_received),
			SendBlocks:         uint64(e.send_blocks),
			ReceiveBlocks:      uint64(e.receive_blocks),
			WireBytesSent:      uint64(e.wire_bytes_sent),
			WireBytesReceived:  uint64(e.wire_bytes_received),
			MessagesCompressed: uint64(e.messages_compressed),
			ChecksumFailures:   uint64(e.checksum_failures),
			FramesRefused:      uint64(e.frames_refused),
			Connects:           uint64(e.connects),
			Reconnects:         uint64(e.reconnects),
			Peers:              uint64(e.peers),
			QueuedBytes:        uint64(e.queued_bytes),
			HighWaterBytes:     uint64(e.high_water_bytes),
		}
		return C.gopsyne_result{rc: r.rc, detail: r.detail}
	})
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// LocalAddress returns the address of a tcp:// or unix:// channel end
// (psyne_channel_get_local_address): for a tcp listener "HOST:PORT" with the
// port the system chose when the URI said port 0, for a unix listener its
// socket path, for a connector the address it connects to. A connector can
// then be opened on "tcp://"+addr (a wildcard listener reports 0.0.0.0,
// which Linux connects to locally) or "unix://"+addr.
// On memory:// and ipc:// channels it fails with ErrUnsupported.
func (c *Channel) LocalAddress() (string, error) {
	defer runtime.KeepAlive(c)
	for n := 256; ; n *= 4 {
		buf := make([]byte, n)
		err := c.state().simple("LocalAddress", func(ch *C.psyne_channel_t) C.gopsyne_result {
			return C.gopsyne_get_local_address(ch, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(n))
		})
		if e, ok := err.(*Error); ok && e.Code == ErrInvalidArgument && n < 1<<16 {
			continue // the buffer was too small
		}
		if err != nil {
			return "", err
		}
		if i := bytes.IndexByte(buf, 0); i >= 0 {
			buf = buf[:i]
		}
		return string(buf), nil
	}
}
