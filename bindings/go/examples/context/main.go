// Contexts and timeouts: waits that end on a deadline or on cancel.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	psyne "github.com/psyne-dev/psyne/bindings/go"
)

func main() {
	ch, err := psyne.NewChannel("memory://context-demo", 256, psyne.ModeSPSC, psyne.TypeMulti)
	if err != nil {
		log.Fatal(err)
	}
	defer ch.Close()

	// A plain timeout: ErrTimeout when nothing comes.
	_, _, err = ch.ReceiveData(64, 50*time.Millisecond)
	fmt.Println("ReceiveData timeout:", errors.Is(err, psyne.ErrTimeout))

	// A context deadline on a blocked receive.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err = ch.ReceiveContext(ctx, 64)
	fmt.Println("ReceiveContext deadline:", errors.Is(err, context.DeadlineExceeded))

	// Cancel a send that waits for room on a full channel.
	for ch.SendData(make([]byte, 32), 1) == nil {
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel2)
	err = ch.SendContext(ctx2, make([]byte, 32), 1)
	fmt.Println("SendContext cancelled:", errors.Is(err, context.Canceled))

	// Once a receiver makes room, a waiting send goes through.
	go func() {
		time.Sleep(50 * time.Millisecond)
		ch.ReceiveData(64, 0)
	}()
	err = ch.SendContext(context.Background(), []byte("made it"), 2)
	fmt.Println("SendContext after room appeared:", err == nil)
}
