// Package procstat reads another process's CPU time, page faults, system
// calls, context switches and resident memory from Linux's /proc, so that
// a benchmark can charge a broker for the work it did.
package procstat

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"syscall"
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
	// User is the time in the process's own code, System the time in
	// the kernel on its behalf (its system calls and page faults). Their
	// sum is the kernel's exact run time; the split between them is what
	// the kernel saw at its timer ticks, a sample: compare the medians of
	// several runs, not two runs.
	User, System time.Duration
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
	t, err := parseStat(b)
	if err != nil {
		return Usage{}, err
	}
	const tick = time.Second / ClockTick
	return Usage{
		CPU:         time.Duration(t.utime+t.stime) * tick,
		User:        time.Duration(t.utime) * tick,
		System:      time.Duration(t.stime) * tick,
		MinorFaults: t.minflt,
	}, nil
}

// Activity counts what a process has asked of the kernel since it started.
// Two brokers that used the same CPU for the same messages may differ here:
// one made more system calls (fewer messages per read or write), or was
// switched off its core more often.
type Activity struct {
	// ReadCalls and WriteCalls count the read and write system calls and
	// their vector and positional forms, on files and sockets alike
	// (syscr and syscw of /proc/PID/io).
	ReadCalls, WriteCalls uint64
	// Switches counts the times one of the process's threads gave up
	// its core to wait (voluntary context switches), Preemptions the
	// times the kernel took the core from it (involuntary). Both are
	// summed over the threads alive now: a thread that has ended takes
	// its counts with it.
	Switches, Preemptions uint64
	// FirstThread is the process's first thread after its main one (the
	// lowest thread id above the process id; 0 when it has no other
	// thread), and FirstThreadCPU the time it has run (its schedstat, in
	// nanoseconds). In a Go program that thread is the runtime's monitor
	// (sysmon), the first one the runtime starts: Go's CPU profiler does
	// not sample it, so a profile's shares leave its CPU out, though
	// the process's CPU time holds it.
	FirstThread    int
	FirstThreadCPU time.Duration
}

// ReadActivity reports the system calls and context switches of process
// pid.
func ReadActivity(pid int) (Activity, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return Activity{}, fmt.Errorf("procstat: %w", err)
	}
	calls, err := parseCounts(b, "io", "syscr", "syscw")
	if err != nil {
		return Activity{}, err
	}
	a := Activity{ReadCalls: calls[0], WriteCalls: calls[1]}
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return Activity{}, fmt.Errorf("procstat: %w", err)
	}
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil && tid > pid && (a.FirstThread == 0 || tid < a.FirstThread) {
			a.FirstThread = tid
		}
		b, err := os.ReadFile(dir + "/" + t.Name() + "/status")
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			continue // the thread ended after the listing
		}
		if err != nil {
			return Activity{}, fmt.Errorf("procstat: %w", err)
		}
		switches, err := parseCounts(b, "task "+t.Name()+" status", "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")
		if err != nil {
			return Activity{}, err
		}
		a.Switches += switches[0]
		a.Preemptions += switches[1]
	}
	if a.FirstThread != 0 {
		b, err := os.ReadFile(fmt.Sprintf("%s/%d/schedstat", dir, a.FirstThread))
		switch {
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH):
			a.FirstThread = 0 // it ended after the listing
		case err != nil:
			return Activity{}, fmt.Errorf("procstat: %w", err)
		default:
			if a.FirstThreadCPU, err = parseSchedstat(b); err != nil {
				return Activity{}, err
			}
		}
	}
	return a, nil
}

// parseSchedstat returns the run time from the contents of
// /proc/PID/task/TID/schedstat: "run_ns wait_ns timeslices".
func parseSchedstat(b []byte) (time.Duration, error) {
	f := bytes.Fields(b)
	if len(f) != 3 {
		return 0, fmt.Errorf("schedstat %q: %w", bytes.TrimSpace(b), ErrFormat)
	}
	ns, err := strconv.ParseUint(string(f[0]), 10, 63)
	if err != nil {
		return 0, fmt.Errorf("schedstat run time %q: %w", f[0], ErrFormat)
	}
	return time.Duration(ns), nil
}

// RSS reports the resident set size of process pid in bytes (VmRSS).
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("procstat: %w", err)
	}
	return parseStatus(b)
}

// stat is what parseStat reads of /proc/PID/stat.
type stat struct {
	minflt, utime, stime uint64 // utime and stime in clock ticks
}

// parseStat returns the minor fault count and the user and system times
// from the contents of /proc/PID/stat. The command name (field 2) is in
// parentheses and may itself hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStat(b []byte) (stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("stat without command name: %w", ErrFormat)
	}
	// After ')' come field 3 (state) onwards; minflt is field 10, utime
	// and stime are fields 14 and 15: the 8th, 12th and 13th after the name.
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return stat{}, fmt.Errorf("stat has %d fields after the name: %w", len(f), ErrFormat)
	}
	var st stat
	for _, field := range []struct {
		at   int
		name string
		to   *uint64
	}{{7, "minflt", &st.minflt}, {11, "utime", &st.utime}, {12, "stime", &st.stime}} {
		v, err := strconv.ParseUint(string(f[field.at]), 10, 64)
		if err != nil {
			return stat{}, fmt.Errorf("stat %s %q: %w", field.name, f[field.at], ErrFormat)
		}
		*field.to = v
	}
	return st, nil
}

// parseCounts returns the values of the lines "name: value" of the named
// counters in b, the contents of a /proc file (file, for errors), in the
// order of names.
func parseCounts(b []byte, file string, names ...string) ([]uint64, error) {
	values := make([]uint64, len(names))
	found := 0
	for line := range bytes.Lines(b) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		i := slices.Index(names, string(name))
		if i < 0 {
			continue
		}
		value = bytes.TrimSpace(value)
		v, err := strconv.ParseUint(string(value), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s %s %q: %w", file, name, value, ErrFormat)
		}
		values[i] = v
		found++
	}
	if found != len(names) {
		return nil, fmt.Errorf("%s: %d of the counters %v: %w", file, found, names, ErrFormat)
	}
	return values, nil
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
