package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/api"
	authnfile "github.com/mqgate/mqgate/authn/file"
)

// newSidecar answers from a real users file (alice:secret) and a real
// acl.conf (alice may publish a/#; everyone may subscribe to pub/#).
func newSidecar(t *testing.T) *api.Sidecar {
	t.Helper()
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte("alice:plain$$secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ab, err := authnfile.New(authnfile.Options{Path: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ab.Close() })
	chain := fileChain(t, filepath.Join(dir, "acl.conf"), `{allow, {user, "alice"}, publish, ["a/#"]}.
{allow, all, subscribe, ["pub/#"]}.
{deny, {user, "mallory"}, all, ["#"]}.
`, access.Deny)
	s, err := api.NewSidecar(api.SidecarOptions{Addr: "127.0.0.1:0", Authenticator: ab, Authorizer: chain})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sidecarDo(t *testing.T, s *api.Sidecar, method, target, contentType, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	return w
}

// TestSidecarEMQX5 sends EMQX 5's HTTP authenticator and authorizer
// requests (POST with a JSON body template, GET with a query string).
func TestSidecarEMQX5(t *testing.T) {
	s := newSidecar(t)
	tests := []struct {
		name, method, path, ct, body string
		status                       int
		result                       string
	}{
		{"authn allow", "POST", "/emqx/authn", "application/json", `{"clientid":"c1","username":"alice","password":"secret","peerhost":"10.0.0.1"}`, 200, "allow"},
		{"authn deny", "POST", "/emqx/authn", "application/json", `{"clientid":"c1","username":"alice","password":"wrong"}`, 200, "deny"},
		{"authn unknown user ignored", "POST", "/emqx/authn", "application/json", `{"clientid":"c1","username":"bob","password":"x"}`, 200, "ignore"},
		{"authn GET query", "GET", "/emqx/authn?clientid=c1&username=alice&password=secret", "", "", 200, "allow"},
		{"authn bad body", "POST", "/emqx/authn", "application/json", `{"clientid":`, 400, ""},
		{"authz allow", "POST", "/emqx/authz", "application/json", `{"clientid":"c1","username":"alice","action":"publish","topic":"a/b","qos":"1","retain":"false"}`, 200, "allow"},
		{"authz deny", "POST", "/emqx/authz", "application/json", `{"clientid":"c2","username":"mallory","action":"subscribe","topic":"x"}`, 200, "deny"},
		// No rule matches: ignore, so that EMQX asks its next source.
		{"authz no match", "POST", "/emqx/authz", "application/json", `{"clientid":"c3","username":"bob","action":"publish","topic":"a/b"}`, 200, "ignore"},
		{"authz numbers", "POST", "/emqx/authz", "application/json", `{"clientid":"c1","username":"alice","action":"publish","topic":"a/c","qos":1,"retain":false}`, 200, "allow"},
		{"authz bad action", "POST", "/emqx/authz", "application/json", `{"action":"jump","topic":"a"}`, 400, ""},
	}
	for _, tt := range tests {
		w := sidecarDo(t, s, tt.method, tt.path, tt.ct, tt.body)
		if w.Code != tt.status {
			t.Errorf("%s: HTTP %d %s, want %d", tt.name, w.Code, w.Body, tt.status)
			continue
		}
		if tt.result == "" {
			continue
		}
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: content-type %q", tt.name, ct)
		}
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out["result"] != tt.result {
			t.Errorf("%s: %s, want result %s", tt.name, w.Body, tt.result)
		}
		if tt.result == "allow" && tt.path == "/emqx/authn" && out["is_superuser"] != false {
			t.Errorf("%s: is_superuser %v", tt.name, out["is_superuser"])
		}
	}
}

// TestSidecarMosquittoGoAuth sends mosquitto-go-auth's HTTP backend
// requests in its json and form params modes and checks the answer in its
// status, json and text response modes.
func TestSidecarMosquittoGoAuth(t *testing.T) {
	s := newSidecar(t)
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	const js, fm = "application/json", "application/x-www-form-urlencoded"
	tests := []struct {
		name, path, ct, body string
		status               int
		body200              string // expected body fragment
	}{
		{"user json", "/mosquitto/user", js, `{"username":"alice","password":"secret","clientid":"c1"}`, 200, `"Ok":true`},
		{"user form", "/mosquitto/user", fm, form("username", "alice", "password", "secret", "clientid", "c1"), 200, `"Ok":true`},
		{"user wrong password", "/mosquitto/user", js, `{"username":"alice","password":"bad","clientid":"c1"}`, 403, `"Ok":false`},
		{"user unknown", "/mosquitto/user", js, `{"username":"zed","password":"x","clientid":"c1"}`, 403, `"Ok":false`},
		{"user text mode", "/mosquitto/user?mode=text", js, `{"username":"alice","password":"secret","clientid":"c1"}`, 200, "ok"},
		{"superuser", "/mosquitto/superuser", js, `{"username":"alice"}`, 403, `"Ok":false`},
		// acc 2 (write) is a publish.
		{"acl write", "/mosquitto/acl", js, `{"username":"alice","clientid":"c1","topic":"a/1","acc":2}`, 200, `"Ok":true`},
		// acc 1 (read) and 4 (subscribe) are asked as subscribe.
		{"acl read", "/mosquitto/acl", js, `{"username":"alice","clientid":"c1","topic":"pub/x","acc":1}`, 200, `"Ok":true`},
		{"acl subscribe", "/mosquitto/acl", fm, form("username", "alice", "clientid", "c1", "topic", "pub/x", "acc", "4"), 200, `"Ok":true`},
		// acc 3 needs both: alice may not subscribe to a/1.
		{"acl readwrite", "/mosquitto/acl", js, `{"username":"alice","clientid":"c1","topic":"a/1","acc":3}`, 403, `"Ok":false`},
		{"acl denied", "/mosquitto/acl", js, `{"username":"mallory","clientid":"c9","topic":"m/x","acc":4}`, 403, `"Ok":false`},
		// No rule: mosquitto has no "ignore", so it is not granted.
		{"acl no match", "/mosquitto/acl", js, `{"username":"bob","clientid":"c8","topic":"z","acc":2}`, 403, `"Ok":false`},
		{"acl bad acc", "/mosquitto/acl", js, `{"username":"bob","topic":"z","acc":9}`, 400, `"Ok":false`},
		{"acl text mode", "/mosquitto/acl?mode=text", js, `{"username":"bob","clientid":"c8","topic":"z","acc":2}`, 403, "denied"},
	}
	for _, tt := range tests {
		w := sidecarDo(t, s, http.MethodPost, tt.path, tt.ct, tt.body)
		if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.body200) {
			t.Errorf("%s: HTTP %d %q, want %d with %q", tt.name, w.Code, w.Body, tt.status, tt.body200)
		}
	}
}

// TestSidecarAnswerShapes checks the answers that depend on what the chain
// decided: a superuser with an expiry (EMQX 5 is_superuser and expire_at in
// seconds), a backend outage (EMQX 5: 503, a backend failure, never a deny;
// mosquitto-go-auth: a status >= 500, an error it retries), the
// mosquitto-go-auth superuser check after a superuser's user check, a GET
// with a JSON body (auth_opt_http_method GET) and the JWT remote mode's
// bearer token.
func TestSidecarAnswerShapes(t *testing.T) {
	exp := time.Unix(1900000000, 0)
	var seen []access.Identity
	authn := access.AuthenticatorFunc(func(_ context.Context, id access.Identity) access.Decision {
		seen = append(seen, id)
		switch string(id.Password) {
		case "root":
			return access.Decision{Verdict: access.Allow, Superuser: true, ExpiresAt: exp}
		case "claims":
			return access.Decision{Verdict: access.Allow, ACL: []access.Rule{
				{Verdict: access.Allow, Action: access.Publish, Filter: "dev/1/#"},
				{Verdict: access.Deny, Filter: "#"},
			}}
		case "tok.en":
			return access.Decision{Verdict: access.Allow}
		case "down":
			return access.Decision{Verdict: access.Deny, Unavailable: true}
		}
		return access.Decision{Verdict: access.Deny}
	})
	authz := access.AuthorizerFunc(func(_ context.Context, req access.Request) access.Decision {
		if req.Topic == "down" {
			return access.Decision{Verdict: access.Deny, Unavailable: true}
		}
		return access.Decision{Verdict: access.Allow}
	})
	s, err := api.NewSidecar(api.SidecarOptions{Addr: "127.0.0.1:0", Authenticator: authn, Authorizer: authz})
	if err != nil {
		t.Fatal(err)
	}
	const js = "application/json"
	tests := []struct {
		name, method, path, ct, body string
		header                       [2]string
		status                       int
		want                         string // exact body, JSON compared as text
	}{
		{"emqx superuser", "POST", "/emqx/authn", js, `{"clientid":"c","username":"root","password":"root"}`, [2]string{}, 200, `{"expire_at":1900000000,"is_superuser":true,"result":"allow"}`},
		// EMQX 5.8 checks the "acl" list of the answer before its
		// authorizers.
		{"emqx acl from claims", "POST", "/emqx/authn", js, `{"clientid":"c","username":"d1","password":"claims"}`, [2]string{}, 200,
			`{"acl":[{"action":"publish","permission":"allow","topic":"dev/1/#"},{"action":"all","permission":"deny","topic":"#"}],"is_superuser":false,"result":"allow"}`},
		{"emqx authn outage", "POST", "/emqx/authn", js, `{"clientid":"c","username":"u","password":"down"}`, [2]string{}, 503, `{"error":"authentication backend unavailable"}`},
		{"emqx authz outage", "POST", "/emqx/authz", js, `{"clientid":"c","username":"u","action":"publish","topic":"down"}`, [2]string{}, 503, `{"error":"authorization backend unavailable"}`},
		{"emqx deny has no is_superuser", "POST", "/emqx/authn", js, `{"clientid":"c","username":"u","password":"x"}`, [2]string{}, 200, `{"result":"deny"}`},
		{"mosquitto superuser before user check", "POST", "/mosquitto/superuser", js, `{"username":"root"}`, [2]string{}, 403, `{"Error":"not a superuser","Ok":false}`},
		{"mosquitto user superuser", "POST", "/mosquitto/user", js, `{"username":"root","password":"root","clientid":"c"}`, [2]string{}, 200, `{"Error":"","Ok":true}`},
		{"mosquitto superuser after user check", "POST", "/mosquitto/superuser", js, `{"username":"root"}`, [2]string{}, 200, `{"Error":"","Ok":true}`},
		{"mosquitto user outage", "POST", "/mosquitto/user", js, `{"username":"u","password":"down","clientid":"c"}`, [2]string{}, 500, `{"Error":"backend unavailable","Ok":false}`},
		{"mosquitto acl outage", "POST", "/mosquitto/acl", js, `{"username":"u","clientid":"c","topic":"down","acc":2}`, [2]string{}, 500, `{"Error":"backend unavailable","Ok":false}`},
		{"mosquitto GET with a json body", "GET", "/mosquitto/user", js, `{"username":"root","password":"root","clientid":"c"}`, [2]string{}, 200, `{"Error":"","Ok":true}`},
		{"mosquitto text mode grant", "POST", "/mosquitto/acl?mode=text", js, `{"username":"u","clientid":"c","topic":"t","acc":1}`, [2]string{}, 200, `ok`},
		{"mosquitto form PUT", "PUT", "/mosquitto/acl", "application/x-www-form-urlencoded", "acc=2&clientid=c&topic=t&username=u", [2]string{}, 200, `{"Error":"","Ok":true}`},
		// JWT remote mode without token parsing sends no fields at all: the
		// JSON body is null.
		{"jwt remote user", "POST", "/mosquitto/user", js, `null`, [2]string{"Authorization", "Bearer tok.en"}, 200, `{"Error":"","Ok":true}`},
		{"jwt remote acl", "POST", "/mosquitto/acl", js, `{"clientid":"c","topic":"t","acc":4}`, [2]string{"Authorization", "Bearer tok.en"}, 200, `{"Error":"","Ok":true}`},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
		req.Header.Set("Content-Type", tt.ct)
		req.Header.Set("User-Agent", "mosquitto-2.0")
		if tt.header[0] != "" {
			req.Header.Set(tt.header[0], tt.header[1])
		}
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		got := strings.TrimSpace(w.Body.String())
		if strings.HasPrefix(got, "{") {
			var m map[string]any
			if err := json.Unmarshal([]byte(got), &m); err != nil {
				t.Errorf("%s: %v in %q", tt.name, err, got)
				continue
			}
			b, _ := json.Marshal(m) // sorted keys
			got = string(b)
		}
		if w.Code != tt.status || got != tt.want {
			t.Errorf("%s: HTTP %d %s, want %d %s", tt.name, w.Code, got, tt.status, tt.want)
		}
	}
	// The bearer token reached the chain as the password and the username.
	var bearer *access.Identity
	for i := range seen {
		if string(seen[i].Password) == "tok.en" {
			bearer = &seen[i]
		}
	}
	if bearer == nil || bearer.Username != "tok.en" {
		t.Errorf("bearer token identity = %+v", bearer)
	}
}
