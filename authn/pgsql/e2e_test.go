package pgsql

import (
	"testing"

	"github.com/mqgate/mqgate/authn"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// TestBrokerConnect connects real MQTT clients through a broker whose
// chain asks a real PostgreSQL: allow, wrong password, unknown user with
// allow_anonymous off, and a database outage, which answers "server
// unavailable" (3.1.1 return code 3, v5 0x88).
func TestBrokerConnect(t *testing.T) {
	dsn := setup(t, [][4]any{{"emqx", hash(t, "salt,sha256", "public", "ab"), "ab", false}})
	b := newBackend(t, Options{DSN: dsn, AuthQuery: saltedAuth, PasswordHash: "salt,sha256"})
	chain, err := authn.New(authn.Options{Links: []*authn.Link{{Name: "pgsql", Backend: b}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = chain.Close() })
	_, addr := testutil.RunBroker(t, func(o *broker.Options) {
		o.Authenticator = chain
		o.AllowAnonymous = false
	})
	connect := func(v mqtt.Version, user, pw string) mqtt.ReasonCode {
		c := testutil.Dial(t, addr, v)
		defer c.Conn.Close()
		return c.Connect(&mqtt.Connect{ClientID: "c", CleanStart: true, UsernameSet: true, Username: user, PasswordSet: true, Password: []byte(pw)}).ReasonCode
	}
	tests := []struct {
		v        mqtt.Version
		user, pw string
		want     mqtt.ReasonCode
	}{
		{mqtt.V311, "emqx", "public", mqtt.V3Accepted},
		{mqtt.V5, "emqx", "public", mqtt.Success},
		{mqtt.V311, "emqx", "wrong", mqtt.V3BadUsernamePassword},
		{mqtt.V5, "emqx", "wrong", mqtt.BadUsernameOrPassword},
		{mqtt.V311, "ghost", "public", mqtt.V3BadUsernamePassword},
	}
	for _, tt := range tests {
		if got := connect(tt.v, tt.user, tt.pw); got != tt.want {
			t.Errorf("v%d %s/%s: connack %v, want %v", tt.v, tt.user, tt.pw, got, tt.want)
		}
	}
	// Outage: the pool is closed under the chain.
	_ = b.Close()
	for v, want := range map[mqtt.Version]mqtt.ReasonCode{mqtt.V311: mqtt.V3ServerUnavailable, mqtt.V5: mqtt.ServerUnavailable} {
		if got := connect(v, "emqx", "public2"); got != want {
			t.Errorf("outage v%d: connack %v, want %v", v, got, want)
		}
	}
}
