// IPC: a producer and a consumer in two processes share an ipc:// ring.
//
//	go run ./examples/ipc                      # starts a consumer process, then produces
//	go run ./examples/ipc -role consumer &     # or run the two roles yourself
//	go run ./examples/ipc -role producer
//
// -name NAME picks the channel name (ipc://NAME, default psyne-go-example).
// If this libpsyne build does not have ipc://, the program says so and exits
// with status 3.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"strconv"
	"time"

	psyne "github.com/psyne-dev/psyne/bindings/go"
)

const count = 1000

var (
	frames string // producer -> consumer: ipc://NAME
	acks   string // consumer -> producer, "all received": ipc://NAME-ack
)

func open(uri string) *psyne.Channel {
	// Both processes give the same size: the first creates the ring, the
	// other attaches to it.
	ch, err := psyne.NewChannel(uri, 1<<16, psyne.ModeSPSC, psyne.TypeMulti)
	if err != nil {
		log.Fatal(err)
	}
	return ch
}

func produce() {
	ch, ack := open(frames), open(acks)
	defer ch.Close()
	defer ack.Close()
	for i := 0; i < count; i++ {
		msg := []byte("frame " + strconv.Itoa(i))
		for {
			err := ch.SendData(msg, uint32(i))
			if err == nil {
				break
			}
			if !errors.Is(err, psyne.ErrChannelFull) {
				log.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// Keep the ring open until the consumer has read everything.
	if _, _, err := ack.ReceiveData(16, 30*time.Second); err != nil {
		log.Fatal("waiting for the consumer: ", err)
	}
	fmt.Printf("producer %d: sent %d messages\n", os.Getpid(), count)
}

func consume() {
	ch, ack := open(frames), open(acks)
	defer ch.Close()
	defer ack.Close()
	for i := 0; i < count; i++ {
		data, typ, err := ch.ReceiveData(64, 30*time.Second)
		if err != nil {
			log.Fatal(err)
		}
		if want := "frame " + strconv.Itoa(i); string(data) != want || typ != uint32(i) {
			log.Fatalf("got %q type %d, want %q", data, typ, want)
		}
	}
	if err := ack.SendData([]byte("done"), 0); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("consumer %d: received %d messages in order\n", os.Getpid(), count)
}

func main() {
	role := flag.String("role", "both", "producer, consumer, or both (starts a consumer process)")
	name := flag.String("name", "psyne-go-example", "channel name")
	flag.Parse()
	frames, acks = "ipc://"+*name, "ipc://"+*name+"-ack"
	switch *role {
	case "producer":
		produce()
	case "consumer":
		consume()
	case "both":
		open(frames).Close() // check support before starting a second process
		exe, err := os.Executable()
		if err != nil {
			log.Fatal(err)
		}
		consumer := exec.Command(exe, "-role", "consumer", "-name", *name)
		consumer.Stdout, consumer.Stderr = os.Stdout, os.Stderr
		if err := consumer.Start(); err != nil {
			log.Fatal(err)
		}
		produce()
		if err := consumer.Wait(); err != nil {
			log.Fatal("consumer: ", err)
		}
	default:
		log.Fatalf("unknown role %q", *role)
	}
}
