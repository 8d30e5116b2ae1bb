package psyne

import "strconv"

// ChannelMode declares how many goroutines (threads, processes) may send and
// receive at once (psyne_channel_mode_t). The Go binding makes every mode safe
// for any number of goroutines: on a single-producer or single-consumer side
// it serialises the goroutines of this process with a lock, so the mode only
// chooses the ring algorithm (SPSC is the fastest) and what other processes
// may do.
type ChannelMode int32

// Channel modes; the values are those of the C API.
const (
	ModeSPSC ChannelMode = 0 // single producer, single consumer
	ModeSPMC ChannelMode = 1 // single producer, multiple consumers
	ModeMPSC ChannelMode = 2 // multiple producers, single consumer
	ModeMPMC ChannelMode = 3 // multiple producers, multiple consumers
)

// String returns "SPSC", "SPMC", "MPSC" or "MPMC".
func (m ChannelMode) String() string {
	switch m {
	case ModeSPSC:
		return "SPSC"
	case ModeSPMC:
		return "SPMC"
	case ModeMPSC:
		return "MPSC"
	case ModeMPMC:
		return "MPMC"
	}
	return "ChannelMode(" + strconv.Itoa(int(m)) + ")"
}

// singleProducer reports whether only one sender may be active at a time.
func (m ChannelMode) singleProducer() bool { return m == ModeSPSC || m == ModeSPMC }

// singleConsumer reports whether only one receiver may be active at a time.
func (m ChannelMode) singleConsumer() bool { return m == ModeSPSC || m == ModeMPSC }

// ChannelType says whether the message type travels with each message
// (psyne_channel_type_t).
type ChannelType int32

// Channel types; the values are those of the C API.
const (
	// TypeSingle channels carry no per-message type: sending a non-zero
	// type fails with ErrInvalidArgument and receivers always see 0.
	TypeSingle ChannelType = 0
	// TypeMulti channels carry a uint32 type with every message.
	TypeMulti ChannelType = 1
)

// String returns "Single" or "Multi".
func (t ChannelType) String() string {
	switch t {
	case TypeSingle:
		return "Single"
	case TypeMulti:
		return "Multi"
	}
	return "ChannelType(" + strconv.Itoa(int(t)) + ")"
}

// CompressionType selects a compression algorithm (psyne_compression_type_t).
type CompressionType int32

// Compression algorithms; the values are those of the C API.
const (
	CompressionNone   CompressionType = 0
	CompressionLZ4    CompressionType = 1
	CompressionZstd   CompressionType = 2
	CompressionSnappy CompressionType = 3
)

// String returns "None", "LZ4", "Zstd" or "Snappy".
func (t CompressionType) String() string {
	switch t {
	case CompressionNone:
		return "None"
	case CompressionLZ4:
		return "LZ4"
	case CompressionZstd:
		return "Zstd"
	case CompressionSnappy:
		return "Snappy"
	}
	return "CompressionType(" + strconv.Itoa(int(t)) + ")"
}

// CompressionConfig configures what a channel handle does to the messages
// it sends, on every transport (psyne_compression_config_t). A message is
// compressed only when it is at least MinSizeThreshold bytes long and the
// result is smaller; each message records what was done, so receivers
// decode any message whatever their own configuration.
type CompressionConfig struct {
	Type             CompressionType // algorithm; CompressionNone disables compression
	Level            int             // Zstd level, -7..22 (0 = zstd's default, 3); LZ4 and Snappy ignore it
	MinSizeThreshold int             // smallest message, in bytes, worth compressing
	EnableChecksum   bool            // put a CRC32C on every message; receivers drop (memory, ipc) or reset the connection on (sockets) a mismatch
}

// Metrics are a channel's counters (psyne_metrics_t).
type Metrics struct {
	MessagesSent     uint64 // messages committed by senders
	BytesSent        uint64 // payload bytes committed by senders
	MessagesReceived uint64 // messages taken by receivers
	BytesReceived    uint64 // payload bytes taken by receivers
	SendBlocks       uint64 // times a send found the ring full
	ReceiveBlocks    uint64 // times a receive found the ring empty
}
