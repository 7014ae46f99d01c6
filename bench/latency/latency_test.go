package latency

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestIndexBounds(t *testing.T) {
	// Every bucket's lower bound maps back to that bucket, and the value just
	// below it to the previous one: the buckets tile the int64 range.
	for i := 0; i < buckets; i++ {
		lo, w := bounds(i)
		if got := index(lo); got != i {
			t.Fatalf("index(bounds(%d).lo=%d) = %d", i, lo, got)
		}
		if got := index(lo + w - 1); got != i {
			t.Fatalf("index(%d), last value of bucket %d, = %d", lo+w-1, i, got)
		}
		if i > 0 && index(lo-1) != i-1 {
			t.Fatalf("index(%d) = %d, want %d", lo-1, index(lo-1), i-1)
		}
	}
	if got := index(math.MaxInt64); got != buckets-1 {
		t.Fatalf("index(MaxInt64) = %d, want %d", got, buckets-1)
	}
}

func TestQuantile(t *testing.T) {
	tests := []struct {
		name   string
		values []int64
		q      float64
		want   time.Duration
	}{
		{name: "empty", values: nil, q: 0.5, want: 0},
		{name: "single exact small", values: []int64{42}, q: 0.99, want: 42},
		{name: "median of 1..9", values: []int64{1, 2, 3, 4, 5, 6, 7, 8, 9}, q: 0.5, want: 5},
		{name: "p90 of 1..10", values: []int64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, q: 0.9, want: 9},
		{name: "max capped", values: []int64{1000}, q: 1, want: 1000},
		{name: "negative is zero", values: []int64{-5}, q: 0.5, want: 0},
		{name: "q below first rank", values: []int64{3, 4}, q: 0, want: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, v := range tt.values {
				h.Record(v)
			}
			if got := h.Quantile(tt.q); got != tt.want {
				t.Fatalf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

// Quantiles agree with an exact sort within the documented 1/64 relative
// error, over values spread across nine orders of magnitude.
func TestQuantileAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	values := make([]int64, 100000)
	for i := range values {
		values[i] = int64(math.Exp(r.Float64() * 21)) // 1 ns .. about 1.3 s
		h.Record(values[i])
	}
	slices.Sort(values)
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		exact := values[int(math.Ceil(q*float64(len(values))))-1]
		got := int64(h.Quantile(q))
		if diff := math.Abs(float64(got - exact)); diff > float64(exact)/64+1 {
			t.Errorf("q %v: got %d, exact %d", q, got, exact)
		}
	}
	if h.Max() != time.Duration(values[len(values)-1]) {
		t.Errorf("Max = %v, want %v", h.Max(), values[len(values)-1])
	}
	if h.Count() != uint64(len(values)) {
		t.Errorf("Count = %d", h.Count())
	}
}

func TestMerge(t *testing.T) {
	var a, b, all Histogram
	for i := int64(0); i < 1000; i++ {
		v := i * i * 37
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	a.Merge(&b)
	if a.Count() != all.Count() || a.Max() != all.Max() {
		t.Fatalf("merged count %d max %v, want %d %v", a.Count(), a.Max(), all.Count(), all.Max())
	}
	for _, q := range []float64{0.1, 0.5, 0.99} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("q %v: merged %v, want %v", q, a.Quantile(q), all.Quantile(q))
		}
	}
}

func BenchmarkRecord(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	v := int64(12345)
	for b.Loop() {
		h.Record(v)
		v = (v*7 + 1) & 0xffffff
	}
}
