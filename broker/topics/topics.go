// Package topics holds the broker's routing state: the subscription index
// that maps a published topic name to the subscriptions it reaches (a trie of
// topic levels, with MQTT 5 shared subscriptions and EMQX $queue groups), and
// the store of retained messages matched by topic filter.
//
// Topic names and filters are matched level by level, split on '/'. The
// package does not validate them: the broker rejects malformed names and
// filters before they reach an Index or a Retained store, and strips the
// "$share/<group>/" or "$queue/" prefix of a shared subscription, passing the
// group name separately.
package topics

import (
	"errors"
	"fmt"
)

// ErrUnknownStrategy is returned by ParseStrategy for a name it does not know.
var ErrUnknownStrategy = errors.New("unknown shared subscription strategy")

// Subscriber is the owner of a subscription: the broker's session.
//
// Subscribers are compared with ==, so an implementation must be of a
// comparable type (in practice a pointer). Connected is called on the publish
// path while the index's read lock is held: it must be cheap and must not
// call back into the Index.
type Subscriber interface {
	// ClientID returns the MQTT client identifier of the session.
	ClientID() string
	// Connected reports whether the session currently has a network
	// connection; shared-subscription picking prefers connected members.
	Connected() bool
}

// Sub is one subscription. A subscription is identified by its Client,
// Filter and Group; the other fields are its options.
type Sub struct {
	// Client owns the subscription.
	Client Subscriber
	// Filter is the topic filter, without the "$share/<group>/" or
	// "$queue/" prefix of a shared subscription.
	Filter string
	// Group is the shared subscription group name: "" for a non-shared
	// subscription and "$queue" for an EMQX "$queue/" subscription.
	Group string
	// QoS is the maximum QoS granted for the subscription.
	QoS byte
	// NoLocal asks not to receive the client's own publications (MQTT 5).
	NoLocal bool
	// RetainAsPublished keeps the RETAIN flag of forwarded messages (MQTT 5).
	RetainAsPublished bool
	// RetainHandling says when retained messages are sent on subscribe (MQTT 5).
	RetainHandling byte
	// ID is the MQTT 5 subscription identifier; 0 means none.
	ID uint32
}

// Shared reports whether s is a shared subscription.
func (s Sub) Shared() bool { return s.Group != "" }

// Strategy is how a shared subscription group picks the member that receives
// a message.
type Strategy int

const (
	// Random picks a member uniformly at random.
	Random Strategy = iota
	// RoundRobin visits the members of a group in turn.
	RoundRobin
	// HashClientID picks by a hash of the publisher's client identifier,
	// so that one publisher's messages go to the same member while the
	// group's membership does not change.
	HashClientID
	// HashTopic picks by a hash of the topic name, so that the messages of
	// one topic go to the same member while the membership does not change.
	HashTopic
)

// strategyNames are the configuration names of the strategies, as in EMQX.
var strategyNames = [...]string{
	Random:       "random",
	RoundRobin:   "round_robin",
	HashClientID: "hash_clientid",
	HashTopic:    "hash_topic",
}

// ParseStrategy returns the strategy of a configuration name: "random",
// "round_robin", "hash_clientid" or "hash_topic".
func ParseStrategy(s string) (Strategy, error) {
	for i, name := range strategyNames {
		if s == name {
			return Strategy(i), nil
		}
	}
	return Random, fmt.Errorf("topics: %w: %q", ErrUnknownStrategy, s)
}

// String returns the configuration name of the strategy.
func (s Strategy) String() string {
	if s >= 0 && int(s) < len(strategyNames) {
		return strategyNames[s]
	}
	return fmt.Sprintf("Strategy(%d)", int(s))
}

// nextLevel returns the topic level of s that starts at byte i and the start
// of the level after it, or -1 when it is the last level. Levels are separated
// by '/'; adjacent separators, or a separator at either end, delimit an empty
// level [MQTT-4.7.3-4]: no normalization is performed.
func nextLevel(s string, i int) (level string, next int) {
	for j := i; j < len(s); j++ {
		if s[j] == '/' {
			return s[i:j], j + 1
		}
	}
	return s[i:], -1
}

// isDollar reports whether a topic name begins with '$'. Such topics (like
// $SYS/...) are not matched by filters beginning with a wildcard
// [MQTT-4.7.2-1].
func isDollar(topic string) bool { return len(topic) > 0 && topic[0] == '$' }
