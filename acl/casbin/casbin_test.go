package casbin

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/internal/testutil"
)

func TestMain(m *testing.M) {
	code := testutil.RunWithPostgres(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// shipped returns a backend on the policies/ files that mqgate ships.
func shipped(t *testing.T) *Backend {
	t.Helper()
	b, err := New(Options{ModelPath: "../../policies/model.conf", PolicyPath: "../../policies/policy.csv"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func ask(b *Backend, user, client string, a access.Action, topic string) access.Decision {
	return b.Authorize(context.Background(), access.Request{
		Identity: access.Identity{Username: user, ClientID: client}, Action: a, Topic: topic,
	})
}

// TestShippedPolicy checks the example policy, so that an edit of
// policies/ that breaks these expectations fails.
func TestShippedPolicy(t *testing.T) {
	b := shipped(t)
	P, S := access.Publish, access.Subscribe
	tests := []struct {
		user, client string
		action       access.Action
		topic        string
		want         access.Verdict
	}{
		// Roles and %u.
		{"sensor-1", "x", P, "devices/sensor-1/telemetry/temp", access.Allow},
		{"sensor-1", "x", S, "devices/sensor-1/#", access.Allow},
		{"sensor-1", "x", P, "devices/sensor-2/telemetry/temp", access.Ignore},
		// [MQTT-4.7.1-2] "devices/%u/#" also covers its parent level.
		{"sensor-1", "x", P, "devices/sensor-1", access.Allow},
		// %c and a role given to a client ID.
		{"", "gateway-1", P, "clients/gateway-1/up", access.Allow},
		{"", "gateway-2", P, "clients/gateway-2/up", access.Ignore},
		// Deny overrides allow.
		{"sensor-1", "x", P, "devices/sensor-1/control/reboot", access.Deny},
		{"alice", "x", P, "devices/sensor-1/commands/led", access.Allow},
		{"alice", "x", P, "devices/sensor-1/control/led", access.Deny},
		// Filter against filter: devices/+/telemetry/# does not grant more.
		{"alice", "x", S, "devices/+/telemetry/#", access.Allow},
		{"alice", "x", S, "devices/#", access.Ignore},
		{"alice", "x", S, "devices/+/+", access.Ignore},
		{"alice", "x", P, "devices/sensor-1/telemetry/t", access.Ignore},
		// [MQTT-4.7.2-1] $SYS is only reached by a rule naming it.
		{"dashboard", "x", S, "$SYS/brokers/#", access.Allow},
		{"sensor-1", "x", S, "$SYS/#", access.Ignore},
		// Shared subscriptions are checked on their filter.
		{"sensor-1", "x", S, "$share/g/broadcast/all", access.Allow},
		// A username cannot pass for a client ID subject.
		{"client:gateway-1", "other", P, "clients/other/up", access.Ignore},
		// A username with a wildcard does not widen %u.
		{"+", "x", S, "devices/+/#", access.Ignore},
		{"nobody", "nobody", P, "a/b", access.Ignore},
		// $all names every client, with or without a username.
		{"", "anyone", S, "public/news", access.Allow},
		{"", "anyone", P, "public/news", access.Ignore},
	}
	for _, tt := range tests {
		d := ask(b, tt.user, tt.client, tt.action, tt.topic)
		if d.Verdict != tt.want {
			t.Errorf("%s/%s %v %q = %v (%s), want %v", tt.user, tt.client, tt.action, tt.topic, d.Verdict, d.Reason, tt.want)
		}
		if d.Verdict != access.Ignore && d.Reason == "" {
			t.Errorf("%s %v %q: no rule in Reason", tt.user, tt.action, tt.topic)
		}
	}
	if got := ask(b, "alice", "x", P, "devices/s/control/x").Reason; !strings.Contains(got, "deny") {
		t.Errorf("deny reason %q does not name the deny rule", got)
	}
}

func TestParsePolicyErrors(t *testing.T) {
	tests := []struct {
		line, want string
	}{
		{"p, alice, a/#, publish", "got 4 fields"},
		{"p, alice, a/#/b, publish, allow", "topic filter"},
		{"p, alice, a/b, read, allow", "action"},
		{"p, alice, a/b, all, maybe", "effect"},
		{"g, alice", "want g, member, role"},
		{"x, alice, a", "unknown rule type"},
		{"g, bob, bob", "own name"},
	}
	for _, tt := range tests {
		_, err := ParsePolicy("p.csv", "# ok\np, a, b, all, allow\n"+tt.line+"\n")
		if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), "p.csv:3:") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want line 3 and %q", tt.line, err, tt.want)
		}
	}
}

func TestNewRejectsBadPolicy(t *testing.T) {
	model, err := os.ReadFile("../../policies/model.conf")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		model, policy string
	}{
		{"bad line", string(model), "p, a, b\n"},
		{"unknown function", strings.Replace(string(model), "mqttMatch(", "nosuchMatch(", 1), "p, a, b, all, allow\n"},
		{"broken model", "[request_definition]\n", "p, a, b, all, allow\n"},
	}
	for _, tt := range tests {
		if _, err := New(Options{Model: tt.model, Policy: tt.policy}); err == nil {
			t.Errorf("%s: New succeeded", tt.name)
		}
	}
}

// writeFile writes data to dir/name by writing a temporary file and
// renaming it into place, as editors, mv and ConfigMap updates do.
func writeFile(t *testing.T, dir, name, data string) {
	t.Helper()
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmp.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the test's patience runs out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHotReload(t *testing.T) {
	dir := t.TempDir()
	model, err := os.ReadFile("../../policies/model.conf")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "model.conf", string(model))
	writeFile(t, dir, "policy.csv", "p, alice, a/#, publish, allow\n")
	var bumps int
	reloaded := make(chan struct{}, 16)
	b, err := New(Options{
		ModelPath: filepath.Join(dir, "model.conf"), PolicyPath: filepath.Join(dir, "policy.csv"),
		Watch: true, Debounce: 20 * time.Millisecond,
		OnReload: func() { bumps++; reloaded <- struct{}{} },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if d := ask(b, "alice", "c", access.Publish, "a/b"); d.Verdict != access.Allow {
		t.Fatalf("before reload: %v", d.Verdict)
	}

	writeFile(t, dir, "policy.csv", "p, alice, a/#, publish, deny\n")
	<-reloaded
	if d := ask(b, "alice", "c", access.Publish, "a/b"); d.Verdict != access.Deny {
		t.Fatalf("after reload: %v", d.Verdict)
	}

	// A broken file leaves the last good policy in force and is reported.
	writeFile(t, dir, "policy.csv", "p, alice, a/#, publish, allow\np, broken\n")
	waitFor(t, "the reload error", func() bool { return b.Health() != nil })
	if d := ask(b, "alice", "c", access.Publish, "a/b"); d.Verdict != access.Deny {
		t.Fatalf("after a broken file: %v, want the old deny", d.Verdict)
	}
	if err := b.Health(); !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), "policy.csv:2") {
		t.Errorf("Health = %v", err)
	}
	if s := b.Stats(); s.ReloadErrors == 0 || s.LastError == "" || s.Rules != 1 {
		t.Errorf("Stats = %+v", s)
	}
	if m := b.Metrics(); m["acl.casbin.policy_ok"] != 0 || m["acl.casbin.reload_errors"] == 0 {
		t.Errorf("Metrics = %v", m)
	}

	// Fixing it recovers.
	writeFile(t, dir, "policy.csv", "p, alice, a/#, publish, allow\ng, bob, alice\n")
	<-reloaded
	if d := ask(b, "bob", "c", access.Publish, "a/b"); d.Verdict != access.Allow {
		t.Fatalf("after the fix: %v", d.Verdict)
	}
	if err := b.Health(); err != nil {
		t.Errorf("Health after the fix = %v", err)
	}
	// Reloading unchanged content changes nothing.
	if err := b.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if bumps != 2 {
		t.Errorf("OnReload called %d times, want 2", bumps)
	}
}
