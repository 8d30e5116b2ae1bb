package psyne

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"testing"
)

// TestHelperProcessCreatesIPC is not a test: run by TestAttachAdoptsAnotherProcessesConfiguration
// in a child process, it creates an ipc:// channel and keeps it until its
// standard input closes.
func TestHelperProcessCreatesIPC(t *testing.T) {
	uri := os.Getenv("PSYNE_GO_HELPER_URI")
	if uri == "" {
		t.Skip("helper process only")
	}
	ch, err := NewChannel(uri, 4096, ModeMPMC, TypeSingle)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	os.Stdout.WriteString("READY\n")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// A handle that attaches with size 0 to a ring this process never opened
// reports the ring's real mode and type (libpsyne's getters), not a guess.
func TestAttachAdoptsAnotherProcessesConfiguration(t *testing.T) {
	uri := uniq(t, "ipc")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessCreatesIPC$")
	cmd.Env = append(os.Environ(), "PSYNE_GO_HELPER_URI="+uri)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "READY\n" {
		t.Fatalf("helper: %q %v", line, err)
	}
	ch, err := NewChannel(uri, 0, ModeSPSC, TypeMulti)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if ch.Mode() != ModeMPMC || ch.Type() != TypeSingle {
		t.Errorf("attached: mode %v type %v, want MPMC/Single", ch.Mode(), ch.Type())
	}
	if err := ch.SendData([]byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	// SINGLE: a non-zero type is refused by libpsyne whatever the guess.
	mustIs(t, ch.SendData([]byte("x"), 3), ErrInvalidArgument)
}
