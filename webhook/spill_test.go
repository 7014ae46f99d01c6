package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/internal/offheap"
	"github.com/mqgate/mqgate/webhook"
)

// spillOptions: a breaker that opens at the first failure and probes
// within 50 ms, and a window of 16 jobs per endpoint.
func spillOptions(t *testing.T, url, dir string) webhook.Options {
	return webhook.WithSpillWindow(webhook.Options{URL: url, Dir: dir, PoolSize: 4,
		BreakerThreshold: 1, MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Rules: []webhook.Rule{rule(t, "web.hook.rule.message.publish.1", `{"action": "on_message_publish"}`)}}, 16)
}

// publishN publishes payloads from to to-1 for each client, from the event
// pool as the broker does.
func publishN(bus *events.Bus, clients []string, from, to int) {
	for i := from; i < to; i++ {
		for _, c := range clients {
			e := events.New()
			e.Kind, e.FromClientID, e.Topic, e.Payload = events.MessagePublish, c, "t/"+c, []byte(fmt.Sprint(i))
			bus.Publish(e)
		}
	}
}

// checkOrder checks that each client's payloads 0..perClient-1 arrived
// once each, in order.
func checkOrder(t *testing.T, reqs []request, clients []string, perClient int) {
	t.Helper()
	next := map[string]int{}
	for _, b := range bodies(t, reqs) {
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

func unavailable(int, *http.Request, []byte) (int, http.Header) {
	return http.StatusServiceUnavailable, nil
}

// TestSpillDuringOutage: once an endpoint's breaker is open, its new events
// are kept on disk only, as entries without a job; when it recovers they
// are taken back in order and every event arrives once, per client in
// order, with nothing left in memory afterwards.
func TestSpillDuringOutage(t *testing.T) {
	rc := newReceiver(t, unavailable)
	d, bus := startDispatcher(t, spillOptions(t, rc.srv.URL, t.TempDir()))
	clients := []string{"a", "b", "c"}
	publishN(bus, clients[:1], 0, 1) // a's first event opens the breaker
	waitQueued(t, d, 1)
	waitOpen(t, d, rc.srv.URL)
	publishN(bus, clients[:1], 1, 100)
	publishN(bus, clients[1:], 0, 100)
	waitQueued(t, d, 300)
	if live, spilled := d.InMemory(); live != 1 || spilled != 299 {
		t.Fatalf("during the outage: %d jobs in memory and %d spilled, want 1 (the probe) and 299", live, spilled)
	}
	if s := d.Stats(); s.Pending != 300 || s.State[rc.srv.URL].Pending != 300 || s.Oldest == 0 {
		t.Fatalf("stats during the outage: pending %d, endpoint %d, oldest %v", s.Pending, s.State[rc.srv.URL].Pending, s.Oldest)
	}
	rc.setStatus(nil)
	reqs := rc.waitFor(t, "every event", func(rs []request) bool { return len(rs) >= 300 })
	checkOrder(t, reqs, clients, 100)
	waitPending(t, d, 0)
	if live, spilled := d.InMemory(); live != 0 || spilled != 0 {
		t.Fatalf("after delivery: %d jobs and %d spilled", live, spilled)
	}
	if c := d.Stats().Total(events.MessagePublish); c.Queued != 300 || c.Delivered != 300 {
		t.Fatalf("counts %+v, want 300 queued and delivered", c)
	}
}

// TestSpillAtStartAndRecovery: a restart with more pending events than the
// window loads only the window as jobs and spills the rest; all of them
// arrive once, per client in order, as the endpoint takes them. Stop gives
// back the memory that the spill and the outbox's index kept outside the
// Go heap (not parallel: it counts all of the process's).
func TestSpillAtStartAndRecovery(t *testing.T) {
	before := offheap.InUse()
	rc := newReceiver(t, unavailable)
	dir := t.TempDir()
	d, bus := startDispatcher(t, spillOptions(t, rc.srv.URL, dir))
	clients := []string{"a", "b"}
	publishN(bus, clients, 0, 60)
	waitQueued(t, d, 120)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if offheap.InUse() == before {
		t.Fatal("nothing kept off the heap during the outage")
	}
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := offheap.InUse(); got != before {
		t.Fatalf("%d bytes off the heap after Stop, want %d", got, before)
	}

	// Still down: what the restart loaded stays as it is.
	d, _ = startDispatcher(t, spillOptions(t, rc.srv.URL, dir))
	if live, spilled := d.InMemory(); live != 16 || spilled != 104 {
		t.Fatalf("after the restart: %d jobs and %d spilled, want 16 and 104", live, spilled)
	}
	rc.setStatus(nil)
	reqs := rc.waitFor(t, "every event", func(rs []request) bool { return len(rs) >= 120 })
	checkOrder(t, reqs, clients, 60)
	waitPending(t, d, 0)
	if c := d.Stats().Total(events.MessagePublish); c.Queued != 120 || c.Delivered != 120 {
		t.Fatalf("counts %+v, want 120 queued (loaded) and delivered", c)
	}
}

// TestOutageCommitsLessOften: while every endpoint's breaker is open, the
// outbox writer lets events gather for 100 ms per commit instead of
// CommitInterval (here 1 ms); once the endpoint is back, it commits at
// CommitInterval again. Sleeping guarantees a minimum spacing, so the
// bounds hold on a slow machine too.
func TestOutageCommitsLessOften(t *testing.T) {
	rc := newReceiver(t, unavailable)
	o := spillOptions(t, rc.srv.URL, t.TempDir())
	o.CommitInterval = time.Millisecond
	d, bus := startDispatcher(t, o)
	publishN(bus, []string{"a"}, 0, 1) // opens the breaker
	waitQueued(t, d, 1)
	waitOpen(t, d, rc.srv.URL)
	el, n := publishPaced(t, d, bus, 0, 200, 1, 0)
	if most := uint64(el/(100*time.Millisecond)) + 2; n > most {
		t.Fatalf("%d commits in %v of outage, want at most %d (one per 100 ms)", n, el, most)
	}

	rc.setStatus(nil)
	rc.waitFor(t, "the backlog", func(rs []request) bool { return len(rs) >= 201 })
	waitPending(t, d, 0)
	el, n = publishPaced(t, d, bus, 200, 400, 1, 0)
	if least := uint64(el / (100 * time.Millisecond)); n <= least+2 {
		t.Fatalf("%d commits in %v with the endpoint up: still gathering for 100 ms", n, el)
	}
}

// publishPaced publishes client b's payloads from to to-1, one every 2 ms,
// and after every connectedEvery-th of them (unless 0) a client.connected
// event of client c; it waits until all the payloads and the earlier ones
// published before are queued, and returns how long that took and how many
// outbox commits.
func publishPaced(t *testing.T, d *webhook.Dispatcher, bus *events.Bus, from, to, earlier, connectedEvery int) (time.Duration, uint64) {
	t.Helper()
	c0 := d.Stats().Commits
	start := time.Now()
	for i := from; i < to; i++ {
		publishN(bus, []string{"b"}, i, i+1)
		if connectedEvery > 0 && (i+1)%connectedEvery == 0 {
			e := events.New()
			e.Kind, e.ClientID = events.ClientConnected, "c"
			bus.Publish(e)
		}
		time.Sleep(2 * time.Millisecond)
	}
	waitQueued(t, d, to+earlier)
	return time.Since(start), d.Stats().Commits - c0
}

// TestBatchingCommitsLessOften: when rules batch, the outbox writer lets
// events gather for the shortest max_delay less CommitInterval (200 ms and
// 300 ms, less 1 ms: at most 100 ms) instead of CommitInterval (1 ms), and
// every event still arrives once, in order. A rule that posts each event
// on its own (client.connected here) keeps CommitInterval for its events:
// each of them cuts the wait short, and while none comes the writer
// gathers as if every rule batched.
func TestBatchingCommitsLessOften(t *testing.T) {
	for _, tc := range []struct {
		name           string
		batch          string // the client.connected rule's keys beyond action and url
		connectedEvery int    // a client.connected event after every that many messages
		lazy           bool
	}{
		{"every rule batches", `, "batch": {"max_size": 10, "max_delay": 300}`, 10, true},
		{"one rule does not, none of its events", "", 0, true},
		{"one rule does not, its events come", "", 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, connected := newReceiver(t, nil), newReceiver(t, nil)
			connRule := fmt.Sprintf(`{"action": "on_client_connected", "url": %q%s}`, connected.srv.URL, tc.batch)
			d, bus := startDispatcher(t, webhook.Options{URL: rc.srv.URL, Dir: t.TempDir(), CommitInterval: time.Millisecond,
				Rules: []webhook.Rule{
					rule(t, "web.hook.rule.message.publish.1", `{"action": "on_message_publish", "batch": {"max_size": 1000, "max_delay": "200ms"}}`),
					rule(t, "web.hook.rule.client.connected.1", connRule),
				}})
			el, n := publishPaced(t, d, bus, 0, 200, 0, tc.connectedEvery)
			windows := uint64(el / (100 * time.Millisecond))
			if tc.lazy && n > windows+2 {
				t.Fatalf("%d commits in %v, want at most %d (one per 100 ms)", n, el, windows+2)
			}
			if !tc.lazy && n <= windows+2 {
				t.Fatalf("%d commits in %v: gathering for 100 ms though events of a rule that does not batch came", n, el)
			}
			reqs := rc.waitFor(t, "every event", func(rs []request) bool { return len(bodies(t, rs)) >= 200 })
			checkOrder(t, reqs, []string{"b"}, 200)
			if tc.connectedEvery > 0 {
				want := 200 / tc.connectedEvery
				got := connected.waitFor(t, "every client.connected event", func(rs []request) bool { return len(bodies(t, rs)) >= want })
				if n := len(bodies(t, got)); n != want {
					t.Fatalf("%d client.connected events posted, want %d", n, want)
				}
			}
			waitPending(t, d, 0)
		})
	}
}

// TestBatchLargerThanSpillWindow: a batching rule whose max_size is larger
// than the spill window still gets whole batches: the endpoint keeps
// max_size jobs in memory, so 40 events with a window of 16 go in one
// POST at once, not in batches of 16 after max_delay.
func TestBatchLargerThanSpillWindow(t *testing.T) {
	rc := newReceiver(t, nil)
	d, bus := startDispatcher(t, webhook.WithSpillWindow(webhook.Options{URL: rc.srv.URL, Dir: t.TempDir(),
		Rules: []webhook.Rule{rule(t, "web.hook.rule.message.publish.1",
			`{"action": "on_message_publish", "batch": {"max_size": 40, "max_delay": "1m"}}`)}}, 16))
	publishN(bus, []string{"c"}, 0, 40)
	reqs := rc.waitFor(t, "one batch of 40", func(rs []request) bool { return len(rs) > 0 })
	if n := len(bodies(t, reqs[:1])); n != 40 {
		t.Fatalf("first batch of %d events, want all 40", n)
	}
	checkOrder(t, reqs, []string{"c"}, 40)
	waitPending(t, d, 0)
	if live, spilled := d.InMemory(); live != 0 || spilled != 0 {
		t.Fatalf("%d jobs and %d spilled events left", live, spilled)
	}
}

// TestBatchWaitsOnlyForCommits: a batch waits for its max_delay only while
// a commit may still add events to it. The outbox writer commits every
// 100 ms here, but is taken to be unable to commit again for 2 hours or 30
// minutes (WithCommitGap), against a max_delay of an hour, so that each
// wrong decision costs an hour against the receiver's 10 s wait, and the
// test depends on no timing. With 2 hours, no commit can add to the batch
// that the first commit hands over: it is posted at once, not an hour
// later. With 30 minutes, one can: the batch waits, and the events of the
// next commit join it, filling it (max_size 10), so one request carries
// all ten. TestBatchWorkerWaitsOnlyForCommits checks the worker's side
// alone. Here the worker mostly looks at the lane once the commit is done;
// TestPostFullBatch checks the writer's side, for a worker that looked
// while the writer committed.
func TestBatchWaitsOnlyForCommits(t *testing.T) {
	start := func(t *testing.T, gap time.Duration) (*receiver, *webhook.Dispatcher, *events.Bus) {
		rc := newReceiver(t, nil)
		d, bus := startDispatcher(t, webhook.WithCommitGap(webhook.Options{URL: rc.srv.URL, Dir: t.TempDir(),
			Rules: []webhook.Rule{rule(t, "web.hook.rule.message.publish.1",
				`{"action": "on_message_publish", "batch": {"max_size": 10, "max_delay": "1h"}}`)}}, gap))
		return rc, d, bus
	}
	t.Run("no commit before max_delay", func(t *testing.T) {
		t.Parallel()
		rc, d, bus := start(t, 2*time.Hour)
		publishN(bus, []string{"c"}, 0, 5)
		reqs := rc.waitFor(t, "the batch, before its max_delay of an hour", func(rs []request) bool { return len(rs) > 0 })
		checkOrder(t, reqs, []string{"c"}, 5)
		waitPending(t, d, 0)
	})
	t.Run("a commit may add", func(t *testing.T) {
		t.Parallel()
		rc, d, bus := start(t, 30*time.Minute)
		publishN(bus, []string{"c"}, 0, 5)
		waitPending(t, d, 5) // committed and handed over
		publishN(bus, []string{"c"}, 5, 10)
		reqs := rc.waitFor(t, "every event", func(rs []request) bool { return len(bodies(t, rs)) >= 10 })
		if len(reqs) != 1 {
			t.Fatalf("%d requests, want one batch of all 10 events", len(reqs))
		}
		checkOrder(t, reqs, []string{"c"}, 10)
		waitPending(t, d, 0)
	})
}
