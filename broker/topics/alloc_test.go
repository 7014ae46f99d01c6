//go:build !race

package topics

import (
	"strconv"
	"testing"
)

func TestMatchDoesNotAllocate(t *testing.T) {
	// Match must not allocate once dst has grown, whatever the strategy.
	for _, s := range []Strategy{Random, RoundRobin, HashClientID, HashTopic} {
		ix := NewIndex(s)
		for i := range 100 {
			id := strconv.Itoa(i)
			ix.Subscribe(Sub{Client: newClient("c" + id), Filter: "sensor/" + id + "/temp"})
			ix.Subscribe(Sub{Client: newClient("w" + id), Filter: "sensor/+/temp", Group: "g"})
		}
		ix.Subscribe(Sub{Client: newClient("all"), Filter: "#"})
		ix.Subscribe(Sub{Client: newClient("sensors"), Filter: "sensor/#", Group: "$queue"})
		dst := ix.Match("sensor/7/temp", "pub", nil)
		if len(dst) != 4 {
			t.Fatalf("%v: Match returned %d subscriptions, want 4", s, len(dst))
		}
		allocs := testing.AllocsPerRun(100, func() {
			dst = ix.Match("sensor/7/temp", "pub", dst[:0])
		})
		if allocs != 0 {
			t.Errorf("%v: Match allocated %v times per call, want 0", s, allocs)
		}
	}
}

func TestRetainedMatchDoesNotAllocate(t *testing.T) {
	r := NewRetained[int]()
	for i := range 100 {
		r.Set("sensor/"+strconv.Itoa(i)+"/temp", i)
	}
	sum := 0
	fn := func(_ string, m int) bool { sum += m; return true }
	allocs := testing.AllocsPerRun(100, func() {
		r.Match("sensor/+/temp", fn)
		r.Match("sensor/#", fn)
	})
	if allocs != 0 {
		t.Errorf("Retained.Match allocated %v times per call, want 0", allocs)
	}
}
