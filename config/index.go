package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// tailSegment, as the last segment of a pattern key, matches one or more
// segments of a concrete key: web.hook.rule.<...> matches
// web.hook.rule.client.connected.1.
const tailSegment = "<...>"

// tailMarker stands for tailSegment while a name is split at its dots.
const tailMarker = "<\x00>"

// splitName splits a schema key name into segments, keeping tailSegment,
// which has dots of its own, whole.
func splitName(name string) []string {
	segs := strings.Split(strings.ReplaceAll(name, tailSegment, tailMarker), ".")
	for i, s := range segs {
		if s == tailMarker {
			segs[i] = tailSegment
		}
	}
	return segs
}

// Segment classes, from most to least specific.
const (
	segLiteral = iota // matches itself
	segName           // <name>: matches one segment
	segTail           // <...>: matches one or more segments
)

func segClass(s string) int {
	switch {
	case s == tailSegment:
		return segTail
	case len(s) > 2 && s[0] == '<' && s[len(s)-1] == '>':
		return segName
	}
	return segLiteral
}

// validSegment reports whether s is a segment of a concrete key: one or more
// of [A-Za-z0-9_-].
func validSegment(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validKey reports whether every segment of the concrete key segs is valid.
func validKey(segs []string) bool {
	for _, s := range segs {
		if !validSegment(s) {
			return false
		}
	}
	return true
}

// matchSegments reports whether the concrete key segments ks match the
// pattern segments ps, segment by segment.
func matchSegments(ps, ks []string) bool {
	for i, p := range ps {
		switch segClass(p) {
		case segTail:
			return len(ks) > i && validKey(ks[i:])
		case segName:
			if i >= len(ks) || !validSegment(ks[i]) {
				return false
			}
		default:
			if i >= len(ks) || ks[i] != p {
				return false
			}
		}
	}
	return len(ks) == len(ps)
}

// captures returns the parts of ks that the wildcard segments of ps match,
// joined with "."; ks must match ps.
func captures(ps, ks []string) string {
	var parts []string
	for i, p := range ps {
		switch segClass(p) {
		case segTail:
			parts = append(parts, ks[i:]...)
		case segName:
			parts = append(parts, ks[i])
		}
	}
	return strings.Join(parts, ".")
}

// pattern is a pattern key of the schema, split into segments.
type pattern struct {
	segs []string
	key  int // index into index.keys
}

// index is a checked schema with its parsed defaults, ready for lookups.
type index struct {
	keys     []Key
	defaults []value        // parsed Default of keys[i]
	byName   map[string]int // every Name, pattern or not
	patterns []pattern      // most specific first
}

// newIndex checks schema and indexes it. It reports every problem as an
// ErrSchema error.
func newIndex(schema []Key) (*index, error) {
	x := &index{
		keys:     schema,
		defaults: make([]value, len(schema)),
		byName:   make(map[string]int, len(schema)),
	}
	var errs []error
	bad := func(name, format string, a ...any) {
		errs = append(errs, fmt.Errorf("config: %w: key %q: %s", ErrSchema, name, fmt.Sprintf(format, a...)))
	}
	shapes := map[string]string{} // pattern shape -> name, to find patterns that match the same keys
	for i := range schema {
		k := &schema[i]
		if _, dup := x.byName[k.Name]; dup {
			bad(k.Name, "declared twice")
			continue
		}
		x.byName[k.Name] = i
		segs := splitName(k.Name)
		wild := false
		shape := make([]string, len(segs))
		for j, s := range segs {
			shape[j] = s
			switch segClass(s) {
			case segTail:
				wild = true
				shape[j] = tailSegment
				if j != len(segs)-1 {
					bad(k.Name, "%s must be the last segment", tailSegment)
				}
			case segName:
				wild = true
				shape[j] = "<>"
				if !validSegment(s[1 : len(s)-1]) {
					bad(k.Name, "invalid wildcard segment %q", s)
				}
			default:
				if !validSegment(s) {
					bad(k.Name, "invalid segment %q", s)
				}
			}
		}
		if wild {
			sh := strings.Join(shape, ".")
			if other, ok := shapes[sh]; ok {
				bad(k.Name, "matches the same keys as %q", other)
			}
			shapes[sh] = k.Name
			x.patterns = append(x.patterns, pattern{segs: segs, key: i})
		}
		if k.Doc == "" || strings.ContainsAny(k.Doc, "\r\n") {
			bad(k.Name, "doc must be one non-empty line")
		}
		if (k.Kind == Enum) != (len(k.Enum) > 0) {
			bad(k.Name, "enum values are required for, and only for, Enum keys")
		}
		if k.Max != 0 && k.Max < k.Min {
			bad(k.Name, "max %d below min %d", k.Max, k.Min)
		}
		v, err := parseValue(k, k.Default)
		if err != nil {
			bad(k.Name, "default: %v", err)
		}
		x.defaults[i] = v
	}
	// Most specific first: at the first segment where two patterns differ in
	// class, a literal beats <name>, which beats <...>.
	slices.SortStableFunc(x.patterns, func(a, b pattern) int {
		for i := 0; i < len(a.segs) && i < len(b.segs); i++ {
			if c := segClass(a.segs[i]) - segClass(b.segs[i]); c != 0 {
				return c
			}
		}
		return 0
	})
	// A non-pattern key that a pattern matches declares a default instance of
	// it: it must have the same kind.
	for i := range schema {
		if strings.Contains(schema[i].Name, "<") {
			continue
		}
		if p, ok := x.matchPattern(strings.Split(schema[i].Name, ".")); ok && schema[p].Kind != schema[i].Kind {
			bad(schema[i].Name, "kind %v differs from %v of pattern %q", schema[i].Kind, schema[p].Kind, schema[p].Name)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return x, nil
}

// matchPattern returns the most specific pattern key that the concrete key
// segments segs match.
func (x *index) matchPattern(segs []string) (int, bool) {
	for _, p := range x.patterns {
		if matchSegments(p.segs, segs) {
			return p.key, true
		}
	}
	return -1, false
}

// lookup returns the schema key for key: the key of that exact name (pattern
// names included), else the most specific pattern that key matches.
func (x *index) lookup(key string) (int, bool) {
	if i, ok := x.byName[key]; ok {
		return i, true
	}
	return x.matchPattern(strings.Split(key, "."))
}

// maxSuggestDistance is the largest edit distance at which an unknown key
// gets a "did you mean" suggestion.
const maxSuggestDistance = 3

// suggest returns the known key closest to the unknown key, or "" when none
// is within maxSuggestDistance edits. Pattern keys are compared with their
// wildcard segments filled in from key, so a typo in
// listener.tcp.external.max_conections suggests the full instance key.
func (x *index) suggest(key string) string {
	lk := strings.ToLower(key)
	segs := strings.Split(lk, ".")
	best, bestDist := "", maxSuggestDistance+1
	for i := range x.keys {
		cand := x.keys[i].Name
		if strings.Contains(cand, "<") {
			cand = instantiate(splitName(cand), segs)
		}
		if cand == "" || cand == key {
			continue
		}
		if d := editDistance(lk, cand); d < bestDist {
			best, bestDist = cand, d
		}
	}
	return best
}

// instantiate fills the wildcard segments of the pattern ps with the segments
// of ks at the same positions; it returns "" when the segment counts do not
// allow that.
func instantiate(ps, ks []string) string {
	tail := segClass(ps[len(ps)-1]) == segTail
	if len(ks) < len(ps) || (!tail && len(ks) != len(ps)) {
		return ""
	}
	out := make([]string, 0, len(ks))
	for i, p := range ps {
		switch segClass(p) {
		case segTail:
			out = append(out, ks[i:]...)
		case segName:
			out = append(out, ks[i])
		default:
			out = append(out, p)
		}
	}
	return strings.Join(out, ".")
}

// editDistance returns the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
