package webhook

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestFIFOMatchesSlice drives a fifo and a slice with the same random pushes
// and pops (runs of both, so that the fifo empties, grows past several
// chunks and shrinks again) and compares len, front, at and each.
func TestFIFOMatchesSlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var q fifo[int]
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
}
