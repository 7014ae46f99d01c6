package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/acl"
	aclfile "github.com/mqgate/mqgate/acl/file"
	"github.com/mqgate/mqgate/api"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/broker/listener"
	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
	"github.com/mqgate/mqgate/webhook"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	appID     = "admin"
	appSecret = "s3cret"
)

// fixture is a started broker and an API server over it (not listening).
type fixture struct {
	t    *testing.T
	b    *broker.Broker
	addr string
	s    *api.Server
	reg  *prometheus.Registry
}

func newFixture(t *testing.T, edit func(*broker.Options)) *fixture {
	t.Helper()
	b, addr := testutil.RunBroker(t, edit)
	reg := prometheus.NewRegistry()
	s, err := api.New(api.Options{Broker: b, Addr: "127.0.0.1:0", Apps: map[string]string{appID: appSecret}, Registry: reg, MaxRowLimit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, b: b, addr: addr, s: s, reg: reg}
}

// do sends one request through the handler with the application's
// credentials and returns the recorder.
func (f *fixture) do(method, target, body string) *httptest.ResponseRecorder {
	f.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	req.SetBasicAuth(appID, appSecret)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	f.s.Handler().ServeHTTP(w, req)
	return w
}

// reply is the decoded EMQX envelope.
type reply struct {
	Code    int             `json:"code"`
	Data    json.RawMessage `json:"data"`
	Meta    json.RawMessage `json:"meta"`
	Message string          `json:"message"`
}

// call sends a request, wants HTTP 200 and decodes the envelope.
func (f *fixture) call(method, target, body string) reply {
	f.t.Helper()
	w := f.do(method, target, body)
	if w.Code != http.StatusOK {
		f.t.Fatalf("%s %s: HTTP %d %s", method, target, w.Code, w.Body)
	}
	var r reply
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		f.t.Fatalf("%s %s: %v in %s", method, target, err, w.Body)
	}
	return r
}

func decode[T any](t *testing.T, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return v
}

func connect(t *testing.T, addr, id, user string, v mqtt.Version) *testutil.Raw {
	t.Helper()
	c := testutil.Dial(t, addr, v)
	if ack := c.Connect(&mqtt.Connect{ClientID: id, CleanStart: true, KeepAlive: 60, Username: user, UsernameSet: user != ""}); ack.ReasonCode != mqtt.Success {
		t.Fatalf("connect %s: %v", id, ack.ReasonCode)
	}
	return c
}

func subscribe(t *testing.T, c *testutil.Raw, filter string, qos byte) {
	t.Helper()
	c.Send(&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: filter, QoS: qos}}})
	if _, ok := c.Read().(*mqtt.Suback); !ok {
		t.Fatal("want SUBACK")
	}
}

func TestNewRefusesDefaultSecretOffLoopback(t *testing.T) {
	b, _ := testutil.RunBroker(t, nil)
	tests := []struct {
		addr, secret string
		ok           bool
	}{
		{"127.0.0.1:8081", api.DefaultSecret, true},
		{"[::1]:8081", api.DefaultSecret, true},
		{"localhost:8081", api.DefaultSecret, true},
		{"0.0.0.0:8081", api.DefaultSecret, false},
		{":8081", api.DefaultSecret, false},
		{"10.1.2.3:8081", api.DefaultSecret, false},
		{"0.0.0.0:8081", "strong", true},
	}
	for _, tt := range tests {
		_, err := api.New(api.Options{Broker: b, Addr: tt.addr, Apps: map[string]string{"admin": tt.secret}})
		if (err == nil) != tt.ok {
			t.Errorf("New(%s, %s) err = %v, want ok=%v", tt.addr, tt.secret, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "management.default_application.secret") {
			t.Errorf("error does not say what to set: %v", err)
		}
	}
	if _, err := api.New(api.Options{Broker: b, Addr: "127.0.0.1:0"}); err == nil {
		t.Error("New without applications succeeded")
	}
}

func TestAuth(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name       string
		user, pass string
		set        bool
		want       int
	}{
		{"good", appID, appSecret, true, http.StatusOK},
		{"bad secret", appID, "nope", true, http.StatusUnauthorized},
		{"prefix of secret", appID, appSecret[:3], true, http.StatusUnauthorized},
		{"unknown app", "other", appSecret, true, http.StatusUnauthorized},
		{"no credentials", "", "", false, http.StatusUnauthorized},
	}
	fails := uint64(0)
	for _, tt := range tests {
		req := httptest.NewRequest(http.MethodGet, "/api/v4/brokers", nil)
		if tt.set {
			req.SetBasicAuth(tt.user, tt.pass)
		}
		w := httptest.NewRecorder()
		f.s.Handler().ServeHTTP(w, req)
		if w.Code != tt.want {
			t.Errorf("%s: HTTP %d, want %d", tt.name, w.Code, tt.want)
		}
		if tt.want == http.StatusUnauthorized {
			fails++
			if got := w.Header().Get("WWW-Authenticate"); got != `Basic Realm="minirest-server"` {
				t.Errorf("%s: WWW-Authenticate = %q", tt.name, got)
			}
			if w.Body.String() != "UNAUTHORIZED" {
				t.Errorf("%s: body %q", tt.name, w.Body)
			}
		}
	}
	if got := f.s.AuthFailures(); got != fails {
		t.Errorf("AuthFailures = %d, want %d", got, fails)
	}
	// /status needs no credentials.
	w := httptest.NewRecorder()
	f.s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/status", nil))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "is running") {
		t.Errorf("/status: %d %q", w.Code, w.Body)
	}
}

func TestNotFoundAndBadJSON(t *testing.T) {
	f := newFixture(t, nil)
	w := f.do(http.MethodGet, "/api/v4/nothing/here", "")
	if w.Code != http.StatusNotFound || w.Body.String() != "Not found." {
		t.Errorf("unknown route: %d %q", w.Code, w.Body)
	}
	w = f.do(http.MethodPost, "/api/v4/mqtt/publish", "{not json")
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"code":109`) {
		t.Errorf("bad json: %d %q", w.Code, w.Body)
	}
}

func TestNodeEndpoints(t *testing.T) {
	f := newFixture(t, nil)
	node := f.b.NodeName()
	r := f.call(http.MethodGet, "/api/v4/brokers", "")
	bs := decode[[]map[string]any](t, r.Data)
	if r.Code != 0 || len(bs) != 1 || bs[0]["node"] != node || bs[0]["node_status"] != "Running" {
		t.Errorf("brokers = %s", r.Data)
	}
	r = f.call(http.MethodGet, "/api/v4/nodes/"+node, "")
	n := decode[map[string]any](t, r.Data)
	if n["node"] != node || n["memory_total"] == "" {
		t.Errorf("nodes/%s = %s", node, r.Data)
	}
	if r = f.call(http.MethodGet, "/api/v4/nodes/other@host", ""); r.Code != api.CodeRPC {
		t.Errorf("unknown node: code %d", r.Code)
	}
	connect(t, f.addr, "c1", "", mqtt.V311)
	r = f.call(http.MethodGet, "/api/v4/stats", "")
	st := decode[[]struct {
		Node  string           `json:"node"`
		Stats map[string]int64 `json:"stats"`
	}](t, r.Data)
	if len(st) != 1 || st[0].Node != node || st[0].Stats["connections.count"] != 1 || st[0].Stats["sessions.count"] != 1 {
		t.Errorf("stats = %s", r.Data)
	}
	r = f.call(http.MethodGet, "/api/v4/metrics", "")
	ms := decode[[]struct {
		Metrics map[string]uint64 `json:"metrics"`
	}](t, r.Data)
	if len(ms) != 1 || ms[0].Metrics["packets.connect.received"] != 1 {
		t.Errorf("metrics = %s", r.Data)
	}
	r = f.call(http.MethodGet, "/api/v4/listeners", "")
	ls := decode[[]struct {
		Listeners []map[string]any `json:"listeners"`
	}](t, r.Data)
	if len(ls) != 1 || len(ls[0].Listeners) != 1 || ls[0].Listeners[0]["identifier"] != "mqtt:tcp:external" || ls[0].Listeners[0]["current_conns"] != float64(1) {
		t.Errorf("listeners = %s", r.Data)
	}
	r = f.call(http.MethodGet, "/api/v4", "")
	routes := decode[[]map[string]string](t, r.Data)
	found := false
	for _, rt := range routes {
		if rt["method"] == "DELETE" && rt["path"] == "/clients/:clientid" {
			found = true
		}
	}
	if !found {
		t.Errorf("GET /api/v4 misses DELETE /clients/:clientid: %s", r.Data)
	}
}

type clientObj struct {
	ClientID  string  `json:"clientid"`
	Username  *string `json:"username"`
	IPAddress string  `json:"ip_address"`
	Connected bool    `json:"connected"`
	ProtoVer  int     `json:"proto_ver"`
	Zone      string  `json:"zone"`
	SubsCnt   int     `json:"subscriptions_cnt"`
	CreatedAt string  `json:"created_at"`
}

type queryMeta struct {
	Page    int  `json:"page"`
	Limit   int  `json:"limit"`
	HasNext bool `json:"hasnext"`
	Count   int  `json:"count"`
}

func TestClientsPagingAndFilters(t *testing.T) {
	f := newFixture(t, nil)
	// 30 clients: c00..c29; even ones are v5 with username "even".
	for i := range 30 {
		v, user := mqtt.V311, "odd"
		if i%2 == 0 {
			v, user = mqtt.V5, "even"
		}
		connect(t, f.addr, fmt.Sprintf("c%02d", i), user, v)
	}
	tests := []struct {
		query   string
		ids     []string // expected client ids of the page, nil = only count them
		n       int
		hasNext bool
		count   int
	}{
		{"_limit=10", nil, 10, true, 30},
		{"_limit=10&_page=3", nil, 10, false, 30},
		{"_limit=10&_page=4", nil, 0, false, 30},
		{"_limit=7&_page=5", []string{"c28", "c29"}, 2, false, 30},
		// (page-1)*limit would wrap around to 0: the first page.
		{"_limit=4&_page=4611686018427387905", nil, 0, false, 30},
		{"clientid=c07", []string{"c07"}, 1, false, -1},
		{"username=even&_limit=100", nil, 15, false, -1},
		{"_like_clientid=c1", nil, 10, false, -1},
		{"_like_clientid=c1&username=odd", []string{"c11", "c13", "c15", "c17", "c19"}, 5, false, -1},
		{"proto_ver=5&_limit=5", nil, 5, true, -1},
		{"conn_state=connected", nil, 30, false, -1},
		{"conn_state=disconnected", nil, 0, false, -1},
		{"ip_address=127.0.0.1", nil, 30, false, -1},
		{"ip_address=10.0.0.1", nil, 0, false, -1},
		{"zone=external&clean_start=true", nil, 30, false, -1},
		{"_gte_created_at=0&_lte_created_at=99999999999", nil, 30, false, -1},
		{"_gte_created_at=99999999999", nil, 0, false, -1},
		{"_lte_mqueue_len=0", nil, 30, false, -1},
		{"unknown_key=1", nil, 30, false, 30},
	}
	for _, tt := range tests {
		r := f.call(http.MethodGet, "/api/v4/clients?"+tt.query, "")
		cs := decode[[]clientObj](t, r.Data)
		meta := decode[queryMeta](t, r.Meta)
		if r.Code != 0 || len(cs) != tt.n || meta.HasNext != tt.hasNext || meta.Count != tt.count {
			t.Errorf("%s: code %d, %d clients, meta %+v; want %d, hasnext %v, count %d", tt.query, r.Code, len(cs), meta, tt.n, tt.hasNext, tt.count)
			continue
		}
		for i, id := range tt.ids {
			if cs[i].ClientID != id {
				t.Errorf("%s: client %d = %s, want %s", tt.query, i, cs[i].ClientID, id)
			}
		}
	}
	for _, q := range []string{"_page=x", "_limit=-1", "proto_ver=five", "_gte_created_at=yesterday", "conn_state=sleepy"} {
		if r := f.call(http.MethodGet, "/api/v4/clients?"+q, ""); r.Code != api.CodeParamType {
			t.Errorf("%s: code %d, want 108", q, r.Code)
		}
	}

	r := f.call(http.MethodGet, "/api/v4/clients/c04", "")
	cs := decode[[]clientObj](t, r.Data)
	if len(cs) != 1 || cs[0].ClientID != "c04" || cs[0].Username == nil || *cs[0].Username != "even" || cs[0].IPAddress != "127.0.0.1" || !cs[0].Connected || cs[0].ProtoVer != 5 || cs[0].Zone != "external" || cs[0].CreatedAt == "" {
		t.Errorf("clients/c04 = %s", r.Data)
	}
	if r := f.call(http.MethodGet, "/api/v4/clients/nobody", ""); string(r.Data) != "[]" {
		t.Errorf("clients/nobody = %s", r.Data)
	}
	r = f.call(http.MethodGet, "/api/v4/clients/username/odd", "")
	if cs := decode[[]clientObj](t, r.Data); len(cs) != 15 {
		t.Errorf("clients/username/odd: %d clients", len(cs))
	}
}

func TestClientIDIsURLDecoded(t *testing.T) {
	f := newFixture(t, nil)
	connect(t, f.addr, "dev/1 x", "", mqtt.V311)
	r := f.call(http.MethodGet, "/api/v4/clients/dev%2F1%20x", "")
	if cs := decode[[]clientObj](t, r.Data); len(cs) != 1 || cs[0].ClientID != "dev/1 x" {
		t.Errorf("got %s", r.Data)
	}
}

func TestSubscriptionsAndRoutes(t *testing.T) {
	f := newFixture(t, nil)
	a := connect(t, f.addr, "a", "", mqtt.V5)
	bc := connect(t, f.addr, "b", "", mqtt.V5)
	subscribe(t, a, "s/+/x", 1)
	subscribe(t, a, "t/#", 0)
	subscribe(t, bc, "$share/g/s/+/x", 2)

	type sub struct {
		ClientID string `json:"clientid"`
		Topic    string `json:"topic"`
		QoS      int    `json:"qos"`
	}
	tests := []struct {
		query string
		n     int
		count int
	}{
		{"", 3, 3},
		{"clientid=a", 2, -1},
		{"qos=2", 1, -1},
		{"share=g", 1, -1},
		{"topic=t/%23", 1, -1},
		{"_match_topic=s/1/x", 2, -1},
		{"_match_topic=t/1/2", 1, -1},
		{"_match_topic=u", 0, -1},
	}
	for _, tt := range tests {
		r := f.call(http.MethodGet, "/api/v4/subscriptions?"+tt.query, "")
		subs := decode[[]sub](t, r.Data)
		meta := decode[queryMeta](t, r.Meta)
		if len(subs) != tt.n || meta.Count != tt.count {
			t.Errorf("subscriptions?%s: %d subs, meta %+v; want %d, count %d", tt.query, len(subs), meta, tt.n, tt.count)
		}
	}
	r := f.call(http.MethodGet, "/api/v4/subscriptions/b", "")
	if subs := decode[[]sub](t, r.Data); len(subs) != 1 || subs[0].Topic != "$share/g/s/+/x" || subs[0].QoS != 2 {
		t.Errorf("subscriptions/b = %s", r.Data)
	}
	r = f.call(http.MethodGet, "/api/v4/routes?_limit=1&_page=2", "")
	meta := decode[map[string]any](t, r.Meta)
	routes := decode[[]map[string]string](t, r.Data)
	if len(routes) != 1 || routes[0]["topic"] != "t/#" || meta["count"] != float64(2) {
		t.Errorf("routes page 2 = %s meta %s", r.Data, r.Meta)
	}
	if _, has := meta["hasnext"]; has {
		t.Error("routes meta has hasnext; EMQX's paginate meta has none")
	}
	r = f.call(http.MethodGet, "/api/v4/routes/s%2F%2B%2Fx", "")
	if routes := decode[[]map[string]string](t, r.Data); len(routes) != 1 || routes[0]["topic"] != "s/+/x" {
		t.Errorf("routes/s/+/x = %s", r.Data)
	}
	if r := f.call(http.MethodGet, "/api/v4/routes/none", ""); string(r.Data) != "[]" {
		t.Errorf("routes/none = %s", r.Data)
	}
}

func TestPublishOverAPI(t *testing.T) {
	f := newFixture(t, nil)
	s := connect(t, f.addr, "s", "", mqtt.V5)
	subscribe(t, s, "d/#", 2)

	r := f.call(http.MethodPost, "/api/v4/mqtt/publish", `{"topic":"d/1","payload":"aGVsbG8=","encoding":"base64","qos":1,"clientid":"api","properties":{"content_type":"text/plain","user_properties":{"k":"v"}},"return":true}`)
	if r.Code != 0 || !strings.Contains(string(r.Data), "msgid") {
		t.Fatalf("publish: %+v %s", r, r.Data)
	}
	p, ok := s.Read().(*mqtt.Publish)
	if !ok || p.Topic != "d/1" || string(p.Payload) != "hello" || p.QoS != 1 || p.Props.ContentType != "text/plain" || len(p.Props.User) != 1 || p.Props.User[0].Value != "v" {
		t.Fatalf("got %+v", p)
	}
	s.Send(&mqtt.Ack{PacketType: mqtt.PUBACK, PacketID: p.PacketID})

	// A JSON object payload is sent as its JSON text; topics fans out.
	r = f.call(http.MethodPost, "/api/v4/mqtt/publish", `{"topics":"d/2,d/3","payload":{"a":1}}`)
	if r.Code != 0 {
		t.Fatalf("publish topics: %+v", r)
	}
	for _, want := range []string{"d/2", "d/3"} {
		p, ok := s.Read().(*mqtt.Publish)
		if !ok || p.Topic != want || string(p.Payload) != `{"a":1}` {
			t.Fatalf("got %+v, want %s", p, want)
		}
	}

	errs := []struct {
		body string
		code int
	}{
		{`{"payload":"x"}`, api.CodeBadTopic},
		// [MQTT-3.3.2-2] wildcards are not allowed in a topic name.
		{`{"topic":"d/+"}`, api.CodeBadTopic},
		{`{"topic":"d","qos":3}`, api.CodeBadQoS},
		{`{"topic":"d","qos":"one"}`, api.CodeParamType},
		{`{"topic":"d","clientid":5}`, api.CodeParamType},
		{`{"topic":"d","encoding":"hex"}`, api.CodeParamType},
		{`{"topic":"d","payload":"%%%","encoding":"base64"}`, api.CodeParamType},
		{`{"topic":"d","properties":{"bogus":1}}`, api.CodeParamType},
		{`[1,2]`, api.CodeParamType},
	}
	for _, tt := range errs {
		if r := f.call(http.MethodPost, "/api/v4/mqtt/publish", tt.body); r.Code != tt.code || r.Message == "" {
			t.Errorf("%s: code %d %q, want %d", tt.body, r.Code, r.Message, tt.code)
		}
	}

	r = f.call(http.MethodPost, "/api/v4/mqtt/publish_batch", `[{"topic":"d/4","payload":"x"},{"topic":"d/+","payload":"y"}]`)
	res := decode[[]struct {
		Topic string `json:"topic"`
		Code  int    `json:"code"`
	}](t, r.Data)
	if len(res) != 2 || res[0].Code != 0 || res[0].Topic != "d/4" || res[1].Code != api.CodeBadTopic {
		t.Errorf("publish_batch = %s", r.Data)
	}
	if p, ok := s.Read().(*mqtt.Publish); !ok || p.Topic != "d/4" {
		t.Fatalf("got %+v", p)
	}
}

func TestSubscribeOverAPI(t *testing.T) {
	f := newFixture(t, nil)
	c := connect(t, f.addr, "c", "", mqtt.V311)
	if r := f.call(http.MethodPost, "/api/v4/mqtt/subscribe", `{"clientid":"c","topics":"x/1,x/2","qos":1}`); r.Code != 0 {
		t.Fatalf("subscribe: %+v", r)
	}
	if subs := f.b.Subscriptions("c"); len(subs) != 2 || subs[0].QoS != 1 {
		t.Fatalf("subscriptions = %+v", subs)
	}
	if _, n, _ := f.b.Publish(broker.Message{Topic: "x/2", Payload: []byte("p")}); n != 1 {
		t.Fatalf("%d deliveries", n)
	}
	if p, ok := c.Read().(*mqtt.Publish); !ok || p.Topic != "x/2" {
		t.Fatalf("got %+v", p)
	}
	errs := []struct {
		path, body string
		code       int
	}{
		{"subscribe", `{"clientid":"nobody","topic":"x"}`, api.CodeNotOnline},
		{"subscribe", `{"clientid":"c","topic":"x/#/y"}`, api.CodeBadTopic},
		{"subscribe", `{"clientid":"c","topic":"x","qos":5}`, api.CodeBadQoS},
		{"subscribe", `{"clientid":7,"topic":"x"}`, api.CodeParamType},
		{"subscribe", `{"topic":"x"}`, api.CodeMissingParam},
		{"unsubscribe", `{"clientid":"nobody","topic":"x"}`, api.CodeNotOnline},
		{"unsubscribe", `{"clientid":"c"}`, api.CodeBadTopic},
	}
	for _, tt := range errs {
		if r := f.call(http.MethodPost, "/api/v4/mqtt/"+tt.path, tt.body); r.Code != tt.code {
			t.Errorf("%s %s: code %d %q, want %d", tt.path, tt.body, r.Code, r.Message, tt.code)
		}
	}
	if r := f.call(http.MethodPost, "/api/v4/mqtt/unsubscribe", `{"clientid":"c","topic":"x/1"}`); r.Code != 0 {
		t.Fatalf("unsubscribe: %+v", r)
	}
	r := f.call(http.MethodPost, "/api/v4/mqtt/unsubscribe_batch", `[{"clientid":"c","topic":"x/2"},{"clientid":"zz","topic":"x/2"}]`)
	res := decode[[]struct {
		ClientID string `json:"clientid"`
		Code     int    `json:"code"`
	}](t, r.Data)
	if len(res) != 2 || res[0].Code != 0 || res[1].Code != api.CodeNotOnline {
		t.Errorf("unsubscribe_batch = %s", r.Data)
	}
	if subs := f.b.Subscriptions("c"); len(subs) != 0 {
		t.Errorf("subscriptions left: %+v", subs)
	}
	r = f.call(http.MethodPost, "/api/v4/mqtt/subscribe_batch", `[{"clientid":"c","topic":"y","qos":2}]`)
	if res := decode[[]map[string]any](t, r.Data); len(res) != 1 || res[0]["code"] != float64(0) {
		t.Errorf("subscribe_batch = %s", r.Data)
	}
}

func TestKickOverAPI(t *testing.T) {
	f := newFixture(t, nil)
	c := connect(t, f.addr, "victim", "", mqtt.V5)
	if r := f.call(http.MethodDelete, "/api/v4/clients/victim", ""); r.Code != 0 {
		t.Fatalf("kick: %+v", r)
	}
	got := c.ExpectClosed()
	if len(got) != 1 {
		t.Fatalf("%d packets before the close", len(got))
	}
	if d, ok := got[0].(*mqtt.Disconnect); !ok || d.ReasonCode != mqtt.AdministrativeAction {
		t.Fatalf("got %+v, want DISCONNECT 0x98", got[0])
	}
	if r := f.call(http.MethodDelete, "/api/v4/clients/victim", ""); r.Code != api.CodeNotOnline {
		t.Errorf("second kick: code %d, want 112", r.Code)
	}
}

func TestPrometheusMetrics(t *testing.T) {
	f := newFixture(t, nil)
	scrape := func() string {
		t.Helper()
		w := httptest.NewRecorder()
		f.s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if w.Code != http.StatusOK {
			t.Fatalf("/metrics: HTTP %d", w.Code)
		}
		return w.Body.String()
	}
	before := scrape()
	if !strings.Contains(before, "mqgate_connections 0\n") {
		t.Errorf("no idle mqgate_connections 0 in:\n%s", before)
	}
	s := connect(t, f.addr, "s", "", mqtt.V311)
	subscribe(t, s, "m", 1)
	p := connect(t, f.addr, "p", "", mqtt.V311)
	p.Send(&mqtt.Publish{Topic: "m", QoS: 1, PacketID: 9, Payload: []byte("x")})
	p.Read() // PUBACK
	s.Read() // the delivery
	p.Send(&mqtt.Publish{Topic: "nobody/listens", Payload: []byte("x")})
	// A PINGREQ round trip orders the QoS 0 publish before the scrape.
	p.Send(&mqtt.Pingreq{})
	p.Read()
	after := scrape()
	for _, want := range []string{
		"mqgate_connections 2\n",
		"mqgate_subscriptions 1\n",
		`mqgate_messages_received_total{qos="1"} 1` + "\n",
		`mqgate_messages_sent_total{qos="1"} 1` + "\n",
		`mqgate_messages_dropped_total{reason="no_subscribers"} 1` + "\n",
		"mqgate_api_auth_failures_total 0\n",
	} {
		if !strings.Contains(after, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(after, `clientid=`) || strings.Contains(after, `topic=`) {
		t.Error("a family is labelled by client id or topic")
	}
	if w := f.do(http.MethodGet, "/healthz", ""); w.Code != http.StatusOK {
		t.Errorf("/healthz: %d", w.Code)
	}
	if w := f.do(http.MethodGet, "/readyz", ""); w.Code != http.StatusOK {
		t.Errorf("/readyz: %d", w.Code)
	}
}

func TestReadyzFails(t *testing.T) {
	b, _ := testutil.RunBroker(t, nil)
	s, err := api.New(api.Options{Broker: b, Addr: "127.0.0.1:0", Apps: map[string]string{appID: appSecret}, Ready: func() error { return fmt.Errorf("policy not loaded") }})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "policy not loaded") {
		t.Errorf("/readyz: %d %q", w.Code, w.Body)
	}
}

// TestEndToEnd runs the API on a real listener: a publish over HTTP reaches
// a subscribed MQTT client, and a kick disconnects a v5 client with 0x98.
func TestEndToEnd(t *testing.T) {
	f := newFixture(t, nil)
	if err := f.s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := f.s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	base := "http://" + f.s.Addr().String()
	client := &http.Client{Timeout: 5 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	post := func(method, path, body string) map[string]any {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(appID, appSecret)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return out
	}
	sub := connect(t, f.addr, "sub", "", mqtt.V5)
	subscribe(t, sub, "e2e/#", 1)
	if r := post(http.MethodPost, "/api/v4/mqtt/publish", `{"topic":"e2e/x","payload":"over http","qos":1}`); r["code"] != float64(0) {
		t.Fatalf("publish: %v", r)
	}
	p, ok := sub.Read().(*mqtt.Publish)
	if !ok || p.Topic != "e2e/x" || string(p.Payload) != "over http" {
		t.Fatalf("got %+v", p)
	}
	if r := post(http.MethodDelete, "/api/v4/clients/sub", ""); r["code"] != float64(0) {
		t.Fatalf("kick: %v", r)
	}
	got := sub.ExpectClosed()
	if len(got) == 0 {
		t.Fatal("no DISCONNECT before the close")
	}
	if d, ok := got[len(got)-1].(*mqtt.Disconnect); !ok || d.ReasonCode != mqtt.AdministrativeAction {
		t.Fatalf("last packet %+v, want DISCONNECT 0x98", got[len(got)-1])
	}
	resp, err := client.Get(base + "/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/status: %d", resp.StatusCode)
	}
}

func TestBanned(t *testing.T) {
	bans := api.NewBanList()
	b, addr := testutil.RunBroker(t, func(o *broker.Options) {
		o.AllowAnonymous = true
		o.Authenticator = bans.Wrap(nil)
	})
	s, err := api.New(api.Options{Broker: b, Addr: "127.0.0.1:0", Apps: map[string]string{appID: appSecret}, Bans: bans})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, b: b, addr: addr, s: s}
	tryConnect := func(id, user string, v mqtt.Version) mqtt.ReasonCode {
		t.Helper()
		c := testutil.Dial(t, addr, v)
		return c.Connect(&mqtt.Connect{ClientID: id, CleanStart: true, KeepAlive: 30, Username: user, UsernameSet: user != ""}).ReasonCode
	}
	if r := f.call(http.MethodPost, "/api/v4/banned", `{"who":"evil","as":"clientid","reason":"test"}`); r.Code != 0 {
		t.Fatalf("ban: %+v", r)
	}
	if r := f.call(http.MethodPost, "/api/v4/banned", `{"who":"mallory","as":"username","reason":"test","until":99999999999}`); r.Code != 0 {
		t.Fatalf("ban: %+v", r)
	}
	// An expired ban does not refuse anyone and is not listed.
	if r := f.call(http.MethodPost, "/api/v4/banned", `{"who":"old","as":"clientid","reason":"x","until":1}`); r.Code != 0 {
		t.Fatalf("ban: %+v", r)
	}
	tests := []struct {
		id, user string
		v        mqtt.Version
		want     mqtt.ReasonCode
	}{
		{"evil", "", mqtt.V5, mqtt.Banned},
		// 3.1.1 has no "banned": 5, not authorized.
		{"evil", "", mqtt.V311, mqtt.ReasonCode(5)},
		{"x", "mallory", mqtt.V5, mqtt.Banned},
		{"old", "", mqtt.V5, mqtt.Success},
		{"good", "alice", mqtt.V5, mqtt.Success},
	}
	for _, tt := range tests {
		if got := tryConnect(tt.id, tt.user, tt.v); got != tt.want {
			t.Errorf("connect %s/%s v%d: %v, want %v", tt.id, tt.user, tt.v, got, tt.want)
		}
	}
	r := f.call(http.MethodGet, "/api/v4/banned", "")
	list := decode[[]map[string]any](t, r.Data)
	if len(list) != 2 || list[0]["who"] != "evil" || list[1]["who"] != "mallory" || list[1]["until"] != float64(99999999999) {
		t.Errorf("banned = %s", r.Data)
	}
	for _, tt := range []struct {
		body string
		code int
	}{
		{`{"who":"x"}`, api.CodeMissingParam},
		{`{"who":"x","as":"shoe"}`, api.CodeParamType},
		{`{"who":"not-an-ip","as":"peerhost"}`, api.CodeParamType},
		{`{"who":1,"as":"clientid"}`, api.CodeParamType},
	} {
		if r := f.call(http.MethodPost, "/api/v4/banned", tt.body); r.Code != tt.code {
			t.Errorf("%s: code %d, want %d", tt.body, r.Code, tt.code)
		}
	}
	if r := f.call(http.MethodDelete, "/api/v4/banned/clientid/evil", ""); r.Code != 0 {
		t.Fatalf("unban: %+v", r)
	}
	if got := tryConnect("evil", "", mqtt.V5); got != mqtt.Success {
		t.Errorf("after unban: %v", got)
	}
	// A ban of the peer address refuses every client from it.
	if r := f.call(http.MethodPost, "/api/v4/banned", `{"who":"127.0.0.1","as":"peerhost","reason":"net"}`); r.Code != 0 {
		t.Fatalf("ban peer: %+v", r)
	}
	if got := tryConnect("anyone", "", mqtt.V5); got != mqtt.Banned {
		t.Errorf("banned peer: %v", got)
	}
}

func TestACLExplainAndReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "acl.conf")
	rules := `{allow, {user, "alice"}, publish, ["a/#"]}.
{deny, all}.
`
	chain := fileChain(t, path, rules, access.Deny)
	b, baddr := testutil.RunBroker(t, nil)
	s, err := api.New(api.Options{Broker: b, Addr: "127.0.0.1:0", Apps: map[string]string{appID: appSecret}, ACL: api.ChainACL{Chain: chain}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, b: b, addr: baddr, s: s}
	type explain struct {
		Decision struct {
			Verdict string `json:"verdict"`
			Source  string `json:"source"`
		} `json:"decision"`
		Links []struct {
			Link    string `json:"link"`
			Verdict string `json:"verdict"`
		} `json:"links"`
	}
	tests := []struct {
		query, verdict string
		code           int
	}{
		{"username=alice&topic=a/b&action=publish", "allow", 0},
		{"username=bob&topic=a/b&action=publish", "deny", 0},
		{"username=alice&topic=a/b&action=subscribe", "deny", 0},
		{"username=alice", "", api.CodeMissingParam},
		{"topic=a&action=jump", "", api.CodeParamType},
		{"topic=a&qos=7", "", api.CodeBadQoS},
	}
	for _, tt := range tests {
		r := f.call(http.MethodGet, "/api/v4/acl/explain?"+tt.query, "")
		if r.Code != tt.code {
			t.Errorf("%s: code %d %q, want %d", tt.query, r.Code, r.Message, tt.code)
			continue
		}
		if tt.code != 0 {
			continue
		}
		ex := decode[explain](t, r.Data)
		if ex.Decision.Verdict != tt.verdict || len(ex.Links) != 1 || ex.Links[0].Link != "file" {
			t.Errorf("%s: %s, want %s", tt.query, r.Data, tt.verdict)
		}
	}
	// DELETE /clients/{clientid}/acl_cache drops one client's decisions:
	// the next question is a cache miss.
	req := access.Request{Identity: access.Identity{ClientID: "c1", Username: "alice", UsernameSet: true}, Action: access.Publish, Topic: "a/1"}
	chain.Authorize(context.Background(), req)
	chain.Authorize(context.Background(), req)
	hits, misses := chain.CacheStats()
	if hits != 1 || misses != 1 {
		t.Fatalf("cache hits %d misses %d, want 1 and 1", hits, misses)
	}
	if r := f.call(http.MethodDelete, "/api/v4/clients/c1/acl_cache", ""); r.Code != api.CodeNotOnline {
		t.Errorf("acl_cache of an offline client: code %d, want 112", r.Code)
	}
	connect(t, f.addr, "c1", "alice", mqtt.V311)
	if r := f.call(http.MethodDelete, "/api/v4/clients/c1/acl_cache", ""); r.Code != 0 {
		t.Fatalf("acl_cache: %+v", r)
	}
	chain.Authorize(context.Background(), req)
	if hits, misses := chain.CacheStats(); hits != 1 || misses != 2 {
		t.Errorf("after acl_cache delete: hits %d misses %d, want 1 and 2", hits, misses)
	}

	gen := chain.Generation().Load()
	if r := f.call(http.MethodPost, "/api/v4/acl/reload", ""); r.Code != 0 {
		t.Fatalf("reload: %+v", r)
	}
	if r := f.call(http.MethodDelete, "/api/v4/acl-cache", ""); r.Code != 0 {
		t.Fatalf("acl-cache: %+v", r)
	}
	if got := chain.Generation().Load(); got != gen+2 {
		t.Errorf("generation %d, want %d: the cache was not invalidated", got, gen+2)
	}
}

func TestApplications(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apps.json")
	b, _ := testutil.RunBroker(t, nil)
	newServer := func() *api.Server {
		s, err := api.New(api.Options{Broker: b, Addr: "127.0.0.1:0", Apps: map[string]string{appID: appSecret}, AppsFile: path})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	f := &fixture{t: t, b: b, s: newServer()}
	r := f.call(http.MethodPost, "/api/v4/apps", `{"app_id":"ops","name":"Operations"}`)
	created := decode[map[string]string](t, r.Data)
	if r.Code != 0 || created["secret"] == "" {
		t.Fatalf("insert: %+v", r)
	}
	if r := f.call(http.MethodPost, "/api/v4/apps", `{"app_id":"ops"}`); r.Code != api.CodeUserExists {
		t.Errorf("second insert: code %d", r.Code)
	}
	if r := f.call(http.MethodPost, "/api/v4/apps", `{"name":"x"}`); r.Code != api.CodeMissingParam {
		t.Errorf("insert without id: code %d", r.Code)
	}
	// The new application authenticates, also after a restart (the file).
	f2 := newServer()
	for i, s := range []*api.Server{f.s, f2} {
		req := httptest.NewRequest(http.MethodGet, "/api/v4/apps", nil)
		req.SetBasicAuth("ops", created["secret"])
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"name":"Operations"`) || strings.Contains(w.Body.String(), created["secret"]) {
			t.Errorf("server %d: %d %s", i, w.Code, w.Body)
		}
	}
	if r := f.call(http.MethodDelete, "/api/v4/apps/"+appID, ""); r.Code != api.CodeAdminDelete {
		t.Errorf("delete configured app: code %d", r.Code)
	}
	if r := f.call(http.MethodDelete, "/api/v4/apps/ops", ""); r.Code != 0 {
		t.Errorf("delete: %+v", r)
	}
	if r := f.call(http.MethodDelete, "/api/v4/apps/ops", ""); r.Code != api.CodeUserNotFound {
		t.Errorf("delete again: code %d", r.Code)
	}
	req := httptest.NewRequest(http.MethodGet, "/api/v4/apps", nil)
	req.SetBasicAuth("ops", created["secret"])
	w := httptest.NewRecorder()
	newServer().Handler().ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("deleted app still authenticates after restart: %d", w.Code)
	}
}

// TestWebhookStatus runs a real dispatcher against a real receiver and
// reads its state through /webhooks and /metrics.
func TestWebhookStatus(t *testing.T) {
	var mu sync.Mutex
	got := 0
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		got++
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	// The URL carries credentials and a query: /webhooks hides the
	// password, /metrics labels the endpoint by scheme, host and path only.
	hookURL := strings.Replace(recv.URL, "http://", "http://hook:s3cret@", 1) + "/hook?token=abc"
	d, bus := runConnectedHook(t, webhook.Options{URL: hookURL})
	b, addr := testutil.RunBroker(t, func(o *broker.Options) { o.Events = bus })
	reg := prometheus.NewRegistry()
	s, err := api.New(api.Options{Broker: b, Addr: "127.0.0.1:0", Apps: map[string]string{appID: appSecret}, Registry: reg, Webhooks: d.Stats})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, b: b, s: s}
	connect(t, addr, "hooked", "", mqtt.V311)
	// Wait for the delivery: the receiver has seen it and the dispatcher
	// has counted it.
	type status struct {
		Enabled   bool `json:"enabled"`
		Pending   int  `json:"pending"`
		Endpoints []struct {
			URL    string `json:"url"`
			Events map[string]struct {
				Delivered uint64 `json:"delivered"`
			} `json:"events"`
		} `json:"endpoints"`
	}
	var st status
	for range 500 {
		st = decode[status](t, f.call(http.MethodGet, "/api/v4/webhooks", "").Data)
		if len(st.Endpoints) == 1 && st.Endpoints[0].Events["client.connected"].Delivered == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !st.Enabled || len(st.Endpoints) != 1 || st.Endpoints[0].URL != strings.Replace(hookURL, "s3cret", "xxxxx", 1) || st.Endpoints[0].Events["client.connected"].Delivered != 1 {
		t.Fatalf("webhooks = %+v", st)
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	ep := `endpoint="` + recv.URL + `/hook"`
	for _, want := range []string{
		`mqgate_webhook_deliveries_total{` + ep + `,event="client.connected",result="delivered"} 1`,
		`mqgate_webhook_in_flight{` + ep + `,event="client.connected"} 0`,
		`mqgate_webhook_endpoint_pending{` + ep + `} 0`,
		`mqgate_webhook_endpoint_oldest_pending_seconds{` + ep + `} 0`,
		`mqgate_webhook_endpoint_breaker_open{` + ep + `} 0`,
		"mqgate_webhook_pending_memory_bytes 0", // the one event was delivered
	} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, secret := range []string{"s3cret", "hook:", "token=abc"} {
		if strings.Contains(w.Body.String(), secret) {
			t.Errorf("metrics show %q of the endpoint URL", secret)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got != 1 {
		t.Errorf("receiver got %d requests, want 1", got)
	}
}

// TestWebhookEndpointState: an endpoint that fails shows its queue, the age
// of its oldest delivery and its last error (without the URL's password)
// until it recovers.
func TestWebhookEndpointState(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(recv.Close)
	hookURL := strings.Replace(recv.URL, "http://", "http://hook:pa55word@", 1) + "/hook"
	d, bus := runConnectedHook(t, webhook.Options{URL: hookURL,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, BreakerThreshold: 1000})
	b, addr := testutil.RunBroker(t, func(o *broker.Options) { o.Events = bus })
	s, err := api.New(api.Options{Broker: b, Addr: "127.0.0.1:0", Apps: map[string]string{appID: appSecret}, Webhooks: d.Stats})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, b: b, s: s}
	connect(t, addr, "hooked", "", mqtt.V311)
	type endpoint struct {
		URL         string  `json:"url"`
		Pending     int     `json:"pending"`
		Oldest      float64 `json:"oldest_pending_seconds"`
		LastError   string  `json:"last_error"`
		LastErrorAt string  `json:"last_error_at"`
	}
	read := func() endpoint {
		t.Helper()
		st := decode[struct {
			Endpoints []endpoint `json:"endpoints"`
		}](t, f.call(http.MethodGet, "/api/v4/webhooks", "").Data)
		if len(st.Endpoints) != 1 {
			t.Fatalf("%d endpoints", len(st.Endpoints))
		}
		return st.Endpoints[0]
	}
	var ep endpoint
	for range 500 {
		if ep = read(); ep.LastError != "" && ep.Oldest > 0.05 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ep.Pending != 1 || ep.Oldest <= 0.05 || ep.LastError != "HTTP 503" || ep.LastErrorAt == "" {
		t.Fatalf("failing endpoint = %+v", ep)
	}
	if strings.Contains(ep.URL, "pa55word") || !strings.Contains(ep.URL, "hook:") {
		t.Errorf("url %q", ep.URL)
	}
	failing.Store(false)
	for range 500 {
		if ep = read(); ep.Pending == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ep.Pending != 0 || ep.Oldest != 0 || ep.LastError != "HTTP 503" {
		t.Errorf("recovered endpoint = %+v", ep)
	}
}

// TestClientsPagingThousand pages through 1,000 real sessions and applies
// every EMQX 4 filter of GET /clients to them. Even clients are MQTT 5, odd
// ones 3.1.1; one in four keeps its session (clean start false), and 25 of
// those have disconnected; usernames are g0..g9.
func TestClientsPagingThousand(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections")
	}
	b, addr := testutil.RunBroker(t, nil)
	s, err := api.New(api.Options{Broker: b, Addr: "127.0.0.1:0", Apps: map[string]string{appID: appSecret}, MaxRowLimit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, b: b, addr: addr, s: s}
	const n = 1000
	start := time.Now().Unix()
	gone := 0
	for i := range n {
		v := mqtt.V311
		if i%2 == 0 {
			v = mqtt.V5
		}
		c := testutil.Dial(t, addr, v)
		keep := i%4 == 3
		if ack := c.Connect(&mqtt.Connect{ClientID: fmt.Sprintf("k%04d", i), CleanStart: !keep, KeepAlive: 60, Username: fmt.Sprintf("g%d", i%10), UsernameSet: true}); ack.ReasonCode != 0 {
			t.Fatalf("connect %d: %v", i, ack.ReasonCode)
		}
		if keep && gone < 25 {
			gone++
			c.Send(&mqtt.Disconnect{})
			c.ExpectClosed()
		}
	}
	end := time.Now().Unix()
	// Wait until the broker has seen the 25 disconnections.
	for range 500 {
		if len(decode[[]clientObj](t, f.call(http.MethodGet, "/api/v4/clients?conn_state=disconnected", "").Data)) == 25 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	seen := map[string]bool{}
	for page := 1; page <= 11; page++ {
		r := f.call(http.MethodGet, fmt.Sprintf("/api/v4/clients?_limit=100&_page=%d", page), "")
		cs := decode[[]clientObj](t, r.Data)
		meta := decode[queryMeta](t, r.Meta)
		if meta.Count != n || len(cs) != 100 || meta.Page != page || meta.Limit != 100 {
			t.Fatalf("page %d: %d clients, meta %+v", page, len(cs), meta)
		}
		for _, c := range cs {
			if seen[c.ClientID] {
				t.Fatalf("page %d: %s listed twice", page, c.ClientID)
			}
			seen[c.ClientID] = true
		}
		if !meta.HasNext {
			if page != 10 {
				t.Fatalf("hasnext false on page %d", page)
			}
			break
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct clients paged, want %d", len(seen), n)
	}
	for _, tt := range []struct {
		query string
		want  int
	}{
		{"clientid=k0042", 1},
		{"username=g3", 100},
		{"_like_clientid=k09", 100},
		{"_like_username=g", n},
		{"username=g3&_like_clientid=k09", 10},
		{"proto_ver=5", 500},
		{"proto_ver=4", 500},
		{"proto_ver=5&_like_clientid=k00", 50},
		{"proto_name=MQTT", n},
		{"conn_state=connected", n - 25},
		{"conn_state=disconnected", 25},
		{"conn_state=idle", 0},
		{"clean_start=true", 750},
		// Offline sessions are matched by their last connection, as
		// EMQX 4 lists them.
		{"clean_start=false", 250},
		{"clean_start=false&conn_state=disconnected", 25},
		{"ip_address=127.0.0.1", n},
		{"ip_address=127.0.0.2", 0},
		{"zone=external", n},
		{"zone=internal", 0},
		{fmt.Sprintf("_gte_created_at=%d&_lte_created_at=%d", start, end), n},
		{fmt.Sprintf("_lte_created_at=%d", start-1), 0},
		{fmt.Sprintf("_gte_connected_at=%d", start), n},
		{fmt.Sprintf("_gte_connected_at=%d", end+1), 0},
		{fmt.Sprintf("_lte_connected_at=%d&conn_state=connected", end), n - 25},
		{"_lte_mqueue_len=0&_lte_mqueue_dropped=0", n},
		{"_gte_mqueue_len=1", 0},
		{"_gte_mqueue_dropped=1", 0},
	} {
		r := f.call(http.MethodGet, "/api/v4/clients?_limit=10000&"+tt.query, "")
		meta := decode[queryMeta](t, r.Meta)
		if cs := decode[[]clientObj](t, r.Data); r.Code != 0 || len(cs) != tt.want || meta.Count != -1 || meta.HasNext {
			t.Errorf("%s: code %d, %d clients, meta %+v; want %d, count -1", tt.query, r.Code, len(cs), meta, tt.want)
		}
	}
	// An offline session shows its last connection, and when it ended.
	r := f.call(http.MethodGet, "/api/v4/clients/k0003", "")
	var off []map[string]any
	if err := json.Unmarshal(r.Data, &off); err != nil || len(off) != 1 {
		t.Fatalf("GET /clients/k0003: %v, %s", err, r.Data)
	}
	if o := off[0]; o["connected"] != false || o["ip_address"] != "127.0.0.1" || o["clean_start"] != false ||
		o["zone"] != "external" || o["keepalive"] != float64(60) || o["connected_at"] == nil || o["disconnected_at"] == nil {
		t.Errorf("offline k0003: %v", o)
	}
	// A filtered list is paged too.
	for page, want := range []struct {
		n       int
		hasNext bool
	}{{100, true}, {100, true}, {100, true}, {100, true}, {100, false}, {0, false}} {
		r := f.call(http.MethodGet, fmt.Sprintf("/api/v4/clients?proto_ver=5&_limit=100&_page=%d", page+1), "")
		meta := decode[queryMeta](t, r.Meta)
		if cs := decode[[]clientObj](t, r.Data); len(cs) != want.n || meta.HasNext != want.hasNext {
			t.Errorf("proto_ver=5 page %d: %d clients, hasnext %v; want %d, %v", page+1, len(cs), meta.HasNext, want.n, want.hasNext)
		}
	}
}

// TestClientACLCache reads a real client's cached decisions: the broker asks
// the chain when the client publishes and subscribes.
func TestClientACLCache(t *testing.T) {
	chain := fileChain(t, filepath.Join(t.TempDir(), "acl.conf"), `{allow, {user, "alice"}, publish, ["a/#"]}.
{deny, all, subscribe, ["x/#"]}.
`, access.Allow)
	b, baddr := testutil.RunBroker(t, func(o *broker.Options) { o.Authorizer = chain })
	s, err := api.New(api.Options{Broker: b, Addr: "127.0.0.1:0", Apps: map[string]string{appID: appSecret}, ACL: api.ChainACL{Chain: chain}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, b: b, addr: baddr, s: s}
	if r := f.call(http.MethodGet, "/api/v4/clients/alice1/acl_cache", ""); r.Code != api.CodeNotOnline {
		t.Errorf("offline client: code %d, want 112", r.Code)
	}
	c := connect(t, baddr, "alice1", "alice", mqtt.V5)
	if r := f.call(http.MethodGet, "/api/v4/clients/alice1/acl_cache", ""); r.Code != 0 || string(r.Data) != "[]" {
		t.Errorf("before any request: %+v %s", r, r.Data)
	}
	before := time.Now().UnixMilli()
	c.Send(&mqtt.Publish{Topic: "a/1", QoS: 1, PacketID: 1, Payload: []byte("x")})
	if _, ok := c.Read().(*mqtt.Ack); !ok {
		t.Fatal("want PUBACK")
	}
	c.Send(&mqtt.Subscribe{PacketID: 2, Subscriptions: []mqtt.Subscription{{Filter: "x/y", QoS: 0}, {Filter: "z", QoS: 0}}})
	if _, ok := c.Read().(*mqtt.Suback); !ok {
		t.Fatal("want SUBACK")
	}
	type entry struct {
		Access      string `json:"access"`
		Topic       string `json:"topic"`
		Result      string `json:"result"`
		UpdatedTime int64  `json:"updated_time"`
		Source      string `json:"source"`
	}
	got := decode[[]entry](t, f.call(http.MethodGet, "/api/v4/clients/alice1/acl_cache", "").Data)
	want := []entry{
		{Access: "publish", Topic: "a/1", Result: "allow", Source: "file"},
		{Access: "subscribe", Topic: "x/y", Result: "deny", Source: "file"},
		{Access: "subscribe", Topic: "z", Result: "allow", Source: "acl_nomatch"},
	}
	if len(got) != len(want) {
		t.Fatalf("acl_cache = %+v, want %+v", got, want)
	}
	for i, w := range want {
		g := got[i]
		if g.Access != w.Access || g.Topic != w.Topic || g.Result != w.Result || g.Source != w.Source || g.UpdatedTime < before-1000 || g.UpdatedTime > time.Now().UnixMilli()+1000 {
			t.Errorf("entry %d = %+v, want %+v", i, g, w)
		}
	}
	if r := f.call(http.MethodDelete, "/api/v4/clients/alice1/acl_cache", ""); r.Code != 0 {
		t.Fatalf("delete: %+v", r)
	}
	if r := f.call(http.MethodGet, "/api/v4/clients/alice1/acl_cache", ""); string(r.Data) != "[]" {
		t.Errorf("after DELETE: %s", r.Data)
	}
	c.Send(&mqtt.Publish{Topic: "a/2", QoS: 1, PacketID: 3, Payload: []byte("x")})
	c.Read()
	if got := decode[[]entry](t, f.call(http.MethodGet, "/api/v4/clients/alice1/acl_cache", "").Data); len(got) != 1 {
		t.Fatalf("after a publish: %+v", got)
	}
	if r := f.call(http.MethodDelete, "/api/v4/acl-cache", ""); r.Code != 0 {
		t.Fatalf("acl-cache: %+v", r)
	}
	if r := f.call(http.MethodGet, "/api/v4/clients/alice1/acl_cache", ""); string(r.Data) != "[]" {
		t.Errorf("after DELETE /acl-cache: %s", r.Data)
	}
}

// TestBansSurviveRestart bans over the API with a list saved to a file,
// then opens the file again for a new broker and API: the ban still
// refuses the client, and a lifted ban stays lifted.
func TestBansSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "banned.json")
	start := func() (*fixture, *api.BanList) {
		t.Helper()
		bans, err := api.OpenBanList(path)
		if err != nil {
			t.Fatal(err)
		}
		b, addr := testutil.RunBroker(t, func(o *broker.Options) {
			o.AllowAnonymous = true
			o.Authenticator = bans.Wrap(nil)
		})
		s, err := api.New(api.Options{Broker: b, Addr: "127.0.0.1:0", Apps: map[string]string{appID: appSecret}, Bans: bans})
		if err != nil {
			t.Fatal(err)
		}
		return &fixture{t: t, b: b, addr: addr, s: s}, bans
	}
	f, _ := start()
	for _, body := range []string{
		`{"who":"evil","as":"clientid","reason":"spam","until":99999999999}`,
		`{"who":"mallory","as":"username","reason":"abuse","until":99999999999}`,
		`{"who":"brief","as":"clientid","reason":"x","until":1}`,
	} {
		if r := f.call(http.MethodPost, "/api/v4/banned", body); r.Code != 0 {
			t.Fatalf("ban %s: %+v", body, r)
		}
	}
	if r := f.call(http.MethodDelete, "/api/v4/banned/username/mallory", ""); r.Code != 0 {
		t.Fatalf("unban: %+v", r)
	}
	// The first broker stops; a second one opens the same file.
	if err := f.b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	f2, bans2 := start()
	r := f2.call(http.MethodGet, "/api/v4/banned", "")
	list := decode[[]map[string]any](t, r.Data)
	if len(list) != 1 || list[0]["who"] != "evil" || list[0]["reason"] != "spam" || list[0]["until"] != float64(99999999999) {
		t.Fatalf("banned after restart = %s", r.Data)
	}
	c := testutil.Dial(t, f2.addr, mqtt.V5)
	if got := c.Connect(&mqtt.Connect{ClientID: "evil", CleanStart: true, KeepAlive: 30}).ReasonCode; got != mqtt.Banned {
		t.Errorf("banned client after restart: %v, want 0x8A", got)
	}
	c = testutil.Dial(t, f2.addr, mqtt.V5)
	if got := c.Connect(&mqtt.Connect{ClientID: "m", CleanStart: true, KeepAlive: 30, Username: "mallory", UsernameSet: true}).ReasonCode; got != mqtt.Success {
		t.Errorf("lifted ban after restart: %v", got)
	}
	if _, ok := bans2.Banned(access.Identity{ClientID: "brief"}); ok {
		t.Error("an expired ban came back")
	}
	// A damaged file stops the start with an error naming it.
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := api.OpenBanList(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("damaged file: %v", err)
	}
}

// TestPrometheusFamiliesMove drives traffic that moves each broker family
// /metrics exports beyond the basic ones: listener refusals (max_conn_rate,
// a failed WebSocket upgrade), ACL decisions, retained messages, inflight
// and queued messages.
func TestPrometheusFamiliesMove(t *testing.T) {
	deny := access.AuthorizerFunc(func(_ context.Context, req access.Request) access.Decision {
		if strings.HasPrefix(req.Topic, "no/") {
			return access.Decision{Verdict: access.Deny}
		}
		return access.Decision{Verdict: access.Allow}
	})
	f := newFixture(t, func(o *broker.Options) {
		o.Authorizer = deny
		o.Listeners = append(o.Listeners,
			broker.Listener{Name: "limited", Addr: "127.0.0.1:0", MaxConnRate: 1},
			broker.Listener{Name: "web", Addr: "127.0.0.1:0", Kind: listener.WS, WSPath: "/mqtt", HandshakeTimeout: 5 * time.Second})
	})
	scrape := func() map[string]float64 {
		t.Helper()
		w := httptest.NewRecorder()
		f.s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		out := map[string]float64{}
		for _, line := range strings.Split(w.Body.String(), "\n") {
			if line == "" || line[0] == '#' {
				continue
			}
			i := strings.LastIndexByte(line, ' ')
			var v float64
			if _, err := fmt.Sscan(line[i+1:], &v); err != nil {
				t.Fatalf("bad line %q", line)
			}
			out[line[:i]] = v
		}
		return out
	}
	// Two connections in the same second on the limited listener: the
	// second is refused (the burst is 1).
	limited := f.b.Addr("limited").String()
	for range 2 {
		c, err := net.Dial("tcp", limited)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	// Plain HTTP where a WebSocket upgrade is expected.
	c, err := net.Dial("tcp", f.b.Addr("web").String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, c) // the broker answers and closes
	_ = c.Close()

	// An offline session with a QoS 1 subscription queues; an online
	// subscriber that does not acknowledge holds a message inflight.
	var expiry mqtt.Properties
	expiry.SessionExpiry = 300
	expiry.Set(mqtt.PropSessionExpiry)
	off := testutil.Dial(t, f.addr, mqtt.V5)
	if ack := off.Connect(&mqtt.Connect{ClientID: "off", KeepAlive: 60, Props: expiry}); ack.ReasonCode != 0 {
		t.Fatal(ack.ReasonCode)
	}
	subscribe(t, off, "q/#", 1)
	off.Send(&mqtt.Disconnect{})
	off.ExpectClosed()
	on := connect(t, f.addr, "on", "", mqtt.V5)
	subscribe(t, on, "q/#", 1)
	pub := connect(t, f.addr, "pub", "", mqtt.V5)
	pub.Send(&mqtt.Publish{Topic: "q/1", QoS: 1, PacketID: 1, Retain: true, Payload: []byte("x")})
	if _, ok := pub.Read().(*mqtt.Ack); !ok {
		t.Fatal("want PUBACK")
	}
	if p, ok := on.Read().(*mqtt.Publish); !ok || p.Topic != "q/1" {
		t.Fatalf("got %+v", p)
	}
	pub.Send(&mqtt.Publish{Topic: "no/1", QoS: 1, PacketID: 2, Payload: []byte("x")})
	if a, ok := pub.Read().(*mqtt.Ack); !ok || a.ReasonCode != mqtt.NotAuthorized {
		t.Fatalf("denied publish: %+v", a)
	}
	var m map[string]float64
	want := map[string]float64{
		`mqgate_client_events_total{event="rate_limited"}`:     1,
		`mqgate_client_events_total{event="handshake_failed"}`: 1,
		`mqgate_client_events_total{event="auth_anonymous"}`:   3,
		`mqgate_acl_decisions_total{result="deny"}`:            1,
		`mqgate_messages_retained_total`:                       1,
		`mqgate_inflight_messages`:                             1,
		`mqgate_queued_messages`:                               1,
		`mqgate_retained_messages`:                             1,
	}
	// The refusals are counted by the accept loop and the handshake
	// goroutine: wait for them.
	for range 200 {
		m = scrape()
		if m[`mqgate_client_events_total{event="rate_limited"}`] == 1 && m[`mqgate_client_events_total{event="handshake_failed"}`] == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if m[`mqgate_acl_decisions_total{result="allow"}`] < 3 {
		t.Errorf("acl allow = %v, want at least 3 (2 subscriptions and a publish)", m[`mqgate_acl_decisions_total{result="allow"}`])
	}
	for k := range m {
		if strings.Contains(k, "clientid") || strings.Contains(k, "topic") {
			t.Errorf("family labelled by client id or topic: %s", k)
		}
	}
}

// TestReadyzFollowsTheBroker: /readyz and /status answer 503 before the
// broker's listeners are up and once its shutdown has begun.
func TestReadyzFollowsTheBroker(t *testing.T) {
	o := broker.DefaultOptions()
	o.Listeners = []broker.Listener{{Name: "external", Addr: "127.0.0.1:0"}}
	o.ShutdownTimeout = 5 * time.Second
	b, err := broker.New(o)
	if err != nil {
		t.Fatal(err)
	}
	s, err := api.New(api.Options{Broker: b, Addr: "127.0.0.1:0", Apps: map[string]string{appID: appSecret}})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w.Code, w.Body.String()
	}
	for _, step := range []struct {
		do      func()
		code    int
		readyz  string
		status  string
		healthz int
	}{
		{func() {}, 503, "not started", "is not_running", 200},
		{func() {
			if err := b.Start(); err != nil {
				t.Fatal(err)
			}
		}, 200, "ok", "is running", 200},
		{func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := b.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
		}, 503, "shutting down", "is not_running", 200},
	} {
		step.do()
		if code, body := get("/readyz"); code != step.code || !strings.Contains(body, step.readyz) {
			t.Errorf("/readyz = %d %q, want %d %q", code, body, step.code, step.readyz)
		}
		if code, body := get("/status"); code != step.code || !strings.Contains(body, step.status) {
			t.Errorf("/status = %d %q, want %d %q", code, body, step.code, step.status)
		}
		if code, _ := get("/healthz"); code != step.healthz {
			t.Errorf("/healthz = %d", code)
		}
	}
}

// TestPublishProperties sends every MQTT 5 property the publish body takes
// and checks what a v5 subscriber receives; the message expiry interval
// counts down, the older top-level user_properties is accepted, "return"
// with "topics" answers one id per topic, and a retained message reaches a
// later subscriber.
func TestPublishProperties(t *testing.T) {
	f := newFixture(t, nil)
	s := connect(t, f.addr, "s5", "", mqtt.V5)
	subscribe(t, s, "p/#", 1)
	r := f.call(http.MethodPost, "/api/v4/mqtt/publish", `{"topic":"p/1","payload":"{}","qos":1,"properties":{
		"payload_format_indicator":1,"message_expiry_interval":60,"response_topic":"p/reply","correlation_data":"req-7",
		"content_type":"application/json","subscription_identifier":9,"user_properties":{"b":"2","a":"1"}}}`)
	if r.Code != 0 {
		t.Fatalf("publish: %+v", r)
	}
	p, ok := s.Read().(*mqtt.Publish)
	if !ok {
		t.Fatal("want PUBLISH")
	}
	s.Send(&mqtt.Ack{PacketType: mqtt.PUBACK, PacketID: p.PacketID})
	pr := p.Props
	if !pr.Has(mqtt.PropPayloadFormat) || pr.PayloadFormat != 1 || !pr.Has(mqtt.PropMessageExpiry) || pr.MessageExpiry == 0 || pr.MessageExpiry > 60 ||
		pr.ResponseTopic != "p/reply" || string(pr.CorrelationData) != "req-7" || pr.ContentType != "application/json" ||
		len(pr.User) != 2 || pr.User[0] != (mqtt.UserProperty{Key: "a", Value: "1"}) || pr.User[1] != (mqtt.UserProperty{Key: "b", Value: "2"}) {
		t.Errorf("properties = %+v", pr)
	}
	// [MQTT-3.3.4-6] the publisher's subscription identifier is not
	// forwarded: the subscriber has none of its own.
	if len(pr.SubscriptionIDs) != 0 {
		t.Errorf("subscription identifiers %v forwarded", pr.SubscriptionIDs)
	}
	r = f.call(http.MethodPost, "/api/v4/mqtt/publish", `{"topics":"p/2,p/3","payload":"x","user_properties":{"k":"v"},"retain":true,"return":true}`)
	ids := decode[map[string][]string](t, r.Data)
	if r.Code != 0 || len(ids["msgids"]) != 2 || ids["msgids"][0] == ids["msgids"][1] {
		t.Fatalf("return with topics: %s", r.Data)
	}
	for _, want := range []string{"p/2", "p/3"} {
		p, ok := s.Read().(*mqtt.Publish)
		if !ok || p.Topic != want || len(p.Props.User) != 1 || p.Props.User[0].Value != "v" {
			t.Fatalf("got %+v, want %s with a user property", p, want)
		}
	}
	late := connect(t, f.addr, "late", "", mqtt.V311)
	subscribe(t, late, "p/3", 0)
	if p, ok := late.Read().(*mqtt.Publish); !ok || p.Topic != "p/3" || !p.Retain || string(p.Payload) != "x" {
		t.Fatalf("retained message: %+v", p)
	}
}

// fileChain writes rules (acl.conf) to path and returns a cached ACL chain
// of the file backend over it, closed when the test ends.
func fileChain(t *testing.T, path, rules string, noMatch access.Verdict) *acl.Chain {
	t.Helper()
	if err := os.WriteFile(path, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	fb, err := aclfile.New(aclfile.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fb.Close() })
	chain, err := acl.New(acl.Options{Links: []acl.Link{{Name: "file", Authorizer: fb}}, NoMatch: noMatch, Cache: true, CacheMaxSize: 10, CacheTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chain.Close)
	return chain
}

// runConnectedHook starts a dispatcher with o and a client.connected rule
// (one connection to the endpoint, 5 s per request, its outbox in a
// temporary directory) on a new bus; both stop when the test ends.
func runConnectedHook(t *testing.T, o webhook.Options) (*webhook.Dispatcher, *events.Bus) {
	t.Helper()
	bus := events.NewBus()
	t.Cleanup(bus.Close)
	rule, err := webhook.ParseRule("web.hook.rule.client.connected.1", `{"action":"on_client_connected"}`)
	if err != nil {
		t.Fatal(err)
	}
	o.Node, o.Rules, o.Dir, o.PoolSize, o.RequestTimeout = "n", []webhook.Rule{rule}, t.TempDir(), 1, 5*time.Second
	d, err := webhook.New(o)
	if err != nil {
		t.Fatal(err)
	}
	d.Start(bus)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Stop(ctx)
	})
	return d, bus
}
