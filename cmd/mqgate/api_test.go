package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqgate/mqgate/api"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/config"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

func TestStartAPIFromConfig(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	b, _ := testutil.RunBroker(t, nil)
	tests := []struct {
		name, conf string
		wantErr    string
	}{
		{"default secret on every interface", "management.listener.http = 0.0.0.0:0\n", "management.default_application.secret"},
		{"bare port binds every interface", "management.listener.http = 0\n", "management.default_application.secret"},
		{"disabled", "management.listener.http =\n", ""},
	}
	for _, tt := range tests {
		cfg, err := config.Parse("test.conf", []byte(tt.conf), nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		reg, err := newRegistry(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		stop, err := startAPI(cfg, b, apiDeps{Registry: reg, Bans: api.NewBanList()}, log)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err = %v, want it to name %s", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if err := stop(context.Background()); err != nil {
			t.Errorf("%s: stop: %v", tt.name, err)
		}
	}
}

func TestStartAPIServes(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	b, _ := testutil.RunBroker(t, nil)
	cfg, err := config.Parse("test.conf", []byte("management.listener.http = 127.0.0.1:0\nmanagement.default_application.secret = pw\nmanagement.application.ops = opsecret\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := newRegistry(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := startAPIServer(cfg, b, apiDeps{Registry: reg}, log)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.Addr().String()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	}()
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	for _, app := range [][2]string{{"admin", "pw"}, {"ops", "opsecret"}} {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v4/brokers", nil)
		req.SetBasicAuth(app[0], app[1])
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"code":0`) {
			t.Errorf("app %s: %d %s", app[0], resp.StatusCode, body)
		}
	}
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"go_goroutines", "mqgate_connections"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestSidecarFromConfig builds the chains from the config, starts the
// sidecar on a real listener, and sends it an EMQX 5 authn request.
func TestSidecarFromConfig(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte("alice:plain$$pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("test.conf", []byte("sidecar.listener.http = 127.0.0.1:0\nauth.chain = file\nauth.file.path = "+users+"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	authnr, closeAuthn, err := buildAuthenticator(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAuthn()
	s, err := startSidecarServer(cfg, authnr, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	}()
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	for _, tt := range []struct{ password, want string }{{"pw", `"result":"allow"`}, {"nope", `"result":"deny"`}} {
		resp, err := client.Post("http://"+s.Addr().String()+"/emqx/authn", "application/json",
			strings.NewReader(`{"clientid":"c","username":"alice","password":"`+tt.password+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), tt.want) {
			t.Errorf("password %s: %d %s, want %s", tt.password, resp.StatusCode, body, tt.want)
		}
	}
	if s, err := startSidecarServer(mustParse(t, ""), nil, nil, log); s != nil || err != nil {
		t.Errorf("default config started a sidecar: %v %v", s, err)
	}
}

// TestOpenBansFromConfig keeps the banned list under node.data_dir: a ban
// added through one list is in the next one opened from the same config.
func TestOpenBansFromConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := mustParse(t, "node.data_dir = "+dir+"\n")
	bans, err := openBans(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := bans.Add(api.Ban{Who: "evil", As: "clientid", Reason: "spam", At: time.Now(), Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, bannedFile)); err != nil {
		t.Fatal(err)
	}
	again, err := openBans(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if l := again.List(); len(l) != 1 || l[0].Who != "evil" {
		t.Errorf("reopened list = %+v", l)
	}
	if err := os.WriteFile(filepath.Join(dir, bannedFile), []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openBans(cfg); err == nil || !strings.Contains(err.Error(), "node.data_dir") {
		t.Errorf("damaged file: %v", err)
	}
}

// TestMetricsFromChains builds the authentication and ACL chains from the
// config as serve does, connects real MQTT clients through them and scrapes
// /metrics: the chains' families, the Go runtime and process collectors and
// the broker's families are served, and none is labelled by client id or
// topic.
func TestMetricsFromChains(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte("alice:plain$$pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(dir, "acl.conf")
	if err := os.WriteFile(rules, []byte(`{allow, {user, "alice"}, publish, ["a/#"]}.
{deny, all}.
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := mustParse(t, "node.data_dir = "+dir+"\nauth.chain = file\nauth.file.path = "+users+"\nacl.chain = file\nacl_file = "+rules+
		"\nallow_anonymous = false\nmanagement.listener.http = 127.0.0.1:0\nmanagement.default_application.secret = pw\n")
	log := discardLog()
	authnr, closeAuthn, err := buildAuthenticator(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeAuthn)
	authz, closeAuthz, err := buildAuthorizer(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeAuthz)
	reg, err := newRegistry(authnr, authz)
	if err != nil {
		t.Fatal(err)
	}
	b, addr := testutil.RunBroker(t, func(o *broker.Options) {
		o.Authenticator, o.Authorizer, o.AllowAnonymous = authnr, authz, false
	})
	s, err := startAPIServer(cfg, b, apiDeps{Registry: reg, Authorizer: authz}, log)
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
	good := testutil.Dial(t, addr, mqtt.V5)
	if ack := good.Connect(&mqtt.Connect{ClientID: "c1", CleanStart: true, KeepAlive: 60, Username: "alice", UsernameSet: true, Password: []byte("pw"), PasswordSet: true}); ack.ReasonCode != 0 {
		t.Fatal(ack.ReasonCode)
	}
	bad := testutil.Dial(t, addr, mqtt.V5)
	if ack := bad.Connect(&mqtt.Connect{ClientID: "c2", CleanStart: true, KeepAlive: 60, Username: "alice", UsernameSet: true, Password: []byte("no"), PasswordSet: true}); ack.ReasonCode == 0 {
		t.Fatal("wrong password accepted")
	}
	for i, topic := range []string{"a/1", "b/1"} {
		good.Send(&mqtt.Publish{Topic: topic, QoS: 1, PacketID: uint16(i + 1), Payload: []byte("x")})
		good.Read()
	}
	client := &http.Client{Timeout: 5 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Get("http://" + s.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`mqgate_authn_decisions_total{backend="file",result="allow"} 1`,
		`mqgate_authn_decisions_total{backend="file",result="deny"} 1`,
		`mqgate_acl_counter{name="acl.cache.misses"} 2`,
		`mqgate_acl_decisions_total{result="allow"} 1`,
		`mqgate_acl_decisions_total{result="deny"} 1`,
		`mqgate_client_events_total{event="auth_failure"} 1`,
		"go_goroutines ",
		"process_cpu_seconds_total ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, line := range strings.Split(string(body), "\n") {
		if strings.Contains(line, "c1") || strings.Contains(line, "a/1") || strings.Contains(line, "clientid=") || strings.Contains(line, "topic=") {
			t.Errorf("a family is labelled by client id or topic: %s", line)
		}
	}
}

// TestReadyz checks each thing /readyz stands for on a served API: the
// broker's listeners (503 once shutdown begins), the ACL policy (503 while
// a broken acl.conf is refused), and the web hook outbox (503 when it
// cannot be written).
func TestReadyz(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "acl.conf")
	if err := os.WriteFile(rules, []byte("{allow, all}.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := mustParse(t, "node.data_dir = "+dir+"\nacl.chain = file\nacl_file = "+rules+"\nacl.casbin.reload_delay = 10ms\n"+
		"management.listener.http = 127.0.0.1:0\nmanagement.default_application.secret = pw\n")
	authz, closeAuthz, err := buildAuthorizer(cfg, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeAuthz)
	b, _ := testutil.RunBroker(t, func(o *broker.Options) { o.Authorizer = authz })
	s, err := startAPIServer(cfg, b, apiDeps{Authorizer: authz}, discardLog())
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
	client := &http.Client{Timeout: 5 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	readyz := func() (int, string) {
		t.Helper()
		resp, err := client.Get("http://" + s.Addr().String() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(body)
	}
	// waitFor polls /readyz until it answers code (the file watch reloads
	// in the background).
	waitFor := func(code int, want string) {
		t.Helper()
		var got int
		var body string
		for range 500 {
			if got, body = readyz(); got == code && strings.Contains(body, want) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("/readyz = %d %q, want %d with %q", got, body, code, want)
	}
	waitFor(http.StatusOK, "ok")
	if err := os.WriteFile(rules, []byte("{allow, all"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(http.StatusServiceUnavailable, "acl policy not loaded")
	if err := os.WriteFile(rules, []byte("{deny, all}.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(http.StatusOK, "ok")

	// The outbox check, on its own: a directory that is a file cannot be
	// written to.
	outbox := filepath.Join(dir, "webhook")
	if err := os.MkdirAll(outbox, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := readiness(nil, outbox)(); err != nil {
		t.Errorf("writable outbox: %v", err)
	}
	if entries, _ := os.ReadDir(outbox); len(entries) != 0 {
		t.Errorf("the check left %d files in the outbox", len(entries))
	}
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := readiness(nil, notDir)(); err == nil || !strings.Contains(err.Error(), "outbox not writable") {
		t.Errorf("outbox that is a file: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if code, body := readyz(); code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
		t.Errorf("after broker shutdown: /readyz = %d %q", code, body)
	}
}
