// Quickstart: open an in-process channel, send a message, receive it.
package main

import (
	"fmt"
	"log"
	"time"

	psyne "github.com/psyne-dev/psyne/bindings/go"
)

func main() {
	ch, err := psyne.NewChannel("memory://quickstart", 64<<10, psyne.ModeSPSC, psyne.TypeMulti)
	if err != nil {
		log.Fatal(err)
	}
	defer ch.Close()

	if err := ch.SendData([]byte("hello, psyne"), 1); err != nil {
		log.Fatal(err)
	}
	data, msgType, err := ch.ReceiveData(1024, time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("received %q (type %d) with libpsyne %s\n", data, msgType, psyne.Version())
}
