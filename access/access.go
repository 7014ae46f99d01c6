// Package access is the small vocabulary that the broker and the
// authentication and authorization chains share: who is asking (Identity),
// what they ask (Request) and the answer (Decision). It depends on nothing
// else in mqgate, so backends never import the broker and the broker never
// imports a backend.
package access

import (
	"context"
	"net/netip"
	"sync/atomic"
	"time"
)

// Verdict is a backend's answer.
type Verdict uint8

const (
	// Ignore means "not mine": ask the next link of the chain.
	Ignore Verdict = iota
	// Allow grants the request.
	Allow
	// Deny refuses the request.
	Deny
)

func (v Verdict) String() string {
	switch v {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	default:
		return "ignore"
	}
}

// Action is what a client asks to do with a topic.
type Action uint8

const (
	// Publish is a PUBLISH, a will message, or a retained message set by a client.
	Publish Action = iota + 1
	// Subscribe is one topic filter of a SUBSCRIBE, or the replay of retained
	// messages to a subscriber.
	Subscribe
)

func (a Action) String() string {
	switch a {
	case Publish:
		return "publish"
	case Subscribe:
		return "subscribe"
	default:
		return "unknown"
	}
}

// Identity is who a client claims to be, as seen at CONNECT.
type Identity struct {
	ClientID string
	Username string
	// UsernameSet distinguishes an empty username from an absent one.
	UsernameSet bool
	Password    []byte
	Listener    string         // e.g. "tcp:external"
	Peer        netip.AddrPort // the client's address (after PROXY protocol, if any)
	CertCN      string         // TLS client certificate common name, if any
	CertDN      string         // TLS client certificate subject, if any
	Proto       byte           // protocol level: 3, 4 or 5
}

// Request is an authorization question.
type Request struct {
	Identity
	Action Action
	Topic  string // topic name (publish) or filter (subscribe)
	QoS    byte
	Retain bool
	// Granted are the rules the client's authentication carried (a JWT
	// claim, an HTTP backend's answer); nil when it carried none.
	Granted []Rule
	// GrantedBy names the authentication backend that granted them.
	GrantedBy string
	// ExpiresAt is when the client's credentials expire; zero = never.
	ExpiresAt time.Time
	// Superuser is set when authentication marked the client a superuser.
	Superuser bool
}

// Rule is one ACL entry carried by an authentication result (for example
// from a JWT claim or an HTTP backend's JSON answer).
type Rule struct {
	Verdict Verdict
	Action  Action // 0 means both
	Filter  string
}

// Decision is a backend's or a chain's answer, with where it came from.
type Decision struct {
	Verdict   Verdict
	Superuser bool      // skip authorization for this client
	Source    string    // which backend decided, e.g. "jwt", "casbin", "default"
	Reason    string    // why, e.g. the rule that matched
	ACL       []Rule    // client-specific rules granted at authentication
	ExpiresAt time.Time // zero = never; the client is disconnected when it passes
	// Unavailable is set when the backend could not answer (outage): CONNACK
	// then says "server unavailable", never "bad username or password".
	Unavailable bool
	// Refusal says how a Deny at authentication is reported to the client;
	// the zero value is "bad username or password".
	Refusal Refusal
	// Reuse, set by a caching authorizer, says how long the caller may
	// reuse this authorization decision for the same request without
	// asking again; the zero value: not at all.
	Reuse Reuse
}

// Reuse is a promise from a caching authorizer: its decision stands while
// two counters keep their values and a clock stays below a deadline, so
// that a caller that asks the same question again and again (a device
// publishing to one topic) can check three atomic loads instead of asking.
// The zero value is never valid.
type Reuse struct {
	epochs [2]*atomic.Uint64
	want   [2]uint64
	clock  *atomic.Int64 // unix nanoseconds
	until  int64
	hits   *atomic.Uint64 // counts reuses; may be nil
}

// NewReuse promises that a decision stands while each epochs[i] holds
// want[i] and clock is below until; hits, if not nil, counts each reuse.
func NewReuse(epochs [2]*atomic.Uint64, want [2]uint64, clock *atomic.Int64, until int64, hits *atomic.Uint64) Reuse {
	return Reuse{epochs: epochs, want: want, clock: clock, until: until, hits: hits}
}

// Valid reports whether the decision still stands, and counts a reuse
// when it does.
func (r Reuse) Valid() bool {
	if r.clock == nil || r.clock.Load() >= r.until {
		return false
	}
	for i, e := range r.epochs {
		if e != nil && e.Load() != r.want[i] {
			return false
		}
	}
	if r.hits != nil {
		r.hits.Add(1)
	}
	return true
}

// Refusal is the kind of a refused CONNECT, which picks the CONNACK code.
type Refusal uint8

const (
	// BadCredentials: CONNACK 0x86 (3.1.1: 4, bad user name or password).
	BadCredentials Refusal = iota
	// NotAuthorized: CONNACK 0x87 (3.1.1: 5, not authorized).
	NotAuthorized
	// Banned: CONNACK 0x8A (3.1.1: 5, not authorized).
	Banned
)

// Forgetter is implemented by an Authorizer that keeps per-client state
// (a decision cache): the broker calls Forget when a client disconnects.
type Forgetter interface {
	Forget(clientID string)
}

// Authenticator decides whether a client may connect.
type Authenticator interface {
	Authenticate(ctx context.Context, id Identity) Decision
}

// Authorizer decides whether a client may publish or subscribe.
type Authorizer interface {
	Authorize(ctx context.Context, req Request) Decision
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(ctx context.Context, id Identity) Decision

// Authenticate implements Authenticator.
func (f AuthenticatorFunc) Authenticate(ctx context.Context, id Identity) Decision { return f(ctx, id) }

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(ctx context.Context, req Request) Decision

// Authorize implements Authorizer.
func (f AuthorizerFunc) Authorize(ctx context.Context, req Request) Decision { return f(ctx, req) }
