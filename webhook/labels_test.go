package webhook

import (
	"slices"
	"testing"
	"time"

	"github.com/mqgate/mqgate/internal/testutil/goroutine"
)

func parkedInTimer(release <-chan struct{}) { <-release }

// A timer's function runs with the dispatcher's profiler label (a timer's
// goroutine inherits none), so that a CPU profile charges the endpoints'
// retry and breaker timers to the dispatcher: caught while it waits.
func TestLabelledAfter(t *testing.T) {
	release := make(chan struct{})
	done := make(chan struct{})
	labelledAfter(time.Millisecond, func() {
		parkedInTimer(release)
		close(done)
	})
	defer func() {
		close(release)
		<-done
	}()
	labels, err := goroutine.Labels("webhook.parkedInTimer", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(labels, []string{`{"mqgate":"webhook"}`}) {
		t.Fatalf("the timer's goroutine has labels %q, want {\"mqgate\":\"webhook\"}", labels)
	}
}
