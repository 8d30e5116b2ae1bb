// MPSC: many goroutines send on one channel, one goroutine receives.
package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"log"
	"sync"

	psyne "github.com/psyne-dev/psyne/bindings/go"
)

func main() {
	ch, err := psyne.NewChannel("memory://mpsc-demo", 1<<16, psyne.ModeMPSC, psyne.TypeMulti)
	if err != nil {
		log.Fatal(err)
	}
	defer ch.Close()

	const producers, perProducer = 8, 10000
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p uint32) {
			defer wg.Done()
			var buf [8]byte
			for i := 0; i < perProducer; i++ {
				binary.LittleEndian.PutUint64(buf[:], uint64(i))
				// SendContext waits for room; SendData would return ErrChannelFull.
				if err := ch.SendContext(context.Background(), buf[:], p); err != nil {
					log.Fatal(err)
				}
			}
		}(uint32(p))
	}

	perSender := make([]int, producers)
	for n := 0; n < producers*perProducer; n++ {
		_, sender, err := ch.ReceiveContext(context.Background(), 8)
		if err != nil {
			log.Fatal(err)
		}
		perSender[sender]++
	}
	wg.Wait()
	m, _ := ch.Metrics()
	fmt.Printf("received %d messages from %d goroutines %v (sent %d)\n",
		producers*perProducer, producers, perSender, m.MessagesSent)
}
