package authn

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mqgate/mqgate/access"
)

// ErrBadACL is wrapped when an "acl" value in a token or a backend's
// answer has a shape this package does not know.
var ErrBadACL = errors.New("authn: bad acl")

// ParseACL turns an "acl" value carried by a JWT claim or an HTTP answer
// into rules, expanding %u and %c (EMQX 4) and ${username} and ${clientid}
// (EMQX 5) in topics. Two shapes are accepted:
//
//   - EMQX 4: {"pub": [...], "sub": [...], "all": [...]}. The lists are
//     allow-lists: a request no list matches is denied, so a final rule
//     denying everything is appended.
//   - EMQX 5: [{"permission": "allow"|"deny", "action":
//     "publish"|"subscribe"|"all", "topic": "t/#"}, ...]. A request no rule
//     matches falls through to the authorization chain.
//
// A topic written "eq t" stands for the literal topic t and is kept as is.
// An empty or null value gives no rules.
func ParseACL(raw json.RawMessage, id access.Identity) ([]access.Rule, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return nil, nil
	}
	if strings.HasPrefix(s, "{") {
		var old struct {
			Pub []string `json:"pub"`
			Sub []string `json:"sub"`
			All []string `json:"all"`
		}
		if err := json.Unmarshal(raw, &old); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadACL, err)
		}
		var rules []access.Rule
		add := func(a access.Action, topics []string) {
			for _, t := range topics {
				rules = append(rules, access.Rule{Verdict: access.Allow, Action: a, Filter: expandTopic(t, id)})
			}
		}
		add(access.Publish, old.Pub)
		add(access.Subscribe, old.Sub)
		add(0, old.All)
		return append(rules, access.Rule{Verdict: access.Deny, Filter: "#"}), nil
	}
	var list []struct {
		Permission string   `json:"permission"`
		Action     string   `json:"action"`
		Topic      string   `json:"topic"`
		Topics     []string `json:"topics"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadACL, err)
	}
	rules := make([]access.Rule, 0, len(list))
	for i, r := range list {
		var v access.Verdict
		switch r.Permission {
		case "allow":
			v = access.Allow
		case "deny":
			v = access.Deny
		default:
			return nil, fmt.Errorf("%w: rule %d: permission %q", ErrBadACL, i, r.Permission)
		}
		var a access.Action
		switch r.Action {
		case "publish":
			a = access.Publish
		case "subscribe":
			a = access.Subscribe
		case "all", "":
		default:
			return nil, fmt.Errorf("%w: rule %d: action %q", ErrBadACL, i, r.Action)
		}
		topics := r.Topics
		if r.Topic != "" {
			topics = append([]string{r.Topic}, topics...)
		}
		if len(topics) == 0 {
			return nil, fmt.Errorf("%w: rule %d has no topic", ErrBadACL, i)
		}
		for _, t := range topics {
			rules = append(rules, access.Rule{Verdict: v, Action: a, Filter: expandTopic(t, id)})
		}
	}
	return rules, nil
}

// expandTopic replaces the client placeholders of a rule's topic.
func expandTopic(t string, id access.Identity) string {
	if !strings.ContainsAny(t, "%$") {
		return t
	}
	return strings.NewReplacer("%u", id.Username, "%c", id.ClientID,
		"${username}", id.Username, "${clientid}", id.ClientID).Replace(t)
}
