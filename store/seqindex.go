package store

import (
	"maps"
	"slices"

	"github.com/mqgate/mqgate/internal/offheap"
)

// seqIndex says where each live record of a Segments is, by sequence
// number. Sequence numbers are handed out in increasing order and an
// outbox's records mostly die in the order they were born, so the index is
// a window of slots, one per sequence number from the oldest live one on:
// a lookup is an array access and a put at the end an append, where a map
// cost a hash, a probe that misses the cache once it holds a few hundred
// thousand records, and its growth.
//
// The window is a list of fixed-size chunks: it grows by one chunk at the
// end and gives chunks back from the front as records die, and emptied
// chunks are reused. A single array would have to be copied whenever it
// grew or slid; with a window of half a million records (an endpoint down
// for a minute at 10,000 events/s) those copies of tens of megabytes cost
// 150 ns per record here, against 10 ns with chunks. Chunks are kept
// outside the Go heap (package offheap): a backlog of millions of records
// grew the heap by twice the index's size, and the broker's message path
// paid the page faults of that growth. release gives them back.
//
// A record that stays live long after its neighbours died (a delivery
// retried for hours) would keep the window, and its dead slots, from
// shrinking: when dead slots outnumber live ones many times over, the live
// records of the window's first half move to far, a map, and the window
// starts after them.
type seqIndex struct {
	base   uint64  // sequence number of chunks[0][0]
	chunks [][]loc // chunkSlots each
	head   int     // the window is [head, end) counted from base
	end    int
	live   int // live slots in the window
	far    map[uint64]loc
	spare  [][]loc // emptied chunks, all zero, for reuse
}

const (
	chunkSlots = 4096
	maxSpare   = 16 // emptied chunks kept for reuse; more are given back
)

// span is the window's length.
func (x *seqIndex) span() int { return x.end - x.head }

// len is the number of live records.
func (x *seqIndex) len() int { return x.live + len(x.far) }

// slot returns the slot i positions after base.
func (x *seqIndex) slot(i int) *loc { return &x.chunks[i/chunkSlots][i%chunkSlots] }

// inWindow returns seq's position in the window.
func (x *seqIndex) inWindow(seq uint64) (int, bool) {
	if seq < x.base {
		return 0, false
	}
	d := seq - x.base
	if d < uint64(x.head) || d >= uint64(x.end) {
		return 0, false
	}
	return int(d), true
}

// get returns the location of seq.
func (x *seqIndex) get(seq uint64) (loc, bool) {
	if i, ok := x.inWindow(seq); ok {
		l := *x.slot(i)
		return l, l.seg != 0
	}
	l, ok := x.far[seq]
	return l, ok
}

// put sets the location of seq and returns the one it replaces, if any.
func (x *seqIndex) put(seq uint64, l loc) (loc, bool) {
	if old, ok := x.far[seq]; ok {
		x.far[seq] = l
		return old, true
	}
	if x.span() == 0 {
		x.reset(seq)
	}
	if i, ok := x.inWindow(seq); ok {
		p := x.slot(i)
		old := *p
		*p = l
		if old.seg == 0 {
			x.live++
		}
		return old, old.seg != 0
	}
	if seq < x.base+uint64(x.head) {
		x.toFar(seq, l)
		return loc{}, false
	}
	i := int(seq - x.base)
	for len(x.chunks)*chunkSlots <= i {
		x.chunks = append(x.chunks, x.newChunk())
	}
	x.end = i + 1
	*x.slot(i) = l
	x.live++
	return loc{}, false
}

// toFar keeps seq's location in far, outside the window.
func (x *seqIndex) toFar(seq uint64, l loc) {
	if x.far == nil {
		x.far = map[uint64]loc{}
	}
	x.far[seq] = l
}

// reset empties the window and starts it at seq.
func (x *seqIndex) reset(seq uint64) {
	for _, c := range x.chunks {
		x.freeChunk(c)
	}
	clear(x.chunks)
	x.chunks = x.chunks[:0]
	x.base = seq - seq%chunkSlots
	x.head = int(seq - x.base)
	x.end = x.head
}

func (x *seqIndex) newChunk() []loc {
	if n := len(x.spare); n > 0 {
		c := x.spare[n-1]
		x.spare[n-1] = nil
		x.spare = x.spare[:n-1]
		return c
	}
	return offheap.Make[loc](chunkSlots)
}

// freeChunk keeps c, whose slots are all zero, for reuse, or gives it
// back.
func (x *seqIndex) freeChunk(c []loc) {
	if len(x.spare) < maxSpare {
		x.spare = append(x.spare, c)
		return
	}
	offheap.Free(c)
}

// release gives back the index's memory and leaves it empty.
func (x *seqIndex) release() {
	for _, c := range x.chunks {
		offheap.Free(c)
	}
	for _, c := range x.spare {
		offheap.Free(c)
	}
	*x = seqIndex{}
}

// del forgets seq and returns its location, if it was live.
func (x *seqIndex) del(seq uint64) (loc, bool) {
	if i, ok := x.inWindow(seq); ok {
		p := x.slot(i)
		old := *p
		if old.seg == 0 {
			return loc{}, false
		}
		*p = loc{}
		x.live--
		x.trim()
		return old, true
	}
	old, ok := x.far[seq]
	if ok {
		delete(x.far, seq)
	}
	return old, ok
}

// trim moves the window's start past dead slots, gives back the chunks
// before it, and moves stragglers to far when the window is mostly dead.
func (x *seqIndex) trim() {
	x.skipDead()
	if n := x.span(); n > 2*chunkSlots && n > 8*x.live {
		// Move the live records of the first half to far.
		half := x.head + n/2
		for i := x.head; i < half; i++ {
			if p := x.slot(i); p.seg != 0 {
				x.toFar(x.base+uint64(i), *p)
				*p = loc{}
				x.live--
			}
		}
		x.head = half
		x.skipDead()
	}
	if x.span() == 0 {
		x.reset(x.base + uint64(x.end))
		return
	}
	k := x.head / chunkSlots // chunks wholly before the window: all zero
	if k == 0 {
		return
	}
	for _, c := range x.chunks[:k] {
		x.freeChunk(c)
	}
	n := copy(x.chunks, x.chunks[k:]) // a few hundred pointers at most
	clear(x.chunks[n:])
	x.chunks = x.chunks[:n]
	x.base += uint64(k * chunkSlots)
	x.head -= k * chunkSlots
	x.end -= k * chunkSlots
}

// skipDead moves the window's start past dead slots.
func (x *seqIndex) skipDead() {
	for x.head < x.end && x.slot(x.head).seg == 0 {
		x.head++
	}
}

// each calls fn for every live record in sequence order until fn returns
// false.
func (x *seqIndex) each(fn func(seq uint64, l loc) bool) {
	far := slices.Sorted(maps.Keys(x.far))
	fi := 0
	for i := x.head; i < x.end; i++ {
		seq := x.base + uint64(i)
		for ; fi < len(far) && far[fi] < seq; fi++ {
			if !fn(far[fi], x.far[far[fi]]) {
				return
			}
		}
		if l := *x.slot(i); l.seg != 0 {
			if !fn(seq, l) {
				return
			}
		}
	}
	for ; fi < len(far); fi++ {
		if !fn(far[fi], x.far[far[fi]]) {
			return
		}
	}
}
