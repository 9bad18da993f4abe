//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFileName is the file whose lock marks a data folder as in use.
const lockFileName = "dev.lock"

// lockDataDir takes an exclusive lock on the data folder, so two dev stacks never write one SQLite file. The
// lock is the kernel's: it goes when the process does, however it ends.
func lockDataDir(dir string) (unlock func() error, err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data folder lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close() // the error below says why
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data folder %s is in use by another `go run ./dev`: stop that one, or give -data another folder", dir)
		}
		return nil, fmt.Errorf("data folder lock: %w", err)
	}
	return f.Close, nil // closing the file releases the lock
}
