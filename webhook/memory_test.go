package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/webhook"
)

// TestBodiesBeyondMemoryReadBack keeps events pending while the endpoint
// answers 503, with no body or only some bodies allowed in memory
// (MaxMemory), then lets the endpoint recover: every event arrives once,
// in per-client order, with its body read back from the outbox; the one
// the endpoint refuses becomes a dead letter with its body; the memory
// count stays within the limit and returns to 0. It runs for events posted
// one by one and in batches, and across a restart of the dispatcher.
func TestBodiesBeyondMemoryReadBack(t *testing.T) {
	for _, tc := range []struct {
		name      string
		maxMemory int64
		batch     bool
		restart   bool
	}{
		{"none in memory", -1, false, false},
		{"some in memory", 2000, false, false},
		{"none in memory, batches", -1, true, false},
		{"some in memory, batches", 2000, true, false},
		{"some in memory, restart", 2000, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, func(int, *http.Request, []byte) (int, http.Header) { return http.StatusServiceUnavailable, nil })
			dir := t.TempDir()
			value := `{"action": "on_message_publish"}`
			if tc.batch {
				value = `{"action": "on_message_publish", "batch": {"max_size": 7, "max_delay": "1ms"}}`
			}
			o := webhook.Options{URL: rc.srv.URL, Dir: dir, MaxMemory: tc.maxMemory, PoolSize: 4,
				Rules: []webhook.Rule{rule(t, "web.hook.rule.message.publish.1", value)}}
			d, bus := startDispatcher(t, o)
			const perClient = 40
			clients := []string{"a", "b", "c"}
			for i := range perClient {
				for _, c := range clients {
					p := fmt.Sprintf("%s-%d-%s", c, i, strings.Repeat("x", i))
					if c == "b" && i == 17 {
						p = "bad"
					}
					bus.Publish(&events.Event{Kind: events.MessagePublish, FromClientID: c, Topic: "t/" + c, Payload: []byte(p)})
				}
			}
			want := perClient * len(clients)
			waitQueued(t, d, want)
			s := d.Stats()
			switch {
			case tc.maxMemory < 0 && s.Memory != 0:
				t.Fatalf("%d bytes of bodies in memory, want none", s.Memory)
			case tc.maxMemory > 0 && (s.Memory == 0 || s.Memory > tc.maxMemory):
				t.Fatalf("%d bytes of bodies in memory, want some, at most %d", s.Memory, tc.maxMemory)
			}
			if tc.restart {
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				defer cancel()
				if err := d.Stop(ctx); err != nil {
					t.Fatal(err)
				}
				o.MaxMemory = -1
				d, _ = startDispatcher(t, o)
				if s := d.Stats(); s.Pending != want || s.Memory != 0 {
					t.Fatalf("after the restart: %d pending, %d bytes in memory; want %d and none", s.Pending, s.Memory, want)
				}
			}
			rc.setStatus(func(_ int, _ *http.Request, body []byte) (int, http.Header) {
				if strings.Contains(string(body), `"payload":"bad"`) && !tc.batch {
					return http.StatusBadRequest, nil
				}
				return http.StatusOK, nil
			})
			waitPending(t, d, 0)
			reqs := rc.waitFor(t, "every event", func(rs []request) bool { return len(bodies(t, rs)) >= want-1 })
			for _, r := range reqs {
				if strings.ContainsRune(string(r.body), '\n') || (r.body[0] != '{' && r.body[0] != '[') {
					t.Fatalf("body %q: not the compact JSON that was stored", r.body)
				}
			}
			got := map[string][]string{}
			ids := map[string]bool{}
			for _, b := range bodies(t, reqs) {
				if ids[b["id"].(string)] {
					t.Fatalf("event %v delivered twice", b["id"])
				}
				ids[b["id"].(string)] = true
				if b["topic"] != "t/"+b["from_client_id"].(string) {
					t.Fatalf("body %v: topic and client do not match", b)
				}
				got[b["from_client_id"].(string)] = append(got[b["from_client_id"].(string)], b["payload"].(string))
			}
			for _, c := range clients {
				var exp []string
				for i := range perClient {
					p := fmt.Sprintf("%s-%d-%s", c, i, strings.Repeat("x", i))
					if c == "b" && i == 17 {
						if !tc.batch {
							continue // refused: a dead letter
						}
						p = "bad"
					}
					exp = append(exp, p)
				}
				if fmt.Sprint(got[c]) != fmt.Sprint(exp) {
					t.Fatalf("client %s got %v\nwant %v", c, got[c], exp)
				}
			}
			if s := d.Stats(); s.Memory != 0 {
				t.Fatalf("%d bytes of bodies still counted in memory with nothing pending", s.Memory)
			}
			if !tc.batch {
				dead, err := webhook.ReadDeadLetters(dir)
				if err != nil || len(dead) != 1 || !strings.Contains(string(dead[0].Body), `"payload":"bad"`) {
					t.Fatalf("dead letters %+v, %v", dead, err)
				}
			}
		})
	}
}

// TestMaxMemoryDefault: the default keeps bodies in memory; the zero
// value of the option takes the 32 MB default.
func TestMaxMemoryDefault(t *testing.T) {
	rc := newReceiver(t, func(int, *http.Request, []byte) (int, http.Header) { return http.StatusServiceUnavailable, nil })
	d, bus := startDispatcher(t, webhook.Options{URL: rc.srv.URL,
		Rules: []webhook.Rule{rule(t, "web.hook.rule.message.publish.1", `{"action": "on_message_publish"}`)}})
	bus.Publish(&events.Event{Kind: events.MessagePublish, FromClientID: "c", Topic: "t", Payload: []byte("p"), Time: time.Now()})
	waitQueued(t, d, 1)
	if s := d.Stats(); s.Memory == 0 || s.Memory >= s.Bytes {
		t.Fatalf("memory %d for one pending event of %d bytes: want its body only", s.Memory, s.Bytes)
	}
}

// waitQueued waits until n message.publish events were committed and handed
// to their endpoint.
func waitQueued(t *testing.T, d *webhook.Dispatcher, n int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for d.Stats().Total(events.MessagePublish).Queued != uint64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want %d queued", d.Stats().Total(events.MessagePublish), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitOpen waits until the circuit breaker of the endpoint at url is open.
func waitOpen(t testing.TB, d *webhook.Dispatcher, url string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !d.Stats().State[url].Open {
		if time.Now().After(deadline) {
			t.Fatal("the breaker did not open")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestDispatcherGoroutinesLabelled: the writer, the endpoint workers and
// the HTTP client's connection goroutines carry the profiler label
// mqgate=webhook, by which a CPU profile tells the dispatcher's share of
// the broker's CPU from the MQTT path's.
func TestDispatcherGoroutinesLabelled(t *testing.T) {
	rc := newReceiver(t, nil)
	_, bus := startDispatcher(t, webhook.Options{URL: rc.srv.URL,
		Rules: []webhook.Rule{rule(t, "web.hook.rule.message.publish.1", `{"action": "on_message_publish"}`)}})
	bus.Publish(&events.Event{Kind: events.MessagePublish, FromClientID: "c", Topic: "t", Payload: []byte("p")})
	rc.waitFor(t, "the event", func(rs []request) bool { return len(rs) == 1 })
	var buf strings.Builder
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		t.Fatal(err)
	}
	for _, fn := range []string{"webhook.(*Dispatcher).run", "webhook.(*endpoint).work", "net/http.(*persistConn).readLoop"} {
		labelled := false
		for _, g := range strings.Split(buf.String(), "\n\n") {
			if strings.Contains(g, fn) {
				labelled = labelled || strings.Contains(g, `"mqgate":"webhook"`)
			}
		}
		if !labelled {
			t.Errorf("no goroutine in %s with the label mqgate=webhook", fn)
		}
	}
}

// TestDownEndpointBodiesNotHeld: once an endpoint's breaker is open, the
// bodies of its new events stay on disk only; they are delivered, read back,
// when it recovers.
func TestDownEndpointBodiesNotHeld(t *testing.T) {
	rc := newReceiver(t, func(int, *http.Request, []byte) (int, http.Header) { return http.StatusServiceUnavailable, nil })
	d, bus := startDispatcher(t, webhook.Options{URL: rc.srv.URL, BreakerThreshold: 1, MinBackoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Rules: []webhook.Rule{rule(t, "web.hook.rule.message.publish.1", `{"action": "on_message_publish"}`)}})
	bus.Publish(&events.Event{Kind: events.MessagePublish, FromClientID: "c", Topic: "t", Payload: []byte("first")})
	waitQueued(t, d, 1)
	waitOpen(t, d, rc.srv.URL)
	held := d.Stats().Memory
	for i := range 50 {
		bus.Publish(&events.Event{Kind: events.MessagePublish, FromClientID: "c", Topic: "t", Payload: []byte(fmt.Sprint(i))})
	}
	waitQueued(t, d, 51)
	if m := d.Stats().Memory; m != held {
		t.Fatalf("%d bytes of bodies in memory after 50 events for an endpoint that is down, %d before", m, held)
	}
	rc.setStatus(nil)
	reqs := rc.waitFor(t, "every event", func(rs []request) bool { return len(rs) == 51 })
	if bs := bodies(t, reqs); bs[0]["payload"] != "first" || bs[50]["payload"] != "49" {
		t.Fatalf("first and last delivered: %v, %v", bs[0]["payload"], bs[50]["payload"])
	}
}
