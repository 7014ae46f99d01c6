package wal

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/mqgate/mqgate/store"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// state replays the log in dir into a map.
func openState(t *testing.T, dir string, o Options) (*Log, map[string]string) {
	t.Helper()
	st := map[string]string{}
	l, err := Open(dir, o, func(op Op) error {
		if op.Delete {
			delete(st, op.Key)
		} else {
			st[op.Key] = string(op.Value)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return l, st
}

// writeWait writes ops and waits until they are durable.
func writeWait(t *testing.T, l *Log, ops ...Op) {
	t.Helper()
	done := make(chan struct{})
	if err := l.Write(ops, func() { close(done) }); err != nil {
		t.Fatal(err)
	}
	<-done
}

func TestReopenKeepsLiveRecords(t *testing.T) {
	for _, mode := range []Sync{SyncBatch, SyncAlways} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			dir := t.TempDir()
			l, st := openState(t, dir, Options{Sync: mode})
			if len(st) != 0 {
				t.Fatalf("new log replayed %v", st)
			}
			writeWait(t, l, Op{Key: "a", Value: []byte("1")}, Op{Key: "b", Value: []byte("2")})
			writeWait(t, l, Op{Key: "a", Value: []byte("3")}, Op{Key: "b", Delete: true}, Op{Key: "c", Value: nil})
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if err := l.Put("x", nil); !errors.Is(err, ErrClosed) {
				t.Fatalf("Put after Close = %v, want ErrClosed", err)
			}
			l, st = openState(t, dir, Options{Sync: mode})
			defer l.Close()
			want := map[string]string{"a": "3", "c": ""}
			if fmt.Sprint(st) != fmt.Sprint(want) {
				t.Fatalf("replayed %v, want %v", st, want)
			}
		})
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	dir := t.TempDir()
	l, _ := openState(t, dir, Options{})
	defer l.Close()
	if _, err := Open(dir, Options{}, func(Op) error { return nil }); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
}

// TestDoneInOrder checks that done functions run in the order of the
// writes, from many writers, and only once their records are written.
func TestDoneInOrder(t *testing.T) {
	dir := t.TempDir()
	l, _ := openState(t, dir, Options{})
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	const n = 2000
	var seqMu sync.Mutex
	next := 0
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/4; i++ {
				seqMu.Lock() // so that the write order is known
				k := next
				next++
				err := l.Write([]Op{{Key: fmt.Sprint(k), Value: []byte("v")}}, func() {
					mu.Lock()
					order = append(order, k)
					mu.Unlock()
				})
				seqMu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if len(order) != n {
		t.Fatalf("%d done calls, want %d", len(order), n)
	}
	for i, k := range order {
		if k != i {
			t.Fatalf("done %d ran at position %d", k, i)
		}
	}
	if _, syncs := l.Stats(); syncs == 0 {
		t.Fatal("no fsync counted")
	}
	l, st := openState(t, dir, Options{})
	defer l.Close()
	if len(st) != n {
		t.Fatalf("replayed %d records, want %d", len(st), n)
	}
}

// TestTornTail cuts and corrupts the end of the newest segment: the intact
// records come back, the damage is logged and cut off, and new writes
// land after the cut.
func TestTornTail(t *testing.T) {
	for _, damage := range []string{"cut", "flip", "garbage"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			l, _ := openState(t, dir, Options{})
			for i := range 10 {
				writeWait(t, l, Op{Key: fmt.Sprint("k", i), Value: bytes.Repeat([]byte{byte(i)}, 100)})
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			path := store.SegmentPath(dir, 1, segSuffix)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			switch damage {
			case "cut":
				data = data[:len(data)-30]
			case "flip":
				data[len(data)-5] ^= 0xFF
			case "garbage":
				data = append(data, 0xFF, 0xFF, 0xFF, 0x7F, 1, 2, 3)
			}
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			var logBuf bytes.Buffer
			var logMu sync.Mutex
			lg := slog.New(slog.NewTextHandler(&lockedWriter{w: &logBuf, mu: &logMu}, nil))
			l, st := openState(t, dir, Options{Logger: lg})
			want := 9
			if damage == "garbage" {
				want = 10
			}
			if len(st) != want {
				t.Fatalf("replayed %d records, want %d", len(st), want)
			}
			logMu.Lock()
			logged := logBuf.String()
			logMu.Unlock()
			if !strings.Contains(logged, "damaged record") {
				t.Fatalf("damage not logged: %q", logged)
			}
			writeWait(t, l, Op{Key: "after", Value: []byte("x")})
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l, st = openState(t, dir, Options{})
			defer l.Close()
			if len(st) != want+1 || st["after"] != "x" {
				t.Fatalf("after reopen: %d records, after=%q", len(st), st["after"])
			}
		})
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// TestCompaction overwrites a small set of keys until the log compacts:
// the files shrink to about the live set, old segments are gone, and a
// reopen sees the latest values.
func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	o := Options{SegmentSize: 64 << 10, CompactMinSize: 256 << 10, CompactRatio: 0.5}
	l, _ := openState(t, dir, o)
	val := bytes.Repeat([]byte("v"), 200)
	const keys = 200
	var maxSize int64
	for round := range 50 {
		ops := make([]Op, 0, keys)
		for k := range keys {
			v := append([]byte(fmt.Sprint(round, ":")), val...)
			ops = append(ops, Op{Key: fmt.Sprint("key", k), Value: v})
		}
		writeWait(t, l, ops...)
		maxSize = max(maxSize, l.Size())
	}
	writeWait(t, l, Op{Key: "key0", Delete: true})
	compactions, _ := l.Stats()
	if compactions == 0 {
		t.Fatalf("no compaction; size %d", l.Size())
	}
	total := int64(50 * keys * 220)
	if maxSize >= total/2 {
		t.Fatalf("files reached %d bytes of %d written: compaction did not bound them", maxSize, total)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, st := openState(t, dir, o)
	defer l.Close()
	if len(st) != keys-1 {
		t.Fatalf("replayed %d keys, want %d", len(st), keys-1)
	}
	for k, v := range st {
		if !strings.HasPrefix(v, "49:") {
			t.Fatalf("%s = %.10q..., want the last round", k, v)
		}
	}
	ents, _ := os.ReadDir(dir)
	var size int64
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), segSuffix) {
			size += fi.Size()
		}
	}
	if size != l.Size() {
		t.Fatalf("Size() = %d, files hold %d", l.Size(), size)
	}
}

func TestParseSync(t *testing.T) {
	for in, want := range map[string]Sync{"batch": SyncBatch, "always": SyncAlways} {
		if got, err := ParseSync(in); err != nil || got != want {
			t.Errorf("ParseSync(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseSync("sometimes"); err == nil {
		t.Error("ParseSync accepted an unknown mode")
	}
}

func BenchmarkWrite(b *testing.B) {
	for _, mode := range []Sync{SyncBatch, SyncAlways} {
		b.Run(fmt.Sprint(mode), func(b *testing.B) {
			l, err := Open(b.TempDir(), Options{Sync: mode}, func(Op) error { return nil })
			if err != nil {
				b.Fatal(err)
			}
			val := make([]byte, 100)
			b.SetBytes(int64(len(val)))
			b.RunParallel(func(pb *testing.PB) {
				done := make(chan struct{}, 1)
				i := 0
				for pb.Next() {
					i++
					if err := l.Write([]Op{{Key: fmt.Sprint("k", i%1000), Value: val}}, func() { done <- struct{}{} }); err != nil {
						b.Error(err)
						return
					}
					<-done
				}
			})
			b.StopTimer()
			l.Close()
		})
	}
}
