package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/mqtt"
)

// ErrBadRule is wrapped by every rule validation error.
var ErrBadRule = errors.New("invalid web hook rule")

// Batch groups events of a rule into one POST whose body is a JSON array.
type Batch struct {
	MaxSize  int           // most events per POST (>= 1)
	MaxDelay time.Duration // longest an event waits for the batch to fill
}

// Rule is one web.hook.rule.<event>.<n> entry.
type Rule struct {
	Name    string            // the config key, e.g. web.hook.rule.client.connected.1
	Event   events.Kind       // which event the rule posts
	Topic   string            // MQTT filter; "" matches every topic
	URL     string            // "" = web.hook.url
	Headers map[string]string // added to (and overriding) web.hook.headers.*
	Batch   Batch             // MaxSize 0 = no batching
}

// hookEvents are the events a rule may name: EMQX 4's twelve web hook
// events, plus message.dropped. The value tells whether "topic" applies.
var hookEvents = map[events.Kind]bool{
	events.ClientConnect:       false,
	events.ClientConnack:       false,
	events.ClientConnected:     false,
	events.ClientDisconnected:  false,
	events.ClientSubscribe:     true,
	events.ClientUnsubscribe:   true,
	events.SessionSubscribed:   true,
	events.SessionUnsubscribed: true,
	events.SessionTerminated:   false,
	events.MessagePublish:      true,
	events.MessageDelivered:    true,
	events.MessageAcked:        true,
	events.MessageDropped:      true,
}

// actionNames holds the body action of each kind, made once: every body
// starts with one. An array, not a map: it is read for every event.
var actionNames = func() (a [events.NumKinds]string) {
	for _, k := range events.Kinds() {
		a[k] = strings.ReplaceAll(k.String(), ".", "_")
	}
	return a
}()

// actionName returns the body action of k: client.connected → client_connected.
func actionName(k events.Kind) string {
	if int(k) < len(actionNames) && actionNames[k] != "" {
		return actionNames[k]
	}
	return strings.ReplaceAll(k.String(), ".", "_")
}

// ruleJSON is the accepted shape of a rule's value.
type ruleJSON struct {
	Action  string            `json:"action"`
	Topic   *string           `json:"topic"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Batch   *struct {
		MaxSize  int             `json:"max_size"`
		MaxDelay json.RawMessage `json:"max_delay"`
	} `json:"batch"`
}

// ParseRule parses the rule whose config key is name (the full key, e.g.
// web.hook.rule.message.publish.1) and whose value is the JSON text value.
func ParseRule(name, value string) (Rule, error) {
	rest, ok := strings.CutPrefix(name, "web.hook.rule.")
	i := strings.LastIndexByte(rest, '.')
	if !ok || i <= 0 || i == len(rest)-1 {
		return Rule{}, fmt.Errorf("%w: key must be web.hook.rule.<event>.<n>", ErrBadRule)
	}
	evName := rest[:i]
	k, ok := events.ParseKind(evName)
	topicOK, known := hookEvents[k]
	if !ok || !known {
		return Rule{}, fmt.Errorf("%w: unknown event %q", ErrBadRule, evName)
	}
	var j ruleJSON
	dec := json.NewDecoder(strings.NewReader(value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return Rule{}, fmt.Errorf("%w: bad JSON: %w", ErrBadRule, err)
	}
	if dec.More() {
		return Rule{}, fmt.Errorf("%w: bad JSON: text after the object", ErrBadRule)
	}
	if want := "on_" + actionName(k); j.Action != want {
		return Rule{}, fmt.Errorf("%w: action %q does not match event %s (want %q)", ErrBadRule, j.Action, evName, want)
	}
	r := Rule{Name: name, Event: k, URL: j.URL, Headers: j.Headers}
	if j.Topic != nil {
		if !topicOK {
			return Rule{}, fmt.Errorf("%w: event %s takes no topic filter", ErrBadRule, evName)
		}
		// A rule's filter follows the MQTT filter rules: '#' only last
		// [MQTT-4.7.1-2], '+' a whole level [MQTT-4.7.1-3], never empty
		// [MQTT-4.7.3-1].
		if err := mqtt.ValidTopicFilter(*j.Topic); err != nil {
			return Rule{}, fmt.Errorf("%w: topic filter %q: %w", ErrBadRule, *j.Topic, err)
		}
		r.Topic = *j.Topic
	}
	if r.URL != "" {
		if err := checkURL(r.URL); err != nil {
			return Rule{}, fmt.Errorf("%w: %w", ErrBadRule, err)
		}
	}
	for h := range r.Headers {
		if h == "" || strings.ContainsAny(h, " :\r\n") {
			return Rule{}, fmt.Errorf("%w: bad header name %q", ErrBadRule, h)
		}
	}
	if b := j.Batch; b != nil {
		if b.MaxSize < 1 {
			return Rule{}, fmt.Errorf("%w: batch max_size must be at least 1", ErrBadRule)
		}
		d, err := parseDelay(b.MaxDelay)
		if err != nil {
			return Rule{}, fmt.Errorf("%w: batch max_delay: %w", ErrBadRule, err)
		}
		r.Batch = Batch{MaxSize: b.MaxSize, MaxDelay: d}
	}
	return r, nil
}

// parseDelay reads a duration given as a Go duration string ("200ms") or a
// number of milliseconds; absent means 0.
func parseDelay(raw json.RawMessage) (time.Duration, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return d, nil
	}
	var ms int64
	if err := json.Unmarshal(raw, &ms); err != nil || ms < 0 {
		return 0, fmt.Errorf("want a duration such as \"200ms\" or milliseconds, got %s", raw)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// checkURL accepts absolute http and https URLs.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("bad url %q: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("bad url %q: want http://host[:port]/path or https://host[:port]/path", s)
	}
	return nil
}

// matchesTopic reports whether topic, an event's, passes r's topic filter.
// For subscribe events it is the subscribed filter itself, compared as
// EMQX 4 does.
func (r *Rule) matchesTopic(topic string) bool {
	return r.Topic == "" || mqtt.Match(r.Topic, topic)
}
