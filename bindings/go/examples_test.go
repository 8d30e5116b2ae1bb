package psyne

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestExamples builds every program in examples/ and runs it (the ipc one
// as two processes, the network one on a free port). -short skips it.
func TestExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the examples; skipped with -short")
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			t.Skip("no go command to build the examples with")
		}
	}
	bin := t.TempDir()
	build := exec.Command(goBin, "build", "-o", bin+string(os.PathSeparator), "./examples/...")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/...: %v\n%s", err, out)
	}
	want := map[string]string{
		"quickstart":  `received "hello, psyne" (type 1)`,
		"builder":     "too big is ErrInvalidArgument: true",
		"mpsc":        "received 80000 messages from 8 goroutines",
		"context":     "SendContext after room appeared: true",
		"zerocopy":    "read 4096 bytes of type 7 in place",
		"sides":       "received 10000 of 10000 frames in order, 40960000 bytes, zero-copy",
		"compression": "memory: 1 of 2 messages compressed, intact: true",
	}
	for name, text := range want {
		t.Run(name, func(t *testing.T) {
			out, err := run(t, filepath.Join(bin, name))
			if err != nil {
				t.Fatalf("%s: %v\n%s", name, err, out)
			}
			if !strings.Contains(out, text) {
				t.Fatalf("%s printed:\n%s\nwant it to contain %q", name, out, text)
			}
			if name == "compression" && !strings.Contains(out, "tcp: LZ4 frames: 1, type 3, intact: true") {
				t.Fatalf("compression example:\n%s", out)
			}
			if name == "context" && strings.Contains(out, "false") {
				t.Fatalf("context example:\n%s", out)
			}
		})
	}
	for _, scheme := range []string{"tcp", "ws"} {
		t.Run("network-"+scheme, func(t *testing.T) {
			// On a port that was free a moment ago (another one if it was
			// taken meanwhile), not the default 8080.
			for attempt := 0; ; attempt++ {
				probe, err := net.Listen("tcp", ":0")
				if err != nil {
					t.Fatal(err)
				}
				port := strconv.Itoa(probe.Addr().(*net.TCPAddr).Port)
				probe.Close()
				args := []string{"-port", port}
				if scheme == "ws" {
					args = append(args, "-ws")
				}
				out, err := run(t, filepath.Join(bin, "network"), args...)
				if err != nil && attempt < 3 && strings.Contains(out, "cannot listen") {
					continue
				}
				if err != nil {
					t.Fatalf("network %v: %v\n%s", args, err, out)
				}
				for _, text := range []string{`echo: "hello" (type 1)`, fmt.Sprintf(`echo: %q (type 3)`, scheme),
					"client: 3 messages sent, 3 received, 1 connection(s)"} {
					if !strings.Contains(out, text) {
						t.Fatalf("network printed:\n%s\nwant it to contain %q", out, text)
					}
				}
				return
			}
		})
	}
	t.Run("ipc", func(t *testing.T) {
		exe := filepath.Join(bin, "ipc")
		name := fmt.Sprintf("psyne-go-example-test-%d", os.Getpid()) // runs in parallel do not meet
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var cout, pout bytes.Buffer
		consumer := exec.CommandContext(ctx, exe, "-role", "consumer", "-name", name)
		consumer.Stdout, consumer.Stderr = &cout, &cout
		if err := consumer.Start(); err != nil {
			t.Fatal(err)
		}
		producer := exec.CommandContext(ctx, exe, "-role", "producer", "-name", name)
		producer.Stdout, producer.Stderr = &pout, &pout
		perr := producer.Run()
		cerr := consumer.Wait()
		if perr != nil || cerr != nil {
			t.Fatalf("producer: %v\n%s\nconsumer: %v\n%s", perr, pout.String(), cerr, cout.String())
		}
		if !strings.Contains(cout.String(), "received 1000 messages in order") ||
			!strings.Contains(pout.String(), "sent 1000 messages") {
			t.Fatalf("producer:\n%s\nconsumer:\n%s", pout.String(), cout.String())
		}
		// The one-command form starts the consumer process itself.
		out, err := run(t, exe, "-name", name+"-both")
		if err != nil || !strings.Contains(out, "received 1000 messages in order") {
			t.Fatalf("ipc (both roles): %v\n%s", err, out)
		}
	})
}

func run(t *testing.T, exe string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, exe, args...).CombinedOutput()
	return string(out), err
}
