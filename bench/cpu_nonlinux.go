//go:build !linux

package main

import (
	"errors"
	"time"
)

// otherProcessCPU is read from /proc, on Linux only.
func otherProcessCPU(int) (time.Duration, error) {
	return 0, errors.New("another process's CPU time is measured on Linux only (-server-pids)")
}
