package webhook

import (
	"testing"

	"github.com/mqgate/mqgate/events"
)

// TestJobRun: jobRun counts the jobs of the first one's kind at the start,
// whatever follows.
func TestJobRun(t *testing.T) {
	p, d := events.MessagePublish, events.MessageDelivered
	for _, tc := range []struct {
		kinds []events.Kind
		want  int
	}{
		{[]events.Kind{p}, 1},
		{[]events.Kind{p, p, d, d, d, p}, 2},
		{[]events.Kind{d, d, d}, 3},
		{[]events.Kind{p, d, p}, 1},
	} {
		jobs := make([]*job, len(tc.kinds))
		for i, k := range tc.kinds {
			jobs[i] = &job{event: k}
		}
		if got := jobRun(jobs); got != tc.want {
			t.Errorf("jobRun(%v) = %d, want %d", tc.kinds, got, tc.want)
		}
	}
}
