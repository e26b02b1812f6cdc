//go:build unix

package osproc

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// A live process is alive and stops on Terminate; one that has exited
// (and been reaped) is not running.
func TestAliveAndTerminate(t *testing.T) {
	if !Alive(os.Getpid()) {
		t.Error("this process is not alive")
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if !Alive(pid) {
		t.Error("a sleeping child is not alive")
	}
	if err := Terminate(pid); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Fatalf("the child ended with %v, want SIGTERM", err)
	}
	if Alive(pid) {
		t.Error("a reaped child is alive")
	}
	if err := Terminate(pid); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Terminate on a reaped child: %v, want ErrNotRunning", err)
	}
	if Alive(0) || Alive(-1) {
		t.Error("pid 0 or -1 is alive")
	}
}
