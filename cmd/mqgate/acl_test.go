package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/config"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// aclConf writes conf to a file in a temporary directory and returns its
// path.
func aclConf(t *testing.T, conf string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mqgate.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// shippedPolicies is the config lines that point the Casbin backend at the
// policies/ files of the repository.
const shippedPolicies = "acl.casbin.model = ../../policies/model.conf\nacl.casbin.policy = ../../policies/policy.csv\n"

func TestBuildAuthorizer(t *testing.T) {
	tests := []struct {
		name    string
		conf    string
		wantNil bool
		wantErr string
	}{
		{"no chain", "", true, ""},
		{"casbin", "acl.chain = casbin\n" + shippedPolicies, false, ""},
		{"built-in defaults", "acl.chain = casbin\n", false, ""},
		{"unknown backend", "acl.chain = casbin, ldap\n" + shippedPolicies, false, `unknown backend "ldap"`},
		{"missing policy", "acl.chain = casbin\nacl.casbin.policy = /nonexistent/policy.csv\n", false, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Load(aclConf(t, tt.conf), nil)
			if err != nil {
				t.Fatal(err)
			}
			a, closeFn, err := buildAuthorizer(cfg, discardLog())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer closeFn()
			if (a == nil) != tt.wantNil {
				t.Fatalf("authorizer = %v, want nil: %v", a, tt.wantNil)
			}
			if a == nil {
				return
			}
			d := a.Authorize(context.Background(), access.Request{
				Identity: access.Identity{Username: "sensor-1", ClientID: "s1"},
				Action:   access.Publish, Topic: "devices/sensor-1/control/x",
			})
			if d.Verdict != access.Deny || d.Source != "casbin" {
				t.Fatalf("decision %+v, want a casbin deny", d)
			}
		})
	}
}

func TestACLExplain(t *testing.T) {
	conf := aclConf(t, "acl.chain = casbin\nacl_nomatch = deny\n"+shippedPolicies)
	jwtConf := aclConf(t, "acl.chain = jwt, casbin\n"+shippedPolicies)
	tests := []struct {
		args    []string
		code    int
		want    []string
		wantErr string
	}{
		{[]string{"explain", "-c", conf, "--username", "alice", "--clientid", "c1", "--topic", "devices/s1/control/x", "--action", "publish"}, 0,
			[]string{"verdict:  deny", "decided:  casbin (operator, devices/+/control/#, publish, deny)", "1. casbin  deny"}, ""},
		{[]string{"explain", "-c", conf, "--username", "alice", "--clientid", "c1", "--topic", "devices/+/telemetry/#", "--action", "subscribe"}, 0,
			[]string{"verdict:  allow", "decided:  casbin (operator, devices/+/telemetry/#, subscribe, allow)"}, ""},
		{[]string{"explain", "-c", conf, "--username", "alice", "--clientid", "c1", "--topic", "devices/#", "--action", "subscribe"}, 0,
			[]string{"verdict:  deny", "decided:  acl_nomatch", "1. casbin  ignore  no rule matched"}, ""},
		{[]string{"explain", "-c", jwtConf, "--username", "u", "--clientid", "c1", "--topic", "up/c1", "--action", "publish", "--acl", `{"pub": ["up/%c"]}`}, 0,
			[]string{"verdict:  allow", `decided:  jwt (rule 1: allow publish "up/c1")`, "2. casbin  -      not asked"}, ""},
		{[]string{"explain", "-c", jwtConf, "--topic", "a", "--acl", `{"pub": 1}`}, 2, nil, "--acl"},
		{[]string{"explain", "-c", conf, "--topic", "a", "--action", "read"}, 2, nil, "want publish or subscribe"},
		{[]string{"explain", "-c", conf}, 2, nil, "--topic is required"},
		{[]string{"frob"}, 2, nil, "usage: mqgate acl explain"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		if code := aclCommand(tt.args, nil, &out, &errb); code != tt.code {
			t.Errorf("%v: exit %d, want %d; stderr %s", tt.args, code, tt.code, errb.String())
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: output lacks %q:\n%s", tt.args, w, out.String())
			}
		}
		if tt.wantErr != "" && !strings.Contains(errb.String(), tt.wantErr) {
			t.Errorf("%v: stderr lacks %q: %s", tt.args, tt.wantErr, errb.String())
		}
	}
}

// discardLog returns a logger that drops everything.
func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestACLChainFromConfig builds a chain of every file- and HTTP-based
// backend from the config and checks which link decides.
func TestACLChainFromConfig(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.PostForm.Get("topic") == "http/ok" && r.PostForm.Get("access") == "2" {
			return // 200: allow
		}
		_, _ = w.Write([]byte("ignore"))
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	aclFile := filepath.Join(dir, "acl.conf")
	if err := os.WriteFile(aclFile, []byte(`{deny, {user, "sensor-1"}, publish, ["file/denied"]}.`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := aclConf(t, "acl.chain = jwt, file, http, casbin\nacl_nomatch = deny\nacl_file = "+aclFile+
		"\nauth.http.acl_req.url = "+srv.URL+"/acl\n"+shippedPolicies)
	cfg, err := config.Load(conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	chain, closeFn, err := buildACLChain(cfg, discardLog(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	granted := []access.Rule{{Verdict: access.Allow, Action: access.Publish, Filter: "jwt/#"}}
	tests := []struct {
		topic      string
		granted    []access.Rule
		want       access.Verdict
		wantSource string
	}{
		{"jwt/x", granted, access.Allow, "jwt"},
		{"file/denied", nil, access.Deny, "file"},
		{"http/ok", nil, access.Allow, "http"},
		{"devices/sensor-1/control/x", nil, access.Deny, "casbin"},
		{"nothing", nil, access.Deny, "acl_nomatch"},
	}
	for _, tt := range tests {
		req := access.Request{Identity: access.Identity{Username: "sensor-1", ClientID: "c1"}, Action: access.Publish, Topic: tt.topic, Granted: tt.granted}
		ex := chain.Explain(context.Background(), req)
		if ex.Decision.Verdict != tt.want || ex.Decision.Source != tt.wantSource {
			t.Errorf("%q: %v from %s (%s), want %v from %s", tt.topic, ex.Decision.Verdict, ex.Decision.Source, ex.Decision.Reason, tt.want, tt.wantSource)
		}
	}
}

// TestJWTClaimsThroughBroker wires both chains from the config: a client
// connects with a token whose acl claim (EMQX 4 and EMQX 5 forms) decides
// what it may publish and subscribe, through a real broker.
func TestJWTClaimsThroughBroker(t *testing.T) {
	const secret = "s3cret-for-tests-only"
	cfg, err := config.Load(aclConf(t, "auth.chain = jwt\nauth.jwt.secret = "+secret+"\nallow_anonymous = false\n"+
		"acl.chain = jwt, casbin\nacl_nomatch = deny\n"+shippedPolicies), nil)
	if err != nil {
		t.Fatal(err)
	}
	authn, closeAuthn, err := buildAuthenticator(cfg, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeAuthn)
	authz, closeAuthz, err := buildAuthorizer(cfg, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeAuthz)
	_, addr := testutil.RunBroker(t, func(o *broker.Options) {
		o.Authenticator = authn
		o.AllowAnonymous = false
		o.Authorizer = authz
		o.ACLNoMatch = access.Deny
	})
	sign := func(claims jwt.MapClaims) []byte {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return []byte(s)
	}
	exp := time.Now().Add(time.Hour).Unix()
	tests := []struct {
		name   string
		claims jwt.MapClaims
		pub    map[string]bool // topic → allowed
		sub    map[string]bool // filter → granted
	}{
		{"emqx4", jwt.MapClaims{"exp": exp, "acl": map[string]any{"pub": []string{"up/%c"}, "sub": []string{"down/%u/+"}}},
			map[string]bool{"up/c-emqx4": true, "up/other": false},
			map[string]bool{"down/u-emqx4/x": true, "down/u-emqx4/#": false}},
		// EMQX 5: no matching rule falls through to casbin, which knows
		// nothing of this user: acl_nomatch denies.
		{"emqx5", jwt.MapClaims{"exp": exp, "acl": []map[string]any{
			{"permission": "deny", "action": "publish", "topic": "shared/locked"},
			{"permission": "allow", "action": "all", "topic": "shared/#"}}},
			map[string]bool{"shared/x": true, "shared/locked": false, "elsewhere": false},
			map[string]bool{"shared/+": true}},
	}
	for _, tt := range tests {
		c := testutil.Dial(t, addr, mqtt.V5)
		ack := c.Connect(&mqtt.Connect{ClientID: "c-" + tt.name, CleanStart: true, UsernameSet: true, Username: "u-" + tt.name,
			PasswordSet: true, Password: sign(tt.claims)})
		if ack.ReasonCode != 0 {
			t.Fatalf("%s: CONNACK %v", tt.name, ack.ReasonCode)
		}
		id := uint16(1)
		for topic, allowed := range tt.pub {
			c.Send(&mqtt.Publish{Topic: topic, QoS: 1, PacketID: id, Payload: []byte("x")})
			id++
			// [MQTT-3.4.2-1] a PUBACK reason of 0x80 or more is a failure;
			// 0x87 is Not authorized.
			a, ok := c.Read().(*mqtt.Ack)
			if !ok || (a.ReasonCode < 0x80) != allowed || (!allowed && a.ReasonCode != mqtt.NotAuthorized) {
				t.Errorf("%s: publish %q answered %+v, want allowed=%v", tt.name, topic, a, allowed)
			}
		}
		for filter, granted := range tt.sub {
			c.Send(&mqtt.Subscribe{PacketID: id, Subscriptions: []mqtt.Subscription{{Filter: filter, QoS: 1}}})
			id++
			s, ok := c.Read().(*mqtt.Suback)
			if !ok || len(s.ReasonCodes) != 1 || (s.ReasonCodes[0] == 1) != granted || (!granted && s.ReasonCodes[0] != mqtt.NotAuthorized) {
				t.Errorf("%s: subscribe %q answered %+v, want granted=%v", tt.name, filter, s, granted)
			}
		}
		_ = c.Conn.Close()
	}
}
