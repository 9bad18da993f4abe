//go:build !unix

package main

import (
	"errors"
	"time"
)

// processCPU is not measured here; the report then shows no CPU per operation.
func processCPU() (time.Duration, error) {
	return 0, errors.New("CPU time is measured on unix only")
}
