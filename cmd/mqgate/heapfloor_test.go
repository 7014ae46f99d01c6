package main

import (
	"runtime"
	"testing"
)

// TestHeapFloorDefersCollections: with a floor of 512 MiB, allocating
// 64 MiB of garbage runs no garbage collection; without it the same
// garbage runs at least one (the test binary's live heap is a few MiB, so
// Go's goal is a few MiB more).
func TestHeapFloorDefersCollections(t *testing.T) {
	if heapFloor(0) != nil {
		t.Fatal("a floor of 0 allocates")
	}
	gcs := func(floor int64) uint32 {
		runtime.GC() // start from a collection: the goal is set from the live heap now
		f := heapFloor(floor)
		runtime.GC() // the floor is live: the next goal counts it
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var sink []byte
		for range 64 {
			sink = make([]byte, 1<<20)
			sink[0] = 1
		}
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(f)
		runtime.KeepAlive(sink)
		return after.NumGC - before.NumGC
	}
	if n := gcs(0); n == 0 {
		t.Fatal("64 MiB of garbage ran no collection without a floor; the test proves nothing")
	}
	if n := gcs(512 << 20); n != 0 {
		t.Fatalf("%d collections with a 512 MiB floor, want 0", n)
	}
}
