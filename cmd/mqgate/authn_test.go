package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gjwt "github.com/golang-jwt/jwt/v5"
	"github.com/lib/pq"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/config"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// authService is a scripted HTTP authentication service keyed by username.
type authService struct {
	mu     sync.Mutex
	status map[string]int
	body   map[string]string
	calls  atomic.Int64
}

func (s *authService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	_ = r.ParseForm()
	u := r.PostForm.Get("username")
	s.mu.Lock()
	st, ok := s.status[u]
	body := s.body[u]
	s.mu.Unlock()
	if !ok {
		st = http.StatusUnauthorized
	}
	if r.PostForm.Get("password") != "pw-"+u && st == http.StatusOK {
		st = http.StatusUnauthorized
	}
	w.WriteHeader(st)
	_, _ = io.WriteString(w, body)
}

func mustParse(t *testing.T, conf string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.conf", []byte(conf), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestServeHTTPChain builds the chain from config and connects real MQTT
// clients of both protocol versions through a broker to a real HTTP
// service: allow, bad credentials, ignore (then allow_anonymous), and an
// outage, which must answer "server unavailable" [MQTT-3.2.2-6] and never
// "bad username or password".
func TestServeHTTPChain(t *testing.T) {
	svc := &authService{
		status: map[string]int{"alice": 200, "eve": 401, "nobody": 200, "down": 503, "boss": 200},
		body:   map[string]string{"nobody": "ignore", "boss": `{"result":"allow","is_superuser":true}`},
	}
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	cfg := mustParse(t, "auth.chain = http\nauth.http.auth_req.url = "+srv.URL+"/auth\nauth.cache.ttl = 0\nauth.cache.negative_ttl = 0\n")
	a, closeA, err := buildAuthenticator(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeA)
	_, addr := testutil.RunBroker(t, func(o *broker.Options) {
		o.Authenticator = a
		o.AllowAnonymous = false
		// Everything is denied to clients that are not superusers.
		o.Authorizer = access.AuthorizerFunc(func(context.Context, access.Request) access.Decision {
			return access.Decision{Verdict: access.Deny, Source: "test"}
		})
	})
	tests := []struct {
		user     string
		v        mqtt.Version
		wantCode mqtt.ReasonCode
	}{
		{"alice", mqtt.V311, mqtt.V3Accepted},
		{"alice", mqtt.V5, 0},
		{"eve", mqtt.V311, mqtt.V3BadUsernamePassword},
		{"eve", mqtt.V5, mqtt.BadUsernameOrPassword},
		// All ignore and allow_anonymous = false: refused.
		{"nobody", mqtt.V311, mqtt.V3BadUsernamePassword},
		// An outage is "server unavailable".
		{"down", mqtt.V311, mqtt.V3ServerUnavailable},
		{"down", mqtt.V5, mqtt.ServerUnavailable},
	}
	for _, tt := range tests {
		c := testutil.Dial(t, addr, tt.v)
		ack := c.Connect(&mqtt.Connect{ClientID: "c-" + tt.user, CleanStart: true, UsernameSet: true, Username: tt.user, PasswordSet: true, Password: []byte("pw-" + tt.user)})
		if ack.ReasonCode != tt.wantCode {
			t.Errorf("%s v%d: connack %v, want %v", tt.user, tt.v, ack.ReasonCode, tt.wantCode)
		}
		_ = c.Conn.Close()
	}
	// A wrong password for a known user is refused.
	c := testutil.Dial(t, addr, mqtt.V311)
	if ack := c.Connect(&mqtt.Connect{ClientID: "x", CleanStart: true, UsernameSet: true, Username: "alice", PasswordSet: true, Password: []byte("nope")}); ack.ReasonCode != mqtt.V3BadUsernamePassword {
		t.Errorf("wrong password: connack %v", ack.ReasonCode)
	}
	// A superuser skips authorization; others do not.
	for user, allowed := range map[string]bool{"boss": true, "alice": false} {
		c = testutil.Dial(t, addr, mqtt.V5)
		if ack := c.Connect(&mqtt.Connect{ClientID: "p-" + user, CleanStart: true, UsernameSet: true, Username: user, PasswordSet: true, Password: []byte("pw-" + user)}); ack.ReasonCode != 0 {
			t.Fatalf("%s: connack %v", user, ack.ReasonCode)
		}
		c.Send(&mqtt.Publish{Topic: "t", QoS: 1, PacketID: 1, Payload: []byte("x")})
		// A PUBACK reason below 0x80 is a success [MQTT-3.4.2-1].
		if a, ok := c.Read().(*mqtt.Ack); !ok || (a.ReasonCode < 0x80) != allowed {
			t.Errorf("%s: publish answered %#v, want allowed=%v", user, a, allowed)
		}
	}
}

func TestBuildAuthenticatorErrors(t *testing.T) {
	tests := []struct{ conf, want string }{
		{"auth.chain = http, nope\n", "unknown backend"},
		{"auth.chain = http\nauth.http.auth_req.url = ftp://x\n", "auth_req.url"},
		{"auth.chain = http, http\n", "twice"},
		{"auth.chain = http\nauth.http.auth_req.params = a\n", "params"},
	}
	for _, tt := range tests {
		_, _, err := buildAuthenticator(mustParse(t, tt.conf), slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err %v, want one naming %q", tt.conf, err, tt.want)
		}
	}
	a, closeA, err := buildAuthenticator(mustParse(t, ""), slog.New(slog.DiscardHandler))
	if err != nil || a != nil {
		t.Fatalf("empty chain: %v %v", a, err)
	}
	closeA()
}

// TestServeJWTExpiry connects real clients with HMAC tokens through a
// chain built from config: a token that expires while its client is
// connected ends the connection with DISCONNECT 0x87 (v5), and the
// client's will is published as for any abnormal end [MQTT-3.1.2-8].
func TestServeJWTExpiry(t *testing.T) {
	const secret = "test-secret"
	cfg := mustParse(t, "auth.chain = jwt\nauth.jwt.secret = "+secret+"\nauth.jwt.verify_claims = on\nauth.jwt.verify_claims.sub = %u\n")
	a, closeA, err := buildAuthenticator(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeA)
	_, addr := testutil.RunBroker(t, func(o *broker.Options) {
		o.Authenticator = a
		o.AllowAnonymous = false
	})
	token := func(sub string, exp time.Time) []byte {
		c := gjwt.MapClaims{"sub": sub}
		if !exp.IsZero() {
			c["exp"] = exp.Unix()
		}
		s, err := gjwt.NewWithClaims(gjwt.SigningMethodHS256, c).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return []byte(s)
	}
	// A watcher with a token that never expires.
	w := testutil.Dial(t, addr, mqtt.V311)
	if ack := w.Connect(&mqtt.Connect{ClientID: "watcher", CleanStart: true, UsernameSet: true, Username: "w", PasswordSet: true, Password: token("w", time.Time{})}); ack.ReasonCode != 0 {
		t.Fatalf("watcher: connack %v", ack.ReasonCode)
	}
	w.Send(&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "wills/#"}}})
	w.Read()

	// Refused: a token for someone else, an expired token, a bad signature.
	bad := map[string][]byte{
		"other sub": token("x", time.Now().Add(time.Hour)),
		"expired":   token("d", time.Now().Add(-time.Hour)),
		"forged":    append(token("d", time.Now().Add(time.Hour)), 'x'),
	}
	for name, tok := range bad {
		c := testutil.Dial(t, addr, mqtt.V311)
		if ack := c.Connect(&mqtt.Connect{ClientID: "d", CleanStart: true, UsernameSet: true, Username: "d", PasswordSet: true, Password: tok}); ack.ReasonCode != mqtt.V3BadUsernamePassword {
			t.Errorf("%s: connack %v, want 4", name, ack.ReasonCode)
		}
	}

	exp := time.Now().Add(1500 * time.Millisecond)
	c := testutil.Dial(t, addr, mqtt.V5)
	ack := c.Connect(&mqtt.Connect{ClientID: "dev", CleanStart: true, UsernameSet: true, Username: "d", PasswordSet: true,
		Password: token("d", exp), Will: &mqtt.Will{Topic: "wills/dev", Payload: []byte("gone")}})
	if ack.ReasonCode != 0 {
		t.Fatalf("connack %v", ack.ReasonCode)
	}
	got := c.ExpectClosed()
	if len(got) != 1 {
		t.Fatalf("want one DISCONNECT, got %d packets", len(got))
	}
	if d, ok := got[0].(*mqtt.Disconnect); !ok || d.ReasonCode != mqtt.NotAuthorized {
		t.Fatalf("want DISCONNECT 0x87, got %#v", got[0])
	}
	p, ok := w.Read().(*mqtt.Publish)
	if !ok || p.Topic != "wills/dev" || string(p.Payload) != "gone" {
		t.Fatalf("want the will, got %#v", p)
	}
}

// TestPasswdAndFileChain writes users with mqgate passwd and connects real
// clients through a chain of file then http: a user the file knows is
// decided by it, others fall through to the HTTP service.
func TestPasswdAndFileChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	var out, errb bytes.Buffer
	if code := passwdRun([]string{"-c", "-a", "pbkdf2-sha256", "-iterations", "1000", path, "ann", "pw-ann"}, nil, &out, &errb); code != 0 {
		t.Fatalf("passwd: exit %d: %s", code, errb.String())
	}
	if code := passwdRun([]string{"-cost", "4", path, "bob"}, strings.NewReader("pw-bob\n"), &out, &errb); code != 0 {
		t.Fatalf("passwd from stdin: exit %d: %s", code, errb.String())
	}
	if code := passwdRun([]string{"-a", "md5", path, "x", "y"}, nil, &out, &errb); code != 2 {
		t.Fatalf("passwd -a md5: exit %d", code)
	}
	if code := passwdRun([]string{"-D", path, "nobody"}, nil, &out, &errb); code != 1 {
		t.Fatalf("passwd -D of a missing user: exit %d", code)
	}
	svc := &authService{status: map[string]int{"carl": 200, "ann": 200}}
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	cfg := mustParse(t, "auth.chain = file, http\nauth.file.path = "+path+"\nauth.http.auth_req.url = "+srv.URL+"\n")
	a, closeA, err := buildAuthenticator(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeA)
	_, addr := testutil.RunBroker(t, func(o *broker.Options) {
		o.Authenticator = a
		o.AllowAnonymous = false
	})
	tests := []struct {
		user, pw string
		want     mqtt.ReasonCode
	}{
		{"ann", "pw-ann", mqtt.V3Accepted},
		{"bob", "pw-bob", mqtt.V3Accepted},
		// The file knows ann: a wrong password is denied there, never asked of http.
		{"ann", "wrong", mqtt.V3BadUsernamePassword},
		{"carl", "pw-carl", mqtt.V3Accepted},
	}
	for _, tt := range tests {
		c := testutil.Dial(t, addr, mqtt.V311)
		if ack := c.Connect(&mqtt.Connect{ClientID: "c-" + tt.user, CleanStart: true, UsernameSet: true, Username: tt.user, PasswordSet: true, Password: []byte(tt.pw)}); ack.ReasonCode != tt.want {
			t.Errorf("%s/%s: connack %v, want %v", tt.user, tt.pw, ack.ReasonCode, tt.want)
		}
	}
	if n := svc.calls.Load(); n != 1 {
		t.Errorf("http asked %d times, want 1 (carl only)", n)
	}
}

func TestPgsqlDSN(t *testing.T) {
	tests := []struct {
		conf string
		want []string
	}{
		{"", []string{"host='127.0.0.1'", "port='5432'", "user='root'", "dbname='mqtt'", "sslmode='disable'"}},
		{"auth.pgsql.server = db.example:6432\nauth.pgsql.password = it's\\x\n", []string{"host='db.example'", "port='6432'", `password='it\'s\\x'`}},
		{"auth.pgsql.server = 7000\n", []string{"host='127.0.0.1'", "port='7000'"}},
		{"auth.pgsql.ssl = on\n", []string{"sslmode='require'"}},
		{"auth.pgsql.ssl = on\nauth.pgsql.ssl.verify = true\nauth.pgsql.ssl.cacertfile = /ca.pem\n", []string{"sslmode='verify-full'", "sslrootcert='/ca.pem'"}},
		{"auth.pgsql.ssl = on\nauth.pgsql.ssl.verify = true\nauth.pgsql.ssl.server_name_indication = disable\n", []string{"sslmode='verify-ca'"}},
	}
	for _, tt := range tests {
		dsn := pgsqlDSN(mustParse(t, tt.conf))
		for _, w := range tt.want {
			if !strings.Contains(dsn, w) {
				t.Errorf("%q: dsn %s lacks %s", tt.conf, dsn, w)
			}
		}
		if _, err := pq.NewConnector(dsn); err != nil {
			t.Errorf("%q: the driver rejects %s: %v", tt.conf, dsn, err)
		}
	}
}

func TestListenerPort(t *testing.T) {
	port := listenerPort(mustParse(t, "listener.tcp.external = 127.0.0.1:1884\nlistener.tcp.extra = 2883\n"))
	for l, want := range map[string]string{"tcp:external": "1884", "tcp:extra": "2883", "ws:x": ""} {
		if got := port(l); got != want {
			t.Errorf("port(%q) = %q, want %q", l, got, want)
		}
	}
}
