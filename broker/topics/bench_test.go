package topics

import (
	"fmt"
	"strconv"
	"testing"
)

// sensorIndex returns an index with n subscriptions "sensor/<i>/temp", each of
// its own client, plus 10 subscriptions to "sensor/+/temp" and 10 to
// "sensor/#".
func sensorIndex(b *testing.B, s Strategy, n int) *Index {
	b.Helper()
	ix := NewIndex(s)
	for i := range n {
		ix.Subscribe(Sub{Client: newClient("c" + strconv.Itoa(i)), Filter: "sensor/" + strconv.Itoa(i) + "/temp", QoS: 1})
	}
	for i := range 10 {
		ix.Subscribe(Sub{Client: newClient("plus" + strconv.Itoa(i)), Filter: "sensor/+/temp"})
		ix.Subscribe(Sub{Client: newClient("hash" + strconv.Itoa(i)), Filter: "sensor/#"})
	}
	return ix
}

// benchMatch matches topic repeatedly, reusing the destination slice, and
// fails if the number of results is not want.
func benchMatch(b *testing.B, ix *Index, topic string, want int) {
	b.Helper()
	dst := ix.Match(topic, "publisher", nil)
	if len(dst) != want {
		b.Fatalf("Match(%q) returned %d subscriptions, want %d", topic, len(dst), want)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		dst = ix.Match(topic, "publisher", dst[:0])
	}
}

func BenchmarkIndexMatch(b *testing.B) {
	ix := sensorIndex(b, Random, 10_000)
	b.Run("literal", func(b *testing.B) { benchMatch(b, ix, "sensor/5000/temp", 21) })
	b.Run("wildcards_only", func(b *testing.B) { benchMatch(b, ix, "sensor/x/temp", 20) })
	b.Run("hash_only", func(b *testing.B) { benchMatch(b, ix, "sensor/5000/humidity", 10) })
	b.Run("no_match", func(b *testing.B) { benchMatch(b, ix, "actuator/5000/temp", 0) })
	b.Run("deep", func(b *testing.B) { benchMatch(b, ix, "sensor/5000/temp/a/b/c/d/e", 10) })
}

func BenchmarkIndexMatchFanout(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprint("subscribers=", n), func(b *testing.B) {
			ix := sensorIndex(b, Random, 10_000)
			for i := range n {
				ix.Subscribe(Sub{Client: newClient("fan" + strconv.Itoa(i)), Filter: "sensor/fan/temp"})
			}
			benchMatch(b, ix, "sensor/fan/temp", n+20)
		})
	}
}

func BenchmarkIndexMatchShared(b *testing.B) {
	for _, s := range []Strategy{Random, RoundRobin, HashClientID, HashTopic} {
		b.Run(s.String(), func(b *testing.B) {
			ix := sensorIndex(b, s, 10_000)
			for i := range 100 {
				ix.Subscribe(Sub{Client: newClient("w" + strconv.Itoa(i)), Filter: "sensor/+/temp", Group: "workers"})
			}
			benchMatch(b, ix, "sensor/5000/temp", 22)
		})
	}
}

func BenchmarkIndexMatchParallel(b *testing.B) {
	// Every goroutine matches 1000 distinct literal topics; the figure is
	// wall time per Match with all cores busy.
	ix := sensorIndex(b, RoundRobin, 10_000)
	for i := range 10 {
		ix.Subscribe(Sub{Client: newClient("w" + strconv.Itoa(i)), Filter: "sensor/+/temp", Group: "workers"})
	}
	topics := make([]string, 1000)
	for i := range topics {
		topics[i] = "sensor/" + strconv.Itoa(i*7) + "/temp"
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var dst []Sub
		i := 0
		for pb.Next() {
			dst = ix.Match(topics[i%len(topics)], "publisher", dst[:0])
			i++
		}
	})
}

func BenchmarkIndexMatchSerial(b *testing.B) {
	// The same work as BenchmarkIndexMatchParallel on one goroutine.
	ix := sensorIndex(b, RoundRobin, 10_000)
	for i := range 10 {
		ix.Subscribe(Sub{Client: newClient("w" + strconv.Itoa(i)), Filter: "sensor/+/temp", Group: "workers"})
	}
	topics := make([]string, 1000)
	for i := range topics {
		topics[i] = "sensor/" + strconv.Itoa(i*7) + "/temp"
	}
	b.ReportAllocs()
	var dst []Sub
	i := 0
	for b.Loop() {
		dst = ix.Match(topics[i%len(topics)], "publisher", dst[:0])
		i++
	}
}

func BenchmarkIndexChurn(b *testing.B) {
	// Subscribe and unsubscribe one filter in an index of 10k subscriptions:
	// the node path is created and pruned each time.
	ix := sensorIndex(b, Random, 10_000)
	c := newClient("churn")
	b.ReportAllocs()
	for b.Loop() {
		ix.Subscribe(Sub{Client: c, Filter: "sensor/churn/temp"})
		ix.Unsubscribe(c, "sensor/churn/temp", "")
	}
}

func BenchmarkIndexChurnShared(b *testing.B) {
	ix := sensorIndex(b, Random, 10_000)
	c := newClient("churn")
	ix.Subscribe(Sub{Client: newClient("stays"), Filter: "sensor/+/temp", Group: "g"})
	b.ReportAllocs()
	for b.Loop() {
		ix.Subscribe(Sub{Client: c, Filter: "sensor/+/temp", Group: "g"})
		ix.Unsubscribe(c, "sensor/+/temp", "g")
	}
}

func BenchmarkIndexSubscribe(b *testing.B) {
	// Build an index of 10k distinct filters from empty, per operation.
	filters := make([]string, 10_000)
	clients := make([]*client, len(filters))
	for i := range filters {
		filters[i] = "sensor/" + strconv.Itoa(i) + "/temp"
		clients[i] = newClient("c" + strconv.Itoa(i))
	}
	b.ReportAllocs()
	for b.Loop() {
		ix := NewIndex(Random)
		for i, f := range filters {
			ix.Subscribe(Sub{Client: clients[i], Filter: f})
		}
	}
}

// sensorRetained returns a store with n topics "sensor/<i>/temp" and n topics
// "sensor/<i>/humidity".
func sensorRetained(b *testing.B, n int) *Retained[int] {
	b.Helper()
	r := NewRetained[int]()
	for i := range n {
		r.Set("sensor/"+strconv.Itoa(i)+"/temp", i)
		r.Set("sensor/"+strconv.Itoa(i)+"/humidity", i)
	}
	return r
}

func BenchmarkRetainedMatch(b *testing.B) {
	r := sensorRetained(b, 100_000)
	for _, tt := range []struct {
		filter string
		want   int
	}{
		{"sensor/+/temp", 100_000},
		{"sensor/77/temp", 1},
		{"sensor/77/#", 2},
	} {
		b.Run(tt.filter, func(b *testing.B) {
			n := 0
			count := func(string, int) bool { n++; return true }
			r.Match(tt.filter, count)
			if n != tt.want {
				b.Fatalf("Match(%q) visited %d topics, want %d", tt.filter, n, tt.want)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				r.Match(tt.filter, count)
			}
		})
	}
}

func BenchmarkRetainedSetDelete(b *testing.B) {
	r := sensorRetained(b, 100_000)
	b.ReportAllocs()
	for b.Loop() {
		r.Set("sensor/new/temp", 1)
		r.Delete("sensor/new/temp")
	}
}

func BenchmarkRetainedGet(b *testing.B) {
	r := sensorRetained(b, 100_000)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := r.Get("sensor/77777/temp"); !ok {
			b.Fatal("Get found nothing")
		}
	}
}
