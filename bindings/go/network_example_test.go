package psyne_test

import (
	"errors"
	"fmt"
	"net"
	"time"

	psyne "github.com/psyne-dev/psyne/bindings/go"
)

// A listener on port 0 gets a port from the system; LocalAddress says which,
// and a connector uses it.
func ExampleChannel_LocalAddress() {
	listener, err := psyne.NewChannel("tcp://127.0.0.1:0?role=listen", 64<<10, psyne.ModeSPSC, psyne.TypeMulti)
	if err != nil {
		panic(err)
	}
	defer listener.Close()
	addr, err := listener.LocalAddress() // "127.0.0.1:PORT"
	if err != nil {
		panic(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	fmt.Println("the system chose a port:", port != "0")

	client, err := psyne.NewChannel("tcp://"+addr, 64<<10, psyne.ModeSPSC, psyne.TypeMulti)
	if err != nil {
		panic(err)
	}
	defer client.Close()
	client.SendData([]byte("hi"), 1)
	data, msgType, err := listener.ReceiveData(64, 10*time.Second)
	fmt.Printf("%s %d %v\n", data, msgType, err)

	// memory:// and ipc:// channels have no address.
	mem, _ := psyne.NewChannel("memory://example-local-address", 4096, psyne.ModeSPSC, psyne.TypeMulti)
	defer mem.Close()
	_, err = mem.LocalAddress()
	fmt.Println(errors.Is(err, psyne.ErrUnsupported))
	// Output:
	// the system chose a port: true
	// hi 1 <nil>
	// true
}

// The extended metrics of a listener after one connector sent it three
// 5-byte messages: the 32-byte HELLO and a 16-byte header per message
// travel on the wire besides the payload.
func ExampleChannel_ExtendedMetrics() {
	listener, err := psyne.NewChannel("tcp://127.0.0.1:0?role=listen", 64<<10, psyne.ModeSPSC, psyne.TypeMulti)
	if err != nil {
		panic(err)
	}
	defer listener.Close()
	addr, _ := listener.LocalAddress()
	client, err := psyne.NewChannel("tcp://"+addr, 64<<10, psyne.ModeSPSC, psyne.TypeMulti)
	if err != nil {
		panic(err)
	}
	defer client.Close()

	for _, word := range []string{"alpha", "bravo", "delta"} {
		client.SendData([]byte(word), 1)
	}
	for i := 0; i < 3; i++ {
		if _, _, err := listener.ReceiveData(64, 10*time.Second); err != nil {
			panic(err)
		}
	}
	m, err := listener.ExtendedMetrics()
	if err != nil {
		panic(err)
	}
	fmt.Println("messages:", m.MessagesReceived, "payload bytes:", m.BytesReceived)
	fmt.Println("wire bytes:", m.WireBytesReceived, "= 32 + 3 × (16 + 5)")
	fmt.Println("connects:", m.Connects, "peers:", m.Peers, "refused:", m.FramesRefused)
	// Output:
	// messages: 3 payload bytes: 15
	// wire bytes: 95 = 32 + 3 × (16 + 5)
	// connects: 1 peers: 1 refused: 0
}
