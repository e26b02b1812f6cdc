//go:build unix

package pglocal

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// childAttr runs initdb as cred (nil: as ourselves).
func childAttr(cred *account) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{}
	if cred != nil {
		attr.Credential = &syscall.Credential{Uid: cred.uid, Gid: cred.gid}
	}
	return attr
}

// serverAttr runs the postmaster as cred in its own process group, so a
// terminal's Ctrl-C reaches us, not the server: we stop it in order.
func serverAttr(cred *account) *syscall.SysProcAttr {
	attr := childAttr(cred)
	attr.Setpgid = true
	diesWithParent(attr)
	return attr
}

// stopServer asks for a fast shutdown (SIGINT: clients disconnected,
// checkpoint written) or an immediate one (SIGQUIT).
func stopServer(p *os.Process, immediate bool) error {
	if immediate {
		return p.Signal(syscall.SIGQUIT)
	}
	return p.Signal(syscall.SIGINT)
}

// reachable checks that the user of cred may pass through dir and every
// folder above it, as PostgreSQL must to reach its data folder.
func reachable(dir string, cred *account) error {
	for d := dir; ; d = filepath.Dir(d) {
		var st syscall.Stat_t
		if err := syscall.Stat(d, &st); err == nil {
			ok := st.Mode&0o001 != 0 ||
				(st.Uid == cred.uid && st.Mode&0o100 != 0) ||
				(st.Gid == cred.gid && st.Mode&0o010 != 0)
			if !ok {
				return fmt.Errorf("pglocal: PostgreSQL runs as the postgres user, which cannot enter %s; "+
					"put the data folder under a path it can reach (e.g. /var/lib/switchboard)", d)
			}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}
