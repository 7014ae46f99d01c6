package store

import (
	"maps"
	"slices"
)

// seqIndex says where each live record of a Segments is, by sequence
// number. Sequence numbers are handed out in increasing order and an
// outbox's records mostly die in the order they were born, so the index is
// a window of slots, one per sequence number from the oldest live one
// (base) on: a lookup is an array access and a put at the end an append,
// where a map cost a hash, a probe that misses the cache once it holds a
// few hundred thousand records, and its growth.
//
// A record that stays live long after its neighbours died (a delivery
// retried for hours) would keep the window, and its dead slots, from
// shrinking: when dead slots outnumber live ones many times over, the live
// records of the window's first half move to far, a map, and the window
// starts after them.
type seqIndex struct {
	base  uint64 // sequence number of slots[head]
	slots []loc  // slots[head:] is the window; seg == 0: no live record
	head  int
	live  int // live slots in the window
	far   map[uint64]loc
}

// span is the window's length.
func (x *seqIndex) span() int { return len(x.slots) - x.head }

// len is the number of live records.
func (x *seqIndex) len() int { return x.live + len(x.far) }

// get returns the location of seq.
func (x *seqIndex) get(seq uint64) (loc, bool) {
	if seq >= x.base && seq-x.base < uint64(x.span()) {
		l := x.slots[x.head+int(seq-x.base)]
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
		x.slots, x.head, x.base = x.slots[:0], 0, seq
	}
	if seq < x.base {
		if x.far == nil {
			x.far = map[uint64]loc{}
		}
		x.far[seq] = l
		return loc{}, false
	}
	i := seq - x.base
	if i >= uint64(x.span()) {
		for uint64(x.span()) < i {
			x.slots = append(x.slots, loc{})
		}
		x.slots = append(x.slots, l)
		x.live++
		return loc{}, false
	}
	p := &x.slots[x.head+int(i)]
	old := *p
	*p = l
	if old.seg == 0 {
		x.live++
	}
	return old, old.seg != 0
}

// del forgets seq and returns its location, if it was live.
func (x *seqIndex) del(seq uint64) (loc, bool) {
	if seq >= x.base && seq-x.base < uint64(x.span()) {
		p := &x.slots[x.head+int(seq-x.base)]
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

// trim drops the dead slots at the window's front, gives back the memory
// of a window that moved far from the start of its array, and moves
// stragglers to far when the window is mostly dead.
func (x *seqIndex) trim() {
	for x.head < len(x.slots) && x.slots[x.head].seg == 0 {
		x.head++
		x.base++
	}
	if n := x.span(); n > 4096 && n > 8*x.live {
		// Move the live records of the first half to far.
		half := x.head + n/2
		for i := x.head; i < half; i++ {
			if l := x.slots[i]; l.seg != 0 {
				if x.far == nil {
					x.far = map[uint64]loc{}
				}
				x.far[x.base+uint64(i-x.head)] = l
				x.live--
			}
		}
		x.base += uint64(half - x.head)
		x.head = half
		for x.head < len(x.slots) && x.slots[x.head].seg == 0 {
			x.head++
			x.base++
		}
	}
	if x.head == len(x.slots) {
		x.slots, x.head = x.slots[:0], 0
		if cap(x.slots) > 1<<16 {
			x.slots = nil // do not keep a burst's array
		}
		return
	}
	if x.head > 1024 && x.head > x.span() {
		n := copy(x.slots, x.slots[x.head:])
		clear(x.slots[n:])
		x.slots, x.head = x.slots[:n], 0
	}
}

// each calls fn for every live record in sequence order until fn returns
// false.
func (x *seqIndex) each(fn func(seq uint64, l loc) bool) {
	far := slices.Sorted(maps.Keys(x.far))
	fi := 0
	for i := x.head; i < len(x.slots); i++ {
		seq := x.base + uint64(i-x.head)
		for ; fi < len(far) && far[fi] < seq; fi++ {
			if !fn(far[fi], x.far[far[fi]]) {
				return
			}
		}
		if l := x.slots[i]; l.seg != 0 {
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
