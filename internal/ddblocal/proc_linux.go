package ddblocal

import "syscall"

// sysProcAttr puts Java in its own process group, so a Ctrl-C meant for the
// command under test does not kill the database out from under it, and asks
// the kernel to kill Java when this process dies without calling Stop (a
// crashed or killed test binary must not leave a JVM behind). Pdeathsig is
// tied to the OS thread that started Java; the Go runtime does not end its
// threads, unless a goroutine exits while locked to one.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
