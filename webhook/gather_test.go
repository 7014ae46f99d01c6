package webhook

import (
	"testing"
	"time"
)

// TestBatchCommitInterval: when rules batch, events gather for the
// shortest max_delay less the commit interval, at least half that
// max_delay, at most outageCommitInterval; not at all when no rule batches.
func TestBatchCommitInterval(t *testing.T) {
	batching := func(delays ...time.Duration) []Rule {
		rules := []Rule{{}} // one that does not batch
		for _, d := range delays {
			rules = append(rules, Rule{Batch: Batch{MaxSize: 100, MaxDelay: d}})
		}
		return rules
	}
	for _, tc := range []struct {
		rules  []Rule
		commit time.Duration
		want   time.Duration
	}{
		{batching(), 10 * time.Millisecond, 0},
		{batching(0), 10 * time.Millisecond, 0},
		{batching(100 * time.Millisecond), 10 * time.Millisecond, 90 * time.Millisecond},
		{batching(300*time.Millisecond, 100*time.Millisecond), 10 * time.Millisecond, 90 * time.Millisecond},
		{batching(30 * time.Millisecond), 20 * time.Millisecond, 15 * time.Millisecond},
		{batching(10 * time.Millisecond), 10 * time.Millisecond, 5 * time.Millisecond},
		{batching(time.Second), 10 * time.Millisecond, outageCommitInterval},
		{batching(100 * time.Millisecond), 0, outageCommitInterval},
	} {
		if got := batchCommitInterval(tc.rules, tc.commit); got != tc.want {
			var delays []time.Duration
			for _, r := range tc.rules {
				if r.Batch.MaxSize > 0 {
					delays = append(delays, r.Batch.MaxDelay)
				}
			}
			t.Errorf("batchCommitInterval(max_delay %v, commit %v) = %v, want %v", delays, tc.commit, got, tc.want)
		}
	}
}

// TestPostFullBatch: the outbox writer, done committing, makes a batching
// lane ready that waits for a max_delay ending before the writer's next
// commit can come, and leaves it waiting while it commits, or when a
// commit can come before the max_delay ends.
func TestPostFullBatch(t *testing.T) {
	for _, tc := range []struct {
		name      string
		quietFrom int64 // Dispatcher.quietFrom: 0 committing, -1 waiting for events, or a gather's start
		maxDelay  time.Duration
		ready     bool
	}{
		{"committing", 0, 30 * time.Minute, false},
		{"waiting for events", -1, 30 * time.Minute, true},
		{"waiting for events, max_delay after the next commit", -1, 2 * time.Hour, false},
		{"gathering since 50 minutes", time.Now().Add(-50 * time.Minute).UnixNano(), 30 * time.Minute, false},
		{"gathering since 10 minutes", time.Now().Add(-10 * time.Minute).UnixNano(), 30 * time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Dispatcher{commitGap: time.Hour}
			d.quietFrom.Store(tc.quietFrom)
			ep := newEndpoint(d, "http://127.0.0.1:1/", nil, Batch{MaxSize: 10, MaxDelay: tc.maxDelay})
			l := &lane{scheduled: true, batchWait: true}
			l.q.push(&job{created: time.Now()})
			ep.lanes[""] = l
			ep.mu.Lock()
			ep.after(l, tc.maxDelay)
			ep.mu.Unlock()
			defer l.timer.Stop()
			ep.postFullBatch(time.Now())
			if got := len(ep.ready) == 1 && !l.batchWait; got != tc.ready {
				t.Fatalf("lane ready %v (batchWait %v), want %v", got, l.batchWait, tc.ready)
			}
		})
	}
}
