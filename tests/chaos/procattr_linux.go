package main

import "syscall"

// procAttr puts each child in its own process group, so a Ctrl-C meant for the suite reaches the suite alone and
// it stops the children in order, and has the kernel SIGKILL the child if the suite itself dies.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
