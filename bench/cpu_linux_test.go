//go:build linux

package main

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// A command name with a space and a parenthesis: fields are counted after the last ')'.
	line := "4242 (dev (node) 1) S 7 4242 4242 0 -1 4194560 100 0 0 0 250 75 30 5 20 0 12 0 100 1000 10 18446744073709551615\n"
	got, err := parseProcStat(line)
	want := procStat{ppid: 7, self: 3250 * time.Millisecond, reaped: 350 * time.Millisecond}
	if err != nil || got != want {
		t.Fatalf("parseProcStat = %+v, %v; want %+v", got, err, want)
	}
	for _, bad := range []string{"", "4242 comm S 1", "4242 (x) S 1 2 3", "4242 (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 x 75 0 0"} {
		if _, err := parseProcStat(bad); err == nil {
			t.Errorf("parseProcStat(%q) accepted", bad)
		}
	}
}

// otherProcessCPU of this very process agrees with getrusage, and counts a child's time once it has run.
func TestOtherProcessCPUOfSelfAndChildren(t *testing.T) {
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	} // spend some CPU
	self, err := processCPU()
	if err != nil {
		t.Fatal(err)
	}
	before, err := otherProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := self - before; d < -50*time.Millisecond || d > 50*time.Millisecond {
		t.Fatalf("/proc says %v, getrusage %v", before, self)
	}
	// A child that burns about 0.3 s of CPU, then is waited for: its time moves into this process's reaped share.
	if err := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done").Run(); err != nil {
		t.Fatal(err)
	}
	after, err := otherProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 100*time.Millisecond {
		t.Fatalf("a child's CPU time was not counted: %v before, %v after", before, after)
	}
	if _, err := otherProcessCPU(1 << 30); err == nil {
		t.Fatal("a process that does not exist was read")
	}
}
