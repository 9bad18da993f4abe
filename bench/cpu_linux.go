//go:build linux

package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of /proc's CPU times: USER_HZ, 100 on every Linux (the kernel's ABI, whatever its CONFIG_HZ).
const userHZ = 100

// otherProcessCPU is the CPU time (user and system) process pid has used so far, from /proc/pid/stat.
func otherProcessCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("CPU time of process %d: %w", pid, err)
	}
	return parseProcStat(string(data))
}

// parseProcStat reads utime and stime (fields 14 and 15) from a /proc/pid/stat line. The command name (field 2)
// is in parentheses and may hold spaces or parentheses itself, so the fields are counted after its last ')'.
func parseProcStat(line string) (time.Duration, error) {
	end := strings.LastIndexByte(line, ')')
	if end < 0 {
		return 0, fmt.Errorf("/proc stat %.40q: no command name", line)
	}
	fields := strings.Fields(line[end+1:]) // fields[0] is field 3 (state)
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc stat %.40q: %d fields after the command name, want at least 13", line, len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("/proc stat: CPU time %q is not a count of ticks", f)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}
