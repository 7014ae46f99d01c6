package http

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/acl"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// service is a real HTTP ACL service: it answers by topic and keeps the
// parameters of the last request.
type service struct {
	mu   sync.Mutex
	last url.Values
	ct   string
}

func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	vals := url.Values{}
	switch {
	case r.Method == http.MethodGet:
		vals = r.URL.Query()
	case strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"):
		var m map[string]string
		_ = json.NewDecoder(r.Body).Decode(&m)
		for k, v := range m {
			vals.Set(k, v)
		}
	default:
		_ = r.ParseForm()
		vals = r.PostForm
	}
	s.mu.Lock()
	s.last, s.ct = vals, r.Header.Get("Content-Type")
	s.mu.Unlock()
	switch vals.Get("topic") {
	case "allow":
		w.WriteHeader(http.StatusOK)
	case "ignore":
		_, _ = io.WriteString(w, "ignore")
	case "v5-allow", "v5-deny", "v5-ignore":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"result":"`+strings.TrimPrefix(vals.Get("topic"), "v5-")+`"}`)
	case "no-content":
		w.WriteHeader(http.StatusNoContent)
	case "created":
		w.WriteHeader(http.StatusCreated)
	case "slow":
		time.Sleep(300 * time.Millisecond)
	default:
		w.WriteHeader(http.StatusForbidden)
	}
}

func (s *service) params() url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

const params = "access=%A,username=%u,clientid=%c,ipaddr=%a,topic=%t,mountpoint=%m,proto=%r,port=%p,cn=%C,odd=%z"

func TestAuthorize(t *testing.T) {
	svc := &service{}
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	req := func(a access.Action, topic string) access.Request {
		return access.Request{
			Identity: access.Identity{Username: "u1", ClientID: "c1", Peer: netip.MustParseAddrPort("10.1.2.3:5555"), Listener: "tcp:external", CertCN: "cn1", Proto: 4},
			Action:   a, Topic: topic,
		}
	}
	tests := []struct {
		method, ct string
		topic      string
		action     access.Action
		want       access.Verdict
	}{
		{"post", "", "allow", access.Publish, access.Allow},
		{"post", "", "ignore", access.Publish, access.Ignore},
		{"post", "", "forbidden", access.Subscribe, access.Deny},
		{"post", "", "created", access.Publish, access.Deny}, // only exactly 200 counts
		{"get", "", "allow", access.Subscribe, access.Allow},
		{"get", "", "v5-deny", access.Publish, access.Deny},
		{"post", "application/json", "v5-allow", access.Publish, access.Allow},
		{"post", "application/json", "v5-ignore", access.Publish, access.Ignore},
		{"post", "application/json", "no-content", access.Publish, access.Allow},
	}
	for _, tt := range tests {
		headers := map[string]string{}
		if tt.ct != "" {
			headers["content-type"] = tt.ct
		}
		b, err := New(Options{URL: srv.URL + "/acl", Method: tt.method, Headers: headers, Params: params,
			Port: func(l string) string { return map[string]string{"tcp:external": "1883"}[l] }})
		if err != nil {
			t.Fatal(err)
		}
		d := b.Authorize(context.Background(), req(tt.action, tt.topic))
		if d.Verdict != tt.want {
			t.Errorf("%s %s %q: %v (%s), want %v", tt.method, tt.ct, tt.topic, d.Verdict, d.Reason, tt.want)
		}
		p := svc.params()
		wantA := "2"
		if tt.action == access.Subscribe {
			wantA = "1"
		}
		want := url.Values{"access": {wantA}, "username": {"u1"}, "clientid": {"c1"}, "ipaddr": {"10.1.2.3"}, "topic": {tt.topic},
			"mountpoint": {""}, "proto": {"MQTT"}, "port": {"1883"}, "cn": {"cn1"}, "odd": {"%z"}}
		for k, v := range want {
			if p.Get(k) != v[0] {
				t.Errorf("%s %s: param %s = %q, want %q", tt.method, tt.ct, k, p.Get(k), v[0])
			}
		}
	}
}

func TestTransportErrorIgnores(t *testing.T) {
	svc := &service{}
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	b, err := New(Options{URL: srv.URL, Params: params, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	d := b.Authorize(context.Background(), access.Request{Action: access.Publish, Topic: "slow"})
	if d.Verdict != access.Ignore || !strings.Contains(d.Reason, "error") {
		t.Errorf("timeout: %v (%s), want ignore", d.Verdict, d.Reason)
	}
	// A closed port: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	b, err = New(Options{URL: "http://" + addr + "/acl", Params: params})
	if err != nil {
		t.Fatal(err)
	}
	if d := b.Authorize(context.Background(), access.Request{Action: access.Publish, Topic: "allow"}); d.Verdict != access.Ignore {
		t.Errorf("refused: %v, want ignore", d.Verdict)
	}
	// A $ username is never sent.
	b, _ = New(Options{URL: srv.URL, Params: params})
	if d := b.Authorize(context.Background(), access.Request{Identity: access.Identity{Username: "$admin"}, Topic: "allow"}); d.Verdict != access.Ignore {
		t.Errorf("$ username: %v", d.Verdict)
	}
	srv.CloseClientConnections()
}

func TestNewValidates(t *testing.T) {
	for _, o := range []Options{
		{URL: "ftp://x/acl"},
		{URL: "http://"},
		{URL: "http://x", Method: "put"},
		{URL: "http://x", Params: "novalue"},
		{URL: "http://x", Headers: map[string]string{"Content-Type": ";;"}},
	} {
		if _, err := New(o); !errors.Is(err, acl.ErrConfig) {
			t.Errorf("%+v: err = %v, want ErrConfig", o, err)
		}
	}
}
