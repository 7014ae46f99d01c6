package jwt

import (
	"crypto/rsa"
	"testing"
	"time"

	gjwt "github.com/golang-jwt/jwt/v5"

	"github.com/mqgate/mqgate/authn"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// TestBrokerJWKSRotation connects real MQTT clients with RS256 tokens
// whose keys come from a JWKS that rotates mid-test: the new key is
// fetched as soon as a client presents it, the revoked key's tokens are
// no longer accepted, and an outage of the endpoint keeps the last good
// set.
func TestBrokerJWKSRotation(t *testing.T) {
	k1, k2 := mustRSA(), mustRSA()
	srv := newJWKS(t)
	srv.set(map[string]*rsa.PrivateKey{"k1": k1}, false)
	be := newBackend(t, Options{JWKSURL: srv.URL, JWKSRefresh: time.Hour, UnknownKIDInterval: time.Hour})
	chain, err := authn.New(authn.Options{Links: []*authn.Link{{Name: "jwt", Backend: be}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = chain.Close() })
	_, addr := testutil.RunBroker(t, func(o *broker.Options) {
		o.Authenticator = chain
		o.AllowAnonymous = false
	})
	exp := time.Now().Add(time.Hour).Unix()
	connect := func(key *rsa.PrivateKey, kid string) mqtt.ReasonCode {
		tok := sign(t, gjwt.SigningMethodRS256, key, gjwt.MapClaims{"exp": exp}, kid)
		c := testutil.Dial(t, addr, mqtt.V5)
		defer c.Conn.Close()
		return c.Connect(&mqtt.Connect{ClientID: "dev-" + kid, CleanStart: true, UsernameSet: true, Username: "d", PasswordSet: true, Password: []byte(tok)}).ReasonCode
	}
	if rc := connect(k1, "k1"); rc != mqtt.Success {
		t.Fatalf("k1: connack %v", rc)
	}
	srv.set(map[string]*rsa.PrivateKey{"k2": k2}, false)
	if rc := connect(k2, "k2"); rc != mqtt.Success {
		t.Fatalf("k2 after rotation: connack %v", rc)
	}
	// k1 is gone from the set: its token is nobody's, and with
	// allow_anonymous off the client is refused.
	if rc := connect(k1, "k1"); rc != mqtt.BadUsernameOrPassword {
		t.Fatalf("revoked k1: connack %v", rc)
	}
	srv.set(nil, true)
	if rc := connect(k2, "k2"); rc != mqtt.Success {
		t.Fatalf("k2 while the endpoint is down: connack %v", rc)
	}
}
