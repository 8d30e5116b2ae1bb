// Exclusive sides: a producer goroutine and a consumer goroutine, each with
// its own side of the channel, stream 4 KiB frames zero-copy with no lock
// and no allocation per message.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log"

	psyne "github.com/psyne-dev/psyne/bindings/go"
)

const frames, frameSize = 10000, 4096

func main() {
	ch, err := psyne.NewChannel("memory://sides-demo", 1<<20, psyne.ModeSPSC, psyne.TypeMulti)
	if err != nil {
		log.Fatal(err)
	}
	defer ch.Close()
	tx, err := ch.Producer() // the only sender until tx.Close()
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Close()
	rx, err := ch.Consumer() // the only receiver until rx.Close()
	if err != nil {
		log.Fatal(err)
	}
	defer rx.Close()
	ctx := context.Background()

	go func() { // the producer goroutine: one Producer, used by it alone
		m, err := tx.ReserveContext(ctx, frameSize)
		for i := 0; i < frames; i++ {
			if err != nil {
				log.Fatal(err)
			}
			binary.LittleEndian.PutUint64(m.Data(), uint64(i)) // written in place
			if i == frames-1 {
				err = m.Send(1)
				break
			}
			// Send this frame and reserve the next in one call; wait for
			// room only when the ring is full.
			if m, err = m.SendAndReserve(1, frameSize); errors.Is(err, psyne.ErrChannelFull) {
				m, err = tx.ReserveContext(ctx, frameSize)
			}
		}
		if err != nil {
			log.Fatal(err)
		}
	}()

	// The consumer: read each frame in place, release it and take the next
	// in one call.
	v, err := rx.ReceiveViewContext(ctx)
	inOrder := 0
	for i := 0; err == nil; i++ {
		if binary.LittleEndian.Uint64(v.Data()) == uint64(i) && v.Len() == frameSize {
			inOrder++
		}
		if i == frames-1 {
			err = v.Release()
			break
		}
		v, err = v.ReleaseAndReceive(-1)
	}
	if err != nil {
		log.Fatal(err)
	}
	m, _ := ch.Metrics()
	fmt.Printf("received %d of %d frames in order, %d bytes, zero-copy\n", inOrder, frames, m.BytesReceived)
}
