//go:build !unix

package pglocal

import (
	"os"
	"syscall"
)

// Without Unix accounts, process groups and signals, PostgreSQL runs as
// ourselves (credential is nil: os.Geteuid is -1), and Stop kills it.

func childAttr(*account) *syscall.SysProcAttr  { return nil }
func serverAttr(*account) *syscall.SysProcAttr { return nil }
func stopServer(p *os.Process, _ bool) error   { return p.Kill() }
func reachable(string, *account) error         { return nil }
