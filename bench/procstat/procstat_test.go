package procstat

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    stat
		wantErr bool
	}{
		{
			name: "plain",
			in:   "1234 (mosquitto) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 31 0 0 20 0 1 0 100 5000000 300",
			want: stat{minflt: 500, utime: 250, stime: 31},
		},
		{
			name: "name with spaces and parentheses",
			in:   "99 (a) b (c)) R 1 99 99 0 -1 0 42 0 0 0 7 8 0 0 20 0 1 0 1 1 1",
			want: stat{minflt: 42, utime: 7, stime: 8},
		},
		{name: "no name", in: "1 mosquitto S 1", wantErr: true},
		{name: "too few fields", in: "1 (x) S 1 2 3", wantErr: true},
		{name: "not a number", in: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 u 8 0", wantErr: true},
		{name: "minflt not a number", in: "1 (x) S 1 1 1 0 -1 0 m 0 0 0 7 8 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrFormat) {
				t.Fatalf("err = %v, want ErrFormat", err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{name: "rss", in: "Name:\tmqgate\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t4\n", want: 1234 << 10},
		{name: "last line without newline", in: "Name:\tx\nVmRSS:\t5 kB", want: 5 << 10},
		{name: "missing", in: "Name:\tkthread\nThreads:\t1\n", wantErr: true},
		{name: "bad unit", in: "VmRSS:\t5 MB\n", wantErr: true},
		{name: "bad number", in: "VmRSS:\tfive kB\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatus([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParseCounts(t *testing.T) {
	io := "rchar: 6976\nwchar: 0\nsyscr: 10\nsyscw: 3\nread_bytes: 0\n"
	tests := []struct {
		name    string
		in      string
		names   []string
		want    []uint64
		wantErr bool
	}{
		{name: "io", in: io, names: []string{"syscr", "syscw"}, want: []uint64{10, 3}},
		{name: "order of names", in: io, names: []string{"syscw", "syscr"}, want: []uint64{3, 10}},
		{
			name:  "status",
			in:    "Name:\tmqgate\nvoluntary_ctxt_switches:\t85978\nnonvoluntary_ctxt_switches:\t6640",
			names: []string{"voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"},
			want:  []uint64{85978, 6640},
		},
		{name: "one missing", in: "syscr: 10\n", names: []string{"syscr", "syscw"}, wantErr: true},
		{name: "a prefix is not the name", in: "xsyscr: 1\nsyscw: 2\n", names: []string{"syscr", "syscw"}, wantErr: true},
		{name: "not a number", in: "syscr: ten\nsyscw: 2\n", names: []string{"syscr", "syscw"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCounts([]byte(tt.in), "test", tt.names...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrFormat) {
				t.Fatalf("err = %v, want ErrFormat", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// System calls and a sleep of this very process are counted.
func TestActivitySelf(t *testing.T) {
	pid := os.Getpid()
	before, err := ReadActivity(pid)
	if err != nil {
		t.Fatal(err)
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	const calls = 50
	var b [1]byte
	for range calls {
		if _, err := syscall.Read(int(null.Fd()), b[:]); err != nil {
			t.Fatal(err)
		}
		if _, err := syscall.Write(int(null.Fd()), b[:]); err != nil {
			t.Fatal(err)
		}
	}
	// A thread that sleeps in the kernel gives up its core: one
	// voluntary switch per sleep at least.
	const sleeps = 5
	for range sleeps {
		ts := syscall.NsecToTimespec(int64(time.Millisecond))
		if err := syscall.Nanosleep(&ts, nil); err != nil {
			t.Fatal(err)
		}
	}
	after, err := ReadActivity(pid)
	if err != nil {
		t.Fatal(err)
	}
	if after.ReadCalls < before.ReadCalls+calls {
		t.Errorf("read calls %d then %d after %d reads", before.ReadCalls, after.ReadCalls, calls)
	}
	if after.WriteCalls < before.WriteCalls+calls {
		t.Errorf("write calls %d then %d after %d writes", before.WriteCalls, after.WriteCalls, calls)
	}
	if after.Switches < before.Switches+sleeps {
		t.Errorf("voluntary switches %d then %d after %d sleeps", before.Switches, after.Switches, sleeps)
	}
	// A Go process has threads besides its main one: the first is the
	// runtime's monitor, which has run since the process started.
	if after.FirstThread <= pid || after.FirstThread != before.FirstThread {
		t.Errorf("first thread %d then %d of process %d", before.FirstThread, after.FirstThread, pid)
	}
	if before.FirstThreadCPU <= 0 || after.FirstThreadCPU < before.FirstThreadCPU {
		t.Errorf("first thread's CPU %v then %v", before.FirstThreadCPU, after.FirstThreadCPU)
	}
	if _, err := ReadActivity(-1); err == nil {
		t.Fatal("ReadActivity of pid -1: no error")
	}
}

// A process of one thread has no first thread after its main one.
func TestActivityOneThread(t *testing.T) {
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	a, err := ReadActivity(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if a.FirstThread != 0 || a.FirstThreadCPU != 0 {
		t.Fatalf("first thread %d, CPU %v of a process of one thread", a.FirstThread, a.FirstThreadCPU)
	}
}

func TestParseSchedstat(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"2349815 1284 17\n", 2349815 * time.Nanosecond, false},
		{"0 0 0", 0, false},
		{"2349815 1284\n", 0, true},
		{"x 1284 17\n", 0, true},
		{"-5 1284 17\n", 0, true},
		{"", 0, true},
	} {
		got, err := parseSchedstat([]byte(tt.in))
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseSchedstat(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
		if err != nil && !errors.Is(err, ErrFormat) {
			t.Errorf("parseSchedstat(%q): %v, want ErrFormat", tt.in, err)
		}
	}
}

// The live files of this very process parse, CPU time only goes up, and
// touching fresh pages counts a minor fault each.
func TestSelf(t *testing.T) {
	pid := os.Getpid()
	before, err := Read(pid)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	const pages = 256
	size := pages * os.Getpagesize()
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Munmap(mem) }()
	// One fault per page only if no huge page serves the range: where
	// transparent huge pages are "always", the mapping could otherwise be
	// merged into a neighbour big enough for one.
	if err := syscall.Madvise(mem, syscall.MADV_NOHUGEPAGE); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < size; i += os.Getpagesize() {
		mem[i] = 1
	}
	after, err := Read(pid)
	if err != nil {
		t.Fatal(err)
	}
	if after.CPU < before.CPU {
		t.Fatalf("CPU went down: %v then %v", before.CPU, after.CPU)
	}
	if after.MinorFaults < before.MinorFaults+pages {
		t.Fatalf("minor faults %d then %d after touching %d fresh pages", before.MinorFaults, after.MinorFaults, pages)
	}
	rss, err := RSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 0 {
		t.Fatalf("RSS = %d", rss)
	}
	if _, err := Read(-1); err == nil {
		t.Fatal("Read of pid -1: no error")
	}
}
