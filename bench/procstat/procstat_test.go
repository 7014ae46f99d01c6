package procstat

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    uint64 // ticks
		minflt  uint64
		wantErr bool
	}{
		{
			name:   "plain",
			in:     "1234 (mosquitto) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 31 0 0 20 0 1 0 100 5000000 300",
			want:   281,
			minflt: 500,
		},
		{
			name:   "name with spaces and parentheses",
			in:     "99 (a) b (c)) R 1 99 99 0 -1 0 42 0 0 0 7 8 0 0 20 0 1 0 1 1 1",
			want:   15,
			minflt: 42,
		},
		{name: "no name", in: "1 mosquitto S 1", wantErr: true},
		{name: "too few fields", in: "1 (x) S 1 2 3", wantErr: true},
		{name: "not a number", in: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 u 8 0", wantErr: true},
		{name: "minflt not a number", in: "1 (x) S 1 1 1 0 -1 0 m 0 0 0 7 8 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, minflt, err := parseStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrFormat) {
				t.Fatalf("err = %v, want ErrFormat", err)
			}
			if got != tt.want || minflt != tt.minflt {
				t.Fatalf("got %d ticks, %d faults, want %d, %d", got, minflt, tt.want, tt.minflt)
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
