// Package latency records durations in a fixed-size log-linear histogram so
// that a load generator can measure every message's latency without
// allocating or keeping samples.
//
// Values below 64 ns are counted exactly; above, each power of two is split
// into 64 equal buckets, so a reported quantile is within 1/64 (about 1.6 %)
// of the true value. Max is kept exactly. A Histogram is not safe for
// concurrent use: keep one per goroutine and Merge them at the end.
package latency

import (
	"math"
	"math/bits"
	"time"
)

const (
	subBits  = 6
	subCount = 1 << subBits
	// buckets covers every int64: group 0 holds 0..63 exactly, then one
	// group of subCount buckets per bit length from 7 to 63.
	buckets = (64 - subBits) * subCount
)

// Histogram counts non-negative durations in nanoseconds.
type Histogram struct {
	counts [buckets]uint64
	n      uint64
	max    int64
}

// index maps a value to its bucket.
func index(v int64) int {
	if v < subCount {
		return int(v)
	}
	l := bits.Len64(uint64(v)) // 7..63
	shift := l - subBits - 1
	return (l-subBits)*subCount + int(uint64(v)>>shift) - subCount
}

// bounds returns the smallest value of bucket i and the bucket's width.
func bounds(i int) (lo, width int64) {
	g, sub := i/subCount, int64(i%subCount)
	if g == 0 {
		return sub, 1
	}
	shift := g - 1
	return (subCount + sub) << shift, 1 << shift
}

// Record counts one duration in nanoseconds; negative values count as zero.
func (h *Histogram) Record(ns int64) {
	if ns < 0 {
		ns = 0
	}
	h.counts[index(ns)]++
	h.n++
	if ns > h.max {
		h.max = ns
	}
}

// Count reports how many values were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max reports the largest value recorded, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Merge adds the counts of o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	if o.max > h.max {
		h.max = o.max
	}
}

// Quantile reports the value at quantile q (0 < q ≤ 1): the middle of the
// bucket holding the ⌈q·n⌉-th smallest value, capped at Max. It returns zero
// when nothing was recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	if rank > h.n {
		rank = h.n
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, w := bounds(i)
			v := lo + (w-1)/2
			if v > h.max {
				v = h.max
			}
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}
