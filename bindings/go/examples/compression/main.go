// Compression: a memory:// channel whose sender compresses with Zstd
// (messages of 512 bytes or more), read by a handle opened with no
// compression settings at all; then a tcp:// pair whose connector, built
// with the builder, sends LZ4 with CRC32C checksums.
package main

import (
	"bytes"
	"fmt"
	"log"
	"time"

	psyne "github.com/psyne-dev/psyne/bindings/go"
)

func main() {
	payload := bytes.Repeat([]byte(`{"sensor":7,"value":21.5,"unit":"C"}`+"\n"), 100)

	// memory://: the sender compresses; the receiver needs no settings.
	tx, err := psyne.NewChannelWithCompression("memory://compressed", 1<<20, psyne.ModeSPSC, psyne.TypeMulti,
		psyne.CompressionConfig{Type: psyne.CompressionZstd, MinSizeThreshold: 512})
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Close()
	rx, err := psyne.NewChannel("memory://compressed", 0, psyne.ModeSPSC, psyne.TypeMulti)
	if err != nil {
		log.Fatal(err)
	}
	defer rx.Close()
	if err := tx.SendData(payload, 1); err != nil {
		log.Fatal(err)
	}
	if err := tx.SendData([]byte("below the threshold"), 2); err != nil {
		log.Fatal(err)
	}
	intact := true
	for _, want := range [][]byte{payload, []byte("below the threshold")} {
		got, _, err := rx.ReceiveData(len(payload), time.Second)
		if err != nil {
			log.Fatal(err)
		}
		intact = intact && bytes.Equal(got, want)
	}
	m, err := tx.ExtendedMetrics()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("memory: %d of 2 messages compressed, intact: %v (%d payload bytes took %d in the ring)\n",
		m.MessagesCompressed, intact, m.BytesSent, m.WireBytesSent)

	// tcp://: a listener with no settings, a connector that sends LZ4.
	listener, err := psyne.NewChannelBuilder("tcp://127.0.0.1:0?role=listen").BufferSize(1 << 20).Build()
	if err != nil {
		log.Fatal(err)
	}
	defer listener.Close()
	addr, err := listener.LocalAddress()
	if err != nil {
		log.Fatal(err)
	}
	client, err := psyne.NewChannelBuilder("tcp://" + addr).
		BufferSize(1 << 20).
		Compression(psyne.CompressionConfig{Type: psyne.CompressionLZ4, MinSizeThreshold: 512, EnableChecksum: true}).
		Build()
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	if err := client.SendData(payload, 3); err != nil {
		log.Fatal(err)
	}
	got, typ, err := listener.ReceiveData(len(payload), 10*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	// The connector counts a frame once its write has returned.
	var cm *psyne.ExtendedMetrics
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cm, err = client.ExtendedMetrics(); err != nil || cm.MessagesCompressed == 1 {
			break
		}
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("tcp: LZ4 frames: %d, type %d, intact: %v (%d payload bytes, %d on the wire with the HELLO)\n",
		cm.MessagesCompressed, typ, bytes.Equal(got, payload), cm.BytesSent, cm.WireBytesSent)
}
