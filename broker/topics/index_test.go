package topics

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// client is a Subscriber for tests: a named session that is connected until
// told otherwise.
type client struct {
	id      string
	offline atomic.Bool
}

func newClient(id string) *client { return &client{id: id} }

func (c *client) ClientID() string { return c.id }
func (c *client) Connected() bool  { return !c.offline.Load() }

// describe renders a match result as sorted "client:filter" strings (with the
// group as "client:$share/group/filter"), so that tests ignore order.
func describe(subs []Sub) []string {
	out := make([]string, 0, len(subs))
	for _, s := range subs {
		f := s.Filter
		if s.Group != "" {
			f = "$share/" + s.Group + "/" + f
		}
		out = append(out, s.Client.ClientID()+":"+f)
	}
	slices.Sort(out)
	return out
}

func TestIndexMatch(t *testing.T) {
	tests := []struct {
		name    string
		filters []string // each subscribed by its own client, named after the filter
		topic   string
		want    []string // filters that match
	}{
		{"literal", []string{"a/b", "a/c", "a"}, "a/b", []string{"a/b"}},
		{"literal is case sensitive [MQTT-4.7.3-4]", []string{"a/B"}, "a/b", nil},
		{"no normalization [MQTT-4.7.3-4]", []string{"a/b", "a//b"}, "a//b", []string{"a//b"}},
		{"+ one level [MQTT-4.7.1-3]", []string{"a/+", "+/b", "+/+", "+"}, "a/b", []string{"+/+", "+/b", "a/+"}},
		{"+ not two levels [MQTT-4.7.1-3]", []string{"a/+"}, "a/b/c", nil},
		{"+ not zero levels [MQTT-4.7.1-3]", []string{"a/+"}, "a", nil},
		{"+ matches a single level", []string{"+"}, "a", []string{"+"}},
		{"+ matches an empty level", []string{"a/+"}, "a/", []string{"a/+"}},
		{"+/+ matches /", []string{"+/+", "+", "/", "+/"}, "/", []string{"+/", "+/+", "/"}},
		{"+ middle", []string{"a/+/c", "a/+/d"}, "a/b/c", []string{"a/+/c"}},
		{"# parent level [MQTT-4.7.1-2]", []string{"a/#"}, "a", []string{"a/#"}},
		{"# empty level [MQTT-4.7.1-2]", []string{"a/#"}, "a/", []string{"a/#"}},
		{"# many levels [MQTT-4.7.1-2]", []string{"a/#", "a/b/#", "a/b/c/#", "a/c/#"}, "a/b/c", []string{"a/#", "a/b/#", "a/b/c/#"}},
		{"# alone", []string{"#"}, "x/y/z", []string{"#"}},
		{"# not a sibling", []string{"a/#"}, "ab", nil},
		{"+ then #", []string{"+/#", "+/+/#"}, "a", []string{"+/#"}},
		{"# and + overlap", []string{"#", "+/b", "a/#", "a/b"}, "a/b", []string{"#", "+/b", "a/#", "a/b"}},
		{"$SYS not matched by # [MQTT-4.7.2-1]", []string{"#", "+/#", "+/broker"}, "$SYS/broker", nil},
		{"$SYS matched by $SYS/# [MQTT-4.7.2-1]", []string{"$SYS/#", "$SYS/+", "$SYS/broker"}, "$SYS/broker", []string{"$SYS/#", "$SYS/+", "$SYS/broker"}},
		{"$ only at first level [MQTT-4.7.2-1]", []string{"#", "a/+"}, "a/$x", []string{"#", "a/+"}},
		{"$ topic, literal filter", []string{"$x"}, "$x", []string{"$x"}},
		{"no subscriptions", nil, "a", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := NewIndex(RoundRobin)
			for _, f := range tt.filters {
				ix.Subscribe(Sub{Client: newClient(f), Filter: f})
			}
			got := describe(ix.Match(tt.topic, "pub", nil))
			want := make([]string, 0, len(tt.want))
			for _, f := range tt.want {
				want = append(want, f+":"+f)
			}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("Match(%q) = %q, want %q", tt.topic, got, want)
			}
		})
	}
}

func TestIndexMatchAppends(t *testing.T) {
	ix := NewIndex(Random)
	c := newClient("c")
	ix.Subscribe(Sub{Client: c, Filter: "a"})
	dst := []Sub{{Filter: "existing"}}
	dst = ix.Match("a", "", dst)
	if len(dst) != 2 || dst[0].Filter != "existing" || dst[1].Filter != "a" {
		t.Fatalf("Match did not append to dst: %+v", dst)
	}
}

func TestIndexShared(t *testing.T) {
	// MQTT 5 §4.8.2: a message matching shared subscriptions goes to one
	// member of each matching group, next to every non-shared subscriber.
	ix := NewIndex(RoundRobin)
	a, b, c, d := newClient("a"), newClient("b"), newClient("c"), newClient("d")
	ix.Subscribe(Sub{Client: a, Filter: "s/+", Group: "g1"})
	ix.Subscribe(Sub{Client: b, Filter: "s/+", Group: "g1"})
	ix.Subscribe(Sub{Client: c, Filter: "s/+", Group: "g2"})
	ix.Subscribe(Sub{Client: d, Filter: "s/#", Group: "g1"}) // same name, other filter: another group
	ix.Subscribe(Sub{Client: d, Filter: "s/x", Group: "$queue"})
	ix.Subscribe(Sub{Client: d, Filter: "s/x"})

	if got, want := ix.Count(), 6; got != want {
		t.Errorf("Count() = %d, want %d", got, want)
	}
	if got, want := ix.SharedCount(), 5; got != want {
		t.Errorf("SharedCount() = %d, want %d", got, want)
	}

	seen := map[string]int{}
	for range 4 {
		got := ix.Match("s/x", "p", nil)
		groups := map[string]int{}
		for _, s := range got {
			groups[s.Group+" "+s.Filter]++
			if s.Group == "g1" && s.Filter == "s/+" {
				seen[s.Client.ClientID()]++
			}
		}
		want := map[string]int{"g1 s/+": 1, "g2 s/+": 1, "g1 s/#": 1, "$queue s/x": 1, " s/x": 1}
		if fmt.Sprint(groups) != fmt.Sprint(want) {
			t.Fatalf("Match(s/x) per group = %v, want %v", groups, want)
		}
	}
	if seen["a"] != 2 || seen["b"] != 2 {
		t.Errorf("round robin over a, b in 4 messages = %v, want 2 each", seen)
	}
	if got := ix.Match("s/y/z", "p", nil); len(got) != 1 || got[0].Client != d {
		t.Errorf("Match(s/y/z) = %q, want only d's s/#", describe(got))
	}
}

func TestIndexRoundRobinInTurn(t *testing.T) {
	ix := NewIndex(RoundRobin)
	var ids []string
	for i := range 5 {
		c := newClient(fmt.Sprintf("m%d", i))
		ids = append(ids, c.id)
		ix.Subscribe(Sub{Client: c, Filter: "t", Group: "g"})
	}
	var got []string
	for range 10 {
		m := ix.Match("t", "p", nil)
		if len(m) != 1 {
			t.Fatalf("Match returned %d subscriptions, want 1", len(m))
		}
		got = append(got, m[0].Client.ClientID())
	}
	// Every member once in each window of 5, in the same order twice.
	first := slices.Clone(got[:5])
	slices.Sort(first)
	if !slices.Equal(first, ids) || !slices.Equal(got[:5], got[5:]) {
		t.Errorf("round robin order = %q, want each of %q in turn", got, ids)
	}
}

func TestIndexStrategies(t *testing.T) {
	tests := []struct {
		strategy Strategy
		// vary returns the (topic, publisher) of message i.
		vary   func(i int) (string, string)
		stable bool // same input always picks the same member
	}{
		{HashClientID, func(i int) (string, string) { return fmt.Sprintf("t/%d", i), "pub" }, true},
		{HashTopic, func(i int) (string, string) { return "t/x", fmt.Sprintf("pub%d", i) }, true},
		{Random, func(i int) (string, string) { return "t/x", "pub" }, false},
		{RoundRobin, func(i int) (string, string) { return "t/x", "pub" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.strategy.String(), func(t *testing.T) {
			ix := NewIndex(tt.strategy)
			for i := range 8 {
				ix.Subscribe(Sub{Client: newClient(fmt.Sprintf("m%d", i)), Filter: "t/+", Group: "g"})
			}
			picked := map[string]int{}
			for i := range 200 {
				topic, pub := tt.vary(i)
				m := ix.Match(topic, pub, nil)
				if len(m) != 1 {
					t.Fatalf("Match returned %d subscriptions, want 1", len(m))
				}
				picked[m[0].Client.ClientID()]++
			}
			if tt.stable && len(picked) != 1 {
				t.Errorf("%v picked %v for the same key, want one member", tt.strategy, picked)
			}
			if !tt.stable && len(picked) < 2 {
				t.Errorf("%v picked %v over 200 messages, want several members", tt.strategy, picked)
			}
		})
	}
}

func TestIndexHashSpreads(t *testing.T) {
	// Different keys spread over the members, and each key is stable.
	for _, s := range []Strategy{HashClientID, HashTopic} {
		ix := NewIndex(s)
		for i := range 4 {
			ix.Subscribe(Sub{Client: newClient(fmt.Sprintf("m%d", i)), Filter: "#", Group: "g"})
		}
		first := map[string]string{}
		members := map[string]bool{}
		for round := range 2 {
			for i := range 50 {
				key := fmt.Sprintf("k%d", i)
				m := ix.Match(key, key, nil)[0].Client.ClientID()
				members[m] = true
				if round == 0 {
					first[key] = m
				} else if first[key] != m {
					t.Errorf("%v: key %s went to %s, then %s", s, key, first[key], m)
				}
			}
		}
		if len(members) < 2 {
			t.Errorf("%v: 50 keys all went to %v", s, members)
		}
	}
}

func TestIndexPrefersConnected(t *testing.T) {
	tests := []struct {
		name    string
		offline []int // members 0..3 that are offline
		want    []int // acceptable picks
	}{
		{"all online", nil, []int{0, 1, 2, 3}},
		{"one online", []int{0, 1, 3}, []int{2}},
		{"two online", []int{1, 2}, []int{0, 3}},
		{"none online keeps the choice", []int{0, 1, 2, 3}, []int{0, 1, 2, 3}},
	}
	for _, s := range []Strategy{Random, RoundRobin, HashClientID, HashTopic} {
		for _, tt := range tests {
			t.Run(s.String()+"/"+tt.name, func(t *testing.T) {
				ix := NewIndex(s)
				var cs []*client
				for i := range 4 {
					c := newClient(fmt.Sprint(i))
					cs = append(cs, c)
					ix.Subscribe(Sub{Client: c, Filter: "t", Group: "g"})
				}
				for _, i := range tt.offline {
					cs[i].offline.Store(true)
				}
				picked := map[string]bool{}
				for i := range 40 {
					m := ix.Match("t", fmt.Sprint("p", i), nil)
					picked[m[0].Client.ClientID()] = true
				}
				for id := range picked {
					if !slices.Contains(tt.want, int(id[0]-'0')) {
						t.Errorf("picked member %s, want one of %v (picked %v)", id, tt.want, picked)
					}
				}
			})
		}
	}
}

func TestIndexPrefersNextConnected(t *testing.T) {
	// The strategy's choice, if offline, is replaced by the next connected
	// member in order, not by any connected member.
	ix := NewIndex(RoundRobin)
	var cs []*client
	for i := range 4 {
		c := newClient(fmt.Sprint(i))
		cs = append(cs, c)
		ix.Subscribe(Sub{Client: c, Filter: "t", Group: "g"})
	}
	cs[1].offline.Store(true)
	cs[2].offline.Store(true)
	var got string
	for range 4 {
		got += ix.Match("t", "", nil)[0].Client.ClientID()
	}
	if want := "0333"; got != want {
		t.Errorf("round robin with 1 and 2 offline = %s, want %s", got, want)
	}
}

func TestIndexResubscribeReplaces(t *testing.T) {
	// [MQTT-3.8.4-3] A SUBSCRIBE with a filter identical to an existing
	// subscription of the session replaces it; the options are updated and
	// there is still one subscription.
	tests := []struct {
		name  string
		group string
	}{
		{"non-shared", ""},
		{"shared", "g"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := NewIndex(RoundRobin)
			c, other := newClient("c"), newClient("other")
			ix.Subscribe(Sub{Client: other, Filter: "a/+", Group: tt.group, QoS: 0})
			if ix.Subscribe(Sub{Client: c, Filter: "a/+", Group: tt.group, QoS: 0}) {
				t.Fatal("first Subscribe reported a replacement")
			}
			upd := Sub{Client: c, Filter: "a/+", Group: tt.group, QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2, ID: 7}
			if !ix.Subscribe(upd) {
				t.Fatal("second Subscribe did not report a replacement")
			}
			if got := ix.Count(); got != 2 {
				t.Errorf("Count() = %d, want 2", got)
			}
			if got := ix.Subscriptions(c); len(got) != 1 || got[0] != upd {
				t.Errorf("Subscriptions(c) = %+v, want [%+v]", got, upd)
			}
			found := false
			for range 2 {
				for _, s := range ix.Match("a/b", "", nil) {
					if s.Client == c {
						found = true
						if s != upd {
							t.Errorf("Match returned %+v, want %+v", s, upd)
						}
					}
				}
			}
			if !found {
				t.Error("Match never returned c's subscription")
			}
		})
	}
}

func TestIndexDistinctSubscriptions(t *testing.T) {
	// The same client may hold a non-shared and shared subscriptions to the
	// same filter: they are distinct subscriptions.
	ix := NewIndex(Random)
	c := newClient("c")
	for _, g := range []string{"", "g1", "g2", "$queue"} {
		if ix.Subscribe(Sub{Client: c, Filter: "a", Group: g}) {
			t.Errorf("Subscribe(group %q) reported a replacement", g)
		}
	}
	if got := ix.Count(); got != 4 {
		t.Errorf("Count() = %d, want 4", got)
	}
	if got := len(ix.Match("a", "", nil)); got != 4 {
		t.Errorf("len(Match) = %d, want 4", got)
	}
}

func TestIndexUnsubscribe(t *testing.T) {
	tests := []struct {
		name          string
		filter, group string
		want          bool
		left          []string // what still matches "a/b"
	}{
		{"non-shared", "a/b", "", true, []string{"c:#", "c:$share/g/a/b", "c:a/+", "d:a/b"}},
		{"shared", "a/b", "g", true, []string{"c:#", "c:a/+", "c:a/b", "d:a/b"}},
		{"wildcard", "a/+", "", true, []string{"c:#", "c:$share/g/a/b", "c:a/b", "d:a/b"}},
		{"unknown filter", "a/c", "", false, []string{"c:#", "c:$share/g/a/b", "c:a/+", "c:a/b", "d:a/b"}},
		{"unknown group", "a/b", "h", false, []string{"c:#", "c:$share/g/a/b", "c:a/+", "c:a/b", "d:a/b"}},
		// [MQTT-4.7.3-4] Filters are compared character by character.
		{"not normalized", "a//b", "", false, []string{"c:#", "c:$share/g/a/b", "c:a/+", "c:a/b", "d:a/b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := NewIndex(Random)
			c, d := newClient("c"), newClient("d")
			for _, s := range []Sub{
				{Client: c, Filter: "a/b"}, {Client: c, Filter: "a/+"}, {Client: c, Filter: "#"},
				{Client: c, Filter: "a/b", Group: "g"}, {Client: d, Filter: "a/b"},
			} {
				ix.Subscribe(s)
			}
			if got := ix.Unsubscribe(c, tt.filter, tt.group); got != tt.want {
				t.Errorf("Unsubscribe(%q, %q) = %v, want %v", tt.filter, tt.group, got, tt.want)
			}
			if got := describe(ix.Match("a/b", "", nil)); !slices.Equal(got, tt.left) {
				t.Errorf("after Unsubscribe, Match = %q, want %q", got, tt.left)
			}
			if got := ix.Unsubscribe(c, tt.filter, tt.group); got {
				t.Error("second Unsubscribe reported a removal")
			}
		})
	}
}

func TestIndexUnsubscribeAll(t *testing.T) {
	ix := NewIndex(RoundRobin)
	c, d := newClient("c"), newClient("d")
	for _, f := range []string{"a", "a/b", "a/+", "#", "+/b"} {
		ix.Subscribe(Sub{Client: c, Filter: f})
		ix.Subscribe(Sub{Client: d, Filter: f})
	}
	ix.Subscribe(Sub{Client: c, Filter: "a/b", Group: "g"})
	ix.Subscribe(Sub{Client: d, Filter: "a/b", Group: "g"})

	if got := ix.UnsubscribeAll(c); got != 6 {
		t.Errorf("UnsubscribeAll(c) = %d, want 6", got)
	}
	if got := ix.UnsubscribeAll(c); got != 0 {
		t.Errorf("second UnsubscribeAll(c) = %d, want 0", got)
	}
	if got := ix.Subscriptions(c); len(got) != 0 {
		t.Errorf("Subscriptions(c) = %+v, want none", got)
	}
	if got, want := ix.Count(), 6; got != want {
		t.Errorf("Count() = %d, want %d", got, want)
	}
	if got, want := ix.SharedCount(), 1; got != want {
		t.Errorf("SharedCount() = %d, want %d", got, want)
	}
	for range 3 {
		for _, s := range ix.Match("a/b", "", nil) {
			if s.Client == c {
				t.Fatalf("Match returned a subscription of c after UnsubscribeAll: %+v", s)
			}
		}
	}
	if got := ix.UnsubscribeAll(d); got != 6 {
		t.Errorf("UnsubscribeAll(d) = %d, want 6", got)
	}
	assertEmpty(t, ix)
}

// assertEmpty fails unless ix holds nothing: no subscriptions, no owners and
// no trie nodes below the root.
func assertEmpty(t *testing.T, ix *Index) {
	t.Helper()
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.count != 0 || ix.shared != 0 || ix.routes != 0 {
		t.Errorf("count = %d, shared = %d, routes = %d, want 0", ix.count, ix.shared, ix.routes)
	}
	if len(ix.clients) != 0 {
		t.Errorf("%d clients left in the index", len(ix.clients))
	}
	r := &ix.root
	if len(r.children) != 0 || r.plus != nil || r.hash != nil || len(r.subs) != 0 || len(r.groups) != 0 {
		t.Errorf("trie not pruned: root has %d children, plus %v, hash %v", len(r.children), r.plus != nil, r.hash != nil)
	}
}

func TestIndexPrunesAfterChurn(t *testing.T) {
	ix := NewIndex(RoundRobin)
	var cs []*client
	for i := range 20 {
		cs = append(cs, newClient(fmt.Sprint("c", i)))
	}
	filters := []string{"a", "a/b", "a/b/c", "a/+/c", "+/+", "#", "a/#", "/", "//", "$SYS/#", "x/y/z/w"}
	for round := range 3 {
		for i, c := range cs {
			for j, f := range filters {
				group := ""
				if (i+j)%3 == 0 {
					group = fmt.Sprint("g", j%2)
				}
				ix.Subscribe(Sub{Client: c, Filter: f, Group: group})
			}
		}
		if got, want := ix.Count(), len(cs)*len(filters); got != want {
			t.Fatalf("round %d: Count() = %d, want %d", round, got, want)
		}
		// Remove half one by one, the rest all at once.
		for i, c := range cs {
			if i%2 == 0 {
				for _, s := range ix.Subscriptions(c) {
					if !ix.Unsubscribe(c, s.Filter, s.Group) {
						t.Fatalf("Unsubscribe(%s, %q, %q) = false", c.id, s.Filter, s.Group)
					}
				}
			} else if got := ix.UnsubscribeAll(c); got != len(filters) {
				t.Fatalf("UnsubscribeAll(%s) = %d, want %d", c.id, got, len(filters))
			}
		}
		assertEmpty(t, ix)
	}
}

func TestIndexRoutesAndSubscriptions(t *testing.T) {
	ix := NewIndex(Random)
	c, d := newClient("c"), newClient("d")
	ix.Subscribe(Sub{Client: c, Filter: "b/+", QoS: 1})
	ix.Subscribe(Sub{Client: c, Filter: "a/#", Group: "g", QoS: 2})
	ix.Subscribe(Sub{Client: c, Filter: "a/#", QoS: 0})
	ix.Subscribe(Sub{Client: d, Filter: "b/+"})
	ix.Subscribe(Sub{Client: d, Filter: "$SYS/x", Group: "$queue"})
	ix.Subscribe(Sub{Client: d, Filter: "#"})

	if got, want := ix.Routes(), []string{"#", "$SYS/x", "a/#", "b/+"}; !slices.Equal(got, want) {
		t.Errorf("Routes() = %q, want %q", got, want)
	}
	if got := ix.RouteCount(); got != 4 {
		t.Errorf("RouteCount() = %d, want 4", got)
	}
	ix.Unsubscribe(c, "a/#", "")
	if got := ix.RouteCount(); got != 4 {
		t.Errorf("RouteCount() after removing one of two a/# = %d, want 4", got)
	}
	ix.Unsubscribe(c, "a/#", "g")
	if got := ix.RouteCount(); got != 3 {
		t.Errorf("RouteCount() after removing the last a/# = %d, want 3", got)
	}
	ix.Subscribe(Sub{Client: c, Filter: "a/#", Group: "g", QoS: 2})
	ix.Subscribe(Sub{Client: c, Filter: "a/#", QoS: 0})
	got := ix.Subscriptions(c)
	want := []Sub{
		{Client: c, Filter: "a/#", QoS: 0},
		{Client: c, Filter: "a/#", Group: "g", QoS: 2},
		{Client: c, Filter: "b/+", QoS: 1},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Subscriptions(c) = %+v, want %+v", got, want)
	}
	if got := ix.Subscriptions(newClient("nobody")); len(got) != 0 {
		t.Errorf("Subscriptions(unknown) = %+v, want none", got)
	}
	ix.UnsubscribeAll(c)
	ix.UnsubscribeAll(d)
	if got := ix.Routes(); len(got) != 0 {
		t.Errorf("Routes() after UnsubscribeAll = %q, want none", got)
	}
}

func TestParseStrategy(t *testing.T) {
	tests := []struct {
		in      string
		want    Strategy
		wantErr bool
	}{
		{"random", Random, false},
		{"round_robin", RoundRobin, false},
		{"hash_clientid", HashClientID, false},
		{"hash_topic", HashTopic, false},
		{"sticky", Random, true},
		{"", Random, true},
		{"Random", Random, true},
	}
	for _, tt := range tests {
		got, err := ParseStrategy(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseStrategy(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrUnknownStrategy) {
			t.Errorf("ParseStrategy(%q) error %v does not wrap ErrUnknownStrategy", tt.in, err)
		}
		if err == nil && got.String() != tt.in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), tt.in)
		}
	}
}

func TestIndexConcurrent(t *testing.T) {
	// Run under -race: writers churn subscriptions while readers match.
	ix := NewIndex(RoundRobin)
	const writers, readers, rounds = 4, 4, 200
	filters := []string{"s/+/t", "s/#", "s/1/t", "+/+/+", "#", "$SYS/#"}
	var wg sync.WaitGroup
	var matched atomic.Int64
	for w := range writers {
		wg.Go(func() {
			c := newClient(fmt.Sprint("w", w))
			for i := range rounds {
				f := filters[i%len(filters)]
				group := ""
				if i%3 == 0 {
					group = "g"
				}
				ix.Subscribe(Sub{Client: c, Filter: f, Group: group, QoS: byte(i % 3)})
				if i%5 == 0 {
					ix.Unsubscribe(c, f, group)
				}
				if i%50 == 49 {
					ix.UnsubscribeAll(c)
				}
				_ = ix.Routes()
				_ = ix.Subscriptions(c)
			}
			ix.UnsubscribeAll(c)
		})
	}
	for r := range readers {
		wg.Go(func() {
			var dst []Sub
			for i := range rounds {
				dst = ix.Match(fmt.Sprintf("s/%d/t", i%3), fmt.Sprint("r", r), dst[:0])
				for _, s := range dst {
					if !strings.HasPrefix(s.Client.ClientID(), "w") {
						t.Errorf("Match returned a foreign subscription %+v", s)
					}
				}
				matched.Add(int64(len(dst)))
				_ = ix.Count()
			}
		})
	}
	wg.Wait()
	assertEmpty(t, ix)
}
