package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/store"
	"github.com/mqgate/mqgate/webhook"
)

// TestOutboxSurvivesRestart keeps the endpoint down while a broker runs,
// restarts broker and dispatcher on the same data directory, brings the
// endpoint up, and checks that every event of both runs arrives, in order.
func TestOutboxSurvivesRestart(t *testing.T) {
	down := func(int, *http.Request, []byte) (int, http.Header) { return http.StatusServiceUnavailable, nil }
	rc := newReceiver(t, down)
	dir := t.TempDir()
	opts := webhook.Options{URL: rc.srv.URL, Dir: dir, Node: "n", MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		Rules: []webhook.Rule{rule(t, "web.hook.rule.message.publish.1", `{"action": "on_message_publish"}`)}}

	run := func(from, to int) {
		d, err := webhook.New(opts)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		bus := events.NewBus()
		d.Start(bus)
		b, addr := startBroker(t, bus)
		c := dial(t, addr, "dev", "")
		for i := from; i < to; i++ {
			done(t, c.Publish("d/1", 1, false, fmt.Sprint(i)), "publish")
		}
		c.Disconnect(100)
		// The outbox commits within a few milliseconds: let the dispatcher
		// try the endpoint (and fail) before everything stops.
		for deadline := time.Now().Add(5 * time.Second); rc.requests() == 0 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		bus.Close()
		if err := d.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	run(0, 10)
	if rc.requests() == 0 {
		t.Fatal("the endpoint was never tried")
	}
	// Second run: still down for a while, then up.
	d, err := webhook.New(opts)
	if err != nil {
		t.Fatalf("New after restart: %v", err)
	}
	if p := d.Stats().Pending; p != 10 {
		t.Fatalf("%d events pending after restart, want 10", p)
	}
	bus := events.NewBus()
	d.Start(bus)
	t.Cleanup(func() {
		bus.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	_, addr := startBroker(t, bus)
	c := dial(t, addr, "dev", "")
	for i := 10; i < 20; i++ {
		done(t, c.Publish("d/1", 1, false, fmt.Sprint(i)), "publish")
	}
	rc.setStatus(nil)
	reqs := rc.waitFor(t, "20 events", func(rs []request) bool { return len(rs) >= 20 })
	bs := bodies(t, reqs)
	if len(bs) != 20 {
		t.Fatalf("%d events, want 20", len(bs))
	}
	var last float64
	for i, b := range bs {
		if b["payload"] != fmt.Sprint(i) {
			t.Fatalf("event %d: payload %v: order lost across the restart", i, b["payload"])
		}
		if s := b["seq"].(float64); s <= last {
			t.Fatalf("seq %v after %v", s, last)
		}
		last = b["seq"].(float64)
	}
	waitPending(t, d, 0)
}

func startBroker(t *testing.T, bus *events.Bus) (*broker.Broker, string) {
	t.Helper()
	return testutil.RunBroker(t, func(o *broker.Options) { o.Events = bus })
}

func waitPending(t *testing.T, d *webhook.Dispatcher, want int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for d.Stats().Pending != want {
		if time.Now().After(deadline) {
			t.Fatalf("pending %d, want %d", d.Stats().Pending, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDeadLettersAndReplay: a 4xx other than 408/429 is final; the event
// goes to the dead-letter file, delivery goes on with the next event, and
// Replay sends the dead letter again once the endpoint accepts it.
func TestDeadLettersAndReplay(t *testing.T) {
	rc := newReceiver(t, func(_ int, _ *http.Request, body []byte) (int, http.Header) {
		if strings.Contains(string(body), `"payload":"bad"`) {
			return http.StatusBadRequest, nil
		}
		return http.StatusOK, nil
	})
	dir := t.TempDir()
	d, bus := startDispatcher(t, webhook.Options{URL: rc.srv.URL, Dir: dir,
		Rules: []webhook.Rule{rule(t, "web.hook.rule.message.publish.1", `{"action": "on_message_publish"}`)}})
	for i, p := range []string{"ok1", "bad", "ok2"} {
		bus.Publish(&events.Event{Kind: events.MessagePublish, FromClientID: "c", Topic: "x", Payload: []byte(p), Time: time.UnixMilli(int64(i + 1))})
	}
	reqs := rc.waitFor(t, "two good events", func(rs []request) bool { return len(rs) == 2 })
	if bs := bodies(t, reqs); bs[0]["payload"] != "ok1" || bs[1]["payload"] != "ok2" {
		t.Fatalf("got %v", bs)
	}
	waitPending(t, d, 0)
	if s := d.Stats().Total(events.MessagePublish); s.Failed != 1 || s.Delivered != 2 {
		t.Fatalf("stats %+v", s)
	}
	dead, err := webhook.ReadDeadLetters(dir)
	if err != nil || len(dead) != 1 || dead[0].Status != 400 || dead[0].ClientID != "c" {
		t.Fatalf("dead letters %+v, %v", dead, err)
	}
	// Still refused: it stays.
	res, err := webhook.Replay(context.Background(), dir, webhook.ReplayOptions{})
	if err != nil || res.Sent != 0 || res.Failed != 1 {
		t.Fatalf("replay to a refusing endpoint: %+v, %v", res, err)
	}
	rc.setStatus(nil)
	res, err = webhook.Replay(context.Background(), dir, webhook.ReplayOptions{})
	if err != nil || res.Sent != 1 || res.Failed != 0 {
		t.Fatalf("replay: %+v, %v", res, err)
	}
	reqs = rc.waitFor(t, "the replayed event", func(rs []request) bool { return len(rs) == 3 })
	if b := bodies(t, reqs[2:]); b[0]["payload"] != "bad" || reqs[2].header.Get("Idempotency-Key") != dead[0].ID {
		t.Fatalf("replayed %v with headers %v", b, reqs[2].header)
	}
	if dead, _ := webhook.ReadDeadLetters(dir); len(dead) != 0 {
		t.Fatalf("%d dead letters left after a successful replay", len(dead))
	}
	if _, err := os.Stat(filepath.Join(dir, webhook.DeadFile+".replay")); !os.IsNotExist(err) {
		t.Fatalf("replay work file left: %v", err)
	}
}

// TestDeadLetterWriteHoldsUpNothing: writing dead letters does not hold up
// another endpoint. The test holds the dead-letter file's lock, so the
// first refused event's dead letter waits for it; meanwhile every event
// still reaches the endpoint that accepts them. Once the lock is released,
// every refused event is a dead letter.
func TestDeadLetterWriteHoldsUpNothing(t *testing.T) {
	refusing := newReceiver(t, func(int, *http.Request, []byte) (int, http.Header) { return http.StatusBadRequest, nil })
	accepting := newReceiver(t, nil)
	dir := t.TempDir()
	lf, err := os.OpenFile(filepath.Join(dir, webhook.DeadFile+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	unlock := func() { _ = syscall.Flock(int(lf.Fd()), syscall.LOCK_UN) }
	t.Cleanup(unlock) // before the dispatcher stops: cleanups run last first
	d, bus := startDispatcher(t, webhook.Options{URL: accepting.srv.URL, Dir: dir, CommitInterval: time.Millisecond,
		Rules: []webhook.Rule{
			rule(t, "web.hook.rule.message.publish.1", fmt.Sprintf(`{"action": "on_message_publish", "url": %q}`, refusing.srv.URL)),
			rule(t, "web.hook.rule.message.publish.2", `{"action": "on_message_publish"}`),
		}})
	const n = 20
	publishN(bus, []string{"c"}, 0, 1)
	deadline := time.Now().Add(wait)
	for refusing.requests() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the refusing endpoint got no request")
		}
		time.Sleep(5 * time.Millisecond)
	}
	publishN(bus, []string{"c"}, 1, n)
	reqs := accepting.waitFor(t, "every event while a dead letter waits for its file", func(rs []request) bool { return len(bodies(t, rs)) >= n })
	checkOrder(t, reqs, []string{"c"}, n)
	unlock()
	for {
		dead, err := webhook.ReadDeadLetters(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(dead) == n {
			break
		}
		if time.Now().After(deadline.Add(wait)) {
			t.Fatalf("%d dead letters, want %d", len(dead), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitPending(t, d, 0)
}

// TestOutboxFullDropsOldest fills a small outbox while the endpoint is down:
// the oldest events are dropped and counted, the newest are delivered.
func TestOutboxFullDropsOldest(t *testing.T) {
	for _, dropNew := range []bool{false, true} {
		t.Run(fmt.Sprintf("drop_new=%v", dropNew), func(t *testing.T) {
			rc := newReceiver(t, func(int, *http.Request, []byte) (int, http.Header) { return http.StatusServiceUnavailable, nil })
			d, bus := startDispatcher(t, webhook.Options{URL: rc.srv.URL, MaxBytes: 4000, DropNewest: dropNew,
				Rules: []webhook.Rule{rule(t, "web.hook.rule.message.publish.1", `{"action": "on_message_publish"}`)}})
			for i := range 100 {
				bus.Publish(&events.Event{Kind: events.MessagePublish, FromClientID: fmt.Sprint("c", i), Topic: "x", Payload: []byte(fmt.Sprint(i))})
			}
			deadline := time.Now().Add(wait)
			for d.Stats().Total(events.MessagePublish).Queued+d.Stats().Total(events.MessagePublish).Dropped < 100 {
				if time.Now().After(deadline) {
					t.Fatalf("stats %+v", d.Stats())
				}
				time.Sleep(5 * time.Millisecond)
			}
			s := d.Stats()
			if s.Bytes > 4000 || s.Pending == 0 || s.Pending >= 100 {
				t.Fatalf("outbox: %d pending, %d bytes (max 4000)", s.Pending, s.Bytes)
			}
			if c := s.Total(events.MessagePublish); c.Dropped == 0 {
				t.Fatalf("nothing counted as dropped: %+v", c)
			}
			rc.setStatus(nil)
			reqs := rc.waitFor(t, "the kept events", func(rs []request) bool { return len(rs) >= s.Pending })
			bs := bodies(t, reqs)
			payloads := map[string]bool{}
			for _, b := range bs {
				payloads[b["payload"].(string)] = true
			}
			if dropNew != payloads["0"] || dropNew == payloads["99"] {
				t.Fatalf("drop_new=%v: kept %v", dropNew, payloads)
			}
		})
	}
}

// TestLegacyOutboxMigrated writes two pending events into an outbox of the
// earlier bbolt format, starts a dispatcher on that directory, and expects
// both delivered in order with their ids and the old file gone; new events
// get larger sequence numbers.
func TestLegacyOutboxMigrated(t *testing.T) {
	rc := newReceiver(t, nil)
	dir := t.TempDir()
	old, err := store.Open(filepath.Join(dir, webhook.LegacyOutboxFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var recs []store.Record
	for i, id := range []string{"legacy-1", "legacy-2"} {
		head := fmt.Sprintf(`{"url":%q,"clientid":"dev","event":"client.connected","id":%q,"time":1700000000000}`, rc.srv.URL, id)
		body := fmt.Sprintf(`{"action":"client_connected","clientid":"dev","id":%q,"seq":%d}`, id, 41+i)
		recs = append(recs, store.Record{Seq: uint64(41 + i), Data: []byte(head + "\n" + body)})
	}
	if err := old.Commit(recs, nil); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	_, bus := startDispatcher(t, webhook.Options{URL: rc.srv.URL, Dir: dir,
		Rules: []webhook.Rule{rule(t, "web.hook.rule.client.connected.1", `{"action": "on_client_connected"}`)}})
	got := bodies(t, rc.waitFor(t, "the two legacy events", func(r []request) bool { return len(r) >= 2 }))
	if got[0]["id"] != "legacy-1" || got[1]["id"] != "legacy-2" {
		t.Fatalf("delivered %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, webhook.LegacyOutboxFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("legacy outbox still there: %v", err)
	}
	bus.Publish(&events.Event{Kind: events.ClientConnected, ClientID: "dev", Time: time.Now()})
	got = bodies(t, rc.waitFor(t, "a new event", func(r []request) bool { return len(r) >= 3 }))
	if seq, _ := got[2]["seq"].(float64); seq <= 42 {
		t.Fatalf("new event's seq %v, want > 42", got[2]["seq"])
	}
}

// TestOutboxFullDropsStayDropped: events dropped by the overflow of the
// same commit that brought them (a burst bigger than the outbox) are not
// written, so they do not come back at the next start.
func TestOutboxFullDropsStayDropped(t *testing.T) {
	rc := newReceiver(t, func(int, *http.Request, []byte) (int, http.Header) { return http.StatusServiceUnavailable, nil })
	dir := t.TempDir()
	o := webhook.Options{URL: rc.srv.URL, Dir: dir, MaxBytes: 4000, CommitInterval: 50 * time.Millisecond,
		Rules: []webhook.Rule{rule(t, "web.hook.rule.message.publish.1", `{"action": "on_message_publish"}`)}}
	d, bus := startDispatcher(t, o)
	for i := range 100 {
		bus.Publish(&events.Event{Kind: events.MessagePublish, FromClientID: fmt.Sprint("c", i), Topic: "x", Payload: []byte(fmt.Sprint(i))})
	}
	deadline := time.Now().Add(wait)
	for c := d.Stats().Total(events.MessagePublish); c.Queued+c.Dropped < 100; c = d.Stats().Total(events.MessagePublish) {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", c)
		}
		time.Sleep(5 * time.Millisecond)
	}
	kept := d.Stats().Pending
	if kept == 0 || kept >= 100 {
		t.Fatalf("%d pending: the outbox was not full", kept)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	d, _ = startDispatcher(t, o)
	if got := d.Stats().Pending; got != kept {
		t.Fatalf("%d pending after a restart, want the %d kept before it", got, kept)
	}
}

// TestOverflowDuringOutageKeepsLanesSmall: while the breaker holds a
// client's lane back, the events that the full outbox drops leave the lane
// too, so that a long outage keeps memory bounded by the outbox; the lane
// then delivers what the outbox kept.
func TestOverflowDuringOutageKeepsLanesSmall(t *testing.T) {
	rc := newReceiver(t, func(int, *http.Request, []byte) (int, http.Header) { return http.StatusServiceUnavailable, nil })
	d, bus := startDispatcher(t, webhook.Options{URL: rc.srv.URL, MaxBytes: 4000, BreakerThreshold: 1,
		MinBackoff: time.Hour, MaxBackoff: time.Hour, CommitInterval: -1,
		Rules: []webhook.Rule{rule(t, "web.hook.rule.message.publish.1", `{"action": "on_message_publish"}`)}})
	bus.Publish(&events.Event{Kind: events.MessagePublish, FromClientID: "c", Topic: "x", Payload: []byte("first")})
	waitOpen(t, d, rc.srv.URL)
	deadline := time.Now().Add(wait)
	const n = 500
	for i := range n {
		bus.Publish(&events.Event{Kind: events.MessagePublish, FromClientID: "c", Topic: "x", Payload: []byte(fmt.Sprint(i))})
		if i%10 != 9 {
			continue
		}
		// Let the writer take these ten before the next: most are
		// dropped after they joined the lane.
		for s := d.Stats(); s.Pending+int(s.Total(events.MessagePublish).Dropped) < i+2; s = d.Stats() { // each event pending or dropped
			if time.Now().After(deadline) {
				t.Fatalf("%d pending, stats %+v", s.Pending, s.Total(events.MessagePublish))
			}
			time.Sleep(time.Millisecond)
		}
	}
	s := d.Stats()
	if lane := s.State[rc.srv.URL].Pending; lane > s.Pending+1 || s.Pending >= n/2 {
		t.Fatalf("the lane holds %d jobs for %d events pending in the outbox", lane, s.Pending)
	}
}

// TestBusFullCountedAndLogged: the bus queue between the broker and the
// outbox writer is bounded and the broker never waits for it. Events that
// find it full are counted (Stats.BusDropped, the metric
// mqgate_webhook_bus_dropped_total) and logged; every event is either
// queued and delivered or counted as lost, none disappears unnoticed.
func TestBusFullCountedAndLogged(t *testing.T) {
	rc := newReceiver(t, nil)
	logs := &testutil.SyncBuffer{}
	// A queue of 8, and a writer that lets 300 ms of events gather before
	// it drains, or until 2 are in the queue: a burst of 1,000 overflows
	// it, since the writer wakes and takes the queue in tens of
	// microseconds and the burst puts an event in it every one or two.
	const burst = 1000
	d, bus := startDispatcher(t, webhook.Options{URL: rc.srv.URL, QueueSize: 8, CommitInterval: 300 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Rules:  []webhook.Rule{rule(t, "web.hook.rule.message.publish.1", `{"action": "on_message_publish"}`)}})
	for i := range burst {
		e := events.New()
		e.Kind, e.FromClientID, e.Topic, e.Payload = events.MessagePublish, "c", "t", []byte(fmt.Sprint(i))
		bus.Publish(e)
	}
	deadline := time.Now().Add(wait)
	for {
		s := d.Stats()
		if c := s.Total(events.MessagePublish); c.Delivered+s.BusDropped == burst && strings.Contains(logs.String(), "events lost before the outbox") {
			if s.BusDropped == 0 || c.Queued != c.Delivered {
				t.Fatalf("%d lost on the bus, %+v", s.BusDropped, c)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, bus dropped %d, log:\n%s", s.Total(events.MessagePublish), s.BusDropped, logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The delivered ones keep their order.
	reqs := rc.waitFor(t, "the queued events", func(rs []request) bool { return len(rs) >= int(burst-d.Stats().BusDropped) })
	last := -1
	for i, b := range bodies(t, reqs) {
		p, err := strconv.Atoi(b["payload"].(string))
		if err != nil || p <= last {
			t.Fatalf("delivery %d carries payload %v after %d", i, b["payload"], last)
		}
		last = p
	}
}

// TestWriterWakesBeforeInboxFills: with the endpoint down, the outbox
// writer lets 100 ms of events gather before it commits them. Events that
// come faster than a quarter of the queue in that time wake it sooner, so
// that none is lost before the outbox: 4,000 events at about 20 a
// millisecond, into a queue of 1,024, all reach the outbox. Before, the
// queue was full after about 50 ms of each window, and the rest of the
// window's events were lost.
func TestWriterWakesBeforeInboxFills(t *testing.T) {
	rc := newReceiver(t, func(int, *http.Request, []byte) (int, http.Header) { return http.StatusServiceUnavailable, nil })
	d, bus := startDispatcher(t, webhook.Options{URL: rc.srv.URL, QueueSize: 1024, BreakerThreshold: 1,
		MinBackoff: time.Minute, MaxBackoff: time.Minute,
		Rules: []webhook.Rule{rule(t, "web.hook.rule.message.publish.1", `{"action": "on_message_publish"}`)}})
	bus.Publish(&events.Event{Kind: events.MessagePublish, FromClientID: "c", Topic: "t", Payload: []byte("opens the breaker")})
	waitQueued(t, d, 1)
	waitOpen(t, d, rc.srv.URL)
	const n = 4000
	for i := range n {
		e := events.New()
		e.Kind, e.FromClientID, e.Topic, e.Payload = events.MessagePublish, "c", "t", []byte(strconv.Itoa(i))
		bus.Publish(e)
		if i%20 == 19 {
			time.Sleep(time.Millisecond)
		}
	}
	deadline := time.Now().Add(wait)
	for {
		s := d.Stats()
		if s.BusDropped > 0 {
			t.Fatalf("%d of %d events lost before the outbox", s.BusDropped, n)
		}
		if s.Pending == n+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events pending of %d", s.Pending, n+1)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWriterWakesAtAQuarter: a writer that would wait 30 s between
// commits (CommitInterval) takes the inbox as soon as it holds a quarter
// of QueueSize events, or a quarter of its 64 MB: without the wake-up the
// events would not reach the outbox within waitQueued's 10 s, on any
// machine. The endpoint answers 503 and retries after a minute, so that no
// acknowledgement wakes the writer instead.
func TestWriterWakesAtAQuarter(t *testing.T) {
	for _, tc := range []struct {
		name           string
		queue, n, size int
	}{
		{"events", 1024, 256, 1},        // 256 of 1,024 events
		{"bytes", 1 << 16, 16, 1 << 20}, // 16 events of 1 MB, their entries just over 16 MB
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, func(int, *http.Request, []byte) (int, http.Header) { return http.StatusServiceUnavailable, nil })
			d, bus := startDispatcher(t, webhook.Options{URL: rc.srv.URL, QueueSize: tc.queue, CommitInterval: 30 * time.Second,
				MinBackoff: time.Minute, MaxBackoff: time.Minute,
				Rules: []webhook.Rule{rule(t, "web.hook.rule.message.publish.1", `{"action": "on_message_publish"}`)}})
			payload := make([]byte, tc.size)
			for range tc.n {
				bus.Publish(&events.Event{Kind: events.MessagePublish, FromClientID: "c", Topic: "t", Payload: payload})
			}
			waitQueued(t, d, tc.n)
			if s := d.Stats(); s.BusDropped != 0 {
				t.Fatalf("%d events lost before the outbox", s.BusDropped)
			}
		})
	}
}

// TestTwoRulesEveryRecordSurvivesRestart: an event that two rules post is
// two records of the outbox, each with a sequence number of its own: after
// a restart both deliveries of every event are still pending.
func TestTwoRulesEveryRecordSurvivesRestart(t *testing.T) {
	down := func(int, *http.Request, []byte) (int, http.Header) { return http.StatusServiceUnavailable, nil }
	rc := newReceiver(t, down)
	opts := webhook.Options{URL: rc.srv.URL, Dir: t.TempDir(), Node: "n", CommitInterval: time.Millisecond,
		Rules: []webhook.Rule{
			rule(t, "web.hook.rule.message.publish.1", `{"action": "on_message_publish"}`),
			rule(t, "web.hook.rule.message.publish.2", `{"action": "on_message_publish", "topic": "t/#"}`),
		}}
	d, err := webhook.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	bus := events.NewBus()
	d.Start(bus)
	const n = 40
	publishN(bus, []string{"a", "b"}, 0, n/2)
	waitQueued(t, d, 2*n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	bus.Close()
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	d, err = webhook.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := d.Stop(ctx); err != nil {
			t.Error(err)
		}
	}()
	if p := d.Stats().Pending; p != 2*n {
		t.Fatalf("%d deliveries pending after a restart, want %d (2 rules x %d events)", p, 2*n, n)
	}
}
