//go:build linux

package main

import (
	"os"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// A command name with a space and a parenthesis: fields are counted after the last ')'.
	line := "4242 (dev (node) 1) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12 0 100 1000 10 18446744073709551615\n"
	got, err := parseProcStat(line)
	if err != nil || got != 3250*time.Millisecond {
		t.Fatalf("parseProcStat = %v, %v; want 3.25s (250 + 75 ticks of 10ms)", got, err)
	}
	for _, bad := range []string{"", "4242 comm S 1", "4242 (x) S 1 2 3", "4242 (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 x 75 0"} {
		if _, err := parseProcStat(bad); err == nil {
			t.Errorf("parseProcStat(%q) accepted", bad)
		}
	}
}

// otherProcessCPU of this very process agrees with getrusage within a few ticks.
func TestOtherProcessCPUOfSelf(t *testing.T) {
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	} // spend some CPU
	self, err := processCPU()
	if err != nil {
		t.Fatal(err)
	}
	got, err := otherProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := self - got; d < -50*time.Millisecond || d > 50*time.Millisecond {
		t.Fatalf("/proc says %v, getrusage %v", got, self)
	}
	if _, err := otherProcessCPU(1 << 30); err == nil {
		t.Fatal("a process that does not exist was read")
	}
}
