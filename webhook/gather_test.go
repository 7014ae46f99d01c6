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
