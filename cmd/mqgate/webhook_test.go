package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/config"
	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
	"github.com/mqgate/mqgate/webhook"
)

func writeConf(t *testing.T, conf string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mqgate.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestWebhookBadRulesStopTheStart: an unknown event, bad JSON or a bad
// topic filter stops `mqgate serve`, naming the file, line and key.
func TestWebhookBadRulesStopTheStart(t *testing.T) {
	tests := []struct{ rule, want string }{
		{`web.hook.rule.client.conected.1 = {"action": "on_client_connected"}`, `mqgate.conf:3: web.hook.rule.client.conected.1: invalid web hook rule: unknown event "client.conected"`},
		{`web.hook.rule.client.connected.1 = {"action": on_client_connected}`, `mqgate.conf:3: web.hook.rule.client.connected.1: invalid web hook rule: bad JSON`},
		{`web.hook.rule.message.publish.1 = {"action": "on_message_publish", "topic": "a/#/b"}`, `mqgate.conf:3: web.hook.rule.message.publish.1: invalid web hook rule: topic filter "a/#/b"`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			path := writeConf(t, fmt.Sprintf("listener.tcp.external = 127.0.0.1:0\nnode.data_dir = %s\n%s\n", t.TempDir(), tt.rule))
			var out, errb bytes.Buffer
			if code := run([]string{"serve", "-c", path}, nil, &out, &errb); code != 2 {
				t.Fatalf("exit %d, want 2; stderr %s", code, errb.String())
			}
			if !strings.Contains(errb.String(), tt.want) {
				t.Fatalf("stderr %q, want %q", errb.String(), tt.want)
			}
		})
	}
}

// TestWebhookFromConfig wires the web hooks from a config file with EMQX 4
// lines, runs a real broker with them, connects a real client and checks
// what a real receiver gets.
func TestWebhookFromConfig(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	var hdr http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		got = append(got, m)
		hdr = r.Header.Clone()
		mu.Unlock()
	}))
	defer srv.Close()
	dir := t.TempDir()
	path := writeConf(t, fmt.Sprintf(`node.name = emqx@127.0.0.1
node.data_dir = %s
web.hook.url = %s/mqtt/webhook
web.hook.headers.authorization = Bearer abc
web.hook.body.encoding_of_payload_field = base64
web.hook.signing_secret = s3cret
web.hook.rule.client.connected.1 = {"action": "on_client_connected"}
web.hook.rule.message.publish.1 = {"action": "on_message_publish", "topic": "up/#"}
`, dir, srv.URL))
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	bus := events.NewBus()
	_, stop, err := startWebhooks(cfg, bus, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	b, addr := testutil.RunBroker(t, func(o *broker.Options) { o.Events = bus })
	c := testutil.Dial(t, addr, mqtt.V311)
	c.Connect(&mqtt.Connect{ClientID: "dev1", CleanStart: true, KeepAlive: 10})
	c.Send(&mqtt.Publish{Topic: "down/x", Payload: []byte("no")})
	c.Send(&mqtt.Publish{Topic: "up/x", Payload: []byte("yes")})
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d posts", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	bus.Close()
	if err := stop(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0]["action"] != "client_connected" || got[0]["node"] != "emqx@127.0.0.1" ||
		got[1]["action"] != "message_publish" || got[1]["payload"] != "eWVz" || got[1]["topic"] != "up/x" {
		t.Fatalf("posts %v", got)
	}
	if hdr.Get("Authorization") != "Bearer abc" || !strings.HasPrefix(hdr.Get("Webhook-Signature"), "v1,") {
		t.Fatalf("headers %v", hdr)
	}
	if _, err := os.Stat(filepath.Join(dir, "webhook", webhook.OutboxDir)); err != nil {
		t.Fatalf("no outbox under node.data_dir: %v", err)
	}
}

// TestWebhookReplayCommand runs `mqgate webhook list` and `replay` on a
// dead-letter file.
func TestWebhookReplayCommand(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	defer srv.Close()
	dir := t.TempDir()
	hookDir := filepath.Join(dir, "webhook")
	if err := os.MkdirAll(hookDir, 0o700); err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf(`{"url":%q,"id":"01ABC","event":"client.connected","clientid":"c","status":400,"failed_at":1,"body":{"action":"client_connected"}}`+"\n", srv.URL)
	if err := os.WriteFile(filepath.Join(hookDir, webhook.DeadFile), []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	path := writeConf(t, "node.data_dir = "+dir+"\n")
	var out, errb bytes.Buffer
	if code := webhookCommand([]string{"list", "-c", path}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "01ABC client.connected") {
		t.Fatalf("list: exit %d, %s %s", code, out.String(), errb.String())
	}
	out.Reset()
	if code := webhookCommand([]string{"replay", "-c", path}, nil, &out, &errb); code != 0 {
		t.Fatalf("replay: exit %d, %s %s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "replayed 1 dead letters, 0 failed") {
		t.Fatalf("replay output %q", out.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 1 || bodies[0] != `{"action":"client_connected"}` {
		t.Fatalf("receiver got %q", bodies)
	}
	if code := webhookCommand([]string{"frob"}, nil, &out, &errb); code != 2 {
		t.Fatalf("unknown subcommand: exit %d", code)
	}
}

// TestWebhookTLS posts to an https endpoint verified with
// web.hook.ssl.cacertfile, with and without a server name override, and
// with verification off.
func TestWebhookTLS(t *testing.T) {
	got := make(chan string, 4)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	defer srv.Close()
	caPath := filepath.Join(t.TempDir(), "ca.pem")
	pemData := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caPath, pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, extra := range []string{
		"web.hook.ssl.cacertfile = " + caPath,
		"web.hook.ssl.cacertfile = " + caPath + "\nweb.hook.ssl.server_name_indication = example.com",
		"web.hook.ssl.verify = false",
	} {
		t.Run(extra, func(t *testing.T) {
			path := writeConf(t, fmt.Sprintf("node.data_dir = %s\nweb.hook.url = %s\n%s\nweb.hook.rule.client.connected.1 = {\"action\": \"on_client_connected\"}\n",
				t.TempDir(), srv.URL, extra))
			cfg, err := config.Load(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			bus := events.NewBus()
			_, stop, err := startWebhooks(cfg, bus, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			bus.Publish(&events.Event{Kind: events.ClientConnected, ClientID: "tls1"})
			select {
			case b := <-got:
				if !strings.Contains(b, `"clientid":"tls1"`) {
					t.Fatalf("body %s", b)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("nothing posted over TLS")
			}
			bus.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := stop(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
	path := writeConf(t, "web.hook.ssl.cacertfile = /nonexistent/ca.pem\nweb.hook.rule.client.connected.1 = {\"action\": \"on_client_connected\"}\n")
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := startWebhooks(cfg, events.NewBus(), slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "web.hook.ssl.cacertfile") {
		t.Fatalf("missing CA file: %v", err)
	}
}

// TestWebhookOldEMQXKeys accepts the EMQX 4.2 names web.hook.api.url and
// web.hook.encode_payload, and per-rule urls route to their own endpoint.
func TestWebhookOldEMQXKeys(t *testing.T) {
	got := make(chan string, 4)
	handler := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			got <- name + " " + string(b)
		})
	}
	main := httptest.NewServer(handler("main"))
	defer main.Close()
	other := httptest.NewServer(handler("other"))
	defer other.Close()
	path := writeConf(t, fmt.Sprintf(`node.data_dir = %s
web.hook.api.url = %s
web.hook.encode_payload = base62
web.hook.rule.message.publish.1 = {"action": "on_message_publish"}
web.hook.rule.client.connected.1 = {"action": "on_client_connected", "url": "%s/x"}
`, t.TempDir(), main.URL, other.URL))
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	bus := events.NewBus()
	_, stop, err := startWebhooks(cfg, bus, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	bus.Publish(&events.Event{Kind: events.MessagePublish, FromClientID: "c", Topic: "t", Payload: []byte("ab")})
	bus.Publish(&events.Event{Kind: events.ClientConnected, ClientID: "c"})
	var posts []string
	for range 2 {
		select {
		case p := <-got:
			posts = append(posts, p)
		case <-time.After(10 * time.Second):
			t.Fatalf("posts %q", posts)
		}
	}
	slicesJoined := strings.Join(posts, "\n")
	if !strings.Contains(slicesJoined, `main {"action":"message_publish"`) || !strings.Contains(slicesJoined, `"payload":"YWC"`) ||
		!strings.Contains(slicesJoined, `other {"action":"client_connected"`) {
		t.Fatalf("posts %q", posts)
	}
	bus.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := stop(ctx); err != nil {
		t.Fatal(err)
	}
}
