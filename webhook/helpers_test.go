package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/webhook"
)

// wait bounds how long a test waits for something that should happen.
const wait = 10 * time.Second

// request is one POST a receiver accepted.
type request struct {
	header http.Header
	body   []byte
}

// receiver is a real HTTP server on 127.0.0.1 that records the POSTs it
// accepts. status decides the answer to each request (n counts from 1);
// nil accepts all.
type receiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	status   func(n int, r *http.Request, body []byte) (int, http.Header)
	n        int
	accepted []request
	notify   chan struct{}
}

func newReceiver(t *testing.T, status func(n int, r *http.Request, body []byte) (int, http.Header)) *receiver {
	t.Helper()
	rc := &receiver{status: status, notify: make(chan struct{}, 1)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.n++
		code, h := http.StatusOK, http.Header(nil)
		if rc.status != nil {
			code, h = rc.status(rc.n, r, body)
		}
		if code/100 == 2 {
			rc.accepted = append(rc.accepted, request{header: r.Header.Clone(), body: body})
		}
		rc.mu.Unlock()
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(code)
		select {
		case rc.notify <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// setStatus replaces the answer function.
func (rc *receiver) setStatus(f func(n int, r *http.Request, body []byte) (int, http.Header)) {
	rc.mu.Lock()
	rc.status = f
	rc.mu.Unlock()
}

// requests returns how many requests arrived, accepted or not.
func (rc *receiver) requests() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.n
}

// waitFor waits until cond holds for the accepted requests, and returns them.
func (rc *receiver) waitFor(t *testing.T, what string, cond func([]request) bool) []request {
	t.Helper()
	deadline := time.After(wait)
	for {
		rc.mu.Lock()
		got := append([]request(nil), rc.accepted...)
		rc.mu.Unlock()
		if cond(got) {
			return got
		}
		select {
		case <-rc.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("waiting for %s: %d requests accepted", what, len(got))
		}
	}
}

// bodies decodes every accepted body, flattening batches.
func bodies(t *testing.T, reqs []request) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range reqs {
		if len(r.body) > 0 && r.body[0] == '[' {
			var arr []map[string]any
			if err := json.Unmarshal(r.body, &arr); err != nil {
				t.Fatalf("bad batch body %s: %v", r.body, err)
			}
			out = append(out, arr...)
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(r.body, &m); err != nil {
			t.Fatalf("bad body %s: %v", r.body, err)
		}
		out = append(out, m)
	}
	return out
}

// rule parses a rule or fails the test.
func rule(t testing.TB, key, value string) webhook.Rule {
	t.Helper()
	r, err := webhook.ParseRule(key, value)
	if err != nil {
		t.Fatalf("ParseRule(%s): %v", key, err)
	}
	return r
}

// startDispatcher starts a dispatcher on a new bus with fast retries, and
// stops it when the test ends (after any broker started later).
func startDispatcher(t testing.TB, o webhook.Options) (*webhook.Dispatcher, *events.Bus) {
	t.Helper()
	if o.Node == "" {
		o.Node = "mqgate@127.0.0.1"
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = time.Millisecond
		o.MaxBackoff = 5 * time.Millisecond
	}
	d, err := webhook.New(o)
	if err != nil {
		t.Fatalf("webhook.New: %v", err)
	}
	bus := events.NewBus()
	d.Start(bus)
	t.Cleanup(func() {
		bus.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return d, bus
}

// runBroker starts a broker that publishes its events on bus.
func runBroker(t *testing.T, bus *events.Bus) string {
	t.Helper()
	_, addr := testutil.RunBroker(t, func(o *broker.Options) { o.Events = bus })
	return addr
}

// pahoClient is a connected github.com/eclipse/paho.mqtt.golang client.
type pahoClient struct {
	paho3.Client
	msgs chan paho3.Message
}

func dial(t *testing.T, addr, id, user string) *pahoClient {
	t.Helper()
	c := &pahoClient{msgs: make(chan paho3.Message, 1024)}
	o := paho3.NewClientOptions().
		AddBroker("tcp://" + addr).
		SetClientID(id).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectTimeout(wait).
		SetKeepAlive(30 * time.Second).
		SetDefaultPublishHandler(func(_ paho3.Client, m paho3.Message) { c.msgs <- m }).
		SetCustomOpenConnectionFn(func(u *url.URL, _ paho3.ClientOptions) (net.Conn, error) {
			return net.DialTimeout("tcp", u.Host, wait)
		})
	if user != "" {
		o.SetUsername(user).SetPassword("pw")
	}
	c.Client = paho3.NewClient(o)
	done(t, c.Connect(), "connect")
	t.Cleanup(func() {
		if c.IsConnectionOpen() {
			c.Disconnect(100)
		}
	})
	return c
}

func done(t *testing.T, tok paho3.Token, what string) {
	t.Helper()
	if !tok.WaitTimeout(wait) {
		t.Fatalf("%s: timed out", what)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
