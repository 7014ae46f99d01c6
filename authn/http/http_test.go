package http

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqgate/mqgate/access"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// service is a scripted authentication service: it answers status and body
// for a username and records what it received.
type service struct {
	mu    sync.Mutex
	seen  []received
	reply map[string]func(w http.ResponseWriter)
}

type received struct {
	method, path, contentType string
	params                    map[string]string
}

func newService(t *testing.T) (*service, *httptest.Server) {
	t.Helper()
	s := &service{reply: map[string]func(http.ResponseWriter){}}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	return s, srv
}

func (s *service) script(user string, status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reply[user] = func(w http.ResponseWriter) {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func (s *service) serve(w http.ResponseWriter, r *http.Request) {
	rc := received{method: r.Method, path: r.URL.Path, contentType: r.Header.Get("Content-Type"), params: map[string]string{}}
	switch {
	case r.Method == http.MethodGet:
		for k, v := range r.URL.Query() {
			rc.params[k] = v[0]
		}
	case strings.HasPrefix(rc.contentType, "application/json"):
		_ = json.NewDecoder(r.Body).Decode(&rc.params)
	default:
		_ = r.ParseForm()
		for k, v := range r.PostForm {
			rc.params[k] = v[0]
		}
	}
	s.mu.Lock()
	s.seen = append(s.seen, rc)
	f := s.reply[rc.params["username"]]
	if r.URL.Path == "/super" {
		f = s.reply["super:"+rc.params["username"]]
	}
	s.mu.Unlock()
	if f == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	f(w)
}

func (s *service) last() received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[len(s.seen)-1]
}

func ident(user string) access.Identity {
	return access.Identity{ClientID: "client-1", Username: user, UsernameSet: true, Password: []byte("pa ss&word"),
		Peer: netip.MustParseAddrPort("192.0.2.7:40000"), Listener: "tcp:external", CertCN: "cn1", CertDN: "CN=cn1,O=x", Proto: 4}
}

func mustNew(t *testing.T, o Options) *Backend {
	t.Helper()
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func defaultParams(t *testing.T) []Param {
	ps, err := ParseParams("clientid=%c,username=%u,password=%P")
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestStatusSemantics checks the answers EMQX 4's emqx_auth_http gives for
// each status and body, and EMQX 5's JSON body.
func TestStatusSemantics(t *testing.T) {
	svc, srv := newService(t)
	b := mustNew(t, Options{Auth: Request{URL: srv.URL + "/auth", Method: "post", Params: defaultParams(t)}})
	exp := time.Now().Add(time.Hour).Unix()
	tests := []struct {
		status          int
		body            string
		wantVerdict     access.Verdict
		wantUnavailable bool
		wantSuper       bool
		wantReason      string
		wantACL         int
		wantExpiry      bool
	}{
		{200, "", access.Allow, false, false, "200", 0, false},
		{200, "ok", access.Allow, false, false, "200", 0, false},
		{200, "ignore", access.Ignore, false, false, "ignore", 0, false},
		{200, "ignore\n", access.Ignore, false, false, "ignore", 0, false},
		{200, `{"mountpoint":"m/"}`, access.Allow, false, false, "200", 0, false},
		{400, "", access.Deny, false, false, "bad username or password", 0, false},
		{401, "", access.Deny, false, false, "bad username or password", 0, false},
		{403, "", access.Deny, false, false, "not authorized", 0, false},
		{429, "", access.Deny, false, false, "banned", 0, false},
		// Only exactly 200 (and EMQX 5's 204) allows; every other status is an outage.
		{201, "", access.Deny, true, false, "status 201", 0, false},
		{404, "", access.Deny, true, false, "status 404", 0, false},
		{500, "", access.Deny, true, false, "status 500", 0, false},
		{503, "", access.Deny, true, false, "status 503", 0, false},
		{204, "", access.Allow, false, false, "204", 0, false},
		// EMQX 5 bodies.
		{200, `{"result":"allow","is_superuser":true}`, access.Allow, false, true, "result allow", 0, false},
		{200, `{"result":"allow","is_superuser":"false"}`, access.Allow, false, false, "result allow", 0, false},
		{200, `{"result":"deny"}`, access.Deny, false, false, "result deny", 0, false},
		{200, `{"result":"ignore"}`, access.Ignore, false, false, "result ignore", 0, false},
		{200, `{"result":"maybe"}`, access.Deny, true, false, "unknown result", 0, false},
		{200, `{"result":"allow","acl":[{"permission":"allow","action":"publish","topic":"t/%u/#"},{"permission":"deny","action":"all","topic":"#"}],"expire_at":` + itoa(exp) + `}`, access.Allow, false, false, "result allow", 2, true},
		{200, `{"result":"allow","acl":{"pub":["a"],"sub":["b","c"]}}`, access.Allow, false, false, "result allow", 4, false},
		{200, `{"result":"allow","acl":[{"permission":"perhaps","topic":"x"}]}`, access.Deny, false, false, "bad acl", 0, false},
	}
	for _, tt := range tests {
		t.Run(itoa(int64(tt.status))+" "+tt.body, func(t *testing.T) {
			svc.script("u1", tt.status, tt.body)
			d := b.Authenticate(context.Background(), ident("u1"))
			if d.Verdict != tt.wantVerdict || d.Unavailable != tt.wantUnavailable || d.Superuser != tt.wantSuper {
				t.Fatalf("got %+v, want %v unavailable=%v superuser=%v", d, tt.wantVerdict, tt.wantUnavailable, tt.wantSuper)
			}
			if !strings.Contains(d.Reason, tt.wantReason) {
				t.Errorf("reason %q, want it to contain %q", d.Reason, tt.wantReason)
			}
			if len(d.ACL) != tt.wantACL {
				t.Errorf("acl %+v, want %d rules", d.ACL, tt.wantACL)
			}
			if tt.wantExpiry != !d.ExpiresAt.IsZero() {
				t.Errorf("expires at %v", d.ExpiresAt)
			}
			if tt.wantExpiry && d.ExpiresAt.Unix() != exp {
				t.Errorf("expires at %d, want %d", d.ExpiresAt.Unix(), exp)
			}
			// 403 and 429 pick the CONNACK code: not authorized, banned.
			want := map[int]access.Refusal{403: access.NotAuthorized, 429: access.Banned}[tt.status]
			if d.Refusal != want {
				t.Errorf("refusal %d, want %d", d.Refusal, want)
			}
		})
	}
	svc.script("u1", 200, `{"result":"allow","acl":[{"permission":"allow","action":"publish","topic":"t/%u/${clientid}"}]}`)
	d := b.Authenticate(context.Background(), ident("u1"))
	if want := (access.Rule{Verdict: access.Allow, Action: access.Publish, Filter: "t/u1/client-1"}); len(d.ACL) != 1 || d.ACL[0] != want {
		t.Errorf("acl %+v, want %+v", d.ACL, want)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestPlaceholdersAndEncodings checks every placeholder, in GET query
// strings, POST forms and POST JSON bodies.
func TestPlaceholdersAndEncodings(t *testing.T) {
	svc, srv := newService(t)
	svc.script("u2", 200, "")
	params, err := ParseParams("u=%u, c=%c,a=%a,r=%r,P=%P,p=%p,C=%C,d=%d,lit=x%zy%,username=%u")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"u": "u2", "c": "client-1", "a": "192.0.2.7", "r": "mqtt", "P": "pa ss&word", "p": "1883",
		"C": "cn1", "d": "CN=cn1,O=x", "lit": "x%zy%", "username": "u2"}
	port := func(l string) string {
		if l == "tcp:external" {
			return "1883"
		}
		return ""
	}
	tests := []struct {
		method, contentType, wantCT string
	}{
		{"get", "", ""},
		{"post", "", "application/x-www-form-urlencoded"},
		{"post", "application/json", "application/json"},
		{"POST", "application/x-www-form-urlencoded", "application/x-www-form-urlencoded"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.contentType, func(t *testing.T) {
			h := map[string]string{"X-Extra": "1"}
			if tt.contentType != "" {
				h["content-type"] = tt.contentType
			}
			b := mustNew(t, Options{Auth: Request{URL: srv.URL + "/auth?fixed=1", Method: tt.method, Headers: h, Params: params}, ListenerPort: port})
			if d := b.Authenticate(context.Background(), ident("u2")); d.Verdict != access.Allow {
				t.Fatalf("got %+v", d)
			}
			got := svc.last()
			if got.method != strings.ToUpper(tt.method) || got.contentType != tt.wantCT {
				t.Errorf("method %s content type %q", got.method, got.contentType)
			}
			for k, v := range want {
				if got.params[k] != v {
					t.Errorf("param %s = %q, want %q", k, got.params[k], v)
				}
			}
		})
	}
}

func TestSuperReq(t *testing.T) {
	svc, srv := newService(t)
	ps := defaultParams(t)
	sp, _ := ParseParams("clientid=%c,username=%u")
	b := mustNew(t, Options{
		Auth:  Request{URL: srv.URL + "/auth", Params: ps},
		Super: Request{URL: srv.URL + "/super", Method: "get", Params: sp},
	})
	tests := []struct {
		user        string
		superStatus int
		want        bool
	}{
		{"admin", 200, true},
		{"plain", 403, false},
		{"broken", 500, false},
	}
	for _, tt := range tests {
		svc.script(tt.user, 200, "")
		svc.script("super:"+tt.user, tt.superStatus, "")
		d := b.Authenticate(context.Background(), ident(tt.user))
		if d.Verdict != access.Allow || d.Superuser != tt.want {
			t.Errorf("%s: got %+v, want superuser %v", tt.user, d, tt.want)
		}
	}
	// A deny never asks super_req.
	svc.script("denied", 401, "")
	svc.mu.Lock()
	n := len(svc.seen)
	svc.mu.Unlock()
	b.Authenticate(context.Background(), ident("denied"))
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if len(svc.seen) != n+1 {
		t.Errorf("a deny made %d requests, want 1", len(svc.seen)-n)
	}
}

// TestTransportErrors checks that a refused connection and a timeout are
// outages, and that the error does not carry the password.
func TestTransportErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	b := mustNew(t, Options{Auth: Request{URL: "http://" + addr + "/auth", Method: "get", Params: defaultParams(t)}})
	d := b.Authenticate(context.Background(), ident("u"))
	if !d.Unavailable || d.Verdict != access.Deny {
		t.Fatalf("refused connection gave %+v", d)
	}
	if strings.Contains(d.Reason, "word") || strings.Contains(d.Reason, url.QueryEscape("pa ss&word")) {
		t.Errorf("reason leaks the password: %s", d.Reason)
	}

	block := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(block) })
	b2 := mustNew(t, Options{Auth: Request{URL: slow.URL, Params: defaultParams(t)}, Timeout: 50 * time.Millisecond})
	if d := b2.Authenticate(context.Background(), ident("u")); !d.Unavailable {
		t.Fatalf("timeout gave %+v", d)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []Options{
		{Auth: Request{URL: ""}},
		{Auth: Request{URL: "ftp://x/"}},
		{Auth: Request{URL: "http://x/", Method: "put"}},
		{Auth: Request{URL: "http://x/"}, Super: Request{URL: "nope"}},
		{Auth: Request{URL: "http://x/"}, PoolSize: -1},
	}
	for i, o := range tests {
		if _, err := New(o); err == nil {
			t.Errorf("case %d: New accepted bad options", i)
		}
	}
	if _, err := ParseParams("a=1,b"); err == nil {
		t.Error("ParseParams accepted a param without =")
	}
	if _, err := TLSConfig("", "cert.pem", "", true, ""); err == nil {
		t.Error("TLSConfig accepted a certificate without a key")
	}
}

// TestKeepAlive checks that requests reuse pooled connections.
func TestKeepAlive(t *testing.T) {
	var mu sync.Mutex
	conns := map[string]bool{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
	}))
	srv.Start()
	t.Cleanup(srv.Close)
	b := mustNew(t, Options{Auth: Request{URL: srv.URL, Params: defaultParams(t)}, PoolSize: 2})
	for range 20 {
		if d := b.Authenticate(context.Background(), ident("u")); d.Verdict != access.Allow {
			t.Fatalf("got %+v", d)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conns) != 1 {
		t.Errorf("20 sequential requests used %d connections, want 1", len(conns))
	}
}

// TestRetryOnTransportError checks that a dropped connection is retried
// (twice, as EMQX 4's client does) before it counts as an outage.
func TestRetryOnTransportError(t *testing.T) {
	for _, tt := range []struct {
		drops int
		want  access.Verdict
		unav  bool
	}{
		{0, access.Allow, false},
		{2, access.Allow, false},
		{3, access.Deny, true},
	} {
		var mu sync.Mutex
		dropped, served := 0, 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			drop := dropped < tt.drops
			if drop {
				dropped++
			} else {
				served++
			}
			mu.Unlock()
			if drop {
				// Close the connection without an answer.
				c, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					_ = c.Close()
				}
			}
		}))
		b := mustNew(t, Options{Auth: Request{URL: srv.URL, Params: defaultParams(t)}})
		d := b.Authenticate(context.Background(), ident("u"))
		srv.Close()
		if d.Verdict != tt.want || d.Unavailable != tt.unav {
			t.Errorf("%d drops: got %+v", tt.drops, d)
		}
	}
}
