package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// TestCredentialsExpiryDisconnects checks that a client whose
// authentication decision expires (a JWT's exp) is disconnected when it
// does, with DISCONNECT 0x87 for v5, and that the rules granted at
// authentication reach the Authorizer.
func TestCredentialsExpiryDisconnects(t *testing.T) {
	granted := make(chan access.Request, 1)
	_, addr := testutil.RunBroker(t, func(o *broker.Options) {
		o.Authenticator = access.AuthenticatorFunc(func(_ context.Context, id access.Identity) access.Decision {
			return access.Decision{
				Verdict:   access.Allow,
				Source:    "jwt",
				ACL:       []access.Rule{{Verdict: access.Allow, Action: access.Publish, Filter: "t/#"}},
				ExpiresAt: time.Now().Add(400 * time.Millisecond),
			}
		})
		o.Authorizer = access.AuthorizerFunc(func(_ context.Context, r access.Request) access.Decision {
			select {
			case granted <- r:
			default:
			}
			return access.Decision{Verdict: access.Allow}
		})
	})
	c := testutil.Dial(t, addr, mqtt.V5)
	if ack := c.Connect(&mqtt.Connect{ClientID: "exp", CleanStart: true, UsernameSet: true, Username: "u", PasswordSet: true, Password: []byte("tok")}); ack.ReasonCode != 0 {
		t.Fatalf("connack %v", ack.ReasonCode)
	}
	c.Send(&mqtt.Publish{Topic: "t/1", QoS: 1, PacketID: 1, Payload: []byte("x")})
	if a, ok := c.Read().(*mqtt.Ack); !ok || a.PacketType != mqtt.PUBACK {
		t.Fatalf("want PUBACK, got %#v", a)
	}
	r := <-granted
	if r.GrantedBy != "jwt" || len(r.Granted) != 1 || r.Granted[0].Filter != "t/#" || r.ExpiresAt.IsZero() || r.Username != "u" {
		t.Fatalf("authorizer request lacks the authentication's grants: %+v", r)
	}
	got := c.ExpectClosed()
	if len(got) != 1 {
		t.Fatalf("want one DISCONNECT, got %d packets", len(got))
	}
	if d, ok := got[0].(*mqtt.Disconnect); !ok || d.ReasonCode != mqtt.NotAuthorized {
		t.Fatalf("want DISCONNECT 0x87, got %#v", got[0])
	}
}

// TestExpiredCredentialsRefused checks that credentials already expired at
// CONNECT are refused (v3.1.1 return code 5).
func TestExpiredCredentialsRefused(t *testing.T) {
	_, addr := testutil.RunBroker(t, func(o *broker.Options) {
		o.Authenticator = access.AuthenticatorFunc(func(context.Context, access.Identity) access.Decision {
			return access.Decision{Verdict: access.Allow, ExpiresAt: time.Now().Add(-time.Second)}
		})
	})
	c := testutil.Dial(t, addr, mqtt.V311)
	if ack := c.Connect(&mqtt.Connect{ClientID: "old", CleanStart: true}); ack.ReasonCode != mqtt.V3NotAuthorized {
		t.Fatalf("connack %v, want 5", ack.ReasonCode)
	}
}

// TestRefusalPicksConnackCode checks that an authentication backend's kind
// of refusal reaches the client: bad credentials 0x86 / 4, not authorized
// 0x87 / 5, banned 0x8A / 5.
func TestRefusalPicksConnackCode(t *testing.T) {
	for _, tt := range []struct {
		refusal access.Refusal
		v5, v3  mqtt.ReasonCode
	}{
		{access.BadCredentials, mqtt.BadUsernameOrPassword, mqtt.V3BadUsernamePassword},
		{access.NotAuthorized, mqtt.NotAuthorized, mqtt.V3NotAuthorized},
		{access.Banned, mqtt.Banned, mqtt.V3NotAuthorized},
	} {
		_, addr := testutil.RunBroker(t, func(o *broker.Options) {
			o.Authenticator = access.AuthenticatorFunc(func(context.Context, access.Identity) access.Decision {
				return access.Decision{Verdict: access.Deny, Refusal: tt.refusal}
			})
		})
		for _, v := range []mqtt.Version{mqtt.V5, mqtt.V311} {
			c := testutil.Dial(t, addr, v)
			ack := c.Connect(&mqtt.Connect{ClientID: "r", CleanStart: true, UsernameSet: true, Username: "u", PasswordSet: true, Password: []byte("p")})
			want := tt.v5
			if v == mqtt.V311 {
				want = tt.v3
			}
			if ack.ReasonCode != want {
				t.Errorf("refusal %d, v%d: connack %v, want %v", tt.refusal, v, ack.ReasonCode, want)
			}
		}
	}
}
