package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
)

func scanAll(t *testing.T, q Queue) []Record {
	t.Helper()
	var out []Record
	if err := q.Scan(func(r Record) error {
		out = append(out, Record{Seq: r.Seq, Data: append([]byte(nil), r.Data...)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLog checks commit, delete, scan order, and that records and sequence
// numbers survive a reopen.
func TestLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "q.db")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	first := l.Reserve(3)
	if first != 1 {
		t.Fatalf("first seq %d, want 1", first)
	}
	put := []Record{{first, []byte("a")}, {first + 1, []byte("b")}, {first + 2, []byte("c")}}
	if err := l.Commit(put, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(nil, []uint64{first + 1}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(scanAll(t, l)); got != "[{1 [97]} {3 [99]}]" {
		t.Fatalf("records %s", got)
	}
	// A second open of the same file is refused while it is held.
	if _, err := Open(path, Options{LockTimeout: 50e6}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := fmt.Sprint(scanAll(t, l)); got != "[{1 [97]} {3 [99]}]" {
		t.Fatalf("records after reopen %s", got)
	}
	// Numbers keep growing after a restart, even once every record is gone.
	if err := l.Commit(nil, []uint64{1, 3}); err != nil {
		t.Fatal(err)
	}
	if n := l.Reserve(1); n != 4 {
		t.Fatalf("seq after reopen %d, want 4", n)
	}
	if err := l.Commit([]Record{{4, []byte("d")}}, nil); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if n := l2.Reserve(1); n != 5 {
		t.Fatalf("seq %d, want 5", n)
	}
}

// BenchmarkCommit measures group commit: one fsync per batch of 100.
func BenchmarkCommit(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "q.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	data := make([]byte, 256)
	recs := make([]Record, 100)
	b.ResetTimer()
	for range b.N {
		s := l.Reserve(len(recs))
		for i := range recs {
			recs[i] = Record{Seq: s + uint64(i), Data: data}
		}
		if err := l.Commit(recs, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}
