package webhook_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/webhook"
)

// endpointsIn returns the URLs that EndpointsFile in dir names, in order
// of their numbers ("" for a free number).
func endpointsIn(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, webhook.EndpointsFile))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Endpoints []*struct {
			URL string `json:"url"`
		} `json:"endpoints"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	var out []string
	for _, e := range f.Endpoints {
		if e == nil {
			out = append(out, "")
			continue
		}
		out = append(out, e.URL)
	}
	return out
}

func stop(t *testing.T, d *webhook.Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRecordsKeepTheirEndpoint: events stored for an endpoint (with its
// headers) are delivered to it after a restart whose rules name another
// endpoint instead; once none is left, the next start forgets the old
// endpoint's number.
func TestRecordsKeepTheirEndpoint(t *testing.T) {
	old := newReceiver(t, unavailable)
	next := newReceiver(t, nil)
	dir := t.TempDir()
	o := spillOptions(t, old.srv.URL, dir)
	o.Rules = []webhook.Rule{rule(t, "web.hook.rule.message.publish.1", `{"action": "on_message_publish", "headers": {"X-Run": "first"}}`)}
	d, bus := startDispatcher(t, o)
	clients := []string{"a", "b"}
	publishN(bus, clients, 0, 30)
	waitQueued(t, d, 60)
	stop(t, d)
	if got := endpointsIn(t, dir); len(got) != 1 || got[0] != old.srv.URL {
		t.Fatalf("endpoints %q, want the first run's", got)
	}

	// The rules now post elsewhere; the old endpoint comes back.
	d, bus = startDispatcher(t, spillOptions(t, next.srv.URL, dir))
	if p := d.Stats().Pending; p != 60 {
		t.Fatalf("%d pending after the restart, want 60", p)
	}
	old.setStatus(nil)
	publishN(bus, []string{"c"}, 0, 10)
	reqs := old.waitFor(t, "the first run's events", func(rs []request) bool { return len(rs) >= 60 })
	checkOrder(t, reqs, clients, 30)
	for _, r := range reqs {
		if h := r.header.Get("X-Run"); h != "first" {
			t.Fatalf("X-Run header %q, want the first run's rule's", h)
		}
	}
	checkOrder(t, next.waitFor(t, "the second run's events", func(rs []request) bool { return len(rs) >= 10 }), []string{"c"}, 10)
	waitPending(t, d, 0)
	if got := endpointsIn(t, dir); len(got) != 2 || got[0] != old.srv.URL || got[1] != next.srv.URL {
		t.Fatalf("endpoints %q, want both", got)
	}
	stop(t, d)

	// Nothing is left for the old endpoint, and no rule names it.
	d, _ = startDispatcher(t, spillOptions(t, next.srv.URL, dir))
	if got := endpointsIn(t, dir); len(got) != 2 || got[0] != "" || got[1] != next.srv.URL {
		t.Fatalf("endpoints %q, want the old one's number free", got)
	}
	if n := d.Stats().Pending; n != 0 {
		t.Fatalf("%d pending", n)
	}
}

// TestEndpointsFileDamaged: a damaged EndpointsFile stops the start with
// an error that names it, instead of dropping the events whose endpoints
// it names; an endpoint number that it does not have makes a record
// unreadable, which is logged and removed, and the others are delivered.
func TestEndpointsFileDamaged(t *testing.T) {
	rc := newReceiver(t, unavailable)
	dir := t.TempDir()
	d, bus := startDispatcher(t, spillOptions(t, rc.srv.URL, dir))
	publishN(bus, []string{"a"}, 0, 5)
	waitQueued(t, d, 5)
	stop(t, d)
	path := filepath.Join(dir, webhook.EndpointsFile)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(path, good[:len(good)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := webhook.New(spillOptions(t, rc.srv.URL, dir)); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("New with a torn endpoints file: %v, want an error naming %s", err, path)
	}

	// The endpoint's number is now another endpoint's: its records name
	// a number the file does not have.
	if err := os.WriteFile(path, []byte(`{"endpoints": [null, null]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	d, _ = startDispatcher(t, spillOptions(t, rc.srv.URL, dir))
	if p := d.Stats().Pending; p != 0 {
		t.Fatalf("%d pending, want the 5 unreadable records removed", p)
	}
	rc.setStatus(nil)
	stop(t, d)
	d, bus = startDispatcher(t, spillOptions(t, rc.srv.URL, dir))
	if p := d.Stats().Pending; p != 0 {
		t.Fatalf("%d pending after a second start, want 0", p)
	}
	publishN(bus, []string{"b"}, 0, 3)
	checkOrder(t, rc.waitFor(t, "new events", func(rs []request) bool { return len(rs) >= 3 }), []string{"b"}, 3)
	waitPending(t, d, 0)
	if c := d.Stats().Total(events.MessagePublish); c.Delivered != 3 {
		t.Fatalf("counts %+v", c)
	}
}
