package procstat

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    uint64
		wantErr bool
	}{
		{
			name: "plain",
			in:   "1234 (mosquitto) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 31 0 0 20 0 1 0 100 5000000 300",
			want: 281,
		},
		{
			name: "name with spaces and parentheses",
			in:   "99 (a) b (c)) R 1 99 99 0 -1 0 0 0 0 0 7 8 0 0 20 0 1 0 1 1 1",
			want: 15,
		},
		{name: "no name", in: "1 mosquitto S 1", wantErr: true},
		{name: "too few fields", in: "1 (x) S 1 2 3", wantErr: true},
		{name: "not a number", in: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 u 8 0", wantErr: true},
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
				t.Fatalf("got %d, want %d", got, tt.want)
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

// The live files of this very process parse, and CPU time only goes up.
func TestSelf(t *testing.T) {
	pid := os.Getpid()
	before, err := CPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	after, err := CPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	if after < before {
		t.Fatalf("CPU went down: %v then %v", before, after)
	}
	rss, err := RSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 0 {
		t.Fatalf("RSS = %d", rss)
	}
	if _, err := CPU(-1); err == nil {
		t.Fatal("CPU of pid -1: no error")
	}
}
