package webhook

import (
	"bytes"
	"fmt"
	"testing"
)

// TestHoldKeptBlocks: the bodies of a commit's new jobs are held in shared
// blocks of at most maxBodyBlock (or one body), counted in the memory
// count until the last job of a block is released; a body over the budget,
// or for an endpoint that is down, is not held unless it must be.
func TestHoldKeptBlocks(t *testing.T) {
	up, down := &endpoint{}, &endpoint{}
	down.down.Store(true)
	mk := func(ep *endpoint, n int, fill byte) item {
		return item{j: &job{ep: ep}, body: bytes.Repeat([]byte{fill}, n), ep: ep}
	}
	d := &Dispatcher{o: Options{MaxMemory: 1 << 20}}
	kept := []item{
		mk(up, 100, 'a'), mk(down, 50, 'b'), {body: []byte("spilled, no job")}, mk(up, 40<<10, 'c'),
		mk(up, 40<<10, 'd'), mk(up, 200<<10, 'e'), mk(up, 10, 'f'),
	}
	d.holdKept(kept, false)
	want := int64(100 + 40<<10 + 40<<10 + 200<<10 + 10)
	if d.mem != want {
		t.Fatalf("memory %d, want %d", d.mem, want)
	}
	for i, it := range kept {
		switch {
		case it.j == nil:
		case it.ep == down:
			if it.j.body != nil || it.j.blk != nil {
				t.Fatalf("item %d: the body of a down endpoint's job is held", i)
			}
		case !bytes.Equal(it.j.body, it.body) || it.j.blk == nil || cap(it.j.body) != len(it.body):
			t.Fatalf("item %d: held body %d bytes (cap %d), want its %d", i, len(it.j.body), cap(it.j.body), len(it.body))
		}
	}
	// Blocks: a and c (40 KB + 100), d alone (d would make 80 KB), e
	// alone (over the limit), f.
	blocks := map[*bodyBlock][]int{}
	for i, it := range kept {
		if it.j != nil && it.j.blk != nil {
			blocks[it.j.blk] = append(blocks[it.j.blk], i)
		}
	}
	if got := fmt.Sprint(blocks[kept[0].j.blk], blocks[kept[4].j.blk], blocks[kept[5].j.blk], blocks[kept[6].j.blk]); got != "[0 3] [4] [5] [6]" {
		t.Fatalf("blocks %s", got)
	}
	// A block stays counted until its last job goes.
	d.release(kept[0].j)
	if d.mem != want {
		t.Fatalf("memory %d after releasing one job of a block, want %d", d.mem, want)
	}
	d.release(kept[0].j) // twice: counted once
	d.release(kept[3].j)
	if want -= 100 + 40<<10; d.mem != want {
		t.Fatalf("memory %d after releasing a block, want %d", d.mem, want)
	}
	for _, i := range []int{1, 4, 5, 6} {
		d.release(kept[i].j)
	}
	if d.mem != 0 {
		t.Fatalf("memory %d after releasing every job, want 0", d.mem)
	}

	// Over the budget: held only when it must be (the commit failed).
	d.o.MaxMemory = 150
	kept = []item{mk(up, 100, 'a'), mk(up, 100, 'b'), mk(down, 100, 'c')}
	d.holdKept(kept, false)
	if d.mem != 100 || kept[1].j.body != nil {
		t.Fatalf("memory %d over a budget of 150, second body held: %v", d.mem, kept[1].j.body != nil)
	}
	kept = []item{mk(up, 100, 'a'), mk(down, 100, 'c')}
	d.holdKept(kept, true)
	if d.mem != 300 || kept[1].j.body == nil {
		t.Fatalf("must: memory %d, want 300, down endpoint's body held: %v", d.mem, kept[1].j.body != nil)
	}
}

// TestHold: a job loaded from the outbox holds its body in a block of its
// own, counted until the job is released, and only within the budget and
// for an endpoint that is up.
func TestHold(t *testing.T) {
	up, down := &endpoint{}, &endpoint{}
	down.down.Store(true)
	d := &Dispatcher{o: Options{MaxMemory: 150}}
	a, b, c := &job{ep: up}, &job{ep: up}, &job{ep: down}
	d.hold(a, bytes.Repeat([]byte{'a'}, 100))
	d.hold(b, bytes.Repeat([]byte{'b'}, 100)) // over the budget
	d.hold(c, []byte("c"))
	if d.mem != 100 || len(a.body) != 100 || a.blk == nil || b.body != nil || c.body != nil {
		t.Fatalf("memory %d; held: a %v, b %v, c %v", d.mem, a.body != nil, b.body != nil, c.body != nil)
	}
	d.release(a)
	d.release(b)
	d.release(c)
	if d.mem != 0 {
		t.Fatalf("memory %d after releasing every job, want 0", d.mem)
	}
}
