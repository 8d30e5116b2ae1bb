package psyne

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func TestMain(m *testing.M) {
	if err := Init(); err != nil {
		fmt.Fprintln(os.Stderr, "psyne.Init:", err)
		os.Exit(1)
	}
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

func TestVersion(t *testing.T) {
	v := Version()
	if v == "" {
		t.Fatal("Version() is empty")
	}
	if err := Init(); err != nil { // again: harmless
		t.Fatal(err)
	}
	t.Logf("libpsyne %s", v)
}

func TestNewChannelErrors(t *testing.T) {
	cases := []struct {
		uri  string
		size int
		want error
		text string // part of the detail
	}{
		{"bogus://x", 1024, ErrInvalidArgument, "scheme"},
		{"no-scheme", 1024, ErrInvalidArgument, "scheme"},
		{"memory://", 1024, ErrInvalidArgument, "name"},
		{"memory://a?bogus=1", 1024, ErrInvalidArgument, "option"},
		{"memory://a?spin=soon", 1024, ErrInvalidArgument, "spin=soon"},
		{"memory://a?spin=5000000", 1024, ErrInvalidArgument, "0 to 1000000"},
		{"memory://a\x00b", 1024, ErrInvalidArgument, "NUL"},
		{"memory://neg", -1, ErrInvalidArgument, "negative"},
		{uniq(t, "memory"), 0, ErrInvalidArgument, "does not exist"},
	}
	for _, c := range cases {
		ch, err := NewChannel(c.uri, c.size, ModeSPSC, TypeMulti)
		if err == nil {
			ch.Close()
			t.Errorf("NewChannel(%q, %d): no error", c.uri, c.size)
			continue
		}
		mustIs(t, err, c.want)
		var e *Error
		errors.As(err, &e)
		if e.Op != "NewChannel" || !strings.Contains(e.Detail, c.text) {
			t.Errorf("NewChannel(%q): error %q: want Op NewChannel and a detail mentioning %q", c.uri, err, c.text)
		}
		if !strings.Contains(err.Error(), c.text) || strings.Contains(err.Error(), "psyne_channel_create") {
			t.Errorf("Error() %q: want the detail %q without the C function name", err.Error(), e.Detail)
		}
		t.Logf("%v", err)
	}
	// Out-of-range enums are refused by the library.
	_, err := NewChannel(uniq(t, "memory"), 1024, ChannelMode(7), TypeMulti)
	mustIs(t, err, ErrInvalidArgument)
	_, err = NewChannel(uniq(t, "memory"), 1024, ModeSPSC, ChannelType(5))
	mustIs(t, err, ErrInvalidArgument)
}

func TestUnsupportedTransport(t *testing.T) {
	for _, uri := range []string{"tcp://127.0.0.1:1", "unix:///tmp/psyne-go-test.sock", "ws://127.0.0.1:1/x"} {
		ch, err := NewChannel(uri, 4096, ModeSPSC, TypeMulti)
		if err == nil {
			ch.Close()
			t.Logf("%s is supported by this build", uri)
			continue
		}
		if !errors.Is(err, ErrUnsupported) {
			t.Logf("%s: %v", uri, err)
			continue
		}
		var e *Error
		errors.As(err, &e)
		if e.Detail == "" {
			t.Errorf("%s: ErrUnsupported without detail text", uri)
		}
	}
}

func TestSendReceiveData(t *testing.T) {
	ch := openMem(t, 4096, ModeSPSC, TypeMulti)
	msgs := [][]byte{[]byte("hello"), {}, bytes.Repeat([]byte{7}, 1000), nil}
	for i, m := range msgs {
		if err := ch.SendData(m, uint32(100+i)); err != nil {
			t.Fatalf("SendData %d: %v", i, err)
		}
	}
	for i, m := range msgs {
		got, typ, err := ch.ReceiveData(2048, time.Second)
		if err != nil {
			t.Fatalf("ReceiveData %d: %v", i, err)
		}
		if !bytes.Equal(got, m) || typ != uint32(100+i) {
			t.Fatalf("message %d: got %d bytes type %d, want %d bytes type %d", i, len(got), typ, len(m), 100+i)
		}
	}
	_, _, err := ch.ReceiveData(2048, 0)
	mustIs(t, err, ErrNoMessage)
}

func TestTimeoutAndFull(t *testing.T) {
	ch := openMem(t, 256, ModeSPSC, TypeMulti)
	_, _, err := ch.ReceiveData(64, 30*time.Millisecond)
	mustIs(t, err, ErrTimeout)
	if err != ErrTimeout || !err.(interface{ Timeout() bool }).Timeout() {
		t.Error("not the bare ErrTimeout, or Timeout() false")
	}
	_, _, err = ch.ReceiveMessage(10 * time.Millisecond)
	mustIs(t, err, ErrTimeout)
	_, err = ch.ReceiveView(10 * time.Millisecond)
	mustIs(t, err, ErrTimeout)
	_, _, err = ch.ReceiveInto(make([]byte, 8), 10*time.Millisecond)
	mustIs(t, err, ErrTimeout)
	n := 0
	for ; n < 1000; n++ {
		if err = ch.SendData(make([]byte, 32), 1); err != nil {
			break
		}
	}
	mustIs(t, err, ErrChannelFull)
	if n == 0 {
		t.Fatal("nothing fit in a 256-byte ring")
	}
	_, err = ch.ReserveMessage(32)
	mustIs(t, err, ErrChannelFull)
	m, err := ch.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if m.SendBlocks == 0 || m.ReceiveBlocks == 0 {
		t.Errorf("metrics %+v: want send and receive blocks counted", *m)
	}
}

func TestSingleType(t *testing.T) {
	ch := openMem(t, 1024, ModeSPSC, TypeSingle)
	mustIs(t, ch.SendData([]byte("x"), 5), ErrInvalidArgument)
	m, err := ch.ReserveMessage(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(5); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Message.Send(5) on TypeSingle: %v", err)
	}
	copy(m.Data(), "z") // the reservation is kept
	if err := m.Send(0); err != nil {
		t.Fatalf("Send(0) after a refused Send(5): %v", err)
	}
	got, typ, err := ch.ReceiveData(16, time.Second)
	if err != nil || string(got) != "z" || typ != 0 {
		t.Fatalf("got %q type %d err %v", got, typ, err)
	}
	if err := ch.SendData([]byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	got, typ, err = ch.ReceiveData(16, time.Second)
	if err != nil || string(got) != "y" || typ != 0 {
		t.Fatalf("got %q type %d err %v", got, typ, err)
	}
	if ch.Type() != TypeSingle || ch.Mode() != ModeSPSC {
		t.Errorf("Type/Mode = %v/%v", ch.Type(), ch.Mode())
	}
}

func TestSizes(t *testing.T) {
	ch := openMem(t, 1000, ModeMPMC, TypeMulti)
	size, err := ch.BufferSize()
	if err != nil || size != 1024 {
		t.Fatalf("BufferSize = %d, %v; want 1024", size, err)
	}
	max, err := ch.MaxMessageSize()
	if err != nil || max <= 0 || max > size {
		t.Fatalf("MaxMessageSize = %d, %v", max, err)
	}
	mustIs(t, ch.SendData(make([]byte, max+1), 1), ErrInvalidArgument)
	_, err = ch.ReserveMessage(max + 1)
	mustIs(t, err, ErrInvalidArgument)
	if err := ch.SendData(make([]byte, max), 1); err != nil {
		t.Fatalf("a message of MaxMessageSize: %v", err)
	}
	got, _, err := ch.ReceiveData(max, time.Second)
	if err != nil || len(got) != max {
		t.Fatalf("ReceiveData: %d bytes, %v", len(got), err)
	}
	_, _, err = ch.ReceiveData(-1, 0)
	mustIs(t, err, ErrInvalidArgument)
	_, err = ch.ReserveMessage(-1)
	mustIs(t, err, ErrInvalidArgument)
}

func TestReceiveTooSmall(t *testing.T) {
	ch := openMem(t, 1<<16, ModeSPSC, TypeMulti)
	payload := bytes.Repeat([]byte("abcdefgh"), 100) // 800 bytes
	if err := ch.SendData(payload, 3); err != nil {
		t.Fatal(err)
	}
	_, _, err := ch.ReceiveData(100, 0)
	mustIs(t, err, ErrInvalidArgument)
	if !strings.Contains(err.Error(), "800") {
		t.Errorf("error %q does not say the needed size", err)
	}
	n, _, err := ch.ReceiveInto(make([]byte, 10), 0)
	mustIs(t, err, ErrInvalidArgument)
	if n != 800 {
		t.Errorf("ReceiveInto too small: n = %d, want the needed 800", n)
	}
	// Still queued; a large maxSize first tries a small buffer, then retries.
	got, typ, err := ch.ReceiveData(1<<15, 0)
	if err != nil || !bytes.Equal(got, payload) || typ != 3 {
		t.Fatalf("after too-small: %d bytes type %d err %v", len(got), typ, err)
	}
	// The size hint adapts both ways.
	for _, size := range []int{5000, 10, 3000, 0, 20000} {
		if err := ch.SendData(make([]byte, size), 1); err != nil {
			t.Fatal(err)
		}
		got, _, err := ch.ReceiveData(1<<15, time.Second)
		if err != nil || len(got) != size {
			t.Fatalf("size %d: got %d, %v", size, len(got), err)
		}
	}
	if err := ch.SendData([]byte("fits"), 9); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, typ, err = ch.ReceiveInto(buf, time.Second)
	if err != nil || string(buf[:n]) != "fits" || typ != 9 {
		t.Fatalf("ReceiveInto: %q %d %v", buf[:n], typ, err)
	}
}

func TestReservation(t *testing.T) {
	ch := openMem(t, 4096, ModeSPSC, TypeMulti)
	m, err := ch.ReserveMessage(5)
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != 5 || len(m.Data()) != 5 {
		t.Fatalf("reserved %d/%d bytes", m.Len(), len(m.Data()))
	}
	copy(m.Data(), "hello")
	written := unsafe.SliceData(m.Data())
	if err := m.Send(42); err != nil {
		t.Fatal(err)
	}
	if m.Data() != nil {
		t.Error("Data() after Send is not nil")
	}
	mustIs(t, m.Send(1), ErrInvalidArgument)
	mustIs(t, m.Cancel(), ErrInvalidArgument)

	v, err := ch.ReceiveView(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(v.Data()) != "hello" || v.Type() != 42 || v.Len() != 5 {
		t.Fatalf("view %q type %d", v.Data(), v.Type())
	}
	// Zero-copy: the receiver reads the very bytes the producer wrote.
	if unsafe.SliceData(v.Data()) != written {
		t.Errorf("view data at %p, reservation was at %p: not the same ring bytes", unsafe.SliceData(v.Data()), written)
	}
	if err := v.Release(); err != nil {
		t.Fatal(err)
	}
	mustIs(t, v.Release(), ErrInvalidArgument)
	if v.Data() != nil {
		t.Error("View.Data() after Release is not nil")
	}

	// Cancel gives the space back; nothing is delivered.
	m, err = ch.ReserveMessage(100)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Cancel(); err != nil {
		t.Fatal(err)
	}
	_, err = ch.ReceiveView(0)
	mustIs(t, err, ErrNoMessage)

	// An empty reservation is a legal empty message.
	m, err = ch.ReserveMessage(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(8); err != nil {
		t.Fatal(err)
	}
	got, typ, err := ch.ReceiveMessage(time.Second)
	if err != nil || len(got) != 0 || typ != 8 {
		t.Fatalf("empty message: %q %d %v", got, typ, err)
	}
}

func TestReceiveMessage(t *testing.T) {
	ch := openMem(t, 1<<16, ModeMPMC, TypeMulti)
	big := bytes.Repeat([]byte{1, 2, 3}, 5000)
	if err := ch.SendData(big, 77); err != nil {
		t.Fatal(err)
	}
	got, typ, err := ch.ReceiveMessage(time.Second)
	if err != nil || !bytes.Equal(got, big) || typ != 77 {
		t.Fatalf("ReceiveMessage: %d bytes type %d err %v", len(got), typ, err)
	}
	_, _, err = ch.ReceiveMessage(0)
	mustIs(t, err, ErrNoMessage)
}

func TestMetrics(t *testing.T) {
	ch := openMem(t, 4096, ModeSPSC, TypeMulti)
	if err := ch.ResetMetrics(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := ch.SendData(make([]byte, 10), 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := ch.ReceiveData(64, time.Second); err != nil {
		t.Fatal(err)
	}
	m, err := ch.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if m.MessagesSent != 3 || m.BytesSent != 30 || m.MessagesReceived != 1 || m.BytesReceived != 10 {
		t.Errorf("metrics %+v", *m)
	}
	if err := ch.ResetMetrics(); err != nil {
		t.Fatal(err)
	}
	m, _ = ch.Metrics()
	if *m != (Metrics{}) {
		t.Errorf("after ResetMetrics: %+v", *m)
	}
	if err := ch.EnableMetrics(false); err != nil {
		t.Fatal(err)
	}
	ch.SendData([]byte("x"), 1)
	m, _ = ch.Metrics()
	if m.MessagesSent != 0 {
		t.Errorf("metrics counted while disabled: %+v", *m)
	}
	if err := ch.EnableMetrics(true); err != nil {
		t.Fatal(err)
	}
}

func TestStop(t *testing.T) {
	ch := openMem(t, 4096, ModeSPSC, TypeMulti)
	stopped, err := ch.IsStopped()
	if err != nil || stopped {
		t.Fatalf("IsStopped = %v, %v", stopped, err)
	}
	if err := ch.SendData([]byte("queued"), 1); err != nil {
		t.Fatal(err)
	}
	if err := ch.Stop(); err != nil {
		t.Fatal(err)
	}
	if stopped, err = ch.IsStopped(); err != nil || !stopped {
		t.Fatalf("IsStopped after Stop = %v, %v", stopped, err)
	}
	mustIs(t, ch.SendData([]byte("late"), 1), ErrChannelStopped)
	if err := ch.SendData([]byte("late"), 1); err != ErrChannelStopped {
		t.Errorf("got %#v, want the bare ErrChannelStopped", err)
	}
	_, err = ch.ReserveMessage(1)
	mustIs(t, err, ErrChannelStopped)
	got, _, err := ch.ReceiveData(64, time.Second) // drains what is queued
	if err != nil || string(got) != "queued" {
		t.Fatalf("drain after Stop: %q %v", got, err)
	}
	_, _, err = ch.ReceiveData(64, time.Second)
	mustIs(t, err, ErrChannelStopped)
	if errors.Is(err, ErrClosed) {
		t.Error("a stopped (not closed) channel reports ErrClosed")
	}
}

func TestStopWakesBlocked(t *testing.T) {
	ch := openMem(t, 4096, ModeSPSC, TypeMulti)
	full := openMem(t, 256, ModeMPMC, TypeMulti)
	for full.SendData(make([]byte, 40), 1) == nil {
	}
	calls := []func() error{
		func() error { _, _, err := ch.ReceiveData(64, -1); return err }, // wait without limit
		func() error { _, err := ch.ReceiveViewContext(context.Background()); return err },
		func() error { return full.SendContext(context.Background(), make([]byte, 40), 1) },
		func() error { _, err := full.ReserveContext(context.Background(), 40); return err },
	}
	errc := make(chan error, len(calls))
	for _, f := range calls {
		go func(f func() error) { errc <- f() }(f)
	}
	time.Sleep(20 * time.Millisecond)
	if err := ch.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := full.Stop(); err != nil {
		t.Fatal(err)
	}
	for range calls {
		select {
		case err := <-errc:
			mustIs(t, err, ErrChannelStopped)
			if errors.Is(err, ErrClosed) {
				t.Errorf("stopped, not closed: %v", err)
			}
		case <-time.After(long):
			t.Fatal("Stop did not wake a blocked call")
		}
	}
}

func TestURI(t *testing.T) {
	uri := uniq(t, "memory")
	ch, err := NewChannel(uri, 1024, ModeMPSC, TypeMulti)
	if err != nil {
		t.Fatal(err)
	}
	if ch.URI() != uri {
		t.Errorf("URI() = %q, want %q", ch.URI(), uri)
	}
	ch.Close()
	if ch.URI() != uri {
		t.Errorf("URI() after Close = %q", ch.URI())
	}
}

func TestSharedName(t *testing.T) {
	uri := uniq(t, "memory")
	a, err := NewChannel(uri, 4096, ModeMPSC, TypeMulti)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewChannel(uri, 0, ModeSPSC, TypeSingle) // attach: adopts MPSC/Multi
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Mode() != ModeMPSC || b.Type() != TypeMulti {
		t.Errorf("attached handle: mode %v type %v, want the ring's MPSC/Multi", b.Mode(), b.Type())
	}
	if size, _ := b.BufferSize(); size != 4096 {
		t.Errorf("attached BufferSize = %d", size)
	}
	if err := a.SendData([]byte("across"), 4); err != nil {
		t.Fatal(err)
	}
	got, typ, err := b.ReceiveData(64, time.Second)
	if err != nil || string(got) != "across" || typ != 4 {
		t.Fatalf("got %q %d %v", got, typ, err)
	}
	// A different configuration under the same name is refused.
	_, err = NewChannel(uri, 8192, ModeMPSC, TypeMulti)
	mustIs(t, err, ErrInvalidArgument)
}

func TestCompression(t *testing.T) {
	ch, err := NewChannelWithCompression(uniq(t, "memory"), 4096, ModeSPSC, TypeMulti, CompressionConfig{})
	if err != nil {
		t.Fatalf("CompressionNone: %v", err)
	}
	defer ch.Close()
	if err := ch.SendData([]byte("plain"), 1); err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("compress me "), 100)
	for _, typ := range []CompressionType{CompressionLZ4, CompressionZstd, CompressionSnappy} {
		for _, scheme := range []string{"memory", "ipc"} {
			cfg := CompressionConfig{Type: typ, Level: 1, MinSizeThreshold: 64, EnableChecksum: true}
			uri := uniq(t, scheme)
			ch, err := NewChannelWithCompression(uri, 1<<16, ModeSPSC, TypeMulti, cfg)
			if err != nil {
				t.Fatalf("%v: %v", typ, err)
			}
			// A handle with no compression settings reads it.
			plain, err := NewChannel(uri, 0, ModeSPSC, TypeMulti)
			if err != nil {
				t.Fatal(err)
			}
			if err := ch.SendData(payload, 2); err != nil {
				t.Fatal(err)
			}
			if err := ch.SendData([]byte("short"), 3); err != nil {
				t.Fatal(err)
			}
			got, typ2, err := plain.ReceiveData(len(payload), time.Second)
			if err != nil || typ2 != 2 || !bytes.Equal(got, payload) {
				t.Fatalf("%v %s round trip: %v", typ, scheme, err)
			}
			got, _, err = plain.ReceiveData(len(payload), time.Second)
			if err != nil || string(got) != "short" {
				t.Fatalf("%v %s: %q %v", typ, scheme, got, err)
			}
			m, err := ch.ExtendedMetrics()
			if err != nil {
				t.Fatal(err)
			}
			if m.MessagesCompressed != 1 || m.WireBytesSent >= m.BytesSent || m.ChecksumFailures != 0 {
				t.Errorf("%v %s: %+v", typ, scheme, m)
			}
			plain.Close()
			ch.Close()
		}
	}
	// The builder, on tcp, with a listener that has no settings.
	l, err := NewChannelBuilder("tcp://127.0.0.1:0?role=listen").BufferSize(1 << 16).Build()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr, err := l.LocalAddress()
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewChannelBuilder("tcp://" + addr).BufferSize(1 << 16).
		Compression(CompressionConfig{Type: CompressionLZ4, MinSizeThreshold: 512}).Build()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendData(payload, 9); err != nil {
		t.Fatal(err)
	}
	got, typ, err := l.ReceiveData(len(payload), 10*time.Second)
	if err != nil || typ != 9 || !bytes.Equal(got, payload) {
		t.Fatalf("tcp LZ4 round trip: %v", err)
	}
	// Unknown types and levels out of range are refused.
	_, err = NewChannelWithCompression(uniq(t, "memory"), 4096, ModeSPSC, TypeMulti, CompressionConfig{Type: 9})
	mustIs(t, err, ErrInvalidArgument)
	_, err = NewChannelWithCompression(uniq(t, "memory"), 4096, ModeSPSC, TypeMulti, CompressionConfig{Type: CompressionZstd, Level: 99})
	mustIs(t, err, ErrInvalidArgument)
	_, err = NewChannelWithCompression(uniq(t, "memory"), 4096, ModeSPSC, TypeMulti, CompressionConfig{MinSizeThreshold: -1})
	mustIs(t, err, ErrInvalidArgument)
}

func TestBuilder(t *testing.T) {
	uri := uniq(t, "memory")
	ch, err := NewChannelBuilder(uri).BufferSize(2000).Mode(ModeMPMC).ChannelType(TypeSingle).Build()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if size, _ := ch.BufferSize(); size != 2048 || ch.Mode() != ModeMPMC || ch.Type() != TypeSingle || ch.URI() != uri {
		t.Errorf("built %d %v %v %q", size, ch.Mode(), ch.Type(), ch.URI())
	}
	def, err := NewChannelBuilder(uniq(t, "memory")).Build()
	if err != nil {
		t.Fatal(err)
	}
	defer def.Close()
	if size, _ := def.BufferSize(); size != DefaultBufferSize || def.Mode() != ModeSPSC || def.Type() != TypeMulti {
		t.Errorf("defaults %d %v %v", size, def.Mode(), def.Type())
	}
	comp, err := NewChannelBuilder(uniq(t, "memory")).Compression(CompressionConfig{Type: CompressionNone}).Build()
	if err != nil {
		t.Fatal(err)
	}
	comp.Close()
	_, err = NewChannelBuilder("memory://x").BufferSize(-5).Build()
	mustIs(t, err, ErrInvalidArgument)
}

func TestIPC(t *testing.T) {
	a, b := twoHandles(t, "ipc", 1<<16, ModeSPSC)
	m, err := a.ReserveMessage(3)
	if err != nil {
		t.Fatal(err)
	}
	copy(m.Data(), "ipc")
	if err := m.Send(6); err != nil {
		t.Fatal(err)
	}
	got, typ, err := b.ReceiveData(16, long)
	if err != nil || string(got) != "ipc" || typ != 6 {
		t.Fatalf("ipc round trip: %q %d %v", got, typ, err)
	}
}

func TestCleanupClosesForgottenChannel(t *testing.T) {
	uri := uniq(t, "memory")
	func() {
		ch, err := NewChannel(uri, 1024, ModeSPSC, TypeMulti)
		if err != nil {
			t.Fatal(err)
		}
		ch.SendData([]byte("forgotten"), 1)
	}()
	// Once the cleanup has closed the only handle, the ring is gone and
	// attaching to it fails.
	eventually(t, "forgotten channel released", func() bool {
		runtime.GC()
		ch, err := NewChannel(uri, 0, ModeSPSC, TypeMulti)
		if err == nil {
			ch.Close()
			return false
		}
		return errors.Is(err, ErrInvalidArgument)
	})
}

func TestNilChannel(t *testing.T) {
	var c *Channel
	mustIs(t, c.SendData(nil, 0), ErrInvalidArgument)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	var z Channel
	_, _, err := z.ReceiveData(1, 0)
	mustIs(t, err, ErrInvalidArgument)
	if z.URI() != "" {
		t.Error("zero Channel has a URI")
	}
}

// A 1 TiB ring (libpsyne's maximum) cannot be allocated here unless the
// kernel overcommits without limit.
func TestOutOfMemory(t *testing.T) {
	ch, err := NewChannel(uniq(t, "memory"), 1<<40, ModeSPSC, TypeMulti)
	if err == nil {
		ch.Close()
		t.Skip("the kernel let a 1 TiB ring be allocated (overcommit); ErrOutOfMemory not provoked")
	}
	mustIs(t, err, ErrOutOfMemory)
	t.Log(err)
}

// spin=0 makes waiting calls sleep at once; they are woken all the same.
func TestSpinOption(t *testing.T) {
	for _, q := range []string{"?spin=0", "?spin=500"} {
		ch, err := NewChannel(uniq(t, "memory")+q, 1024, ModeSPSC, TypeMulti)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			time.Sleep(5 * time.Millisecond)
			ch.SendData([]byte("late"), 9)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		data, typ, err := ch.ReceiveContext(ctx, 64)
		cancel()
		if err != nil || string(data) != "late" || typ != 9 {
			t.Fatalf("%s: ReceiveContext = %q, %d, %v", q, data, typ, err)
		}
		ch.Close()
	}
}

// A ...Context call with a context that can end arms its wait (a pooled
// canceler, context.AfterFunc, the channel's waiter set) only when its
// first attempt finds the ring full or empty: one that goes through at
// once allocates nothing.
func TestChannelContextCallsAllocateOnlyToWait(t *testing.T) {
	ch := openMem(t, 1<<16, ModeSPSC, TypeMulti)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	payload := make([]byte, 64)
	buf := make([]byte, 64)
	var err error
	n := testing.AllocsPerRun(200, func() {
		if e := ch.SendContext(ctx, payload, 1); e != nil {
			err = e
		}
		if _, _, e := ch.ReceiveInto(buf, 0); e != nil {
			err = e
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("SendContext with a cancellable context: %v allocations per message", n)
	}
	// ReceiveContext allocates the message it returns, and nothing else.
	n = testing.AllocsPerRun(200, func() {
		if e := ch.SendData(payload, 1); e != nil {
			err = e
		}
		if _, _, e := ch.ReceiveContext(ctx, 64); e != nil {
			err = e
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if n > 1 {
		t.Errorf("ReceiveContext with a cancellable context: %v allocations per message", n)
	}
	// The wait armed after a first attempt still ends with the context.
	wctx, wcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer wcancel()
	_, _, err = ch.ReceiveContext(wctx, 64)
	mustIs(t, err, context.DeadlineExceeded)
	cctx, ccancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, ccancel)
	_, err = ch.ReceiveViewContext(cctx)
	mustIs(t, err, context.Canceled)
}
