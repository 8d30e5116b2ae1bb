package psyne_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	psyne "github.com/psyne-dev/psyne/bindings/go"
)

func ExampleNewChannel() {
	ch, err := psyne.NewChannel("memory://example-new", 4096, psyne.ModeSPSC, psyne.TypeMulti)
	if err != nil {
		panic(err)
	}
	defer ch.Close()

	ch.SendData([]byte("hello"), 1)
	data, msgType, err := ch.ReceiveData(64, time.Second)
	fmt.Printf("%s %d %v\n", data, msgType, err)
	// Output: hello 1 <nil>
}

func ExampleNewChannelBuilder() {
	ch, err := psyne.NewChannelBuilder("memory://example-builder").
		BufferSize(1000).
		Mode(psyne.ModeMPMC).
		ChannelType(psyne.TypeSingle).
		Build()
	if err != nil {
		panic(err)
	}
	defer ch.Close()
	size, _ := ch.BufferSize()
	fmt.Println(ch.URI(), ch.Mode(), ch.Type(), size)
	// Output: memory://example-builder MPMC Single 1024
}

func ExampleChannel_SendData() {
	ch, _ := psyne.NewChannel("memory://example-full", 64, psyne.ModeSPSC, psyne.TypeMulti)
	defer ch.Close()

	var err error
	for err == nil {
		err = ch.SendData(make([]byte, 16), 0) // never blocks
	}
	fmt.Println(errors.Is(err, psyne.ErrChannelFull))
	// Output: true
}

func ExampleChannel_ReserveMessage() {
	ch, _ := psyne.NewChannel("memory://example-reserve", 4096, psyne.ModeSPSC, psyne.TypeMulti)
	defer ch.Close()

	msg, err := ch.ReserveMessage(5)
	if err != nil {
		panic(err)
	}
	copy(msg.Data(), "zero!") // written straight into the ring
	msg.Send(7)

	view, _ := ch.ReceiveView(time.Second) // the same bytes, read in place
	fmt.Printf("%s %d\n", view.Data(), view.Type())
	view.Release()
	// Output: zero! 7
}

func ExampleChannel_ReceiveContext() {
	ch, _ := psyne.NewChannel("memory://example-ctx", 4096, psyne.ModeSPSC, psyne.TypeMulti)
	defer ch.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, _, err := ch.ReceiveContext(ctx, 64) // nothing comes
	fmt.Println(errors.Is(err, context.DeadlineExceeded), errors.Is(err, psyne.ErrTimeout))
	// Output: true true
}

func ExampleChannel_SendContext() {
	ch, _ := psyne.NewChannel("memory://example-sendctx", 64, psyne.ModeSPSC, psyne.TypeMulti)
	defer ch.Close()
	for ch.SendData(make([]byte, 16), 0) == nil { // fill it
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	err := ch.SendContext(ctx, []byte("waits for room"), 0)
	fmt.Println(errors.Is(err, context.Canceled))
	// Output: true
}

func ExampleChannel_ReceiveData_goroutines() {
	ch, _ := psyne.NewChannel("memory://example-mpsc", 1<<16, psyne.ModeMPSC, psyne.TypeMulti)
	defer ch.Close()

	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				ch.SendContext(context.Background(), []byte("job"), 0)
			}
		}()
	}
	n := 0
	for n < 400 {
		if _, _, err := ch.ReceiveData(16, time.Second); err == nil {
			n++
		}
	}
	wg.Wait()
	fmt.Println(n)
	// Output: 400
}

func ExampleChannel_Metrics() {
	ch, _ := psyne.NewChannel("memory://example-metrics", 4096, psyne.ModeSPSC, psyne.TypeMulti)
	defer ch.Close()
	ch.SendData([]byte("abc"), 0)
	ch.ReceiveData(16, 0)
	m, _ := ch.Metrics()
	fmt.Println(m.MessagesSent, m.BytesSent, m.MessagesReceived, m.BytesReceived)
	// Output: 1 3 1 3
}

func ExampleError() {
	_, err := psyne.NewChannel("bogus://x", 1024, psyne.ModeSPSC, psyne.TypeMulti)
	var e *psyne.Error
	if errors.As(err, &e) {
		fmt.Println(e.Op, e.Code == psyne.ErrInvalidArgument, errors.Is(err, psyne.ErrInvalidArgument))
	}
	// Output: NewChannel true true
}

func ExampleChannel_Producer() {
	ch, _ := psyne.NewChannel("memory://example-sides", 4096, psyne.ModeSPSC, psyne.TypeMulti)
	defer ch.Close()

	// Each side taken once, then used by one goroutine: no lock and no
	// allocation per message.
	tx, err := ch.Producer()
	if err != nil {
		panic(err)
	}
	defer tx.Close()
	rx, err := ch.Consumer()
	if err != nil {
		panic(err)
	}
	defer rx.Close()

	done := make(chan struct{})
	go func() { // the consumer goroutine
		defer close(done)
		for {
			v, err := rx.ReceiveView(time.Second) // read in place
			if err != nil {
				fmt.Println(err)
				return
			}
			fmt.Printf("%s %d\n", v.Data(), v.Type())
			v.Release()
			if v.Type() == 0 {
				return
			}
		}
	}()

	for i, word := range []string{"zero", "copy", "end"} {
		m, err := tx.ReserveContext(context.Background(), len(word)) // waits for room
		if err != nil {
			panic(err)
		}
		copy(m.Data(), word) // written straight into the ring
		m.Send(uint32(2 - i))
	}
	<-done

	// A single-producer channel has one sender while the Producer lives.
	err = ch.SendData([]byte("refused"), 1)
	fmt.Println(errors.Is(err, psyne.ErrInvalidArgument))
	// Output:
	// zero 2
	// copy 1
	// end 0
	// true
}
