package store

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSeqIndexMatchesMap drives a seqIndex and a map with the same random
// puts (mostly at the end, some re-puts of live records as compaction does)
// and deletions (mostly in order, some records left live for long), and
// checks lookups, length and the order of each against the map after every
// step. The straggler rule moves records to far on the way.
func TestSeqIndexMatchesMap(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed))
			var x seqIndex
			model := map[uint64]loc{}
			const sg = 1
			next := uint64(1)
			oldest := uint64(1)
			sawFar := false
			for step := range 60_000 {
				switch r := rng.IntN(100); {
				case r < 45: // append, sometimes after a gap (reserved, unused)
					next += uint64(rng.IntN(3) / 2)
					l := loc{seg: sg, off: int64(step), n: int32(step % 100)}
					if _, had := x.put(next, l); had {
						t.Fatalf("put %d: replaced a record", next)
					}
					model[next] = l
					next++
				case r < 50 && len(model) > 0: // re-put a live record
					seq := slices.Min(slices.Collect(maps.Keys(model)))
					l := loc{seg: sg, off: -int64(step), n: 1}
					if _, had := x.put(seq, l); !had {
						t.Fatalf("re-put %d: not found", seq)
					}
					model[seq] = l
				default: // delete, mostly the oldest, leaving a straggler at times
					seq := oldest
					if rng.IntN(10) == 0 {
						seq = oldest + uint64(rng.IntN(50))
					}
					_, want := model[seq]
					if seq%997 == 0 {
						want = false // a straggler: never deleted
					} else {
						if _, got := x.del(seq); got != want {
							t.Fatalf("del %d: %v, want %v", seq, got, want)
						}
						delete(model, seq)
					}
					for oldest < next {
						if _, ok := model[oldest]; ok && oldest%997 != 0 {
							break
						}
						oldest++
					}
				}
				sawFar = sawFar || len(x.far) > 0
				if x.len() != len(model) {
					t.Fatalf("step %d: len %d, want %d", step, x.len(), len(model))
				}
				if step%500 == 0 {
					checkIndex(t, &x, model)
				}
			}
			checkIndex(t, &x, model)
			if !sawFar {
				t.Fatal("the stragglers never moved to far: the test does not cover it")
			}
			if x.span() > 2*chunkSlots && x.span() > 8*x.live+2 {
				t.Fatalf("window of %d slots for %d live records", x.span(), x.live)
			}
		})
	}
}

func checkIndex(t *testing.T, x *seqIndex, model map[uint64]loc) {
	t.Helper()
	var seqs []uint64
	x.each(func(seq uint64, l loc) bool {
		if model[seq] != l {
			t.Fatalf("each: %d at %+v, want %+v", seq, l, model[seq])
		}
		seqs = append(seqs, seq)
		return true
	})
	if want := slices.Sorted(maps.Keys(model)); !slices.Equal(seqs, want) {
		t.Fatalf("each gave %d records, want %d, or out of order", len(seqs), len(want))
	}
	for seq, l := range model {
		if got, ok := x.get(seq); !ok || got != l {
			t.Fatalf("get %d: %+v %v, want %+v", seq, got, ok, l)
		}
	}
	if _, ok := x.get(0); ok {
		t.Fatal("get 0: found")
	}
}

// TestSegmentsRead reads single records back, from the newest segment and
// from older ones, and after a reopen; a deleted record is ErrNotFound.
func TestSegmentsRead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "q")
	s := openSeg(t, dir, SegmentOptions{SegmentSize: 256})
	for i := range 40 {
		seq := s.Reserve(1)
		if err := s.Commit([]Record{{Seq: seq, Data: fmt.Appendf(nil, "record %d", i)}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit(nil, []uint64{7}); err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		for _, seq := range []uint64{1, 20, 40} {
			got, err := s.Read(seq, []byte("x"))
			if want := fmt.Sprintf("xrecord %d", seq-1); err != nil || string(got) != want {
				t.Fatalf("read %d: %q %v, want %q", seq, got, err, want)
			}
		}
		if _, err := s.Read(7, nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("read of a deleted record: %v", err)
		}
	}
	check()
	if len(s.segs) < 3 {
		t.Fatalf("%d segments: the test needs several", len(s.segs))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openSeg(t, dir, SegmentOptions{SegmentSize: 256})
	defer s.Close()
	check()
}

// TestSegmentsRefuseNumberZero: a segment file numbered 0 (which this store
// never writes: 0 means "no segment" in the index) stops the open with its
// name instead of losing its records.
func TestSegmentsRefuseNumberZero(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "q")
	s := openSeg(t, dir, SegmentOptions{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(SegmentPath(dir, 0, segSuffix), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := OpenSegments(dir, SegmentOptions{})
	if err == nil || !strings.Contains(err.Error(), "0000000000000000.seg") {
		t.Fatalf("open with a segment numbered 0: %v", err)
	}
}

// BenchmarkSeqIndexFIFO puts records at the end of a window of 570,000
// live ones (an outbox of 256 MB of 450-byte events) and deletes them from
// the front: the outbox of an endpoint that is behind or down.
func BenchmarkSeqIndexFIFO(b *testing.B) {
	var x seqIndex
	const lag = 570_000
	for i := range b.N {
		x.put(uint64(i+1), loc{seg: 1, off: int64(i), n: 1})
		if i >= lag {
			x.del(uint64(i + 1 - lag))
		}
	}
}

// TestSegmentsFIFONotCompacted: records that die in the order they were
// written (an outbox that drains, or drops its oldest when full) are never
// copied forward, however many segments they span; the files stay within
// a few segments of the live data.
func TestSegmentsFIFONotCompacted(t *testing.T) {
	o := SegmentOptions{SegmentSize: 4 << 10, NoSync: true}
	s := openSeg(t, filepath.Join(t.TempDir(), "q"), o)
	defer s.Close()
	data := make([]byte, 100)
	const window = 200
	first := map[uint64]uint32{} // seq → the segment it was written to
	for i := uint64(1); i <= 3000; i++ {
		seq := s.Reserve(1)
		var del []uint64
		if seq > window {
			del = []uint64{seq - window}
		}
		if err := s.Commit([]Record{{Seq: seq, Data: data}}, del); err != nil {
			t.Fatal(err)
		}
		l, _ := s.index.get(seq)
		first[seq] = l.seg
	}
	s.index.each(func(seq uint64, l loc) bool {
		if l.seg != first[seq] {
			t.Fatalf("record %d was copied from segment %d to %d", seq, first[seq], l.seg)
		}
		return true
	})
	if _, size := s.Len(); size > window*120+3*o.SegmentSize {
		t.Fatalf("%d bytes of segments for %d live records of 100 bytes", size, window)
	}
}
