// Package jwt is the authorization backend for the ACL rules a client's
// authentication carried: a JWT's acl claim or an HTTP backend's acl list,
// which the authentication chain parses (both EMQX forms: 4's
// {"pub","sub","all"} lists and 5's list of {"permission","action","topic"})
// into access.Request.Granted. Rules are tried in order and the first that
// applies decides; a topic written "eq t" matches t literally.
package jwt

import (
	"context"
	"fmt"
	"strings"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/acl"
)

// Options configure a Backend.
type Options struct {
	// NoMatch is the verdict when the client carries rules and none
	// applies: Ignore (ask the next backend, EMQX 5) or Deny. A client
	// that carries no rules is always ignored.
	NoMatch access.Verdict
}

// Backend answers from access.Request.Granted.
type Backend struct {
	noMatch access.Verdict
}

var _ access.Authorizer = (*Backend)(nil)

// New validates opts and returns the backend.
func New(opts Options) (*Backend, error) {
	if opts.NoMatch == access.Allow {
		return nil, fmt.Errorf("acl/jwt: no-match verdict must be ignore or deny: %w", acl.ErrConfig)
	}
	return &Backend{noMatch: opts.NoMatch}, nil
}

// Authorize returns the verdict of the first granted rule that applies to
// req. Reason names the rule, by its position and content.
func (b *Backend) Authorize(_ context.Context, req access.Request) access.Decision {
	if len(req.Granted) == 0 {
		return access.Decision{Verdict: access.Ignore, Reason: "no rules granted"}
	}
	topic := acl.RequestTopic(req)
	for i, r := range req.Granted {
		if r.Action != 0 && r.Action != req.Action {
			continue
		}
		if !applies(r, req, topic) {
			continue
		}
		return access.Decision{Verdict: r.Verdict, Reason: fmt.Sprintf("rule %d: %s %s %q", i+1, r.Verdict, actionName(r.Action), r.Filter)}
	}
	return access.Decision{Verdict: b.noMatch, Reason: "no granted rule matched"}
}

// applies reports whether rule r covers topic.
func applies(r access.Rule, req access.Request, topic string) bool {
	if lit, ok := strings.CutPrefix(r.Filter, "eq "); ok {
		return lit == topic
	}
	f, ok := acl.Expand(r.Filter, req.Username, req.ClientID)
	if !ok {
		return false
	}
	return acl.RuleApplies(req.Action, r.Verdict == access.Deny, f, topic)
}

// actionName names a rule's action; 0 means both.
func actionName(a access.Action) string {
	if a == 0 {
		return "all"
	}
	return a.String()
}
