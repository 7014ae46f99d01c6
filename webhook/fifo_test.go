package webhook

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mqgate/mqgate/internal/offheap"
)

// TestFIFOMatchesSlice drives a fifo and a slice with the same random pushes
// and pops (runs of both, so that the fifo empties, grows past several
// chunks and shrinks again) and compares len, front, at and each; and the
// same with a fifo off the heap, whose chunks must hold exactly the memory
// that the offheap package counts, and none after release. Not parallel:
// it counts all of the process's off-heap memory.
func TestFIFOMatchesSlice(t *testing.T) {
	t.Run("heap", func(t *testing.T) { testFIFOMatchesSlice(t, false) })
	t.Run("offheap", func(t *testing.T) { testFIFOMatchesSlice(t, true) })
}

func testFIFOMatchesSlice(t *testing.T, offHeap bool) {
	before := offheap.InUse()
	rng := rand.New(rand.NewPCG(1, 2))
	q := fifo[int]{offHeap: offHeap}
	var model []int
	next := 0
	for step := range 2_000 {
		burst := rng.IntN(3000)
		if rng.IntN(2) == 0 {
			for range burst {
				q.push(next)
				model = append(model, next)
				next++
			}
		} else {
			for range min(burst, len(model)) {
				if q.front() != model[0] {
					t.Fatalf("step %d: front %d, want %d", step, q.front(), model[0])
				}
				q.pop()
				model = model[1:]
			}
		}
		if q.len() != len(model) {
			t.Fatalf("step %d: len %d, want %d", step, q.len(), len(model))
		}
		if len(model) > 0 {
			n := 1 + rng.IntN(len(model))
			if got := q.appendFirst(nil, n); !slices.Equal(got, model[:n]) {
				t.Fatalf("step %d: appendFirst(%d) = %v, want %v", step, n, got, model[:n])
			}
		}
		if step%50 == 0 {
			var got []int
			q.each(func(v int) { got = append(got, v) })
			if !slices.Equal(got, model) && !(len(got) == 0 && len(model) == 0) {
				t.Fatalf("step %d: each gave %d values, want %d", step, len(got), len(model))
			}
		}
	}
	if len(q.chunks) > 1+len(model)/maxChunk+8 {
		t.Fatalf("%d chunks for %d values", len(q.chunks), len(model))
	}
	want := int64(0)
	if offHeap {
		want = int64(len(q.chunks) * offHeapChunk * 8)
	}
	if got := offheap.InUse() - before; got != want {
		t.Fatalf("%d bytes off the heap for %d chunks, want %d", got, len(q.chunks), want)
	}
	q.release()
	if got := offheap.InUse(); got != before || q.len() != 0 {
		t.Fatalf("after release: %d bytes off the heap, want %d; %d values", got, before, q.len())
	}
	q.push(1) // a released fifo is empty and usable
	if q.front() != 1 || q.len() != 1 {
		t.Fatalf("push after release: front %d, len %d", q.front(), q.len())
	}
	q.release()
}
