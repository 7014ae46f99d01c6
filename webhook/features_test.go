package webhook_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/webhook"
)

// TestSignatureVerifiedByReceiver signs with two secrets (rotation); a
// receiver that knows only one of them verifies every request.
func TestSignatureVerifiedByReceiver(t *testing.T) {
	const current, previous = "whsec_c2VjcmV0LW5ldw==", "old-secret"
	for _, known := range []string{current, previous} {
		t.Run(known, func(t *testing.T) {
			verifier, err := webhook.NewSigner(known)
			if err != nil {
				t.Fatal(err)
			}
			bad := make(chan string, 16)
			rc := newReceiver(t, func(_ int, r *http.Request, body []byte) (int, http.Header) {
				ts, _ := strconv.ParseInt(r.Header.Get("webhook-timestamp"), 10, 64)
				if !verifier.Verify(r.Header.Get("webhook-signature"), r.Header.Get("webhook-id"), ts, body) {
					bad <- r.Header.Get("webhook-signature")
					return http.StatusUnauthorized, nil
				}
				return http.StatusOK, nil
			})
			signer, err := webhook.NewSigner(current, previous)
			if err != nil {
				t.Fatal(err)
			}
			_, bus := startDispatcher(t, webhook.Options{URL: rc.srv.URL, Signer: signer,
				Rules: []webhook.Rule{rule(t, "web.hook.rule.client.connected.1", `{"action": "on_client_connected"}`)}})
			addr := runBroker(t, bus)
			dial(t, addr, "signed", "")
			reqs := rc.waitFor(t, "a signed request", func(rs []request) bool { return len(rs) == 1 })
			if got := strings.Fields(reqs[0].header.Get("webhook-signature")); len(got) != 2 {
				t.Errorf("want two signatures during rotation, got %v", got)
			}
			if ts, _ := strconv.ParseInt(reqs[0].header.Get("webhook-timestamp"), 10, 64); time.Since(time.Unix(ts, 0)) > time.Hour {
				t.Errorf("webhook-timestamp %d", ts)
			}
			select {
			case s := <-bad:
				t.Fatalf("signature %q not verified", s)
			default:
			}
			// A tampered body fails verification.
			if verifier.Verify(reqs[0].header.Get("webhook-signature"), reqs[0].header.Get("webhook-id"), 1, reqs[0].body) {
				t.Error("signature verified with a wrong timestamp")
			}
		})
	}
}

// TestBatching posts a batched rule's events as JSON arrays of at most
// max_size, in order.
func TestBatching(t *testing.T) {
	rc := newReceiver(t, nil)
	_, bus := startDispatcher(t, webhook.Options{URL: rc.srv.URL,
		Rules: []webhook.Rule{rule(t, "web.hook.rule.message.publish.1", `{"action": "on_message_publish", "batch": {"max_size": 4, "max_delay": "20ms"}}`)}})
	for i := range 10 {
		bus.Publish(&events.Event{Kind: events.MessagePublish, FromClientID: fmt.Sprint("c", i%3), Topic: "b", Payload: []byte(strconv.Itoa(i))})
	}
	reqs := rc.waitFor(t, "10 batched events", func(rs []request) bool { return len(bodies(t, rs)) >= 10 })
	for _, r := range reqs {
		if r.body[0] != '[' {
			t.Fatalf("batch body is not an array: %s", r.body)
		}
		if n := len(bodies(t, []request{r})); n > 4 {
			t.Fatalf("batch of %d > max_size 4", n)
		}
	}
	if len(reqs) < 3 {
		t.Errorf("%d requests for 10 events with max_size 4", len(reqs))
	}
	for i, b := range bodies(t, reqs) {
		if b["payload"] != strconv.Itoa(i) {
			t.Fatalf("batched event %d is %v", i, b["payload"])
		}
	}
}

// TestBatchCountsPerKind: a batch that mixes two kinds counts each
// event under its own kind, queued, in flight while it is posted, then
// delivered (or failed, when the receiver refuses the batch), and none
// stays in flight.
func TestBatchCountsPerKind(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
	}{{"delivered", http.StatusOK}, {"failed", http.StatusBadRequest}} {
		t.Run(tc.name, func(t *testing.T) {
			var d *webhook.Dispatcher
			var started sync.WaitGroup
			started.Add(1)
			flight := make(chan string, 100) // what went wrong, per request
			rc := newReceiver(t, func(_ int, _ *http.Request, body []byte) (int, http.Header) {
				started.Wait() // d is set
				var got []map[string]any
				if err := json.Unmarshal(body, &got); err != nil {
					flight <- err.Error()
					return tc.status, nil
				}
				// One lane posts the batches, one at a time: those in
				// flight now are this request's events.
				posted := map[string]int64{}
				for _, b := range got {
					posted[b["action"].(string)]++
				}
				s := d.Stats()
				if p, dl := s.Total(events.MessagePublish).InFlight, s.Total(events.MessageDelivered).InFlight; p != posted["message_publish"] || dl != posted["message_delivered"] {
					flight <- fmt.Sprintf("in flight %d and %d, posted %v", p, dl, posted)
				}
				return tc.status, nil
			})
			batch := `"batch": {"max_size": 100, "max_delay": "50ms"}`
			d, bus := startDispatcher(t, webhook.Options{URL: rc.srv.URL, Rules: []webhook.Rule{
				rule(t, "web.hook.rule.message.publish.1", `{"action": "on_message_publish", `+batch+`}`),
				rule(t, "web.hook.rule.message.delivered.1", `{"action": "on_message_delivered", `+batch+`}`)}})
			started.Done()
			// Runs of each kind, of several lengths, in one batch.
			want := map[events.Kind]uint64{}
			for i, k := range []events.Kind{events.MessagePublish, events.MessagePublish, events.MessageDelivered,
				events.MessagePublish, events.MessageDelivered, events.MessageDelivered, events.MessageDelivered, events.MessagePublish} {
				bus.Publish(&events.Event{Kind: k, ClientID: "sub", FromClientID: "pub", Topic: "t", Payload: []byte(strconv.Itoa(i))})
				want[k]++
			}
			done := func(c webhook.Counts) uint64 { return c.Delivered + c.Failed }
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				s := d.Stats()
				if done(s.Total(events.MessagePublish))+done(s.Total(events.MessageDelivered)) >= 8 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("not all delivered or failed: %+v", s.Endpoints)
				}
			}
			for k, n := range want {
				c := d.Stats().Total(k)
				got := c.Delivered
				if tc.status != http.StatusOK {
					got = c.Failed
				}
				if c.Queued != n || got != n || c.InFlight != 0 || done(c) != n {
					t.Errorf("%s: %+v, want %d queued and %s", k, c, n, tc.name)
				}
			}
			close(flight)
			for msg := range flight {
				t.Error(msg)
			}
		})
	}
}

// TestTopicFiltersAndSys checks rule topic filters (MQTT matching, also on
// subscribe events, where the subscribed filter is compared) and that $SYS
// messages are never posted, even with a # rule.
func TestTopicFiltersAndSys(t *testing.T) {
	rc := newReceiver(t, nil)
	_, bus := startDispatcher(t, webhook.Options{URL: rc.srv.URL, Rules: []webhook.Rule{
		rule(t, "web.hook.rule.message.publish.1", `{"action": "on_message_publish", "topic": "a/+"}`),
		rule(t, "web.hook.rule.message.delivered.1", `{"action": "on_message_delivered", "topic": "#"}`),
		rule(t, "web.hook.rule.client.subscribe.1", `{"action": "on_client_subscribe", "topic": "s/#"}`),
	}})
	pub := func(k events.Kind, topic string) {
		bus.Publish(&events.Event{Kind: k, ClientID: "c", FromClientID: "c", Topic: topic, Payload: []byte(topic)})
	}
	pub(events.MessagePublish, "b/c")             // no match
	pub(events.MessagePublish, "a/b/c")           // + is one level [MQTT-4.7.1-3]
	pub(events.MessageDelivered, "$SYS/broker/x") // never posted
	pub(events.ClientSubscribe, "t/#")            // filter outside s/#
	pub(events.MessagePublish, "$SYS/brokers")    // never posted
	pub(events.ClientSubscribe, "s/+/x")          // posted
	pub(events.MessagePublish, "a/b")             // posted
	pub(events.MessageDelivered, "z")             // posted
	rc.waitFor(t, "three events", func(rs []request) bool { return len(rs) >= 3 })
	time.Sleep(50 * time.Millisecond) // let anything wrongly posted arrive too
	reqs := rc.waitFor(t, "three events", func(rs []request) bool { return true })
	var got []string
	for _, b := range bodies(t, reqs) {
		got = append(got, b["topic"].(string))
	}
	if strings.Join(got, " ") != "s/+/x a/b z" {
		t.Fatalf("posted topics %v, want [s/+/x a/b z]", got)
	}
	for _, tp := range got {
		if strings.HasPrefix(tp, "$SYS") || tp == "b/c" || tp == "a/b/c" || tp == "t/#" {
			t.Fatalf("posted %q", tp)
		}
	}
}

// TestRulesOfOneEvent: each of several rules of one event posts the
// events its filter matches to its own endpoint, and only those.
func TestRulesOfOneEvent(t *testing.T) {
	a, b, c := newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil)
	_, bus := startDispatcher(t, webhook.Options{URL: b.srv.URL, Rules: []webhook.Rule{
		rule(t, "web.hook.rule.message.publish.1", fmt.Sprintf(`{"action": "on_message_publish", "topic": "a/#", "url": %q}`, a.srv.URL)),
		rule(t, "web.hook.rule.message.publish.2", `{"action": "on_message_publish"}`),
		rule(t, "web.hook.rule.message.publish.3", fmt.Sprintf(`{"action": "on_message_publish", "topic": "c/#", "url": %q}`, c.srv.URL)),
	}})
	for _, topic := range []string{"a/1", "b/1", "c/1", "a/2"} {
		bus.Publish(&events.Event{Kind: events.MessagePublish, FromClientID: "p", Topic: topic, Payload: []byte(topic)})
	}
	topics := func(rc *receiver, n int) string {
		reqs := rc.waitFor(t, fmt.Sprint(n, " events"), func(rs []request) bool { return len(rs) >= n })
		var got []string
		for _, body := range bodies(t, reqs) {
			got = append(got, body["topic"].(string))
		}
		return strings.Join(got, " ")
	}
	topics(b, 4)
	time.Sleep(50 * time.Millisecond) // let anything wrongly posted arrive too
	for _, tc := range []struct {
		rc   *receiver
		want string
	}{{a, "a/1 a/2"}, {b, "a/1 b/1 c/1 a/2"}, {c, "c/1"}} {
		if got := topics(tc.rc, 0); got != tc.want {
			t.Fatalf("endpoint posted %q, want %q", got, tc.want)
		}
	}
}

// TestBreakerSparesDeadEndpoint: with the endpoint failing, many clients'
// events cost a handful of requests while the breaker is open, not one per
// lane per retry; after recovery everything is delivered.
func TestBreakerSparesDeadEndpoint(t *testing.T) {
	rc := newReceiver(t, func(int, *http.Request, []byte) (int, http.Header) { return http.StatusBadGateway, nil })
	_, bus := startDispatcher(t, webhook.Options{URL: rc.srv.URL, PoolSize: 8, BreakerThreshold: 3,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Rules: []webhook.Rule{rule(t, "web.hook.rule.client.connected.1", `{"action": "on_client_connected"}`)}})
	for i := range 200 {
		bus.Publish(&events.Event{Kind: events.ClientConnected, ClientID: fmt.Sprint("c", i)})
	}
	deadline := time.Now().Add(wait)
	for rc.requests() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("no requests")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	// Without a breaker, 200 lanes would each have posted by now.
	if n := rc.requests(); n >= 100 {
		t.Fatalf("%d requests to a dead endpoint for 200 clients", n)
	}
	rc.setStatus(nil)
	rc.waitFor(t, "all 200 events after recovery", func(rs []request) bool { return len(rs) == 200 })
}

// TestParseRule checks the rule syntax: EMQX 4 forms and the extensions.
func TestParseRule(t *testing.T) {
	tests := []struct {
		key, value string
		wantErr    string
		want       webhook.Rule
	}{
		{key: "web.hook.rule.client.connected.1", value: `{"action": "on_client_connected"}`,
			want: webhook.Rule{Event: events.ClientConnected}},
		{key: "web.hook.rule.message.publish.sensor", value: `{"action": "on_message_publish", "topic": "s/+/t"}`,
			want: webhook.Rule{Event: events.MessagePublish, Topic: "s/+/t"}},
		{key: "web.hook.rule.message.dropped.1", value: `{"action": "on_message_dropped"}`,
			want: webhook.Rule{Event: events.MessageDropped}},
		{key: "web.hook.rule.message.acked.1", value: `{"action": "on_message_acked", "url": "https://h/x", "headers": {"A": "b"}, "batch": {"max_size": 10, "max_delay": 250}}`,
			want: webhook.Rule{Event: events.MessageAcked, URL: "https://h/x", Batch: webhook.Batch{MaxSize: 10, MaxDelay: 250 * time.Millisecond}}},
		{key: "web.hook.rule.client.connnected.1", value: `{"action": "on_client_connected"}`, wantErr: "unknown event"},
		{key: "web.hook.rule.session.created.1", value: `{"action": "on_session_created"}`, wantErr: "unknown event"},
		{key: "web.hook.rule.client.connected", value: `{"action": "on_client_connected"}`, wantErr: "unknown event"},
		{key: "web.hook.rule.client.connected.1", value: `{"action": "on_client_connected"`, wantErr: "bad JSON"},
		{key: "web.hook.rule.client.connected.1", value: `{"action": "on_client_connected", "x": 1}`, wantErr: "bad JSON"},
		{key: "web.hook.rule.client.connected.1", value: `{"action": "on_client_connect"}`, wantErr: "does not match"},
		{key: "web.hook.rule.client.connected.1", value: `{"action": "on_client_connected", "topic": "a"}`, wantErr: "takes no topic"},
		// [MQTT-4.7.1-2] '#' must be last; [MQTT-4.7.3-1] a filter is never empty.
		{key: "web.hook.rule.message.publish.1", value: `{"action": "on_message_publish", "topic": "a/#/b"}`, wantErr: "topic filter"},
		{key: "web.hook.rule.message.publish.1", value: `{"action": "on_message_publish", "topic": ""}`, wantErr: "topic filter"},
		{key: "web.hook.rule.message.publish.1", value: `{"action": "on_message_publish", "url": "ftp://x"}`, wantErr: "bad url"},
		{key: "web.hook.rule.message.publish.1", value: `{"action": "on_message_publish", "batch": {"max_size": 0}}`, wantErr: "max_size"},
		{key: "web.hook.rule.message.publish.1", value: `{"action": "on_message_publish", "batch": {"max_size": 2, "max_delay": "soon"}}`, wantErr: "max_delay"},
	}
	for _, tt := range tests {
		t.Run(tt.key+" "+tt.value, func(t *testing.T) {
			r, err := webhook.ParseRule(tt.key, tt.value)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Event != tt.want.Event || r.Topic != tt.want.Topic || r.URL != tt.want.URL || r.Batch != tt.want.Batch || r.Name != tt.key {
				t.Fatalf("got %+v, want %+v", r, tt.want)
			}
		})
	}
}
