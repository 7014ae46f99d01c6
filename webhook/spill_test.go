package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqgate/mqgate/events"
)

// spillReceiver is a real HTTP receiver that answers 503 until up is set,
// then records the bodies it accepts.
type spillReceiver struct {
	srv  *httptest.Server
	up   atomic.Bool
	mu   sync.Mutex
	got  []map[string]any
	hits atomic.Int64
}

func newSpillReceiver(t *testing.T) *spillReceiver {
	rc := &spillReceiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		if !rc.up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("bad body %q: %v", body, err)
		}
		rc.mu.Lock()
		rc.got = append(rc.got, m)
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// waitGot waits until n bodies arrived and checks that every client's
// payloads came once each and in order.
func (rc *spillReceiver) waitGot(t *testing.T, n int, clients []string, perClient int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rc.mu.Lock()
		got := len(rc.got)
		rc.mu.Unlock()
		if got >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events arrived", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) != n {
		t.Fatalf("%d events arrived, want %d", len(rc.got), n)
	}
	next := map[string]int{}
	for _, b := range rc.got {
		c := b["from_client_id"].(string)
		if want := fmt.Sprint(next[c]); b["payload"] != want {
			t.Fatalf("client %s: payload %v, want %s: lost, repeated or out of order", c, b["payload"], want)
		}
		next[c]++
	}
	for _, c := range clients {
		if next[c] != perClient {
			t.Fatalf("client %s: %d events, want %d", c, next[c], perClient)
		}
	}
}

func spillDispatcher(t *testing.T, url, dir string) (*Dispatcher, *events.Bus) {
	t.Helper()
	r, err := ParseRule("web.hook.rule.message.publish.1", `{"action": "on_message_publish"}`)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{Rules: []Rule{r}, URL: url, Dir: dir, Node: "n", PoolSize: 4,
		BreakerThreshold: 1, MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, spillWindow: 16})
	if err != nil {
		t.Fatal(err)
	}
	return d, events.NewBus()
}

func stopDispatcher(t *testing.T, d *Dispatcher, bus *events.Bus) {
	t.Helper()
	bus.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// inMemory returns the jobs in memory and the spilled events of d's
// endpoints.
func inMemory(d *Dispatcher) (live, spilled int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ep := range d.epList {
		live += ep.live
		spilled += ep.spill.len()
	}
	return live, spilled
}

func publishN(bus *events.Bus, clients []string, from, to int) {
	for i := from; i < to; i++ {
		for _, c := range clients {
			e := events.New()
			e.Kind, e.FromClientID, e.Topic, e.Payload = events.MessagePublish, c, "t/"+c, []byte(fmt.Sprint(i))
			bus.Publish(e)
		}
	}
}

func waitQueued(t *testing.T, d *Dispatcher, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for d.Stats().Total(events.MessagePublish).Queued < n {
		if time.Now().After(deadline) {
			t.Fatalf("queued %d, want %d", d.Stats().Total(events.MessagePublish).Queued, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestSpillDuringOutage: once an endpoint's breaker is open, its new events
// are kept on disk only, as entries without a job; when it recovers they
// are taken back in order and every event arrives once, per client in
// order, with nothing left in memory afterwards.
func TestSpillDuringOutage(t *testing.T) {
	rc := newSpillReceiver(t)
	d, bus := spillDispatcher(t, rc.srv.URL, t.TempDir())
	d.Start(bus)
	defer stopDispatcher(t, d, bus)
	clients := []string{"a", "b", "c"}
	publishN(bus, clients[:1], 0, 1) // a's first event opens the breaker
	waitQueued(t, d, 1)
	deadline := time.Now().Add(10 * time.Second)
	for !d.Stats().State[rc.srv.URL].Open {
		if time.Now().After(deadline) {
			t.Fatal("the breaker did not open")
		}
		time.Sleep(2 * time.Millisecond)
	}
	publishN(bus, clients[:1], 1, 100)
	publishN(bus, clients[1:], 0, 100)
	waitQueued(t, d, 300)
	live, spilled := inMemory(d)
	if live != 1 || spilled != 299 {
		t.Fatalf("during the outage: %d jobs in memory and %d spilled, want 1 (the probe) and 299", live, spilled)
	}
	if s := d.Stats(); s.Pending != 300 || s.State[rc.srv.URL].Pending != 300 || s.Oldest == 0 {
		t.Fatalf("stats during the outage: pending %d, endpoint %d, oldest %v", s.Pending, s.State[rc.srv.URL].Pending, s.Oldest)
	}
	rc.up.Store(true)
	rc.waitGot(t, 300, clients, 100)
	deadline = time.Now().Add(10 * time.Second)
	for d.Stats().Pending != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d still pending", d.Stats().Pending)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if live, spilled := inMemory(d); live != 0 || spilled != 0 {
		t.Fatalf("after delivery: %d jobs and %d spilled", live, spilled)
	}
	if c := d.Stats().Total(events.MessagePublish); c.Queued != 300 || c.Delivered != 300 {
		t.Fatalf("counts %+v, want 300 queued and delivered", c)
	}
}

// TestSpillAtStartAndRecovery: a restart with more pending events than the
// window loads only the window as jobs and spills the rest; all of them
// arrive once, per client in order, as the endpoint takes them.
func TestSpillAtStartAndRecovery(t *testing.T) {
	rc := newSpillReceiver(t)
	dir := t.TempDir()
	d, bus := spillDispatcher(t, rc.srv.URL, dir)
	d.Start(bus)
	clients := []string{"a", "b"}
	publishN(bus, clients, 0, 60)
	waitQueued(t, d, 120)
	stopDispatcher(t, d, bus)

	rc.up.Store(true)
	d, bus = spillDispatcher(t, rc.srv.URL, dir)
	if live, spilled := inMemory(d); live != 16 || spilled != 104 {
		t.Fatalf("after the restart: %d jobs and %d spilled, want 16 and 104", live, spilled)
	}
	d.Start(bus)
	defer stopDispatcher(t, d, bus)
	rc.waitGot(t, 120, clients, 60)
	if c := d.Stats().Total(events.MessagePublish); c.Queued != 120 || c.Delivered != 120 {
		t.Fatalf("counts %+v, want 120 queued (loaded) and delivered", c)
	}
}
