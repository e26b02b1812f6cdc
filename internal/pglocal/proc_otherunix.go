//go:build unix && !linux

package pglocal

import "syscall"

// diesWithParent does nothing: only Linux can tie a child's life to its
// parent's (Pdeathsig). A killed parent leaves the server running; the
// next Start on its folder finds it live (ErrDataDirInUse).
func diesWithParent(*syscall.SysProcAttr) {}
