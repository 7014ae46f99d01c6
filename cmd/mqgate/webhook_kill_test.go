package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"
)

// serveConfChild runs mqgate serve -c conf in a child process and returns
// it with the addresses of its MQTT listener and management API.
func serveConfChild(t *testing.T, ctx context.Context, conf string) (cmd *exec.Cmd, mqttAddr, apiAddr string) {
	t.Helper()
	cmd, addrs := startChild(t, ctx, []string{"serve", "-c", conf}, nil, listenRE, apiListenRE)
	return cmd, addrs[0], addrs[1]
}

// metricSum adds up the samples of the metric name whose labels contain
// all of labels, from the management API's /metrics.
func metricSum(t *testing.T, apiAddr, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + apiAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for l := range strings.Lines(string(b)) {
		series, v, ok := strings.Cut(strings.TrimSpace(l), " ")
		if !ok || (series != name && !strings.HasPrefix(series, name+"{")) {
			continue
		}
		match := true
		for _, lb := range labels {
			match = match && strings.Contains(series, lb)
		}
		if !match {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		sum += f
	}
	return sum
}

// TestServeKill9KeepsWebhookEvents: while the receiver is down, a client
// publishes; once the outbox holds every message.publish event the broker
// is killed with SIGKILL. The outbox is fsynced at most once an hour in
// this test, so the events after the first commit are only written, not
// synced: a process that dies keeps them all the same. After a restart on
// the same data directory, with the receiver up, every event arrives, in
// the client's order.
func TestServeKill9KeepsWebhookEvents(t *testing.T) {
	const n = 500
	var up atomic.Bool
	var mu sync.Mutex
	var got []int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var body struct {
			Action  string `json:"action"`
			Payload string `json:"payload"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if body.Action == "message_publish" {
			i, err := strconv.Atoi(body.Payload)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			mu.Lock()
			got = append(got, i)
			mu.Unlock()
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	conf := writeConf(t, fmt.Sprintf(`listener.tcp.external = 127.0.0.1:0
management.listener.http = 127.0.0.1:0
node.data_dir = %s
web.hook.url = %s/hook
web.hook.rule.message.publish.1 = {"action": "on_message_publish"}
web.hook.outbox.sync_interval = 1h
web.hook.retry.min_interval = 20ms
web.hook.retry.max_interval = 100ms
`, dir, srv.URL))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	cmd, addr, api := serveConfChild(t, ctx, conf)
	opts := paho3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("kill9-hook").SetAutoReconnect(false)
	c := paho3.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	for i := range n {
		if tok := c.Publish("k9/hook", 1, false, strconv.Itoa(i)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	// Counted as queued once the commit that wrote them returned.
	queued := func() float64 {
		return metricSum(t, api, "mqgate_webhook_deliveries_total", `result="queued"`, `event="message.publish"`)
	}
	for queued() < n {
		if ctx.Err() != nil {
			t.Fatalf("the outbox took %v of %d events", queued(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	c.Disconnect(0)

	up.Store(true)
	serveConfChild(t, ctx, conf)
	for {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if k >= n {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("after kill -9 and restart the receiver got %d of %d events", k, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, p := range got[:n] {
		if p != i {
			t.Fatalf("event %d carries message %d: lost or out of order", i, p)
		}
	}
}
