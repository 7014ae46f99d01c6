// Package procstat reads another process's CPU time, page faults and
// resident memory from Linux's /proc, so that a benchmark can charge a
// broker for the work it did.
package procstat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// ClockTick is the unit of the CPU times in /proc/PID/stat: sysconf(_SC_CLK_TCK),
// which is 100 on every Linux architecture Go supports (USER_HZ is fixed by the
// kernel ABI), so it is a constant here rather than a cgo call.
const ClockTick = 100

// ErrFormat reports a /proc file whose contents are not as expected.
var ErrFormat = errors.New("procstat: unexpected format")

// Usage is what a process has used since it started.
type Usage struct {
	CPU time.Duration // user plus system time
	// MinorFaults counts the page faults served without I/O: mostly the
	// first touch of each new page of memory. On a virtual machine one can
	// cost several microseconds, so a process still growing its heap pays
	// for it in CPU time.
	MinorFaults uint64
}

// Read reports the CPU time and page faults of process pid.
func Read(pid int) (Usage, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Usage{}, fmt.Errorf("procstat: %w", err)
	}
	ticks, minflt, err := parseStat(b)
	if err != nil {
		return Usage{}, err
	}
	return Usage{CPU: time.Duration(ticks) * (time.Second / ClockTick), MinorFaults: minflt}, nil
}

// RSS reports the resident set size of process pid in bytes (VmRSS).
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("procstat: %w", err)
	}
	return parseStatus(b)
}

// parseStat returns utime+stime in clock ticks and the minor fault count
// from the contents of /proc/PID/stat. The command name (field 2) is in
// parentheses and may itself hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStat(b []byte) (ticks, minflt uint64, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("stat without command name: %w", ErrFormat)
	}
	// After ')' come field 3 (state) onwards; minflt is field 10, utime
	// and stime are fields 14 and 15: the 8th, 12th and 13th after the name.
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("stat has %d fields after the name: %w", len(f), ErrFormat)
	}
	var n [3]uint64
	for k, field := range []struct {
		at   int
		name string
	}{{7, "minflt"}, {11, "utime"}, {12, "stime"}} {
		if n[k], err = strconv.ParseUint(string(f[field.at]), 10, 64); err != nil {
			return 0, 0, fmt.Errorf("stat %s %q: %w", field.name, f[field.at], ErrFormat)
		}
	}
	return n[1] + n[2], n[0], nil
}

// parseStatus returns VmRSS in bytes from the contents of /proc/PID/status,
// where it is given as "VmRSS:    1234 kB".
func parseStatus(b []byte) (int64, error) {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("VmRSS line %q: %w", bytes.TrimSpace(line), ErrFormat)
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS value %q: %w", f[0], ErrFormat)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no VmRSS line: %w", ErrFormat)
}
