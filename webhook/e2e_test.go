package webhook_test

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/webhook"
)

// emqxKeys are the body fields of each action in EMQX 4.4 (anchors §b.2),
// plus mqgate's id and seq.
var emqxKeys = map[string][]string{
	"client_connect":       {"action", "node", "clientid", "username", "ipaddress", "keepalive", "proto_ver"},
	"client_connack":       {"action", "node", "clientid", "username", "ipaddress", "conn_ack", "keepalive", "proto_ver", "connected_at"},
	"client_connected":     {"action", "node", "clientid", "username", "ipaddress", "keepalive", "proto_ver", "connected_at"},
	"client_disconnected":  {"action", "node", "clientid", "username", "reason", "connected_at", "disconnected_at"},
	"client_subscribe":     {"action", "node", "clientid", "username", "topic", "opts"},
	"client_unsubscribe":   {"action", "node", "clientid", "username", "topic", "opts"},
	"session_subscribed":   {"action", "node", "clientid", "username", "topic", "opts"},
	"session_unsubscribed": {"action", "node", "clientid", "username", "topic"},
	"session_terminated":   {"action", "node", "clientid", "username", "reason"},
	"message_publish":      {"action", "node", "from_client_id", "from_username", "topic", "qos", "retain", "payload", "ts"},
	"message_delivered":    {"action", "node", "clientid", "username", "from_client_id", "from_username", "topic", "qos", "retain", "payload", "ts"},
	"message_acked":        {"action", "node", "clientid", "username", "from_client_id", "from_username", "topic", "qos", "retain", "payload", "ts"},
}

var twelve = []string{"client.connect", "client.connack", "client.connected", "client.disconnected",
	"client.subscribe", "client.unsubscribe", "session.subscribed", "session.unsubscribed",
	"session.terminated", "message.publish", "message.delivered", "message.acked"}

// TestEndToEndEMQXBodies runs a real broker and two real MQTT clients, with
// one rule for each of EMQX 4's twelve web hook events, and checks every
// body a real HTTP receiver gets, field by field.
func TestEndToEndEMQXBodies(t *testing.T) {
	rc := newReceiver(t, nil)
	var rules []webhook.Rule
	for _, ev := range twelve {
		rules = append(rules, rule(t, "web.hook.rule."+ev+".1", fmt.Sprintf(`{"action": "on_%s"}`, strings.ReplaceAll(ev, ".", "_"))))
	}
	_, bus := startDispatcher(t, webhook.Options{Rules: rules, URL: rc.srv.URL + "/hook?x=1", Headers: map[string]string{"X-Tenant": "t1"}})
	addr := runBroker(t, bus)
	start := time.Now().UnixMilli()

	sub := dial(t, addr, "sub1", "u1")
	done(t, sub.Subscribe("t/1", 1, nil), "subscribe")
	pub := dial(t, addr, "pub1", "")
	done(t, pub.Publish("t/1", 1, false, "hello"), "publish")
	select {
	case <-sub.msgs:
	case <-time.After(wait):
		t.Fatal("no message")
	}
	done(t, sub.Unsubscribe("t/1"), "unsubscribe")
	sub.Disconnect(100)

	byAction := map[string][]map[string]any{}
	// Wait for every (action, client) the checks below look at: each client
	// has its own lane, so they arrive in any interleaving.
	need := []string{`"action":"message_publish","node":"mqgate@127.0.0.1","from_client_id":"pub1"`,
		`"action":"client_connected","node":"mqgate@127.0.0.1","clientid":"pub1"`}
	for a := range emqxKeys {
		if a != "message_publish" {
			need = append(need, `"action":"`+a+`","node":"mqgate@127.0.0.1","clientid":"sub1"`)
		}
	}
	reqs := rc.waitFor(t, "all twelve actions", func(rs []request) bool {
		for _, n := range need {
			found := false
			for _, r := range rs {
				if strings.Contains(string(r.body), n) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	})
	for _, r := range reqs {
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("content-type %q", ct)
		}
		if r.header.Get("X-Tenant") != "t1" {
			t.Errorf("configured header missing: %v", r.header)
		}
	}
	all := bodies(t, reqs)
	lastSeq := map[string]float64{}
	for i, b := range all {
		a, _ := b["action"].(string)
		byAction[a] = append(byAction[a], b)
		want, ok := emqxKeys[a]
		if !ok {
			t.Fatalf("unexpected action %q", a)
		}
		want = append(slices.Clone(want), "id", "seq")
		if got := slices.Sorted(maps.Keys(b)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			t.Errorf("%s: keys %v, want %v", a, got, slices.Sorted(slices.Values(want)))
		}
		if b["node"] != "mqgate@127.0.0.1" {
			t.Errorf("%s: node %v", a, b["node"])
		}
		if id, _ := b["id"].(string); len(id) != 26 || reqs[i].header.Get("Idempotency-Key") == "" {
			t.Errorf("%s: id %q", a, b["id"])
		}
		// Per-client order: events of one client arrive in seq order.
		client, _ := b["clientid"].(string)
		if client == "" {
			client, _ = b["from_client_id"].(string)
		}
		seq, _ := b["seq"].(float64)
		if seq <= lastSeq[client] {
			t.Errorf("%s of %s: seq %v after %v", a, client, seq, lastSeq[client])
		}
		lastSeq[client] = seq
	}
	for ev := range emqxKeys {
		if len(byAction[ev]) == 0 {
			t.Errorf("no %s body", ev)
		}
	}
	one := func(action, client string) map[string]any {
		for _, b := range byAction[action] {
			if b["clientid"] == client || b["from_client_id"] == client {
				return b
			}
		}
		t.Fatalf("no %s for %s", action, client)
		return nil
	}
	for _, a := range []string{"client_connect", "client_connack", "client_connected"} {
		b := one(a, "sub1")
		check(t, b, map[string]any{"clientid": "sub1", "username": "u1", "ipaddress": "127.0.0.1", "keepalive": 30.0, "proto_ver": 4.0})
		if a != "client_connect" && !(b["connected_at"].(float64) >= float64(start)) {
			t.Errorf("%s: connected_at %v", a, b["connected_at"])
		}
	}
	check(t, one("client_connack", "sub1"), map[string]any{"conn_ack": "success"})
	// An absent username is JSON null, as in EMQX 4.2+.
	check(t, one("client_connected", "pub1"), map[string]any{"username": nil})
	opts := map[string]any{"qos": 1.0, "rh": 0.0, "rap": 0.0, "nl": 0.0}
	check(t, one("client_subscribe", "sub1"), map[string]any{"topic": "t/1", "opts": opts, "username": "u1"})
	check(t, one("session_subscribed", "sub1"), map[string]any{"topic": "t/1", "opts": opts})
	check(t, one("client_unsubscribe", "sub1"), map[string]any{"topic": "t/1"})
	check(t, one("session_unsubscribed", "sub1"), map[string]any{"topic": "t/1"})
	msg := map[string]any{"from_client_id": "pub1", "from_username": nil, "topic": "t/1", "qos": 1.0, "retain": false, "payload": "hello"}
	check(t, one("message_publish", "pub1"), msg)
	check(t, one("message_delivered", "sub1"), msg)
	check(t, one("message_acked", "sub1"), msg)
	check(t, one("message_delivered", "sub1"), map[string]any{"clientid": "sub1", "username": "u1"})
	if ts := one("message_publish", "pub1")["ts"].(float64); ts < float64(start) {
		t.Errorf("ts %v is not in milliseconds", ts)
	}
	dis := one("client_disconnected", "sub1")
	check(t, dis, map[string]any{"reason": "normal"})
	if dis["disconnected_at"].(float64) < dis["connected_at"].(float64) {
		t.Errorf("disconnected_at before connected_at: %v", dis)
	}
	if r, _ := one("session_terminated", "sub1")["reason"].(string); r == "" {
		t.Error("session_terminated without reason")
	}
}

func check(t *testing.T, b map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if fmt.Sprint(b[k]) != fmt.Sprint(v) {
			t.Errorf("%s: %s = %v, want %v", b["action"], k, b[k], v)
		}
	}
}

// TestRetriesKeepPerClientOrder has the endpoint answer 500 three times,
// then 200: every event arrives exactly once, in each client's order.
func TestRetriesKeepPerClientOrder(t *testing.T) {
	rc := newReceiver(t, func(n int, _ *http.Request, _ []byte) (int, http.Header) {
		if n <= 3 {
			return http.StatusInternalServerError, nil
		}
		return http.StatusOK, nil
	})
	d, bus := startDispatcher(t, webhook.Options{URL: rc.srv.URL, PoolSize: 4,
		Rules: []webhook.Rule{rule(t, "web.hook.rule.message.publish.1", `{"action": "on_message_publish"}`)}})
	addr := runBroker(t, bus)
	const n = 30
	clients := []*pahoClient{dial(t, addr, "a", ""), dial(t, addr, "b", ""), dial(t, addr, "c", "")}
	for i := range n {
		for ci, c := range clients {
			done(t, c.Publish(fmt.Sprintf("m/%d", ci), 1, false, fmt.Sprint(i)), "publish")
		}
	}
	reqs := rc.waitFor(t, "every message", func(rs []request) bool { return len(rs) >= n*len(clients) })
	got := map[string][]string{}
	ids := map[string]bool{}
	for _, b := range bodies(t, reqs) {
		if ids[b["id"].(string)] {
			t.Errorf("event %v delivered twice", b["id"])
		}
		ids[b["id"].(string)] = true
		c := b["from_client_id"].(string)
		got[c] = append(got[c], b["payload"].(string))
	}
	for _, c := range []string{"a", "b", "c"} {
		if len(got[c]) != n {
			t.Fatalf("client %s: %d events, want %d", c, len(got[c]), n)
		}
		for i, p := range got[c] {
			if p != fmt.Sprint(i) {
				t.Fatalf("client %s: event %d has payload %s: out of order: %v", c, i, p, got[c])
			}
		}
	}
	waitPending(t, d, 0)
	if s := d.Stats().Total(events.MessagePublish); s.Retried != 3 || s.Delivered != n*3 || s.Failed != 0 || s.InFlight != 0 {
		t.Errorf("stats %+v, want 3 retried, %d delivered", s, n*3)
	}
}
