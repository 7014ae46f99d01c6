package topics

import (
	"slices"
	"strings"
	"testing"
)

// refMatch is the reference matcher: it splits the filter and the topic name
// on '/' and compares them level by level, as the specification words it.
func refMatch(filter, topic string) bool {
	// [MQTT-4.7.2-1]
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	fl, tl := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fl {
		if f == "#" {
			return true // [MQTT-4.7.1-2] the parent level and any below it
		}
		if i >= len(tl) {
			return false
		}
		if f != "+" && f != tl[i] {
			return false
		}
	}
	return len(fl) == len(tl)
}

func TestRefMatch(t *testing.T) {
	// The reference must itself be right for the fuzz test to mean anything.
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"a/#", "a", true}, {"a/#", "a/", true}, {"a/#", "a/b/c", true}, {"a/#", "b", false},
		{"+", "a", true}, {"+", "a/b", false}, {"+/+", "/", true}, {"+", "/", false},
		{"#", "$SYS/x", false}, {"+/x", "$SYS/x", false}, {"$SYS/#", "$SYS/x", true},
		{"a/+/c", "a//c", true}, {"a", "a/", false},
	}
	for _, tt := range tests {
		if got := refMatch(tt.filter, tt.topic); got != tt.want {
			t.Errorf("refMatch(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
		}
	}
}

// byteSource hands out the fuzz input one byte at a time, then zeros.
type byteSource []byte

func (b *byteSource) next(n int) int {
	if len(*b) == 0 {
		return 0
	}
	v := int((*b)[0])
	*b = (*b)[1:]
	return v % n
}

// build returns 1 to 4 levels drawn from alphabet, joined with '/'. '#' is
// only kept as the last level.
func (b *byteSource) build(alphabet []string) string {
	n := 1 + b.next(4)
	levels := make([]string, n)
	for i := range levels {
		levels[i] = alphabet[b.next(len(alphabet))]
		if levels[i] == "#" && i != n-1 {
			levels[i] = "+"
		}
	}
	return strings.Join(levels, "/")
}

func FuzzIndexMatch(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 0, 1, 2, 5, 4, 2, 1, 3, 3, 3, 1, 0, 2})
	f.Add([]byte("#+a/b/$x//+/#"))
	f.Add([]byte{11, 3, 4, 4, 4, 5, 0, 5, 1, 2, 2, 4, 1, 1, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add([]byte{7, 1, 5, 2, 4, 5, 3, 2, 2, 3, 0, 1, 2, 3, 0, 0, 0, 0, 3, 3, 3, 2, 1, 0, 2, 2, 2, 1, 1, 1})

	filterAlphabet := []string{"a", "b", "$x", "", "+", "#"}
	topicAlphabet := []string{"a", "b", "$x", ""}

	f.Fuzz(func(t *testing.T, data []byte) {
		src := byteSource(data)
		filters := make([]string, 1+src.next(12))
		for i := range filters {
			filters[i] = src.build(filterAlphabet)
		}
		topics := make([]string, 1+src.next(12))
		for i := range topics {
			topics[i] = src.build(topicAlphabet)
		}

		// Three clients share the filters, so that some subscriptions are
		// replaced; every filter is also subscribed in a shared group.
		clients := []*client{newClient("c0"), newClient("c1"), newClient("c2")}
		ix := NewIndex(RoundRobin)
		want := map[string]bool{} // "client:filter" of the non-shared subscriptions
		groups := map[string]bool{}
		for i, filter := range filters {
			c := clients[i%len(clients)]
			ix.Subscribe(Sub{Client: c, Filter: filter, QoS: byte(i % 3)})
			ix.Subscribe(Sub{Client: c, Filter: filter, Group: "g"})
			want[c.id+":"+filter] = true
			groups[filter] = true
		}
		check := func(stage string) {
			t.Helper()
			for _, topic := range topics {
				var wantSubs []string
				wantGroups := 0
				for key := range want {
					if refMatch(key[strings.IndexByte(key, ':')+1:], topic) {
						wantSubs = append(wantSubs, key)
					}
				}
				for filter := range groups {
					if refMatch(filter, topic) {
						wantGroups++
					}
				}
				slices.Sort(wantSubs)
				var gotSubs []string
				gotGroups := 0
				for _, s := range ix.Match(topic, "p", nil) {
					if s.Group != "" {
						gotGroups++
						continue
					}
					gotSubs = append(gotSubs, s.Client.ClientID()+":"+s.Filter)
				}
				slices.Sort(gotSubs)
				if !slices.Equal(gotSubs, wantSubs) || gotGroups != wantGroups {
					t.Fatalf("%s: Match(%q) = %q and %d groups, want %q and %d groups (filters %q)",
						stage, topic, gotSubs, gotGroups, wantSubs, wantGroups, filters)
				}
			}
		}
		check("subscribed")

		// Remove some subscriptions and check again.
		for i, filter := range filters {
			if src.next(2) == 0 {
				continue
			}
			c := clients[i%len(clients)]
			ix.Unsubscribe(c, filter, "")
			delete(want, c.id+":"+filter)
		}
		check("after unsubscribe")
		for _, c := range clients {
			ix.UnsubscribeAll(c)
		}
		assertEmpty(t, ix)

		// The retained store answers the same question the other way round.
		r := NewRetained[string]()
		for _, topic := range topics {
			r.Set(topic, topic)
		}
		for _, filter := range filters {
			var wantTopics []string
			for _, topic := range topics {
				if refMatch(filter, topic) && !slices.Contains(wantTopics, topic) {
					wantTopics = append(wantTopics, topic)
				}
			}
			slices.Sort(wantTopics)
			var gotTopics []string
			r.Match(filter, func(topic, m string) bool {
				if m != topic {
					t.Fatalf("Retained.Match(%q) gave %q with message %q", filter, topic, m)
				}
				gotTopics = append(gotTopics, topic)
				return true
			})
			slices.Sort(gotTopics)
			if !slices.Equal(gotTopics, wantTopics) {
				t.Fatalf("Retained.Match(%q) = %q, want %q (topics %q)", filter, gotTopics, wantTopics, topics)
			}
		}
		for _, topic := range topics {
			r.Delete(topic)
		}
		if n := r.Count(); n != 0 || len(r.root.children) != 0 {
			t.Fatalf("retained store not empty after deleting every topic: count %d, %d root nodes", n, len(r.root.children))
		}
	})
}
