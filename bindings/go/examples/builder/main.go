// Builder: configure a channel step by step, then inspect it.
package main

import (
	"errors"
	"fmt"
	"log"

	psyne "github.com/psyne-dev/psyne/bindings/go"
)

func main() {
	ch, err := psyne.NewChannelBuilder("memory://builder-demo").
		BufferSize(1000). // rounded up to a power of two
		Mode(psyne.ModeMPMC).
		ChannelType(psyne.TypeMulti).
		Compression(psyne.CompressionConfig{Type: psyne.CompressionNone}).
		Build()
	if err != nil {
		log.Fatal(err)
	}
	defer ch.Close()

	size, _ := ch.BufferSize()
	max, _ := ch.MaxMessageSize()
	fmt.Printf("%s: mode %v, type %v, ring %d bytes, messages up to %d bytes\n",
		ch.URI(), ch.Mode(), ch.Type(), size, max)

	// Errors match sentinels and carry libpsyne's explanation.
	err = ch.SendData(make([]byte, max+1), 1)
	fmt.Println("too big is ErrInvalidArgument:", errors.Is(err, psyne.ErrInvalidArgument))
	fmt.Println(err)
}
