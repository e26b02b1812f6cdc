package pglocal

import "syscall"

// diesWithParent has the kernel send the server SIGQUIT (immediate
// shutdown) when we die: no server outlives a killed test binary.
func diesWithParent(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGQUIT }
