package psyne

// DefaultBufferSize is the ring size a ChannelBuilder uses unless told
// otherwise: 1 MiB.
const DefaultBufferSize = 1 << 20

// A ChannelBuilder collects the options of a channel; Build opens it.
// The zero options are: DefaultBufferSize, ModeSPSC, TypeMulti, no
// compression. Every setter returns the builder, so calls chain:
//
//	ch, err := psyne.NewChannelBuilder("memory://jobs").
//		BufferSize(64 << 10).
//		Mode(psyne.ModeMPMC).
//		Build()
type ChannelBuilder struct {
	uri         string
	bufferSize  int
	mode        ChannelMode
	typ         ChannelType
	compression *CompressionConfig
}

// NewChannelBuilder starts building a channel on uri.
func NewChannelBuilder(uri string) *ChannelBuilder {
	return &ChannelBuilder{uri: uri, bufferSize: DefaultBufferSize, mode: ModeSPSC, typ: TypeMulti}
}

// BufferSize sets the ring size in bytes (0 attaches to an existing
// memory:// or ipc:// channel).
func (b *ChannelBuilder) BufferSize(n int) *ChannelBuilder { b.bufferSize = n; return b }

// Mode sets the channel mode.
func (b *ChannelBuilder) Mode(m ChannelMode) *ChannelBuilder { b.mode = m; return b }

// ChannelType sets the channel type.
func (b *ChannelBuilder) ChannelType(t ChannelType) *ChannelBuilder { b.typ = t; return b }

// Compression sets the compression configuration.
func (b *ChannelBuilder) Compression(cfg CompressionConfig) *ChannelBuilder {
	b.compression = &cfg
	return b
}

// Build opens the channel.
func (b *ChannelBuilder) Build() (*Channel, error) {
	if b.compression != nil {
		return open("Build", b.uri, b.bufferSize, b.mode, b.typ, b.compression)
	}
	return open("Build", b.uri, b.bufferSize, b.mode, b.typ, nil)
}
