package acl

import (
	"strings"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/mqtt"
)

// Expand substitutes the EMQX placeholders of a rule's topic filter: %u is
// the username and %c the client identifier. ok is false when the filter
// names a placeholder whose value is empty (a rule on "%u/#" never applies to
// a client without a username). A value holding '+', '#' or '/' is refused
// the same way: substituted, it would widen the rule to other clients'
// topics (a username "+" turning "users/%u/#" into "users/+/#").
func Expand(filter, username, clientID string) (string, bool) {
	if strings.IndexByte(filter, '%') < 0 {
		return filter, true
	}
	if strings.Contains(filter, "%u") {
		if !safeValue(username) {
			return "", false
		}
		filter = strings.ReplaceAll(filter, "%u", username)
	}
	if strings.Contains(filter, "%c") {
		if !safeValue(clientID) {
			return "", false
		}
		filter = strings.ReplaceAll(filter, "%c", clientID)
	}
	return filter, true
}

// safeValue reports whether v may replace a placeholder in a topic filter.
func safeValue(v string) bool {
	return v != "" && !strings.ContainsAny(v, "+#/")
}

// Covers reports whether rule filter rule grants subscription filter filter:
// every topic name that filter matches is also matched by rule. So "a/+"
// covers "a/b" and "a/+" but not "a/#" (which also matches "a/b/c"), and
// "a/#" covers "a" (its parent level, [MQTT-4.7.1-2]). A filter on "$"
// topics is not covered by a rule starting with a wildcard [MQTT-4.7.2-1].
// Both filters are assumed valid.
func Covers(rule, filter string) bool {
	// [MQTT-4.7.2-1] topics starting with '$' are not matched by a leading
	// wildcard, so such a rule grants nothing below a '$' level.
	if len(filter) > 0 && filter[0] == '$' && len(rule) > 0 && (rule[0] == '+' || rule[0] == '#') {
		return false
	}
	for {
		rl, rRest, rMore := strings.Cut(rule, "/")
		if rl == "#" {
			return true
		}
		fl, fRest, fMore := strings.Cut(filter, "/")
		switch {
		case fl == "#":
			// The filter matches any depth here; only "#" covers that.
			return false
		case rl == "+":
			// One level, whatever the filter has there ('+' or a name).
		case rl != fl:
			return false
		}
		switch {
		case !rMore && !fMore:
			return true
		case !fMore:
			// [MQTT-4.7.1-2] "a/#" also matches its parent "a".
			return rRest == "#"
		case !rMore:
			return false
		}
		rule, filter = rRest, fRest
	}
}

// Overlaps reports whether some topic name matches both filters a and b.
// It is used for deny rules on subscriptions: a subscription that could
// receive a topic a deny rule names is refused, so a deny on "secret/#"
// refuses "#" and "+/x" as well as "secret/x".
func Overlaps(a, b string) bool {
	// [MQTT-4.7.2-1] a leading wildcard never matches a '$' topic.
	if dollarWild(a, b) || dollarWild(b, a) {
		return false
	}
	for {
		al, aRest, aMore := strings.Cut(a, "/")
		bl, bRest, bMore := strings.Cut(b, "/")
		if al == "#" || bl == "#" {
			return true
		}
		if al != "+" && bl != "+" && al != bl {
			return false
		}
		switch {
		case !aMore && !bMore:
			return true
		case !aMore:
			return bRest == "#" // [MQTT-4.7.1-2] parent level
		case !bMore:
			return aRest == "#"
		}
		a, b = aRest, bRest
	}
}

// dollarWild reports whether a starts with a '$' level and b with a
// wildcard.
func dollarWild(a, b string) bool {
	return len(a) > 0 && a[0] == '$' && len(b) > 0 && (b[0] == '+' || b[0] == '#')
}

// RuleApplies reports whether a rule with topic filter rule (placeholders
// already expanded) applies to topic for action a. For Publish, topic is a
// topic name matched against rule (mqtt.Match). For Subscribe, topic is a
// filter: an allow rule must cover it (Covers), a deny rule applies when it
// overlaps it (Overlaps).
func RuleApplies(a access.Action, deny bool, rule, topic string) bool {
	if a == access.Subscribe {
		if deny {
			return Overlaps(rule, topic)
		}
		return Covers(rule, topic)
	}
	return mqtt.Match(rule, topic)
}

// RequestTopic returns the topic a request is checked against: for a shared
// subscription, the filter without its "$share/<group>/" prefix.
func RequestTopic(req access.Request) string {
	if req.Action == access.Subscribe {
		if _, f, shared := mqtt.ParseShared(req.Topic); shared {
			return f
		}
	}
	return req.Topic
}
