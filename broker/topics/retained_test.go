package topics

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

// retainedTopics is the content of the store in TestRetainedMatch.
var retainedTopics = []string{
	"a", "a/", "a/b", "a/b/c", "a/c", "a//b", "b", "/", "/a",
	"$SYS/broker/uptime", "$SYS/x", "$x", "a/$x",
}

// matchAll returns the sorted topics that r.Match(filter) visits, checking
// that each comes with its own message.
func matchAll(t *testing.T, r *Retained[string], filter string) []string {
	t.Helper()
	var got []string
	r.Match(filter, func(topic, m string) bool {
		if m != "msg:"+topic {
			t.Errorf("Match(%q) gave topic %q with message %q", filter, topic, m)
		}
		got = append(got, topic)
		return true
	})
	slices.Sort(got)
	return got
}

func TestRetainedMatch(t *testing.T) {
	r := NewRetained[string]()
	for _, topic := range retainedTopics {
		r.Set(topic, "msg:"+topic)
	}
	tests := []struct {
		filter string
		want   []string
	}{
		{"a", []string{"a"}},
		{"a/b", []string{"a/b"}},
		{"a/b/c/d", nil},
		{"c", nil},
		// [MQTT-4.7.1-2] '#' matches the parent and any number of levels.
		{"a/#", []string{"a", "a/", "a//b", "a/$x", "a/b", "a/b/c", "a/c"}},
		{"a/b/#", []string{"a/b", "a/b/c"}},
		// [MQTT-4.7.2-1] '#' alone matches every topic not beginning with '$'.
		{"#", []string{"/", "/a", "a", "a/", "a//b", "a/$x", "a/b", "a/b/c", "a/c", "b"}},
		// [MQTT-4.7.1-3] '+' matches exactly one level, also an empty one.
		{"+", []string{"a", "b"}},
		{"a/+", []string{"a/", "a/$x", "a/b", "a/c"}},
		{"+/+", []string{"/", "/a", "a/", "a/$x", "a/b", "a/c"}},
		{"+/b", []string{"a/b"}},
		{"a/+/b", []string{"a//b"}},
		{"+/#", []string{"/", "/a", "a", "a/", "a//b", "a/$x", "a/b", "a/b/c", "a/c", "b"}},
		{"/", []string{"/"}},
		{"/+", []string{"/", "/a"}},
		// [MQTT-4.7.2-1] '$' topics need a filter that begins with '$'.
		{"$SYS/#", []string{"$SYS/broker/uptime", "$SYS/x"}},
		{"$SYS/+", []string{"$SYS/x"}},
		{"$SYS/+/uptime", []string{"$SYS/broker/uptime"}},
		{"$x", []string{"$x"}},
		{"+/x", nil},
		{"+/broker/uptime", nil},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			want := slices.Sorted(slices.Values(tt.want))
			if got := matchAll(t, r, tt.filter); !slices.Equal(got, want) {
				t.Errorf("Match(%q) = %q, want %q", tt.filter, got, want)
			}
		})
	}
}

func TestRetainedMatchStops(t *testing.T) {
	r := NewRetained[int]()
	for i := range 50 {
		r.Set(fmt.Sprintf("a/%d/b", i), i)
	}
	for _, filter := range []string{"#", "a/#", "a/+/b", "+/+/+"} {
		calls := 0
		r.Match(filter, func(string, int) bool {
			calls++
			return calls < 3
		})
		if calls != 3 {
			t.Errorf("Match(%q) called fn %d times after it returned false on the 3rd, want 3", filter, calls)
		}
	}
}

func TestRetainedSetGetDelete(t *testing.T) {
	r := NewRetained[string]()
	if _, ok := r.Get("a"); ok {
		t.Fatal("Get on an empty store found a message")
	}
	r.Set("a/b", "one")
	r.Set("a/b", "two") // [MQTT-3.3.1-5] the new message replaces the old one
	r.Set("a", "parent")
	if got, ok := r.Get("a/b"); !ok || got != "two" {
		t.Errorf("Get(a/b) = %q, %v; want two, true", got, ok)
	}
	if got := r.Count(); got != 2 {
		t.Errorf("Count() = %d, want 2", got)
	}
	for _, topic := range []string{"a/b/c", "a/", "b", "", "a/+"} {
		if m, ok := r.Get(topic); ok {
			t.Errorf("Get(%q) = %q, want nothing", topic, m)
		}
	}
	if r.Delete("a/b/c") || r.Delete("a/") {
		t.Error("Delete of a topic without a message reported a removal")
	}
	// [MQTT-3.3.1-6] the retained message of a topic can be removed.
	if !r.Delete("a/b") {
		t.Error("Delete(a/b) = false, want true")
	}
	if r.Delete("a/b") {
		t.Error("second Delete(a/b) = true, want false")
	}
	if _, ok := r.Get("a/b"); ok {
		t.Error("Get(a/b) found a deleted message")
	}
	if got, ok := r.Get("a"); !ok || got != "parent" {
		t.Errorf("Get(a) after deleting a/b = %q, %v; want parent, true", got, ok)
	}
	if got := r.Count(); got != 1 {
		t.Errorf("Count() = %d, want 1", got)
	}
}

func TestRetainedPrunes(t *testing.T) {
	r := NewRetained[int]()
	topics := []string{"a", "a/b", "a/b/c", "/", "//", "$SYS/x/y", "a/b/c/d/e"}
	for round := range 2 {
		for i, topic := range topics {
			r.Set(topic, i)
		}
		if got := r.Count(); got != len(topics) {
			t.Fatalf("round %d: Count() = %d, want %d", round, got, len(topics))
		}
		// Delete leaves first on one round, parents first on the other.
		order := slices.Clone(topics)
		if round == 1 {
			slices.Reverse(order)
		}
		for _, topic := range order {
			if !r.Delete(topic) {
				t.Fatalf("Delete(%q) = false", topic)
			}
		}
		if got := r.Count(); got != 0 {
			t.Errorf("Count() = %d, want 0", got)
		}
		if n := len(r.root.children); n != 0 {
			t.Errorf("round %d: %d nodes left under the root after deleting everything", round, n)
		}
	}
}

func TestRetainedConcurrent(t *testing.T) {
	// Run under -race: writers set and delete while readers match.
	r := NewRetained[int]()
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := range 300 {
				topic := fmt.Sprintf("s/%d/%d", w, i%20)
				r.Set(topic, i)
				if i%3 == 0 {
					r.Delete(topic)
				}
			}
			for i := range 20 {
				r.Delete(fmt.Sprintf("s/%d/%d", w, i))
			}
		})
	}
	for range 3 {
		wg.Go(func() {
			for range 300 {
				r.Match("s/+/#", func(topic string, _ int) bool { return topic != "" })
				_, _ = r.Get("s/1/1")
				_ = r.Count()
			}
		})
	}
	wg.Wait()
	if got := r.Count(); got != 0 {
		t.Errorf("Count() = %d, want 0", got)
	}
	if n := len(r.root.children); n != 0 {
		t.Errorf("%d nodes left under the root", n)
	}
}
