//go:build unix

package osproc

import (
	"errors"
	"syscall"
)

// Alive reports whether a process with pid exists, ours or another
// user's.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Terminate asks the process to stop (SIGTERM), or returns ErrNotRunning.
func Terminate(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGTERM); errors.Is(err, syscall.ESRCH) {
		return ErrNotRunning
	} else if err != nil {
		return err
	}
	return nil
}
