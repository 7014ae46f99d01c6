package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqgate/mqgate/api"
	"github.com/mqgate/mqgate/config"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// TestCtlCommands runs every mqgate ctl command against a real API server
// over a real broker with a real MQTT client.
func TestCtlCommands(t *testing.T) {
	bans := api.NewBanList()
	b, addr := testutil.RunBroker(t, nil)
	dir := t.TempDir()
	rules := filepath.Join(dir, "acl.conf")
	if err := os.WriteFile(rules, []byte(`{allow, {user, "alice"}, publish, ["a/#"]}.`+"\n{deny, all}.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("test.conf", []byte("node.data_dir = "+dir+"\nmanagement.listener.http = 127.0.0.1:0\nmanagement.default_application.secret = pw\n"+
		"acl.chain = file\nacl_file = "+rules+"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	authz, closeAuthz, err := buildAuthorizer(cfg, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeAuthz)
	reg, err := newRegistry(nil, authz)
	if err != nil {
		t.Fatal(err)
	}
	s, err := startAPIServer(cfg, b, apiDeps{Registry: reg, Bans: bans, Authorizer: authz}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	env := []string{"MQGATE_CTL_URL=http://" + s.Addr().String(), "MQGATE_CTL_SECRET=pw"}

	sub := testutil.Dial(t, addr, mqtt.V5)
	if ack := sub.Connect(&mqtt.Connect{ClientID: "dev1", CleanStart: true, KeepAlive: 60, Username: "u1", UsernameSet: true}); ack.ReasonCode != 0 {
		t.Fatal(ack.ReasonCode)
	}

	ctl := func(args ...string) (string, int) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := ctlCommand(args, env, &out, &errOut)
		return out.String() + errOut.String(), code
	}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"status"}, 0, "is running"},
		{[]string{"broker"}, 0, "node_status:"},
		{[]string{"broker", "stats"}, 0, "connections.count"},
		{[]string{"broker", "metrics"}, 0, "packets.connect.received"},
		{[]string{"listeners"}, 0, "mqtt:tcp:external"},
		{[]string{"subscriptions", "add", "dev1", "cmd/dev1", "1"}, 0, "ok"},
		{[]string{"subscriptions", "list"}, 0, "cmd/dev1"},
		{[]string{"subscriptions", "show", "dev1"}, 0, "cmd/dev1"},
		{[]string{"routes", "list"}, 0, "cmd/dev1"},
		{[]string{"routes", "show", "cmd/dev1"}, 0, "cmd/dev1"},
		{[]string{"clients", "list", "username=u1"}, 0, "dev1"},
		{[]string{"clients", "show", "dev1"}, 0, "clientid:"},
		{[]string{"publish", "cmd/dev1", "reboot", "1"}, 0, "ok"},
		{[]string{"--json", "clients", "list"}, 0, `"clientid": "dev1"`},
		{[]string{"acl", "reload"}, 0, "ok"},
		{[]string{"acl", "explain", "a/b", "username=alice"}, 0, "verdict:   allow\nsource:    file"},
		{[]string{"acl", "explain", "a/b", "username=bob", "action=subscribe"}, 0, "file  deny     "},
		{[]string{"acl", "explain", "a/b", "action=jump"}, 1, "code 108"},
		{[]string{"banned", "add", "clientid", "evil", "spam"}, 0, "evil"},
		{[]string{"banned", "list"}, 0, "evil"},
		{[]string{"banned", "del", "clientid", "evil"}, 0, "ok"},
		{[]string{"subscriptions", "del", "dev1", "cmd/dev1"}, 0, "ok"},
		{[]string{"subscriptions", "add", "nobody", "x"}, 1, "code 112"},
		{[]string{"clients", "frobnicate"}, 2, "usage"},
		{[]string{}, 2, "usage"},
		{[]string{"--secret", "wrong", "broker"}, 1, "bad AppID or AppSecret"},
		{[]string{"mgmt", "insert", "ops", "Operations"}, 0, "secret:"},
		{[]string{"mgmt", "list"}, 0, "Operations"},
		{[]string{"mgmt", "delete", "admin"}, 1, "code 106"},
		{[]string{"mgmt", "delete", "ops"}, 0, "ok"},
		{[]string{"mgmt", "delete", "ops"}, 1, "code 105"},
	}
	for _, tt := range tests {
		out, code := ctl(tt.args...)
		if code != tt.code || !strings.Contains(out, tt.want) {
			t.Errorf("ctl %v: exit %d, output:\n%s\nwant exit %d and %q", tt.args, code, out, tt.code, tt.want)
		}
		if len(tt.args) > 1 && tt.args[0] == "publish" {
			p, ok := sub.Read().(*mqtt.Publish)
			if !ok || p.Topic != "cmd/dev1" || string(p.Payload) != "reboot" {
				t.Fatalf("published message: %+v", p)
			}
			sub.Send(&mqtt.Ack{PacketType: mqtt.PUBACK, PacketID: p.PacketID})
		}
	}
	out, code := ctl("--json", "broker", "stats")
	var stats []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &stats) != nil || len(stats) != 1 {
		t.Errorf("--json broker stats is not the API's JSON: %s", out)
	}
	// Every command prints JSON with --json, and what it prints holds the
	// thing asked about.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"status"}, `"running": true`},
		{[]string{"broker"}, `"node_status": "Running"`},
		{[]string{"broker", "metrics"}, `"packets.connect.received"`},
		{[]string{"listeners"}, `"identifier": "mqtt:tcp:external"`},
		{[]string{"clients", "list", "_like_clientid=dev"}, `"clientid": "dev1"`},
		{[]string{"clients", "show", "dev1"}, `"clientid": "dev1"`},
		{[]string{"subscriptions", "add", "dev1", "j/1", "2"}, `{`},
		{[]string{"subscriptions", "list", "clientid=dev1"}, `"topic": "j/1"`},
		{[]string{"subscriptions", "show", "dev1"}, `"qos": 2`},
		{[]string{"routes", "list"}, `"topic": "j/1"`},
		{[]string{"routes", "show", "j/1"}, `"topic": "j/1"`},
		{[]string{"subscriptions", "del", "dev1", "j/1"}, `{`},
		{[]string{"publish", "j/x", "hello", "0", "false"}, `{`},
		{[]string{"acl", "reload"}, `{`},
		{[]string{"acl", "explain", "a/1", "username=alice"}, `"verdict": "allow"`},
		{[]string{"banned", "add", "username", "zed", "why"}, `"who": "zed"`},
		{[]string{"banned", "list"}, `"who": "zed"`},
		{[]string{"banned", "del", "username", "zed"}, `{`},
		{[]string{"mgmt", "insert", "bot"}, `"secret"`},
		{[]string{"mgmt", "list"}, `"app_id": "bot"`},
		{[]string{"mgmt", "delete", "bot"}, `{`},
	} {
		out, code := ctl(append([]string{"--json"}, tt.args...)...)
		if code != 0 || !json.Valid([]byte(out)) || !strings.Contains(out, tt.want) {
			t.Errorf("ctl --json %v: exit %d, output:\n%s\nwant JSON with %s", tt.args, code, out, tt.want)
		}
	}
	// The last command: kick disconnects the client with 0x98.
	if out, code := ctl("clients", "kick", "dev1"); code != 0 {
		t.Fatalf("kick: %d %s", code, out)
	}
	got := sub.ExpectClosed()
	if len(got) == 0 {
		t.Fatal("no DISCONNECT")
	}
	if d, ok := got[len(got)-1].(*mqtt.Disconnect); !ok || d.ReasonCode != mqtt.AdministrativeAction {
		t.Fatalf("got %+v", got[len(got)-1])
	}
}
