// Zero-copy: write a message straight into the ring, read it in place.
package main

import (
	"fmt"
	"log"
	"time"

	psyne "github.com/psyne-dev/psyne/bindings/go"
)

func main() {
	ch, err := psyne.NewChannel("memory://zerocopy-demo", 1<<20, psyne.ModeSPSC, psyne.TypeMulti)
	if err != nil {
		log.Fatal(err)
	}
	defer ch.Close()

	// Reserve 4 KiB inside the ring and fill it in place.
	msg, err := ch.ReserveMessage(4096)
	if err != nil {
		log.Fatal(err)
	}
	buf := msg.Data() // the ring memory itself, valid until Send or Cancel
	for i := range buf {
		buf[i] = byte(i)
	}
	if err := msg.Send(7); err != nil {
		log.Fatal(err)
	}

	// Read it in place: View.Data is the same ring memory, no copy.
	view, err := ch.ReceiveView(time.Second)
	if err != nil {
		log.Fatal(err)
	}
	sum := 0
	for _, b := range view.Data() {
		sum += int(b)
	}
	fmt.Printf("read %d bytes of type %d in place, checksum %d\n", view.Len(), view.Type(), sum)
	if err := view.Release(); err != nil { // gives the space back to the producer
		log.Fatal(err)
	}
}
