package mqtt

import (
	"errors"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b", false},
		{"A", "a", false}, // case-sensitive, no normalisation [MQTT-4.7.3-4]
		{"ä/ö", "ä/ö", true},
		// '+' matches exactly one level, which may be empty.
		{"a/+", "a/b", true},
		{"a/+", "a/", true},
		{"a/+", "a", false},
		{"a/+", "a/b/c", false},
		{"+/b", "a/b", true},
		{"a/+/c", "a//c", true},
		{"+/+", "/", true},
		{"/+", "/", true},
		{"+", "/", false},
		{"+/+", "a", false},
		{"+", "a", true},
		// '#' matches the rest, including the parent level
		// ([MQTT-4.7.1-2] in 3.1.1).
		{"#", "a", true},
		{"#", "a/b/c", true},
		{"#", "/", true},
		{"a/#", "a", true},
		{"a/#", "a/", true},
		{"a/#", "a/b/c", true},
		{"a/#", "ab", false},
		{"a/#", "b/a", false},
		{"a/b/#", "a/b/", true},
		{"+/#", "a", true},
		{"a/+/#", "a", false},
		{"a/+/#", "a/b", true},
		{"/#", "/", true},
		{"/#", "a", false},
		// Empty levels.
		{"/", "/", true},
		{"a//b", "a//b", true},
		{"a//b", "a/b", false},
		{"a/b", "a/b/", false},
		{"a/b/", "a/b/", true},
		// [MQTT-4.7.2-1] Leading wildcards do not match '$' topics.
		{"#", "$SYS/broker/load", false},
		{"+/broker/load", "$SYS/broker/load", false},
		{"+", "$SYS", false},
		{"+/#", "$SYS/x", false},
		{"$SYS/#", "$SYS/broker/load", true},
		{"$SYS/+/load", "$SYS/broker/load", true},
		{"$SYS/#", "$SYS", true},
		{"a/#", "a/$b", true},
		{"a/+", "a/$b", true},
		// Match is literal about shared subscription prefixes: the
		// caller passes the filter part.
		{"$share/g/a", "a", false},
	}
	for _, tt := range tests {
		if got := Match(tt.filter, tt.topic); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
		}
	}
}

func TestValidTopicName(t *testing.T) {
	tests := []struct {
		name string
		rule string // "" when valid
	}{
		{"a", ""},
		{"/", ""},
		{"a/b/c", ""},
		{"a//b", ""},
		{"$SYS/x", ""},
		{"sport/tennis player1", ""},
		{"\x01\u009f\uffff", ""}, // allowed, a receiver MAY reject them
		{"", "MQTT-4.7.3-1"},
		{strings.Repeat("a", 65535), ""},
		{strings.Repeat("a", 65536), "MQTT-4.7.3-3"},
		{"a/+", "MQTT-3.3.2-2"},
		{"a/#", "MQTT-3.3.2-2"},
		{"a+b", "MQTT-3.3.2-2"},
		{"a\x00b", "MQTT-1.5.4-1"},
		{"a\xffb", "MQTT-1.5.4-1"},
		{"\xed\xa0\x80", "MQTT-1.5.4-1"}, // surrogate U+D800
	}
	for _, tt := range tests {
		err := ValidTopicName(tt.name)
		checkTopicError(t, "ValidTopicName", tt.name, err, TopicNameInvalid, tt.rule)
	}
}

func TestValidTopicFilter(t *testing.T) {
	tests := []struct {
		filter string
		rule   string // "" when valid
	}{
		{"a", ""},
		{"/", ""},
		{"#", ""},
		{"+", ""},
		{"a/#", ""},
		{"/#", ""},
		{"+/+", ""},
		{"+/a/#", ""},
		{"a//+", ""},
		{"$SYS/#", ""},
		{"", "MQTT-4.7.3-1"},
		{strings.Repeat("a", 65536), "MQTT-4.7.3-3"},
		{"a\x00", "MQTT-1.5.4-1"},
		{"\xc3\x28", "MQTT-1.5.4-1"},
		// [MQTT-4.7.1-2] (3.1.1) '#' alone and last.
		{"a#", "MQTT-4.7.1-2"},
		{"a/#/b", "MQTT-4.7.1-2"},
		{"#/", "MQTT-4.7.1-2"},
		{"a/b#", "MQTT-4.7.1-2"},
		{"##", "MQTT-4.7.1-2"},
		// [MQTT-4.7.1-3] (3.1.1) '+' alone in its level.
		{"a+", "MQTT-4.7.1-3"},
		{"+a", "MQTT-4.7.1-3"},
		{"a/+b/c", "MQTT-4.7.1-3"},
		{"++", "MQTT-4.7.1-3"},
		// [MQTT-4.8.2-1] [MQTT-4.8.2-2] Shared subscriptions.
		{"$share/g/a/b", ""},
		{"$share/g/#", ""},
		{"$share/g//", ""},
		{"$share/g/+/x", ""},
		{"$share//a", "MQTT-4.8.2-1"},
		{"$share/", "MQTT-4.8.2-1"},
		{"$share/g", "MQTT-4.8.2-2"},
		{"$share/g/", "MQTT-4.8.2-2"},
		{"$share/g+/a", "MQTT-4.8.2-2"},
		{"$share/#/a", "MQTT-4.8.2-2"},
		{"$share/g/a#", "MQTT-4.7.1-2"},
		{"$share/g/a+", "MQTT-4.7.1-3"},
		{"$share", ""},      // not shared: an ordinary one-level filter
		{"$sharefoo/a", ""}, // not shared either
		{"$queue/a/b", ""},
		{"$queue/#", ""},
		{"$queue/", "MQTT-4.8.2-2"},
		{"$queue/a/#/b", "MQTT-4.7.1-2"},
	}
	for _, tt := range tests {
		err := ValidTopicFilter(tt.filter)
		checkTopicError(t, "ValidTopicFilter", tt.filter, err, TopicFilterInvalid, tt.rule)
	}
}

func checkTopicError(t *testing.T, fn, arg string, err error, code ReasonCode, rule string) {
	t.Helper()
	if len(arg) > 40 {
		arg = arg[:40] + "..."
	}
	if rule == "" {
		if err != nil {
			t.Errorf("%s(%q) = %v, want nil", fn, arg, err)
		}
		return
	}
	var e *Error
	if !errors.As(err, &e) || e.Code != code || e.Rule != rule {
		t.Errorf("%s(%q) = %v, want code %s rule %s", fn, arg, err, code, rule)
	}
}

func TestParseShared(t *testing.T) {
	tests := []struct {
		filter, group, topicFilter string
		shared                     bool
	}{
		{"$share/g/a/b", "g", "a/b", true},
		{"$share/group/#", "group", "#", true},
		{"$share/g", "g", "", true},
		{"$share//a", "", "a", true},
		{"$queue/a/b", "$queue", "a/b", true},
		{"$queue/", "$queue", "", true},
		{"a/b", "", "a/b", false},
		{"$share", "", "$share", false},
		{"$SYS/#", "", "$SYS/#", false},
		{"share/g/a", "", "share/g/a", false},
	}
	for _, tt := range tests {
		g, f, s := ParseShared(tt.filter)
		if g != tt.group || f != tt.topicFilter || s != tt.shared {
			t.Errorf("ParseShared(%q) = %q, %q, %v; want %q, %q, %v", tt.filter, g, f, s, tt.group, tt.topicFilter, tt.shared)
		}
	}
}

func TestTopicLevels(t *testing.T) {
	for s, want := range map[string]int{"": 1, "a": 1, "a/b": 2, "/": 2, "a/b/": 3, "//": 3, "$share/g/a": 3} {
		if got := TopicLevels(s); got != want {
			t.Errorf("TopicLevels(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestValidUTF8(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"", true},
		{"abc", true},
		{"\u00e4\u4e16\U0001F600", true},
		{"\x01\x1f\x7f", true},           // controls are allowed
		{"\u0080\u009f", true},           // so are C1 controls
		{"\ufdd0\uffff\U0010FFFF", true}, // and non-characters
		{"\ufeff", true},                 // BOM is kept [MQTT-1.5.4-3]
		{"a\x00", false},                 // [MQTT-1.5.4-2]
		{"\xed\xa0\x80", false},          // surrogate [MQTT-1.5.4-1]
		{"\xed\xbf\xbf", false},          // surrogate
		{"\xc0\x80", false},              // overlong U+0000
		{"\xe0\x80\xaf", false},          // overlong '/'
		{"\xf4\x90\x80\x80", false},      // above U+10FFFF
		{"\xff", false},
		{"\xe4\xb8", false}, // truncated
	}
	for _, tt := range tests {
		if got := ValidUTF8(tt.s); got != tt.want {
			t.Errorf("ValidUTF8(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

// refMatch is a plain reference for Match: split both on '/' and compare
// level by level.
func refMatch(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	fl, tl := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fl {
		if f == "#" {
			return true
		}
		if i >= len(tl) || (f != "+" && f != tl[i]) {
			return false
		}
	}
	return len(fl) == len(tl)
}

func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"a/b", "a/b"}, {"a/+", "a/b"}, {"a/#", "a"}, {"#", "$SYS/x"}, {"+/+", "/"}, {"$SYS/#", "$SYS"},
		{"a//+", "a//"}, {"+/#", "a/b/c"}, {"/", "/"}, {"a/+/#", "a"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, filter, topic string) {
		if ValidTopicName(topic) != nil || ValidTopicFilter(filter) != nil {
			return
		}
		if _, _, shared := ParseShared(filter); shared {
			return
		}
		if got, want := Match(filter, topic), refMatch(filter, topic); got != want {
			t.Errorf("Match(%q, %q) = %v, reference says %v", filter, topic, got, want)
		}
	})
}
