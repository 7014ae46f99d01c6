package webhook

import "github.com/mqgate/mqgate/internal/offheap"

// fifo is a first-in first-out queue kept in chunks that double in size from
// minChunk up to maxChunk. A slice used as a queue (append at the end,
// reslice at the front) is copied whole each time it outgrows its array,
// into fresh memory: with the hundreds of thousands of jobs an endpoint that
// is down or behind accumulates, those copies were a tenth of the
// dispatcher's time. Chunks are never copied, and a lane that holds a few
// jobs (the usual case, one lane per client) costs one small chunk.
//
// A fifo whose offHeap is set keeps its chunks outside the Go heap, all
// of offHeapChunk values (package offheap): for a queue of values without
// pointers that grows with a backlog, an endpoint's spill. release gives
// them back.
type fifo[T any] struct {
	chunks  [][]T // chunks[0][head:], then the others; only the last one may be short
	head    int
	n       int
	offHeap bool
}

const (
	minChunk = 8
	maxChunk = 1024
	// offHeapChunk is the size of an offHeap fifo's chunks: each is a
	// mapping of its own, whose pages are all faulted in when it is made,
	// 48 of them at once for the spill's 24-byte entries (about 0.5 ms)
	// every 8,192 events. Chunks of 1,024 made every commit of a writer
	// at 10,000 events/s a mapping and six faults longer, and a backlog of
	// 100 million events 100,000 mappings, more than Linux allows a
	// process by default (vm.max_map_count, 65,530).
	offHeapChunk = 8192
)

// len is the number of queued values.
func (q *fifo[T]) len() int { return q.n }

// push appends v.
func (q *fifo[T]) push(v T) {
	k := len(q.chunks)
	if k == 0 || len(q.chunks[k-1]) == cap(q.chunks[k-1]) {
		var c []T
		switch {
		case q.offHeap:
			c = offheap.Make[T](offHeapChunk)[:0]
		case k > 0:
			c = make([]T, 0, min(2*cap(q.chunks[k-1]), maxChunk))
		default:
			c = make([]T, 0, minChunk)
		}
		q.chunks = append(q.chunks, c)
		k++
	}
	q.chunks[k-1] = append(q.chunks[k-1], v)
	q.n++
}

// front returns the first value; the queue must not be empty.
func (q *fifo[T]) front() T { return q.chunks[0][q.head] }

// appendFirst appends the first n values to dst; n <= len.
func (q *fifo[T]) appendFirst(dst []T, n int) []T {
	for i, c := range q.chunks {
		if i == 0 {
			c = c[q.head:]
		}
		if len(c) >= n {
			return append(dst, c[:n]...)
		}
		dst = append(dst, c...)
		n -= len(c)
	}
	return dst
}

// pop removes the first value; the queue must not be empty.
func (q *fifo[T]) pop() {
	var zero T
	c := q.chunks[0]
	c[q.head] = zero // the chunk no longer keeps it alive
	q.head++
	q.n--
	switch {
	case q.n == 0:
		// Keep the current chunk for the next push.
		first := c[:0]
		clear(q.chunks)
		q.chunks = append(q.chunks[:0], first)
		q.head = 0
	case q.head == len(c):
		if q.offHeap {
			offheap.Free(c)
		}
		q.chunks[0] = nil
		q.chunks = q.chunks[1:]
		q.head = 0
	}
}

// release empties the queue and gives back the chunks of an offHeap one.
func (q *fifo[T]) release() {
	if q.offHeap {
		for _, c := range q.chunks {
			offheap.Free(c)
		}
	}
	*q = fifo[T]{offHeap: q.offHeap}
}

// each calls fn for every value, front first.
func (q *fifo[T]) each(fn func(T)) {
	for i, c := range q.chunks {
		if i == 0 {
			c = c[q.head:]
		}
		for _, v := range c {
			fn(v)
		}
	}
}
