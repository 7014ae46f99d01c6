package acl

import (
	"strings"
	"testing"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/mqtt"
)

func TestCovers(t *testing.T) {
	tests := []struct {
		rule, filter string
		want         bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/+", true},
		// A rule on a/+ must not grant a/#, which also matches a/b/c.
		{"a/+", "a/#", false},
		{"a/#", "a/#", true},
		{"a/#", "a/b/c", true},
		{"a/#", "a/+/c", true},
		// [MQTT-4.7.1-2] a/# also matches its parent level a.
		{"a/#", "a", true},
		{"a", "a/#", false},
		{"#", "a/#", true},
		{"#", "#", true},
		{"+", "#", false},
		{"+/+", "+/#", false},
		{"a/b", "a/+", false},
		{"a/b/c", "a/b", false},
		{"a/b", "a/b/c", false},
		// [MQTT-4.7.2-1] leading wildcards do not match $ topics.
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/broker/+", true},
		{"#", "+/x", true},
		{"a//b", "a//b", true},
		{"a/+/b", "a//b", true},
	}
	for _, tt := range tests {
		if got := Covers(tt.rule, tt.filter); got != tt.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", tt.rule, tt.filter, got, tt.want)
		}
		if ref := refCovers(tt.rule, tt.filter); ref != tt.want {
			t.Errorf("reference Covers(%q, %q) = %v, want %v", tt.rule, tt.filter, ref, tt.want)
		}
	}
}

func TestOverlaps(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"secret/#", "#", true},
		{"secret/#", "+/x", true},
		{"secret/#", "public/#", false},
		{"a/+/c", "a/b/+", true},
		{"a/+", "a/b/c", false},
		// [MQTT-4.7.1-2] the parent level.
		{"a/#", "a", true},
		{"a", "+/#", true},
		// [MQTT-4.7.2-1]
		{"$SYS/#", "#", false},
		{"$SYS/#", "+/broker", false},
		{"$SYS/#", "$SYS/+", true},
	}
	for _, tt := range tests {
		for _, p := range [][2]string{{tt.a, tt.b}, {tt.b, tt.a}} {
			if got := Overlaps(p[0], p[1]); got != tt.want {
				t.Errorf("Overlaps(%q, %q) = %v, want %v", p[0], p[1], got, tt.want)
			}
			if ref := refOverlaps(p[0], p[1]); ref != tt.want {
				t.Errorf("reference Overlaps(%q, %q) = %v, want %v", p[0], p[1], ref, tt.want)
			}
		}
	}
}

func TestExpand(t *testing.T) {
	tests := []struct {
		filter, user, client string
		want                 string
		ok                   bool
	}{
		{"a/b", "", "", "a/b", true},
		{"users/%u/#", "alice", "c1", "users/alice/#", true},
		{"clients/%c/%u", "alice", "c1", "clients/c1/alice", true},
		{"users/%u/#", "", "c1", "", false},
		{"clients/%c", "alice", "", "", false},
		// A username holding a wildcard or a separator would widen the rule.
		{"users/%u/#", "+", "c1", "", false},
		{"users/%u/#", "#", "c1", "", false},
		{"users/%u/#", "a/b", "c1", "", false},
	}
	for _, tt := range tests {
		got, ok := Expand(tt.filter, tt.user, tt.client)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Expand(%q, %q, %q) = %q, %v; want %q, %v", tt.filter, tt.user, tt.client, got, ok, tt.want, tt.ok)
		}
	}
}

func TestRuleApplies(t *testing.T) {
	tests := []struct {
		action access.Action
		deny   bool
		rule   string
		topic  string
		want   bool
	}{
		{access.Publish, false, "a/+", "a/b", true},
		{access.Publish, false, "a/#", "a", true}, // [MQTT-4.7.1-2]
		{access.Publish, false, "#", "$SYS/x", false},
		{access.Subscribe, false, "a/+", "a/#", false},
		{access.Subscribe, true, "a/secret", "a/#", true},
		{access.Subscribe, false, "a/secret", "a/#", false},
	}
	for _, tt := range tests {
		if got := RuleApplies(tt.action, tt.deny, tt.rule, tt.topic); got != tt.want {
			t.Errorf("RuleApplies(%v, deny=%v, %q, %q) = %v, want %v", tt.action, tt.deny, tt.rule, tt.topic, got, tt.want)
		}
	}
}

// candidates returns every topic name of at most max levels over the
// levels of the given filters plus two fresh ones (one a '$' level): a
// filter relation that fails for some topic fails for one of these.
func candidates(max int, filters ...string) []string {
	alpha := []string{"zz", "$zz"}
	seen := map[string]bool{"zz": true, "$zz": true, "+": true, "#": true}
	for _, f := range filters {
		for _, l := range strings.Split(f, "/") {
			if !seen[l] {
				seen[l] = true
				alpha = append(alpha, l)
			}
		}
	}
	var out []string
	var walk func(prefix string, n int)
	walk = func(prefix string, n int) {
		for _, l := range alpha {
			t := l
			if n > 0 {
				t = prefix + "/" + l
			}
			out = append(out, t)
			if n+1 < max {
				walk(t, n+1)
			}
		}
	}
	walk("", 0)
	return out
}

// refCovers is the naive reference for Covers: every candidate topic the
// filter matches, the rule matches too.
func refCovers(rule, filter string) bool {
	n := max(mqtt.TopicLevels(rule), mqtt.TopicLevels(filter)) + 1
	for _, tp := range candidates(n, rule, filter) {
		if mqtt.Match(filter, tp) && !mqtt.Match(rule, tp) {
			return false
		}
	}
	return true
}

// refOverlaps is the naive reference for Overlaps: some candidate topic
// matches both filters.
func refOverlaps(a, b string) bool {
	n := max(mqtt.TopicLevels(a), mqtt.TopicLevels(b)) + 1
	for _, tp := range candidates(n, a, b) {
		if mqtt.Match(a, tp) && mqtt.Match(b, tp) {
			return true
		}
	}
	return false
}

// FuzzCovers compares Covers and Overlaps with the naive reference
// matchers on small valid filters.
func FuzzCovers(f *testing.F) {
	for _, s := range [][2]string{{"a/+", "a/#"}, {"a/#", "a"}, {"#", "$SYS/x"}, {"+/+", "a/+"}, {"a//#", "a/"}, {"$SYS/#", "+/#"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if mqtt.ValidTopicFilter(a) != nil || mqtt.ValidTopicFilter(b) != nil {
			t.Skip()
		}
		if mqtt.TopicLevels(a) > 4 || mqtt.TopicLevels(b) > 4 || len(a)+len(b) > 32 {
			t.Skip()
		}
		if _, _, s := mqtt.ParseShared(a); s {
			t.Skip()
		}
		if _, _, s := mqtt.ParseShared(b); s {
			t.Skip()
		}
		if got, want := Covers(a, b), refCovers(a, b); got != want {
			t.Errorf("Covers(%q, %q) = %v, reference %v", a, b, got, want)
		}
		if got, want := Overlaps(a, b), refOverlaps(a, b); got != want {
			t.Errorf("Overlaps(%q, %q) = %v, reference %v", a, b, got, want)
		}
	})
}
