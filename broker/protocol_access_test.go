package broker_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// TestAuthenticator checks the authentication seam: the broker asks the
// Authenticator with the client's identity and maps its Decision to the
// CONNACK code (v5 reason code, 3.x return code) [MQTT-3.2.2-7].
func TestAuthenticator(t *testing.T) {
	var mu sync.Mutex
	var seen []access.Identity
	verdicts := map[string]access.Decision{
		"allow":   {Verdict: access.Allow},
		"deny":    {Verdict: access.Deny},
		"down":    {Unavailable: true},
		"dunno":   {Verdict: access.Ignore},
		"deny-ok": {Verdict: access.Deny},
	}
	auth := access.AuthenticatorFunc(func(_ context.Context, id access.Identity) access.Decision {
		mu.Lock()
		seen = append(seen, id)
		mu.Unlock()
		return verdicts[strings.TrimSuffix(id.ClientID, "-anon")]
	})
	for _, anonymous := range []bool{true, false} {
		_, addr := testutil.RunBroker(t, func(o *broker.Options) {
			o.Authenticator = auth
			o.AllowAnonymous = anonymous
		})
		tests := []struct {
			id    string
			creds bool
			v5    mqtt.ReasonCode
			v3    mqtt.ReasonCode
		}{
			{"allow", true, mqtt.Success, mqtt.V3Accepted},
			{"deny", true, mqtt.BadUsernameOrPassword, mqtt.V3BadUsernamePassword},
			{"deny-anon", false, mqtt.NotAuthorized, mqtt.V3NotAuthorized},
			{"down", true, mqtt.ServerUnavailable, mqtt.V3ServerUnavailable},
			// Ignore falls back to allow_anonymous.
			{"dunno", true, mqtt.Success, mqtt.V3Accepted},
		}
		if !anonymous {
			tests[len(tests)-1].v5, tests[len(tests)-1].v3 = mqtt.BadUsernameOrPassword, mqtt.V3BadUsernamePassword
			tests = append(tests, struct {
				id    string
				creds bool
				v5    mqtt.ReasonCode
				v3    mqtt.ReasonCode
			}{"dunno-anon", false, mqtt.NotAuthorized, mqtt.V3NotAuthorized})
		}
		for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
			for _, tc := range tests {
				t.Run(fmt.Sprintf("anonymous %v/%s/%s", anonymous, versionNames[v], tc.id), func(t *testing.T) {
					r := testutil.Dial(t, addr, v)
					c := &mqtt.Connect{ClientID: tc.id, CleanStart: true}
					if tc.creds {
						c.UsernameSet, c.Username = true, "user-"+tc.id
						c.PasswordSet, c.Password = true, []byte("secret")
					}
					want := tc.v5
					if v != mqtt.V5 {
						want = tc.v3
					}
					if a := r.Connect(c); a.ReasonCode != want {
						t.Fatalf("CONNACK %d, want %d", a.ReasonCode, want)
					}
					if want != 0 {
						expectClosedWith(t, r, 0)
					}
					mu.Lock()
					id := seen[len(seen)-1]
					mu.Unlock()
					if id.ClientID != tc.id || id.Listener != "tcp:external" || id.Proto != byte(v) || !id.Peer.IsValid() {
						t.Fatalf("authenticator saw %+v", id)
					}
					if tc.creds && (!id.UsernameSet || id.Username != "user-"+tc.id || string(id.Password) != "secret") {
						t.Fatalf("authenticator saw credentials %q/%q", id.Username, id.Password)
					}
				})
			}
		}
	}
}

// TestAllowAnonymousFalse checks that with no Authenticator and
// allow_anonymous = false every client is refused as not authorized.
func TestAllowAnonymousFalse(t *testing.T) {
	_, addr := testutil.RunBroker(t, func(o *broker.Options) { o.AllowAnonymous = false })
	for v, want := range map[mqtt.Version]mqtt.ReasonCode{mqtt.V311: mqtt.V3NotAuthorized, mqtt.V5: mqtt.NotAuthorized} {
		r := testutil.Dial(t, addr, v)
		if a := r.Connect(&mqtt.Connect{ClientID: "anon", CleanStart: true}); a.ReasonCode != want {
			t.Fatalf("%s: CONNACK %d, want %d", versionNames[v], a.ReasonCode, want)
		}
		expectClosedWith(t, r, 0)
	}
}

// denySecret is an Authorizer that refuses the requests of one action
// (both when 0) on "secret" or below it, ignores the others, and records
// what it was asked.
type denySecret struct {
	action access.Action
	mu     sync.Mutex
	seen   []access.Request
}

func (d *denySecret) Authorize(_ context.Context, req access.Request) access.Decision {
	d.mu.Lock()
	d.seen = append(d.seen, req)
	d.mu.Unlock()
	if (d.action == 0 || d.action == req.Action) && (req.Topic == "secret" || strings.HasPrefix(req.Topic, "secret/")) {
		return access.Decision{Verdict: access.Deny, Source: "test"}
	}
	return access.Decision{Verdict: access.Ignore}
}

// asked reports whether the authorizer was asked about action on topic by
// client id.
func (d *denySecret) asked(id string, a access.Action, topic string) *access.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range d.seen {
		if r := &d.seen[i]; r.ClientID == id && r.Action == a && r.Topic == topic {
			return r
		}
	}
	return nil
}

// TestAuthorizerPublish checks the authorization seam on PUBLISH: a
// denied message is not delivered (nor retained); v5 says so in PUBACK /
// PUBREC 0x87, 3.1.1 cannot and acknowledges as usual.
func TestAuthorizerPublish(t *testing.T) {
	az := &denySecret{action: access.Publish}
	_, addr := testutil.RunBroker(t, func(o *broker.Options) { o.Authorizer = az })
	sub := connectClean(t, addr, mqtt.V5, "reader")
	mustSubscribe(t, sub, "#", 2)
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		t.Run(versionNames[v], func(t *testing.T) {
			id := "writer-" + versionNames[v]
			pub := connectClean(t, addr, v, id)
			denied := mqtt.Success
			if v == mqtt.V5 {
				denied = mqtt.NotAuthorized
			}
			pub.Send(&mqtt.Publish{Topic: "secret/a", QoS: 1, PacketID: 1, Retain: true, Payload: []byte("no")})
			if a := pub.Read().(*mqtt.Ack); a.PacketType != mqtt.PUBACK || a.PacketID != 1 || a.ReasonCode != denied {
				t.Fatalf("PUBACK %+v, want reason %s", a, denied)
			}
			pub.Send(&mqtt.Publish{Topic: "secret/b", QoS: 2, PacketID: 2, Payload: []byte("no")})
			if a := pub.Read().(*mqtt.Ack); a.PacketType != mqtt.PUBREC || a.PacketID != 2 || a.ReasonCode != denied {
				t.Fatalf("PUBREC %+v, want reason %s", a, denied)
			}
			if v != mqtt.V5 {
				// 3.1.1 completes the exchange as if nothing happened.
				pub.Send(&mqtt.Ack{PacketType: mqtt.PUBREL, PacketID: 2})
				expectAck(t, pub.Read(), mqtt.PUBCOMP, 2)
			}
			pub.Send(&mqtt.Publish{Topic: "secret", Payload: []byte("no")})
			publishAcked(t, pub, 3, "public", 1, "yes")
			if got := payloads(t, barrier(t, sub)); fmt.Sprint(got) != "[yes]" {
				t.Fatalf("delivered %v, want only [yes]", got)
			}
			r := az.asked(id, access.Publish, "secret/a")
			if r == nil || r.QoS != 1 || !r.Retain || r.Proto != byte(v) {
				t.Fatalf("authorizer asked %+v", r)
			}
		})
	}
	// The denied retained message was not stored.
	late := connectClean(t, addr, mqtt.V5, "late")
	mustSubscribe(t, late, "secret/#", 1)
	expectNothing(t, late, "retained message of a denied PUBLISH")
}

// TestAuthorizerDenyDisconnect checks acl_deny_action = disconnect: a
// denied PUBLISH ends the connection (v5: DISCONNECT 0x87).
func TestAuthorizerDenyDisconnect(t *testing.T) {
	_, addr := testutil.RunBroker(t, func(o *broker.Options) {
		o.Authorizer = &denySecret{}
		o.ACLDenyDisconnect = true
	})
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		t.Run(versionNames[v], func(t *testing.T) {
			r := connectClean(t, addr, v, "rude")
			publishAcked(t, r, 1, "public", 1, "fine")
			r.Send(&mqtt.Publish{Topic: "secret", QoS: 1, PacketID: 2})
			expectClosedWith(t, r, mqtt.NotAuthorized)
		})
	}
}

// TestAuthorizerSubscribe checks the authorization seam on SUBSCRIBE: a
// denied filter gets SUBACK 0x87 (3.1.1: 0x80) and no messages, the other
// filters of the same SUBSCRIBE are granted.
func TestAuthorizerSubscribe(t *testing.T) {
	az := &denySecret{action: access.Subscribe}
	_, addr := testutil.RunBroker(t, func(o *broker.Options) { o.Authorizer = az })
	pub := connectClean(t, addr, mqtt.V5, "pub")
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		t.Run(versionNames[v], func(t *testing.T) {
			id := "snoop-" + versionNames[v]
			r := connectClean(t, addr, v, id)
			r.Send(&mqtt.Subscribe{PacketID: 4, Subscriptions: []mqtt.Subscription{
				{Filter: "secret/#", QoS: 1}, {Filter: "open", QoS: 1},
			}})
			denied := mqtt.NotAuthorized
			if v != mqtt.V5 {
				denied = mqtt.V3SubackFailure
			}
			sa := r.Read().(*mqtt.Suback)
			if fmt.Sprint(sa.ReasonCodes) != fmt.Sprint([]mqtt.ReasonCode{denied, mqtt.GrantedQoS1}) {
				t.Fatalf("SUBACK %v", sa.ReasonCodes)
			}
			if req := az.asked(id, access.Subscribe, "secret/#"); req == nil || req.QoS != 1 {
				t.Fatalf("authorizer asked %+v", req)
			}
			publishAcked(t, pub, 1, "secret/x", 1, "hidden")
			publishAcked(t, pub, 2, "open", 1, "shown")
			got := barrier(t, r)
			if p := payloads(t, got); fmt.Sprint(p) != "[shown]" {
				t.Fatalf("got %v, want [shown]", p)
			}
			r.Send(&mqtt.Ack{PacketType: mqtt.PUBACK, PacketID: got[0].(*mqtt.Publish).PacketID})
		})
	}
}

// TestAuthorizerWillAndSuperuser checks that a will is authorized when it
// is published (a denied will is dropped), that acl_nomatch = deny applies
// when the Authorizer ignores a request, and that a superuser skips
// authorization.
func TestAuthorizerWillAndSuperuser(t *testing.T) {
	bus := events.NewBus()
	_, addr := testutil.RunBroker(t, func(o *broker.Options) {
		o.Events = bus
		o.Authorizer = &denySecret{}
		o.ACLNoMatch = access.Deny
		o.Authenticator = access.AuthenticatorFunc(func(_ context.Context, id access.Identity) access.Decision {
			return access.Decision{Verdict: access.Allow, Superuser: id.Username == "root"}
		})
	})
	log := newEventLog(t, bus)
	root, _ := dialConnect(t, addr, mqtt.V5, &mqtt.Connect{ClientID: "root", CleanStart: true, UsernameSet: true, Username: "root"})
	mustSubscribe(t, root, "#", 0)
	// An ordinary user: nothing matches, acl_nomatch denies.
	user, _ := dialConnect(t, addr, mqtt.V5, &mqtt.Connect{ClientID: "user", CleanStart: true,
		Will: &mqtt.Will{Topic: "secret/will", Payload: []byte("w")}})
	if code := subscribeOne(t, user, 1, "anything", 0); code != mqtt.NotAuthorized {
		t.Fatalf("SUBACK %s with acl_nomatch = deny", code)
	}
	_ = user.Conn.Close()
	log.waitKind(t, events.SessionTerminated, "user")
	expectNothing(t, root, "a denied will")
	// The superuser may publish anywhere, its own will included.
	root.Send(&mqtt.Publish{Topic: "secret/root", Payload: []byte("mine")})
	if got := payloads(t, barrier(t, root)); fmt.Sprint(got) != "[mine]" {
		t.Fatalf("superuser got %v", got)
	}
}

// TestReplayAuthorizationLeavesRetainedFree checks that while the
// Authorizer is asked about a retained message's topic for a new
// subscription's replay (an ACL backend may take its time), other clients
// can still retain messages: the retained store is not locked across the
// question. The subscriber then gets the older message replayed and the
// new one live, each once.
func TestReplayAuthorizationLeavesRetainedFree(t *testing.T) {
	asked, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var gaveUp atomic.Bool // the question outlasted the publish: it waited for it
	az := access.AuthorizerFunc(func(_ context.Context, req access.Request) access.Decision {
		if req.Action == access.Subscribe && req.Topic == "rl/old" {
			once.Do(func() { close(asked) })
			select {
			case <-release:
			case <-time.After(2 * time.Second):
				gaveUp.Store(true)
			}
		}
		return access.Decision{Verdict: access.Allow}
	})
	_, addr := testutil.RunBroker(t, func(o *broker.Options) { o.Authorizer = az })
	pub := connectClean(t, addr, mqtt.V5, "rl-pub")
	pub.Send(&mqtt.Publish{Topic: "rl/old", QoS: 1, PacketID: 1, Retain: true, Payload: []byte("old")})
	expectAck(t, pub.Read(), mqtt.PUBACK, 1)
	sub := connectClean(t, addr, mqtt.V5, "rl-sub")
	sub.Send(&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "rl/#"}}})
	select {
	case <-asked:
	case <-time.After(5 * time.Second):
		t.Fatal("the authorizer was never asked about rl/old")
	}
	pub.Send(&mqtt.Publish{Topic: "rl/new", QoS: 1, PacketID: 2, Retain: true, Payload: []byte("new")})
	expectAck(t, pub.Read(), mqtt.PUBACK, 2)
	close(release)
	if gaveUp.Load() {
		t.Fatal("retaining rl/new waited for the replay's authorization of rl/old")
	}
	var got []string
	for _, p := range barrier(t, sub) {
		switch p := p.(type) {
		case *mqtt.Suback:
			got = append(got, "SUBACK")
		case *mqtt.Publish:
			got = append(got, fmt.Sprintf("%s retain=%v", p.Topic, p.Retain))
		}
	}
	slices.Sort(got)
	if want := []string{"SUBACK", "rl/new retain=false", "rl/old retain=true"}; !slices.Equal(got, want) {
		t.Fatalf("subscriber got %q, want %q", got, want)
	}
}
