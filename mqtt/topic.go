package mqtt

import (
	"fmt"
	"strings"
)

const (
	sharePrefix = "$share/"
	queuePrefix = "$queue/"
	// queueGroup is the group ParseShared reports for "$queue/" filters.
	queueGroup = "$queue"
)

func topicNameError(rule, format string, args ...any) error {
	return &Error{Code: TopicNameInvalid, Rule: rule, Msg: fmt.Sprintf(format, args...)}
}

func topicFilterError(rule, format string, args ...any) error {
	return &Error{Code: TopicFilterInvalid, Rule: rule, Msg: fmt.Sprintf(format, args...)}
}

// ValidTopicName checks a topic name as used in PUBLISH and as will topic. It
// returns a *Error with Code TopicNameInvalid if name is empty
// [MQTT-4.7.3-1], longer than 65,535 bytes [MQTT-4.7.3-3], holds a wildcard
// '+' or '#' [MQTT-3.3.2-2] [MQTT-4.7.0-1], or is not well-formed UTF-8 or
// holds U+0000 [MQTT-1.5.4-1] [MQTT-1.5.4-2] [MQTT-4.7.3-2].
func ValidTopicName(name string) error {
	switch {
	case name == "":
		return topicNameError("MQTT-4.7.3-1", "empty topic name")
	case len(name) > maxStringLen:
		return topicNameError("MQTT-4.7.3-3", "topic name longer than %d bytes", maxStringLen)
	case strings.ContainsAny(name, "+#"):
		return topicNameError("MQTT-3.3.2-2", "wildcard in topic name %q", name)
	case !ValidUTF8(name):
		return topicNameError("MQTT-1.5.4-1", "topic name %q is not well-formed UTF-8 or holds U+0000", name)
	}
	return nil
}

// ValidTopicFilter checks a topic filter as used in SUBSCRIBE. It returns a
// *Error with Code TopicFilterInvalid if the filter is empty [MQTT-4.7.3-1],
// too long [MQTT-4.7.3-3] or not valid UTF-8 [MQTT-1.5.4-1]; if '#' is not
// alone in the last level ([MQTT-4.7.1-2] in 3.1.1, [MQTT-4.7.1-1] in 5.0);
// or if '+' is not alone in its level ([MQTT-4.7.1-3] in 3.1.1,
// [MQTT-4.7.1-2] in 5.0).
//
// Shared subscriptions "$share/<group>/<filter>" need a non-empty group
// [MQTT-4.8.2-1] without '+', '#' or '/', followed by '/' and a valid,
// non-empty filter [MQTT-4.8.2-2]. EMQX's "$queue/<filter>" needs a valid,
// non-empty filter.
func ValidTopicFilter(filter string) error {
	switch {
	case filter == "":
		return topicFilterError("MQTT-4.7.3-1", "empty topic filter")
	case len(filter) > maxStringLen:
		return topicFilterError("MQTT-4.7.3-3", "topic filter longer than %d bytes", maxStringLen)
	case !ValidUTF8(filter):
		return topicFilterError("MQTT-1.5.4-1", "topic filter %q is not well-formed UTF-8 or holds U+0000", filter)
	}
	if group, f, shared := ParseShared(filter); shared {
		switch {
		case group == "":
			return topicFilterError("MQTT-4.8.2-1", "empty share name in %q", filter)
		case strings.ContainsAny(group, "+#"):
			return topicFilterError("MQTT-4.8.2-2", "wildcard in share name of %q", filter)
		case f == "":
			return topicFilterError("MQTT-4.8.2-2", "no topic filter after the share name in %q", filter)
		}
		filter = f
	}
	for i := 0; i < len(filter); i++ {
		switch filter[i] {
		case '#':
			// [MQTT-4.7.1-2] (3.1.1; [MQTT-4.7.1-1] in 5.0) '#' is
			// alone in its level and is the last character.
			if i != len(filter)-1 || (i > 0 && filter[i-1] != '/') {
				return topicFilterError("MQTT-4.7.1-2", "'#' not alone in the last level of %q", filter)
			}
		case '+':
			// [MQTT-4.7.1-3] (3.1.1; [MQTT-4.7.1-2] in 5.0) '+'
			// occupies a whole level.
			if (i > 0 && filter[i-1] != '/') || (i < len(filter)-1 && filter[i+1] != '/') {
				return topicFilterError("MQTT-4.7.1-3", "'+' not alone in its level of %q", filter)
			}
		}
	}
	return nil
}

// ParseShared splits a shared subscription filter:
// "$share/g/a/b" gives ("g", "a/b", true) and "$queue/a/b" gives
// ("$queue", "a/b", true). Any other filter gives ("", filter, false).
// ParseShared does not validate: "$share/g" gives ("g", "", true), which
// ValidTopicFilter rejects.
func ParseShared(filter string) (group, topicFilter string, shared bool) {
	if rest, ok := strings.CutPrefix(filter, sharePrefix); ok {
		group, topicFilter, _ = strings.Cut(rest, "/")
		return group, topicFilter, true
	}
	if rest, ok := strings.CutPrefix(filter, queuePrefix); ok {
		return queueGroup, rest, true
	}
	return "", filter, false
}

// Match reports whether topic name topic matches topic filter filter: '+'
// matches exactly one level, '#' matches any number of levels including the
// parent level ("a/#" matches "a") ([MQTT-4.7.1-2] in 3.1.1). Filters
// starting with a wildcard do not match topics starting with '$'
// [MQTT-4.7.2-1]. Levels are compared byte for byte, without normalisation
// [MQTT-4.7.3-4].
//
// Both arguments are assumed valid (see ValidTopicFilter and
// ValidTopicName); pass the filter part of a shared subscription, not the
// "$share/<group>/" prefix. Match does not allocate.
func Match(filter, topic string) bool {
	// [MQTT-4.7.2-1]
	if len(topic) > 0 && topic[0] == '$' && len(filter) > 0 && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		fEnd := strings.IndexByte(filter, '/')
		fl := filter
		if fEnd >= 0 {
			fl = filter[:fEnd]
		}
		if fl == "#" {
			return true
		}
		tEnd := strings.IndexByte(topic, '/')
		tl := topic
		if tEnd >= 0 {
			tl = topic[:tEnd]
		}
		if fl != "+" && fl != tl {
			return false
		}
		switch {
		case fEnd < 0 && tEnd < 0:
			return true
		case tEnd < 0:
			// The topic ends here and the filter goes on: only a final
			// "/#" matches the parent level.
			return filter[fEnd+1:] == "#"
		case fEnd < 0:
			return false
		}
		filter, topic = filter[fEnd+1:], topic[tEnd+1:]
	}
}

// TopicLevels returns the number of levels in a topic name or filter: one
// more than the number of '/' ("a/b" has 2, "/" has 2, "" has 1).
func TopicLevels(s string) int {
	return strings.Count(s, "/") + 1
}
