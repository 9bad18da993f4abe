//go:build !linux

package main

import "syscall"

// procAttr puts each child in its own process group, so a Ctrl-C meant for the suite reaches the suite alone.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
