package listener_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/broker/listener"
	"github.com/mqgate/mqgate/internal/testutil"
)

// mqttJS is MQTT.js's browser bundle, installed by
// `npm install --prefix broker/listener/testdata/browser`.
var mqttJS = filepath.Join("testdata", "browser", "node_modules", "mqtt", "dist", "mqtt.min.js")

// browserPage connects MQTT.js to each broker URL in turn, subscribes,
// publishes, and posts what it received (or the error) to /result.
const browserPage = `<!doctype html>
<html><head><script src="/mqtt.min.js"></script></head><body><script>
const urls = %s;
async function run(url, version) {
  return new Promise((resolve) => {
    const topic = "browser/" + version + "/" + url.split(":")[0];
    const c = mqtt.connect(url, {protocolVersion: version, clientId: "browser-" + version + "-" + url.split(":")[0], reconnectPeriod: 0, connectTimeout: 5000});
    const done = (r) => { c.end(true); resolve(r); };
    c.on("error", (e) => done({url, version, error: String(e)}));
    c.on("message", (t, m) => done({url, version, topic: t, payload: m.toString()}));
    c.on("connect", () => {
      c.subscribe(topic, {qos: 1}, (err) => {
        if (err) return done({url, version, error: String(err)});
        c.publish(topic, "hello from the browser", {qos: 1});
      });
    });
  });
}
(async () => {
  for (const url of urls) {
    for (const version of [4, 5]) {
      const r = await run(url, version);
      await fetch("/result", {method: "POST", body: JSON.stringify(r)});
    }
  }
})();
</script></body></html>`

// browserResult is what the page posts for one connection.
type browserResult struct {
	URL     string `json:"url"`
	Version int    `json:"version"`
	Topic   string `json:"topic"`
	Payload string `json:"payload"`
	Error   string `json:"error"`
}

// TestBrowserMQTTJS runs MQTT.js in headless Chromium on a page served by
// the test, over ws:// and wss:// (MQTT 3.1.1 and 5.0): each connection
// subscribes, publishes and receives its message. It skips when Chromium or
// the MQTT.js bundle is missing, unless MQGATE_REQUIRE_BROWSER is set (make
// test sets it after installing both).
func TestBrowserMQTTJS(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err == nil {
		_, err = os.Stat(mqttJS)
	}
	if err != nil {
		if os.Getenv("MQGATE_REQUIRE_BROWSER") != "" {
			t.Fatalf("chromium or MQTT.js missing, and MQGATE_REQUIRE_BROWSER is set (make test installs both): %v", err)
		}
		t.Skipf("chromium or MQTT.js missing (apt-get install chromium; npm install --prefix broker/listener/testdata/browser): %v", err)
	}
	p := newPKI(t, "test CA")
	wss := sslListener(t, p, nil)
	wss.Name, wss.Kind, wss.Addr = "secure", listener.WSS, "127.0.0.1:0"
	ids := make(chan access.Identity, 8)
	b, _ := testutil.RunBroker(t, func(o *broker.Options) {
		o.Listeners = []broker.Listener{{Name: "plain", Kind: listener.WS, Addr: "127.0.0.1:0"}, wss}
		o.Authenticator = access.AuthenticatorFunc(func(_ context.Context, id access.Identity) access.Decision {
			ids <- id
			return access.Decision{Verdict: access.Allow}
		})
	})
	urls := []string{"ws://" + b.Addr("ws:plain").String() + "/mqtt", "wss://" + b.Addr("wss:secure").String() + "/mqtt"}
	urlsJSON, _ := json.Marshal(urls)

	results := make(chan browserResult, 8)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, browserPage, urlsJSON)
	})
	mux.HandleFunc("GET /mqtt.min.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, mqttJS) })
	mux.HandleFunc("POST /result", func(w http.ResponseWriter, r *http.Request) {
		var res browserResult
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &res); err != nil {
			res.Error = "bad result: " + string(body)
		}
		results <- res
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Without the background-networking flags Chromium keeps dialling its
	// vendor's services, which a closed network refuses.
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-quic", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--ignore-certificate-errors", "--no-first-run", "--user-data-dir="+t.TempDir(), srv.URL+"/")
	// Chromium starts helper processes: end the whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cancel()
		<-exited
	}()

	for range 2 * len(urls) {
		select {
		case r := <-results:
			if r.Error != "" {
				t.Errorf("%s MQTT %d: %s", r.URL, r.Version, r.Error)
				continue
			}
			if r.Payload != "hello from the browser" {
				t.Errorf("%s MQTT %d: received %q on %q", r.URL, r.Version, r.Payload, r.Topic)
			}
		case err := <-exited:
			t.Fatalf("chromium exited early: %v", err)
		case <-ctx.Done():
			t.Fatal("no result from the browser")
		}
	}
	seen := map[string]bool{}
	for range 2 * len(urls) {
		seen[nextIdentity(t, ids).Listener] = true
	}
	if !seen["ws:plain"] || !seen["wss:secure"] {
		t.Errorf("listeners seen %v, want ws:plain and wss:secure", seen)
	}
}
