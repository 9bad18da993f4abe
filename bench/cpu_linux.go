//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of /proc's CPU times: USER_HZ, 100 on every Linux (the kernel's ABI, whatever its CONFIG_HZ).
const userHZ = 100

// procStat is what CPU accounting needs of one /proc/pid/stat line.
type procStat struct {
	ppid   int
	self   time.Duration // utime + stime
	reaped time.Duration // cutime + cstime: children that exited and were waited for
}

// otherProcessCPU is the CPU time (user and system) process pid and its descendants have used so far: their
// own, and that of their children already gone. A PostgreSQL server is its postmaster's tree; a backend that
// exits moves its time into the postmaster's reaped share, so the sum stays whole.
func otherProcessCPU(pid int) (time.Duration, error) {
	root, err := readProcStat(pid)
	if err != nil {
		return 0, fmt.Errorf("CPU time of process %d: %w", pid, err)
	}
	all := map[int]procStat{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		p, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if st, err := readProcStat(p); err == nil { // gone since the listing: its time is in its parent's reaped
			all[p] = st
		}
	}
	children := map[int][]int{}
	for p, st := range all {
		children[st.ppid] = append(children[st.ppid], p)
	}
	total := root.self + root.reaped
	for queue := children[pid]; len(queue) > 0; queue = queue[1:] {
		st := all[queue[0]]
		total += st.self + st.reaped
		queue = append(queue, children[queue[0]]...)
	}
	return total, nil
}

func readProcStat(pid int) (procStat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(string(data))
}

// parseProcStat reads ppid (field 4) and utime, stime, cutime, cstime (fields 14 to 17) from a /proc/pid/stat
// line. The command name (field 2) is in parentheses and may hold spaces or parentheses itself, so the fields are
// counted after its last ')'.
func parseProcStat(line string) (procStat, error) {
	end := strings.LastIndexByte(line, ')')
	if end < 0 {
		return procStat{}, fmt.Errorf("/proc stat %.40q: no command name", line)
	}
	fields := strings.Fields(line[end+1:]) // fields[0] is field 3 (state)
	if len(fields) < 15 {
		return procStat{}, fmt.Errorf("/proc stat %.40q: %d fields after the command name, want at least 15", line, len(fields))
	}
	var n [5]int64 // ppid, utime, stime, cutime, cstime
	for i, f := range []string{fields[1], fields[11], fields[12], fields[13], fields[14]} {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil || v < 0 {
			return procStat{}, fmt.Errorf("/proc stat: field %q is not a count", f)
		}
		n[i] = v
	}
	tick := time.Second / userHZ
	return procStat{ppid: int(n[0]), self: time.Duration(n[1]+n[2]) * tick, reaped: time.Duration(n[3]+n[4]) * tick}, nil
}
