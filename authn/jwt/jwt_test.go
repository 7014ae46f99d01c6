package jwt

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gjwt "github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/mqgate/mqgate/access"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	rsaKey          = mustRSA()
	ecKey           = mustEC()
	edPub, edKey, _ = ed25519.GenerateKey(rand.Reader)
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func sign(t testing.TB, m gjwt.SigningMethod, key any, claims gjwt.MapClaims, kid string) string {
	t.Helper()
	tok := gjwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newBackend(t testing.TB, o Options) *Backend {
	t.Helper()
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func withToken(tok string) access.Identity {
	return access.Identity{ClientID: "c1", Username: "u1", UsernameSet: true, Password: []byte(tok)}
}

// TestAlgorithms checks every signing algorithm family against static
// keys, and that "none" and algorithms off the allow-list are refused.
func TestAlgorithms(t *testing.T) {
	secret := []byte("s3cret")
	b := newBackend(t, Options{Secret: secret, PublicKeys: []crypto.PublicKey{&rsaKey.PublicKey, &ecKey.PublicKey, edPub}})
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	claims := func() gjwt.MapClaims { return gjwt.MapClaims{"sub": "u1", "exp": exp.Unix()} }
	unsafe, _ := gjwt.NewWithClaims(gjwt.SigningMethodNone, claims()).SignedString(gjwt.UnsafeAllowNoneSignatureType)
	tests := []struct {
		name string
		tok  string
		want access.Verdict
	}{
		{"HS256", sign(t, gjwt.SigningMethodHS256, secret, claims(), ""), access.Allow},
		{"HS384", sign(t, gjwt.SigningMethodHS384, secret, claims(), ""), access.Allow},
		{"HS512", sign(t, gjwt.SigningMethodHS512, secret, claims(), ""), access.Allow},
		{"RS256", sign(t, gjwt.SigningMethodRS256, rsaKey, claims(), ""), access.Allow},
		{"RS512", sign(t, gjwt.SigningMethodRS512, rsaKey, claims(), ""), access.Allow},
		{"PS256", sign(t, gjwt.SigningMethodPS256, rsaKey, claims(), ""), access.Allow},
		{"ES256", sign(t, gjwt.SigningMethodES256, ecKey, claims(), ""), access.Allow},
		{"EdDSA", sign(t, gjwt.SigningMethodEdDSA, edKey, claims(), ""), access.Allow},
		{"wrong secret", sign(t, gjwt.SigningMethodHS256, []byte("other"), claims(), ""), access.Deny},
		{"wrong rsa key", sign(t, gjwt.SigningMethodRS256, mustRSA(), claims(), ""), access.Deny},
		{"alg none", unsafe, access.Deny},
		{"not a jwt", "plain-password", access.Ignore},
		{"garbage jwt", "a.b.c", access.Ignore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := b.Authenticate(context.Background(), withToken(tt.tok))
			if d.Verdict != tt.want || d.Unavailable {
				t.Fatalf("got %+v, want %v", d, tt.want)
			}
			if strings.Contains(d.Reason, tt.tok) {
				t.Error("reason holds the token")
			}
			if tt.want == access.Allow && !d.ExpiresAt.Equal(exp) {
				t.Errorf("expires at %v, want %v", d.ExpiresAt, exp)
			}
		})
	}
	// The allow-list.
	hsOnly := newBackend(t, Options{Secret: secret, PublicKeys: []crypto.PublicKey{&rsaKey.PublicKey}, Algorithms: []string{"HS256"}})
	if d := hsOnly.Authenticate(context.Background(), withToken(sign(t, gjwt.SigningMethodRS256, rsaKey, claims(), ""))); d.Verdict != access.Deny {
		t.Errorf("RS256 off the allow-list: %+v", d)
	}
	if _, err := New(Options{Secret: secret, Algorithms: []string{"none"}}); err == nil {
		t.Error("none accepted in the allow-list")
	}
	// No HMAC secret: an HS token is not ours.
	noHS := newBackend(t, Options{PublicKeys: []crypto.PublicKey{&rsaKey.PublicKey}})
	if d := noHS.Authenticate(context.Background(), withToken(sign(t, gjwt.SigningMethodHS256, secret, claims(), ""))); d.Verdict != access.Ignore {
		t.Errorf("HS token without a secret: %+v", d)
	}
}

func TestClaims(t *testing.T) {
	secret := []byte("k")
	now := time.Unix(1_700_000_000, 0)
	b := newBackend(t, Options{Secret: secret, Issuer: "iss1", Audience: "mqtt", Leeway: 5 * time.Second,
		VerifyClaims: map[string]string{"username": "%u", "clientid": "%c", "tenant": "acme"}, now: func() time.Time { return now }})
	base := func() gjwt.MapClaims {
		return gjwt.MapClaims{"iss": "iss1", "aud": "mqtt", "username": "u1", "clientid": "c1", "tenant": "acme", "exp": now.Add(time.Minute).Unix()}
	}
	tests := []struct {
		name   string
		edit   func(gjwt.MapClaims)
		want   access.Verdict
		reason string
	}{
		{"ok", func(gjwt.MapClaims) {}, access.Allow, "verified"},
		{"expired", func(c gjwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }, access.Deny, "expired"},
		{"expired within leeway", func(c gjwt.MapClaims) { c["exp"] = now.Add(-2 * time.Second).Unix() }, access.Allow, "verified"},
		{"not yet valid", func(c gjwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() }, access.Deny, "not valid yet"},
		{"issued in the future", func(c gjwt.MapClaims) { c["iat"] = now.Add(time.Minute).Unix() }, access.Deny, "used before issued"},
		{"wrong issuer", func(c gjwt.MapClaims) { c["iss"] = "evil" }, access.Deny, "issuer"},
		{"wrong audience", func(c gjwt.MapClaims) { c["aud"] = "web" }, access.Deny, "audience"},
		{"username mismatch", func(c gjwt.MapClaims) { c["username"] = "u2" }, access.Deny, "claim username"},
		{"clientid mismatch", func(c gjwt.MapClaims) { c["clientid"] = "c2" }, access.Deny, "claim clientid"},
		{"literal missing", func(c gjwt.MapClaims) { delete(c, "tenant") }, access.Deny, "claim tenant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.edit(c)
			d := b.Authenticate(context.Background(), withToken(sign(t, gjwt.SigningMethodHS256, secret, c, "")))
			if d.Verdict != tt.want || !strings.Contains(d.Reason, tt.reason) {
				t.Fatalf("got %v %q, want %v containing %q", d.Verdict, d.Reason, tt.want, tt.reason)
			}
		})
	}
}

func TestACLAndSuperuserClaims(t *testing.T) {
	secret := []byte("k")
	b := newBackend(t, Options{Secret: secret, FromUsername: true})
	tok := sign(t, gjwt.SigningMethodHS256, secret, gjwt.MapClaims{
		"acl":          map[string]any{"pub": []string{"up/%c"}, "sub": []string{"down/%u/#"}},
		"is_superuser": true,
	}, "")
	d := b.Authenticate(context.Background(), access.Identity{ClientID: "dev1", Username: tok, UsernameSet: true})
	want := []access.Rule{
		{Verdict: access.Allow, Action: access.Publish, Filter: "up/dev1"},
		{Verdict: access.Allow, Action: access.Subscribe, Filter: "down/" + tok + "/#"},
		{Verdict: access.Deny, Filter: "#"},
	}
	if d.Verdict != access.Allow || !d.Superuser || !d.ExpiresAt.IsZero() || len(d.ACL) != 3 {
		t.Fatalf("got %+v", d)
	}
	for i := range want {
		if d.ACL[i] != want[i] {
			t.Errorf("rule %d = %+v, want %+v", i, d.ACL[i], want[i])
		}
	}
	// EMQX 5 list form.
	tok = sign(t, gjwt.SigningMethodHS256, secret, gjwt.MapClaims{
		"acl": []map[string]string{{"permission": "deny", "action": "subscribe", "topic": "#"}},
	}, "")
	d = b.Authenticate(context.Background(), access.Identity{ClientID: "dev1", Username: tok})
	if len(d.ACL) != 1 || d.ACL[0] != (access.Rule{Verdict: access.Deny, Action: access.Subscribe, Filter: "#"}) || d.Superuser {
		t.Fatalf("got %+v", d)
	}
}

// jwksServer serves a JWKS that the test can rotate, and can be taken down.
type jwksServer struct {
	mu   sync.Mutex
	keys map[string]*rsa.PrivateKey
	down bool
	hits atomic.Int64
	*httptest.Server
}

func newJWKS(t *testing.T) *jwksServer {
	s := &jwksServer{keys: map[string]*rsa.PrivateKey{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var set struct {
			Keys []map[string]string `json:"keys"`
		}
		for kid, k := range s.keys {
			set.Keys = append(set.Keys, map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
				"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
				"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes())})
		}
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(keys map[string]*rsa.PrivateKey, down bool) {
	s.mu.Lock()
	s.keys, s.down = keys, down
	s.mu.Unlock()
}

// TestJWKSRotation rotates the JWKS mid-test: a token with a new kid makes
// the backend fetch the set again at once (not only on its timer), fetches
// for unknown kids are rate-limited, and the last good set is kept while
// the endpoint is down.
func TestJWKSRotation(t *testing.T) {
	k1, k2 := mustRSA(), mustRSA()
	srv := newJWKS(t)
	srv.set(map[string]*rsa.PrivateKey{"k1": k1}, false)
	b := newBackend(t, Options{JWKSURL: srv.URL, JWKSRefresh: time.Hour, UnknownKIDInterval: time.Hour})
	claims := gjwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()}
	ctx := context.Background()
	if d := b.Authenticate(ctx, withToken(sign(t, gjwt.SigningMethodRS256, k1, claims, "k1"))); d.Verdict != access.Allow {
		t.Fatalf("k1: %+v", d)
	}
	fetches := srv.hits.Load()
	// Rotation: k2 appears, k1 goes.
	srv.set(map[string]*rsa.PrivateKey{"k2": k2}, false)
	if d := b.Authenticate(ctx, withToken(sign(t, gjwt.SigningMethodRS256, k2, claims, "k2"))); d.Verdict != access.Allow {
		t.Fatalf("k2 after rotation: %+v", d)
	}
	if srv.hits.Load() != fetches+1 {
		t.Fatalf("unknown kid made %d fetches, want 1", srv.hits.Load()-fetches)
	}
	// k1 was revoked by the rotation; the token is no longer verifiable.
	if d := b.Authenticate(ctx, withToken(sign(t, gjwt.SigningMethodRS256, k1, claims, "k1"))); d.Verdict == access.Allow {
		t.Fatalf("revoked k1 still allowed: %+v", d)
	}
	// A storm of unknown kids is rate-limited: no more fetches this hour.
	fetches = srv.hits.Load()
	for range 20 {
		if d := b.Authenticate(ctx, withToken(sign(t, gjwt.SigningMethodRS256, k2, claims, "nope"))); d.Verdict != access.Ignore {
			t.Fatalf("unknown kid: %+v", d)
		}
	}
	if srv.hits.Load() != fetches {
		t.Fatalf("unknown kids made %d fetches past the rate limit", srv.hits.Load()-fetches)
	}
	// Endpoint down: the last good set keeps working.
	srv.set(nil, true)
	if d := b.Authenticate(ctx, withToken(sign(t, gjwt.SigningMethodRS256, k2, claims, "k2"))); d.Verdict != access.Allow {
		t.Fatalf("k2 while the endpoint is down: %+v", d)
	}
}

// TestJWKSTimerRefresh checks the periodic refresh.
func TestJWKSTimerRefresh(t *testing.T) {
	srv := newJWKS(t)
	k1 := mustRSA()
	srv.set(map[string]*rsa.PrivateKey{"k1": k1}, false)
	newBackend(t, Options{JWKSURL: srv.URL, JWKSRefresh: 20 * time.Millisecond})
	for srv.hits.Load() < 3 {
		time.Sleep(5 * time.Millisecond)
	}
}

// TestJWKSDownFromStart checks that tokens are answered "server
// unavailable" while no key set was ever fetched.
func TestJWKSDownFromStart(t *testing.T) {
	srv := newJWKS(t)
	srv.set(nil, true)
	b := newBackend(t, Options{JWKSURL: srv.URL, JWKSRefresh: time.Hour, UnknownKIDInterval: time.Hour})
	k := mustRSA()
	d := b.Authenticate(context.Background(), withToken(sign(t, gjwt.SigningMethodRS256, k, gjwt.MapClaims{}, "k1")))
	if !d.Unavailable {
		t.Fatalf("got %+v, want unavailable", d)
	}
}

func TestParsePublicKeyPEM(t *testing.T) {
	der, err := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pem  []byte
		ok   bool
	}{
		{"pkix", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), true},
		{"pkcs1", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)}), true},
		{"empty", nil, false},
		{"private only", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), false},
	}
	for _, tt := range tests {
		if _, err := ParsePublicKeyPEM(tt.pem); (err == nil) != tt.ok {
			t.Errorf("%s: err %v", tt.name, err)
		}
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New accepted no keys")
	}
}
