//go:build !unix

package main

import "os/exec"

// Without process groups only the process itself is ended (the tests that
// fork workers run on Linux).

func inOwnGroup(*exec.Cmd) {}

func killGroup(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
