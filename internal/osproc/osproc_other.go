//go:build !unix

package osproc

import "os"

// Alive reports whether a process with pid exists.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid) // opens the process: fails if there is none
	if err != nil {
		return false
	}
	_ = p.Release() // only a handle; nothing to report
	return true
}

// Terminate would ask the process to stop; without signals it cannot
// (a kill loses what a graceful stop would finish), so it refuses.
func Terminate(pid int) error { return ErrUnsupported }
