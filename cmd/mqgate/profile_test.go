package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// profiling reports whether a CPU profile is being written: StartCPUProfile
// fails while one is.
func profiling() bool {
	if err := pprof.StartCPUProfile(io.Discard); err != nil {
		return true
	}
	pprof.StopCPUProfile()
	return false
}

// TestCPUProfileAfter checks -cpuprofile-after: the profile starts once the
// delay is up and is written out when stopped; stopped before the delay,
// it never starts and leaves the file empty.
func TestCPUProfileAfter(t *testing.T) {
	dir := t.TempDir()

	early := filepath.Join(dir, "early.prof")
	var errb bytes.Buffer
	stop, err := startCPUProfile(early, time.Hour, &errb)
	if err != nil {
		t.Fatal(err)
	}
	if profiling() {
		t.Fatal("profile started before its delay")
	}
	stop()
	if b, err := os.ReadFile(early); err != nil || len(b) != 0 {
		t.Fatalf("profile stopped before its delay: %d bytes, %v", len(b), err)
	}

	late := filepath.Join(dir, "late.prof")
	stop, err = startCPUProfile(late, 10*time.Millisecond, &errb)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !profiling(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			stop()
			t.Fatal("profile not started 10 s after a delay of 10 ms")
		}
	}
	stop()
	if profiling() {
		t.Fatal("profile still running after stop")
	}
	// A profile is gzip-compressed protobuf: it starts with the gzip magic.
	if b, err := os.ReadFile(late); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("CPU profile: %d bytes, %v", len(b), err)
	}
	if errb.Len() > 0 {
		t.Fatalf("stderr: %s", errb.String())
	}
}

func TestCPUProfileAfterNegative(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"serve", "-cpuprofile", filepath.Join(t.TempDir(), "p"), "-cpuprofile-after", "-1s"}, nil, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "-cpuprofile-after -1s: negative") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}
