package file

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqgate/mqgate/access"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func request(user, client, ip string, a access.Action, topic string, qos byte, retain bool) access.Request {
	return access.Request{
		Identity: access.Identity{Username: user, ClientID: client, Peer: netip.AddrPortFrom(netip.MustParseAddr(ip), 1000)},
		Action:   a, Topic: topic, QoS: qos, Retain: retain,
	}
}

func TestRules(t *testing.T) {
	b, err := New(Options{Path: "testdata/acl.conf"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	P, S := access.Publish, access.Subscribe
	tests := []struct {
		user, client, ip string
		action           access.Action
		topic            string
		qos              byte
		retain           bool
		want             access.Verdict
		wantLine         string
	}{
		{"dashboard", "d", "10.9.9.9", S, "$SYS/brokers", 0, false, access.Allow, ":5:"},
		{"other", "o", "10.9.9.9", S, "$SYS/brokers", 0, false, access.Deny, ":15:"},
		{"other", "o", "127.0.0.1", S, "$SYS/brokers", 0, false, access.Allow, ":7:"},
		// {eq, "#"} denies "#" itself only.
		{"other", "o", "10.9.9.9", S, "#", 0, false, access.Deny, ":15:"},
		{"other", "o", "10.9.9.9", S, "a/#", 0, false, access.Allow, ":17:"},
		{"any", "locked", "10.9.9.9", P, "x", 0, false, access.Deny, ":10:"},
		{"dev-1", "c9", "10.1.1.1", P, "devices/dev-1/t", 0, false, access.Allow, ":11:"},
		{"dev-1", "c9", "192.168.1.1", P, "clients/c9", 0, false, access.Allow, ":11:"},
		{"dev-1", "c9", "192.168.1.2", P, "devices/dev-1/t", 0, false, access.Allow, ":17:"},
		{"user", "c", "10.9.9.9", P, "telemetry/x", 1, false, access.Allow, ":12:"},
		{"user", "c", "10.9.9.9", P, "telemetry/x", 2, false, access.Allow, ":17:"},
		{"reader", "r", "10.9.9.9", S, "data/+/value", 0, false, access.Allow, ":13:"},
		{"reader", "r", "10.9.9.9", S, "data/#", 0, false, access.Allow, ":13:"},
	}
	for _, tt := range tests {
		d := b.Authorize(context.Background(), request(tt.user, tt.client, tt.ip, tt.action, tt.topic, tt.qos, tt.retain))
		if d.Verdict != tt.want || !strings.Contains(d.Reason, tt.wantLine) {
			t.Errorf("%s/%s@%s %v %q: %v (%s), want %v at line %s", tt.user, tt.client, tt.ip, tt.action, tt.topic, d.Verdict, d.Reason, tt.want, tt.wantLine)
		}
	}
}

func TestFirstRuleWinsAndNoMatch(t *testing.T) {
	rules, err := parse(`{allow, {user, "a"}, subscribe, ["t/+"]}. {deny, all, pubsub, ["t/#"]}.`)
	if err != nil {
		t.Fatal(err)
	}
	b := &Backend{path: "inline"}
	b.rules.Store(&ruleSet{rules: rules})
	tests := []struct {
		user   string
		action access.Action
		topic  string
		want   access.Verdict
	}{
		{"a", access.Subscribe, "t/x", access.Allow},
		// t/+ does not cover t/#: the deny rule decides.
		{"a", access.Subscribe, "t/#", access.Deny},
		{"b", access.Subscribe, "t/x", access.Deny},
		{"a", access.Publish, "u", access.Ignore},
		// [MQTT-4.7.1-2] t/# matches its parent t.
		{"b", access.Publish, "t", access.Deny},
	}
	for _, tt := range tests {
		if d := b.Authorize(context.Background(), request(tt.user, "c", "10.0.0.1", tt.action, tt.topic, 0, false)); d.Verdict != tt.want {
			t.Errorf("%s %v %q: %v, want %v", tt.user, tt.action, tt.topic, d.Verdict, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{`{allow, all}`, "missing '.'"},
		{`{maybe, all}.`, "permission"},
		{`{allow, {user, "a"}, read, ["t"]}.`, "action"},
		{`{allow, {user, "a"}, publish, "t"}.`, "want a list"},
		{`{allow, {host, "a"}, publish, ["t"]}.`, "unknown"},
		{`{allow, {ipaddr, "300.1.1.1"}, publish, ["t"]}.`, "ipaddr"},
		{`{allow, all, publish, ["a/#/b"]}.`, "topic"},
		{"\n\n{allow, all, publish, [\"t\"}.", "line 3"},
		{`{allow, {user, {re, "("}}, publish, ["t"]}.`, "regex"},
		{`{allow, all, {publish, [{qos, 3}]}, ["t"]}.`, "qos"},
		{`{allow, "x}.`, "unterminated"},
	}
	for _, tt := range tests {
		_, err := parse(tt.src)
		if !errors.Is(err, ErrRules) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want %q", tt.src, err, tt.want)
		}
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "acl.conf")
	write := func(s string) {
		t.Helper()
		tmp := filepath.Join(dir, "acl.conf.tmp")
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(`{allow, all, publish, ["t"]}.`)
	reloaded := make(chan struct{}, 4)
	b, err := New(Options{Path: path, Watch: true, Debounce: 20 * time.Millisecond, OnReload: func() { reloaded <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	req := request("u", "c", "10.0.0.1", access.Publish, "t", 0, false)
	if d := b.Authorize(context.Background(), req); d.Verdict != access.Allow {
		t.Fatalf("before: %v", d.Verdict)
	}
	write(`{deny, all, publish, ["t"]}.`)
	<-reloaded
	if d := b.Authorize(context.Background(), req); d.Verdict != access.Deny {
		t.Fatalf("after reload: %v", d.Verdict)
	}
	write(`{allow, all, publish, ["t"]`)
	deadline := time.Now().Add(10 * time.Second)
	for b.Health() == nil {
		if time.Now().After(deadline) {
			t.Fatal("broken file not reported")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := b.Authorize(context.Background(), req); d.Verdict != access.Deny {
		t.Fatalf("broken file: %v, want the old deny", d.Verdict)
	}
	if m := b.Metrics(); m["acl.file.reloads"] != 1 || m["acl.file.reload_errors"] == 0 || m["acl.file.policy_ok"] != 0 {
		t.Errorf("Metrics = %v", m)
	}
}
