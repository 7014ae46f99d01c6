package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqgate/mqgate/internal/offheap"
	"github.com/mqgate/mqgate/internal/testutil/goroutine"
)

func openSeg(t *testing.T, dir string, o SegmentOptions) *Segments {
	t.Helper()
	s, err := OpenSegments(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func seqsOf(rs []Record) []uint64 {
	var out []uint64
	for _, r := range rs {
		out = append(out, r.Seq)
	}
	return out
}

// TestSegmentsCommitScanReopen checks commit, delete, scan order and data,
// and that records and sequence numbers survive a reopen.
func TestSegmentsCommitScanReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "q")
	s := openSeg(t, dir, SegmentOptions{})
	first := s.Reserve(5)
	if first != 1 {
		t.Fatalf("first seq %d, want 1", first)
	}
	var put []Record
	for i := range 5 {
		put = append(put, Record{Seq: first + uint64(i), Data: fmt.Appendf(nil, "record %d", i)})
	}
	if err := s.Commit(put, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(nil, []uint64{2, 4}); err != nil {
		t.Fatal(err)
	}
	got := scanAll(t, s)
	if want := []uint64{1, 3, 5}; !slices.Equal(seqsOf(got), want) {
		t.Fatalf("scan %v, want %v", seqsOf(got), want)
	}
	if string(got[1].Data) != "record 2" {
		t.Fatalf("data %q", got[1].Data)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openSeg(t, dir, SegmentOptions{})
	defer s.Close()
	if got := scanAll(t, s); !slices.Equal(seqsOf(got), []uint64{1, 3, 5}) || string(got[2].Data) != "record 4" {
		t.Fatalf("after reopen: %v", got)
	}
	if n := s.Reserve(1); n != 6 {
		t.Fatalf("next seq after reopen %d, want 6", n)
	}
}

// TestSegmentsCommitFrames checks records framed by their writer: they
// read back and survive a reopen like Commit's, a deletion in the same
// call goes after them, the deletion frame lands in the buffer's spare
// capacity, and a buffer that is not whole put frames is refused without
// a byte written.
func TestSegmentsCommitFrames(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "q")
	s := openSeg(t, dir, SegmentOptions{})
	if err := s.Commit([]Record{{Seq: s.Reserve(1), Data: []byte("old")}}, nil); err != nil {
		t.Fatal(err)
	}
	first := s.Reserve(3)
	frames := make([]byte, 0, 4096)
	for i := range 3 {
		at := len(frames)
		frames = AppendPutHead(frames, first+uint64(i))
		frames = fmt.Appendf(frames, "framed %d", i)
		FinishPut(frames, at)
	}
	n := len(frames)
	out, err := s.CommitFrames(frames, []uint64{1, first + 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != n+frameHeader+16 || &out[0] != &frames[0] {
		t.Fatalf("returned %d bytes (want %d, the deletion frame appended in place)", len(out), n+frameHeader+16)
	}
	check := func(when string) {
		t.Helper()
		got := scanAll(t, s)
		if want := []uint64{first, first + 2}; !slices.Equal(seqsOf(got), want) {
			t.Fatalf("%s: scan %v, want %v", when, seqsOf(got), want)
		}
		if string(got[1].Data) != "framed 2" {
			t.Fatalf("%s: data %q", when, got[1].Data)
		}
		data, err := s.Read(first, nil)
		if err != nil || string(data) != "framed 0" {
			t.Fatalf("%s: read %q, %v", when, data, err)
		}
	}
	check("after the commit")
	_, size := s.Len()
	past := AppendPutHead(nil, 99)
	past = append(past, "data"...)
	FinishPut(past, 0)
	binary.LittleEndian.PutUint32(past, 100) // longer than the buffer
	for _, bad := range [][]byte{
		{1, 2, 3},
		appendDelFrame(nil, []uint64{first}),
		AppendPutHead(nil, 99), // not finished: its length is 0
		past,
	} {
		if _, err := s.CommitFrames(bad, nil); err == nil {
			t.Fatalf("CommitFrames(%x) took it", bad)
		}
	}
	if _, after := s.Len(); after != size {
		t.Fatalf("refused frames wrote %d bytes", after-size)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openSeg(t, dir, SegmentOptions{})
	defer s.Close()
	check("after a reopen")
	if next := s.Reserve(1); next != first+3 {
		t.Fatalf("next seq after reopen %d, want %d", next, first+3)
	}
}

// TestSegmentsLocked checks that a second open of the same directory fails
// with ErrLocked.
func TestSegmentsLocked(t *testing.T) {
	dir := t.TempDir()
	s := openSeg(t, dir, SegmentOptions{})
	defer s.Close()
	if _, err := OpenSegments(dir, SegmentOptions{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
}

// TestSegmentNumbersBounded: a segment number that the index cannot hold
// (beyond 32 bits) is refused at open with the file's name, and a store
// whose numbers are used up refuses to roll, with the records it has kept.
func TestSegmentNumbersBounded(t *testing.T) {
	dir := t.TempDir()
	far := SegmentPath(dir, maxSegment+1, segSuffix)
	if err := os.WriteFile(far, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSegments(dir, SegmentOptions{}); err == nil || !strings.Contains(err.Error(), far) {
		t.Fatalf("open with segment %d: %v, want an error naming %s", uint64(maxSegment+1), err, far)
	}

	s := openSeg(t, t.TempDir(), SegmentOptions{SegmentSize: 64, NoSync: true})
	defer s.Close()
	put := func() error {
		return s.Commit([]Record{{Seq: s.Reserve(1), Data: bytes.Repeat([]byte("x"), 100)}}, nil)
	}
	if err := put(); err != nil {
		t.Fatal(err)
	}
	s.num = maxSegment // as if the store had rolled that often
	if err := put(); err == nil || !strings.Contains(err.Error(), "used up") {
		t.Fatalf("commit needing segment %d: %v, want used up", uint64(maxSegment+1), err)
	}
	if err := put(); err == nil || !strings.Contains(err.Error(), "used up") {
		t.Fatalf("second commit needing segment %d: %v, want used up again", uint64(maxSegment+1), err)
	}
	if n, _ := s.Len(); n != 1 {
		t.Fatalf("%d records, want the first one kept", n)
	}
}

// TestSegmentsRollDropAndSeq fills many small segments, deletes
// everything, and checks that the dead segments are removed and that
// sequence numbers keep growing across a reopen although every segment
// that used them is gone.
func TestSegmentsRollDropAndSeq(t *testing.T) {
	dir := t.TempDir()
	o := SegmentOptions{SegmentSize: 1 << 10}
	s := openSeg(t, dir, o)
	data := bytes.Repeat([]byte("x"), 200)
	var all []uint64
	for range 50 {
		seq := s.Reserve(1)
		all = append(all, seq)
		if err := s.Commit([]Record{{Seq: seq, Data: data}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	segFiles := func() int {
		m, _ := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
		return len(m)
	}
	if n := segFiles(); n < 5 {
		t.Fatalf("%d segment files after 10 KB in 1 KB segments", n)
	}
	for _, seq := range all {
		if err := s.Commit(nil, []uint64{seq}); err != nil {
			t.Fatal(err)
		}
	}
	if n := segFiles(); n > 2 {
		t.Fatalf("%d segment files left with nothing live", n)
	}
	if recs, _ := s.Len(); recs != 0 {
		t.Fatalf("%d live records", recs)
	}
	s.Close()
	s = openSeg(t, dir, o)
	defer s.Close()
	if n := s.Reserve(1); n != 51 {
		t.Fatalf("next seq %d after reopen, want 51", n)
	}
	if got := scanAll(t, s); len(got) != 0 {
		t.Fatalf("scan after reopen: %v", seqsOf(got))
	}
}

// TestSegmentsReadMany reads records back in bulk: every live one with its
// data, ErrNotFound for deleted and unknown ones, in the order asked, across
// segments, with a record larger than a read's span among them; the records
// of a commit in one read rather than one each; and fn may call the store.
// Scan reads them the same way.
func TestSegmentsReadMany(t *testing.T) {
	s := openSeg(t, t.TempDir(), SegmentOptions{SegmentSize: 64 << 10})
	defer s.Close()
	want := map[uint64][]byte{}
	var seqs []uint64
	for c := range 6 {
		n := 100
		if c == 3 {
			n = 1 // one big record alone
		}
		first := s.Reserve(n)
		var put []Record
		for i := range n {
			seq := first + uint64(i)
			data := []byte(fmt.Sprintf("record %d %s", seq, strings.Repeat("x", 30+int(seq)%100)))
			if c == 3 {
				data = bytes.Repeat([]byte{'b'}, readSpan+100)
			}
			put = append(put, Record{Seq: seq, Data: data})
			want[seq] = data
			seqs = append(seqs, seq)
		}
		// Each commit but the first deletes a few records of the one before.
		var del []uint64
		for _, seq := range seqs[:len(seqs)-n] {
			if seq%7 == 0 && want[seq] != nil {
				del = append(del, seq)
				want[seq] = nil
			}
		}
		if err := s.Commit(put, del); err != nil {
			t.Fatal(err)
		}
	}
	seqs = append(seqs, 1<<40) // never stored
	check := func(seqs []uint64, read bool) {
		t.Helper()
		got := 0
		s.ReadMany(seqs, nil, func(i int, data []byte, err error) {
			w := want[seqs[i]]
			switch {
			case w == nil && !errors.Is(err, ErrNotFound):
				t.Fatalf("record %d (deleted or never stored): %q, %v; want ErrNotFound", seqs[i], data, err)
			case w != nil && (err != nil || !bytes.Equal(data, w)):
				t.Fatalf("record %d: %d bytes, %v; want its %d", seqs[i], len(data), err, len(w))
			case w != nil && read:
				if _, err := s.Read(seqs[i], nil); err != nil { // fn may call the store
					t.Fatal(err)
				}
			}
			if i != got {
				t.Fatalf("record %d of %d called as the %dth", i, len(seqs), got)
			}
			got++
		})
		if got != len(seqs) {
			t.Fatalf("fn called %d times for %d records", got, len(seqs))
		}
	}
	s.wmu.Lock()
	before := s.reads
	s.wmu.Unlock()
	check(seqs, false)
	s.wmu.Lock()
	reads := s.reads - before
	s.wmu.Unlock()
	// One read per commit's run of records, give or take one for a
	// segment's end: not one per record.
	if reads > 12 {
		t.Fatalf("%d reads for %d records of 6 commits", reads, len(seqs))
	}
	slices.Reverse(seqs)
	check(seqs, true)

	// Scan reads the same way.
	s.wmu.Lock()
	before = s.reads
	s.wmu.Unlock()
	var scanned, live []uint64
	if err := s.Scan(func(r Record) error {
		if !bytes.Equal(r.Data, want[r.Seq]) {
			return fmt.Errorf("record %d: %d bytes, want %d", r.Seq, len(r.Data), len(want[r.Seq]))
		}
		scanned = append(scanned, r.Seq)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for seq, w := range want {
		if w != nil {
			live = append(live, seq)
		}
	}
	slices.Sort(live)
	if !slices.Equal(scanned, live) {
		t.Fatalf("scan: %d records, want the %d live ones in order", len(scanned), len(live))
	}
	s.wmu.Lock()
	reads = s.reads - before
	s.wmu.Unlock()
	if reads > 12 {
		t.Fatalf("scan: %d reads for %d records of 6 commits", reads, len(live))
	}
}

// TestSegmentsCompaction keeps one record pending while thousands of others
// come and go: the old segments must not pile up behind it, and the record
// survives being copied forward, also across a reopen.
func TestSegmentsCompaction(t *testing.T) {
	for _, o := range []SegmentOptions{{SegmentSize: 4 << 10}, {SegmentSize: 4 << 10, SyncInterval: time.Hour}} {
		t.Run(fmt.Sprint("sync_interval=", o.SyncInterval), func(t *testing.T) { testCompaction(t, o) })
	}
}

func testCompaction(t *testing.T, o SegmentOptions) {
	dir := t.TempDir()
	s := openSeg(t, dir, o)
	pinned := s.Reserve(1)
	if err := s.Commit([]Record{{Seq: pinned, Data: []byte("pinned")}}, nil); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("y"), 100)
	moved := 0
	for range 2000 {
		seq := s.Reserve(1)
		if err := s.Commit([]Record{{Seq: seq, Data: data}}, nil); err != nil {
			t.Fatal(err)
		}
		before, _ := s.index.get(pinned)
		if err := s.Commit(nil, []uint64{seq}); err != nil {
			t.Fatal(err)
		}
		if after, _ := s.index.get(pinned); after.seg != before.seg {
			moved++
			// The copy must be on disk before the file it left is removed.
			if s.dirty {
				t.Fatal("a record copied forward by compaction is not fsynced")
			}
		}
	}
	if moved == 0 {
		t.Fatal("compaction never copied the pinned record forward")
	}
	if _, size := s.Len(); size > 32<<10 {
		t.Fatalf("%d bytes of segments for one live record of 6 bytes", size)
	}
	s.Close()
	s = openSeg(t, dir, o)
	defer s.Close()
	got := scanAll(t, s)
	if len(got) != 1 || got[0].Seq != pinned || string(got[0].Data) != "pinned" {
		t.Fatalf("after compaction and reopen: %v", got)
	}
}

// TestSegmentsTornTail cuts the last frame short, as a crash in the middle
// of a write would: the open logs it, keeps every earlier record, drops the
// torn one, and later commits are readable after another reopen.
func TestSegmentsTornTail(t *testing.T) {
	for _, damage := range []string{"cut", "flip"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			s := openSeg(t, dir, SegmentOptions{})
			for i := range 3 {
				seq := s.Reserve(1)
				if err := s.Commit([]Record{{Seq: seq, Data: fmt.Appendf(nil, "record %d", i)}}, nil); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			files, _ := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
			last := files[len(files)-1]
			b, err := os.ReadFile(last)
			if err != nil {
				t.Fatal(err)
			}
			switch damage {
			case "cut":
				b = b[:len(b)-3]
			case "flip":
				b[len(b)-2] ^= 0xff
			}
			if err := os.WriteFile(last, b, 0o600); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			o := SegmentOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			s = openSeg(t, dir, o)
			if got := scanAll(t, s); !slices.Equal(seqsOf(got), []uint64{1, 2}) {
				t.Fatalf("after a torn tail: %v", seqsOf(got))
			}
			if !strings.Contains(logs.String(), "damaged log frame") {
				t.Fatalf("no log line about the torn frame: %q", logs.String())
			}
			seq := s.Reserve(1)
			if err := s.Commit([]Record{{Seq: seq, Data: []byte("after")}}, nil); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s = openSeg(t, dir, SegmentOptions{})
			defer s.Close()
			got := scanAll(t, s)
			if !slices.Equal(seqsOf(got), []uint64{1, 2, seq}) || string(got[2].Data) != "after" {
				t.Fatalf("after reopen: %v", got)
			}
		})
	}
}

// BenchmarkSegmentsCommit and BenchmarkLogCommit measure records per second
// with batches of 100 records of 300 bytes, each later deleted, with fsync.
func BenchmarkSegmentsCommit(b *testing.B) {
	s, err := OpenSegments(b.TempDir(), SegmentOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchQueue(b, s)
}

// BenchmarkSegmentsDrain measures deleting records in the order they were
// written, 1,000 per commit, from a store of 32 or so segments: an outbox
// draining after an outage, or dropping its oldest when full. Refilling
// the store is not timed. An op is one record.
func BenchmarkSegmentsDrain(b *testing.B) {
	s, err := OpenSegments(b.TempDir(), SegmentOptions{NoSync: true, SegmentSize: 256 << 10})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	data := bytes.Repeat([]byte("z"), 150)
	var live []uint64 // in write order
	fill := func() {
		put := make([]Record, 1000)
		for len(s.segs) <= 32 {
			first := s.Reserve(len(put))
			for i := range put {
				put[i] = Record{Seq: first + uint64(i), Data: data}
				live = append(live, first+uint64(i))
			}
			if err := s.Commit(put, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	fill()
	b.ResetTimer()
	for n := 0; n < b.N; n += 1000 {
		if len(live) < 1000 {
			b.StopTimer()
			fill()
			b.StartTimer()
		}
		if err := s.Commit(nil, live[:1000]); err != nil {
			b.Fatal(err)
		}
		live = live[1000:]
	}
}

func BenchmarkLogCommit100(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "q.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	benchQueue(b, l)
}

func benchQueue(b *testing.B, q Queue) {
	data := bytes.Repeat([]byte("z"), 300)
	put := make([]Record, 100)
	var del []uint64
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		first := q.Reserve(len(put))
		for i := range put {
			put[i] = Record{Seq: first + uint64(i), Data: data}
		}
		if err := q.Commit(put, del); err != nil {
			b.Fatal(err)
		}
		del = del[:0]
		for i := range put {
			del = append(del, first+uint64(i))
		}
	}
	b.ReportMetric(float64(b.N*len(put))/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*len(put)), "cpu-ns/record")
}

// cpuTime is the CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// waitTimedSync waits for the timer's fsync of the second of two
// commits made within SyncInterval (the first is fsynced at once).
func waitTimedSync(t *testing.T, s *Segments) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.syncCount() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the second commit was never fsynced")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *Segments) syncCount() int {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.syncs
}

// copyDir copies the files of src into a new directory, as a process that
// starts after this one died would find them (from the OS, synced or not).
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), segSuffix) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestSegmentsSyncInterval checks that with a SyncInterval commits are
// written at once (a new process finds them) but fsynced at most once per
// interval, by a later commit or by the timer, and that rolling to a new
// segment, compaction and Close fsync what is pending.
func TestSegmentsSyncInterval(t *testing.T) {
	t.Run("spaced", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "q")
		s := openSeg(t, dir, SegmentOptions{SyncInterval: time.Hour})
		defer s.Close()
		for i := range 10 {
			seq := s.Reserve(1)
			if err := s.Commit([]Record{{Seq: seq, Data: fmt.Appendf(nil, "r%d", i)}}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if n := s.syncCount(); n != 1 {
			t.Fatalf("%d fsyncs for 10 commits within the interval, want 1 (the first)", n)
		}
		c := openSeg(t, copyDir(t, dir), SegmentOptions{})
		defer c.Close()
		if n, _ := c.Len(); n != 10 {
			t.Fatalf("a new process finds %d records, want 10", n)
		}
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		if n := s.syncCount(); n != 2 {
			t.Fatalf("%d fsyncs after Sync, want 2", n)
		}
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		if n := s.syncCount(); n != 2 {
			t.Fatalf("%d fsyncs after a Sync with nothing pending, want still 2", n)
		}
	})
	t.Run("timer", func(t *testing.T) {
		s := openSeg(t, filepath.Join(t.TempDir(), "q"), SegmentOptions{SyncInterval: 20 * time.Millisecond})
		defer s.Close()
		for range 2 {
			if err := s.Commit([]Record{{Seq: s.Reserve(1), Data: []byte("x")}}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if n := s.syncCount(); n != 1 {
			t.Fatalf("%d fsyncs right after two commits, want 1", n)
		}
		waitTimedSync(t, s)
	})
	t.Run("timer labels", func(t *testing.T) {
		// The timer's fsync runs with SegmentOptions.Labels: caught
		// waiting for the store's lock, which the test holds.
		s := openSeg(t, filepath.Join(t.TempDir(), "q"), SegmentOptions{SyncInterval: 20 * time.Millisecond, Labels: pprof.Labels("room", "outbox")})
		defer s.Close()
		s.wmu.Lock()
		locked := true
		defer func() {
			if locked {
				s.wmu.Unlock()
			}
		}()
		for range 2 {
			if err := s.commit([]Record{{Seq: s.Reserve(1), Data: []byte("x")}}, nil, false); err != nil {
				t.Fatal(err)
			}
		}
		labels, err := goroutine.Labels("store.(*Segments).timedSync", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(labels, []string{`{"room":"outbox"}`}) {
			t.Fatalf("the timed fsync's goroutine has labels %q, want {\"room\":\"outbox\"}", labels)
		}
		s.wmu.Unlock()
		locked = false
		waitTimedSync(t, s)
	})
	t.Run("roll", func(t *testing.T) {
		s := openSeg(t, filepath.Join(t.TempDir(), "q"), SegmentOptions{SyncInterval: time.Hour, SegmentSize: 64})
		defer s.Close()
		for range 2 {
			if err := s.Commit([]Record{{Seq: s.Reserve(1), Data: bytes.Repeat([]byte("x"), 100)}}, nil); err != nil {
				t.Fatal(err)
			}
		}
		// The second commit rolled past a segment holding the first, which
		// was synced; it itself is pending.
		if n := s.syncCount(); n != 1 {
			t.Fatalf("%d fsyncs, want 1", n)
		}
		if err := s.Commit([]Record{{Seq: s.Reserve(1), Data: []byte("y")}}, nil); err != nil {
			t.Fatal(err)
		}
		if n := s.syncCount(); n != 2 {
			t.Fatalf("%d fsyncs after a roll past a pending put, want 2", n)
		}
	})
	t.Run("close", func(t *testing.T) {
		s := openSeg(t, filepath.Join(t.TempDir(), "q"), SegmentOptions{SyncInterval: time.Hour})
		for range 2 {
			if err := s.Commit([]Record{{Seq: s.Reserve(1), Data: []byte("x")}}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s.syncs != 2 {
			t.Fatalf("%d fsyncs after Close, want 2", s.syncs)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

// TestSegmentsCloseGivesIndexBack: the index of 20,000 records (five
// chunks kept outside the Go heap) is given back by Close, and after it
// the store holds nothing and refuses commits, without touching what it
// gave back. Not parallel: it counts all of the process's off-heap
// memory.
func TestSegmentsCloseGivesIndexBack(t *testing.T) {
	before := offheap.InUse()
	dir := t.TempDir()
	s := openSeg(t, dir, SegmentOptions{NoSync: true})
	recs := make([]Record, 20_000)
	for i := range recs {
		recs[i] = Record{Seq: s.Reserve(1), Data: []byte("event")}
	}
	if err := s.Commit(recs, nil); err != nil {
		t.Fatal(err)
	}
	if got := offheap.InUse() - before; got < 5*chunkSlots*16 {
		t.Fatalf("index holds %d bytes off the heap, want %d or more", got, 5*chunkSlots*16)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := offheap.InUse(); got != before {
		t.Fatalf("%d bytes off the heap after Close, want %d", got, before)
	}
	if n, _ := s.Len(); n != 0 {
		t.Fatalf("closed store has %d records", n)
	}
	if _, err := s.Read(recs[0].Seq, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read after close: %v, want ErrNotFound", err)
	}
	if err := s.Commit(nil, []uint64{recs[0].Seq}); !errors.Is(err, ErrClosed) {
		t.Fatalf("commit after close: %v, want ErrClosed", err)
	}
	if got := offheap.InUse(); got != before {
		t.Fatalf("%d bytes off the heap after using a closed store, want %d", got, before)
	}
}
