// Network: a listener on tcp://:8080 echoes every message back; a client on
// tcp://localhost:8080, started 100 ms later, sends a few messages and
// prints the echoes. With -ws the same over WebSocket: ws://:8080/echo,
// which browsers and any WebSocket client can reach too.
//
//	go run ./examples/network              # port 8080
//	go run ./examples/network -port 9000
//	go run ./examples/network -ws          # ws://
//
// Both ends live in this one program so that it runs by itself and exits;
// in real use they are two processes (or two hosts).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"time"

	psyne "github.com/psyne-dev/psyne/bindings/go"
)

func main() {
	port := flag.Int("port", 8080, "TCP port the server listens on and the client connects to")
	ws := flag.Bool("ws", false, "WebSocket (ws://:PORT/echo) instead of tcp://")
	flag.Parse()
	scheme, path := "tcp", ""
	if *ws {
		scheme, path = "ws", "/echo"
	}

	// Server: tcp://:PORT listens on every interface and echoes every message back.
	server, err := psyne.NewChannel(fmt.Sprintf("%s://:%d%s", scheme, *port, path), 1<<20, psyne.ModeSPSC, psyne.TypeMulti)
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	go func() {
		for {
			data, msgType, err := server.ReceiveData(64<<10, -1) // waits without limit
			if err != nil {
				return // closed
			}
			if err := server.SendContext(context.Background(), data, msgType); err != nil {
				return
			}
		}
	}()

	time.Sleep(100 * time.Millisecond)

	// Client: a host name connects, in the background, retrying until the listener answers.
	// (Messages sent meanwhile wait in the ring.)
	client, err := psyne.NewChannel(fmt.Sprintf("%s://localhost:%d%s", scheme, *port, path), 1<<20, psyne.ModeSPSC, psyne.TypeMulti)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	for i, text := range []string{"hello", "over", scheme} {
		if err := client.SendData([]byte(text), uint32(i+1)); err != nil {
			log.Fatal(err)
		}
		data, msgType, err := client.ReceiveData(1024, 10*time.Second)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("echo: %q (type %d)\n", data, msgType)
	}

	m, err := client.ExtendedMetrics() // MessagesSent, WireBytesSent, Connects, Peers, ...
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("client: %d messages sent, %d received, %d connection(s)\n",
		m.MessagesSent, m.MessagesReceived, m.Connects)
}
