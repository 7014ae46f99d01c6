package config

import (
	"errors"
	"strings"
	"testing"
)

func TestMatchSegments(t *testing.T) {
	tests := []struct {
		pattern, key string
		want         bool
		captured     string
	}{
		{"listener.tcp.<name>", "listener.tcp.external", true, "external"},
		{"listener.tcp.<name>", "listener.tcp.a-b_C9", true, "a-b_C9"},
		{"listener.tcp.<name>", "listener.tcp", false, ""},
		{"listener.tcp.<name>", "listener.tcp.external.max_connections", false, ""},
		{"listener.tcp.<name>", "listener.ssl.external", false, ""},
		{"listener.tcp.<name>", "listener.tcp.ext ernal", false, ""},
		{"listener.tcp.<name>", "listener.tcp.", false, ""},
		{"listener.tcp.<name>", "listener.tcp.<name>", false, ""},
		{"listener.tcp.<name>.max_connections", "listener.tcp.internal.max_connections", true, "internal"},
		{"listener.tcp.<name>.max_connections", "listener.tcp.internal.backlog", false, ""},
		{"web.hook.rule.<...>", "web.hook.rule.client.connected.1", true, "client.connected.1"},
		{"web.hook.rule.<...>", "web.hook.rule.x", true, "x"},
		{"web.hook.rule.<...>", "web.hook.rule", false, ""},
		{"web.hook.rule.<...>", "web.hook.rule.client..1", false, ""},
		{"web.hook.rule.<...>", "web.hook.rules.client.connected.1", false, ""},
		{"web.hook.rule.<event>.<n>", "web.hook.rule.connected.1", true, "connected.1"},
		{"web.hook.rule.<event>.<n>", "web.hook.rule.client.connected.1", false, ""},
		{"a.<x>.b.<...>", "a.1.b.2.3", true, "1.2.3"},
		{"a.<x>.b.<...>", "a.1.c.2.3", false, ""},
	}
	for _, tt := range tests {
		ps, ks := splitName(tt.pattern), strings.Split(tt.key, ".")
		if got := matchSegments(ps, ks); got != tt.want {
			t.Errorf("matchSegments(%s, %s) = %v, want %v", tt.pattern, tt.key, got, tt.want)
		}
		if tt.want {
			if got := captures(ps, ks); got != tt.captured {
				t.Errorf("captures(%s, %s) = %q, want %q", tt.pattern, tt.key, got, tt.captured)
			}
		}
	}
}

func TestLookupPrefersSpecificKeys(t *testing.T) {
	schema := []Key{
		{Name: "a.<...>", Kind: String, Default: "tail", Doc: "d"},
		{Name: "a.<x>.c", Kind: String, Default: "name", Doc: "d"},
		{Name: "a.b.<y>", Kind: String, Default: "literal", Doc: "d"},
		{Name: "a.b.c", Kind: String, Default: "exact", Doc: "d"},
		{Name: "a.<x>", Kind: String, Default: "short", Doc: "d"},
	}
	x, err := newIndex(schema)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ key, want string }{
		{"a.b.c", "a.b.c"},     // exact beats every pattern
		{"a.b.d", "a.b.<y>"},   // literal b beats <x>
		{"a.z.c", "a.<x>.c"},   // <x> beats <...>
		{"a.z", "a.<x>"},       // <x> beats <...>
		{"a.z.d", "a.<...>"},   // only the tail matches
		{"a.z.d.e", "a.<...>"}, // only the tail matches
		{"a.<x>.c", "a.<x>.c"}, // a pattern name finds itself
	}
	for _, tt := range tests {
		i, ok := x.lookup(tt.key)
		if !ok {
			t.Errorf("lookup(%s): not found", tt.key)
			continue
		}
		if got := schema[i].Name; got != tt.want {
			t.Errorf("lookup(%s) = %s, want %s", tt.key, got, tt.want)
		}
	}
	for _, key := range []string{"a", "b.c", "a.b c"} {
		if _, ok := x.lookup(key); ok {
			t.Errorf("lookup(%q) found a key", key)
		}
	}
}

func TestSuggest(t *testing.T) {
	x, err := newIndex(Schema)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ key, want string }{
		{"mqtt.max_pakcet_size", "mqtt.max_packet_size"},
		{"mqtt.maxpacketsize", "mqtt.max_packet_size"},
		{"Allow_Anonymous", "allow_anonymous"},
		{"acl_no_match", "acl_nomatch"},
		{"listener.tcp.internal.max_conn", ""}, // too far
		{"listener.tcp.internal.max_connection", "listener.tcp.internal.max_connections"},
		{"node.nmae", "node.name"},
		{"zone.external.idle_timeout", ""},
	}
	for _, tt := range tests {
		if got := x.suggest(tt.key); got != tt.want {
			t.Errorf("suggest(%s) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "", 3},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
		{"max_pakcet_size", "max_packet_size", 2},
		{"same", "same", 0},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestSchemaIsValid(t *testing.T) {
	if _, err := newIndex(Schema); err != nil {
		t.Fatal(err)
	}
	for _, k := range Schema {
		if k.Kind.String() == "invalid kind" {
			t.Errorf("%s: invalid kind", k.Name)
		}
	}
}

func TestSchemaErrors(t *testing.T) {
	tests := []struct {
		name string
		key  Key
		want string
	}{
		{"no kind", Key{Name: "a", Default: "x", Doc: "d"}, "kind 0 is not a valid kind"},
		{"bad default", Key{Name: "a", Kind: Int, Default: "x", Doc: "d"}, `default: invalid integer "x"`},
		{"default out of range", Key{Name: "a", Kind: Int, Default: "5", Max: 4, Doc: "d"}, "default: 5 out of range 0..4"},
		{"no doc", Key{Name: "a", Kind: String}, "doc must be one non-empty line"},
		{"two-line doc", Key{Name: "a", Kind: String, Doc: "a\nb"}, "doc must be one non-empty line"},
		{"enum without values", Key{Name: "a", Kind: Enum, Doc: "d"}, "enum values are required"},
		{"values without enum", Key{Name: "a", Kind: String, Enum: []string{"x"}, Doc: "d"}, "enum values are required"},
		{"max below min", Key{Name: "a", Kind: Int, Default: "5", Min: 5, Max: 3, Doc: "d"}, "max 3 below min 5"},
		{"tail not last", Key{Name: "a.<...>.b", Kind: String, Doc: "d"}, "<...> must be the last segment"},
		{"bad segment", Key{Name: "a..b", Kind: String, Doc: "d"}, `invalid segment ""`},
		{"bad wildcard", Key{Name: "a.<x y>", Kind: String, Doc: "d"}, `invalid wildcard segment "<x y>"`},
		{"declared twice", Key{Name: "base", Kind: String, Doc: "d"}, "declared twice"},
		{"same shape as another pattern", Key{Name: "p.<other>", Kind: String, Doc: "d"}, `matches the same keys as "p.<name>"`},
		{"instance of another kind", Key{Name: "p.x", Kind: String, Doc: "d"}, `kind string differs from integer of pattern "p.<name>"`},
	}
	base := []Key{
		{Name: "base", Kind: String, Doc: "d"},
		{Name: "p.<name>", Kind: Int, Default: "1", Doc: "d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			schema := append(append([]Key(nil), base...), tt.key)
			_, err := newIndex(schema)
			if err == nil || !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %v containing %q", err, ErrSchema, tt.want)
			}
			if _, perr := parse(schema, "x.conf", nil, nil); perr == nil {
				t.Errorf("parse accepted the invalid schema")
			}
		})
	}
}
