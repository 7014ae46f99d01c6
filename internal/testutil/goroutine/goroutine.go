// Package goroutine finds the live goroutines whose stacks run a given
// function, for tests that check what such a goroutine carries: its
// profiler labels (runtime/pprof), which no API reads from outside it.
package goroutine

import (
	"bytes"
	"fmt"
	"runtime/pprof"
	"strings"
	"time"
)

// Labels returns the profiler labels of each live goroutine with fn on its
// stack, as the goroutine profile prints them ({"key":"value"}, "" for
// none), waiting up to wait for at least one to be there. fn is a
// qualified function name as a stack trace shows it, such as
// "mqgate/store.(*Segments).timedSync".
func Labels(fn string, wait time.Duration) ([]string, error) {
	deadline := time.Now().Add(wait)
	for {
		var b bytes.Buffer
		if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
			return nil, fmt.Errorf("goroutine profile: %w", err)
		}
		// With debug=1, goroutines with the same stack and labels are one
		// record: a count line, a "# labels:" line when they have any,
		// then the stack's "#\t" lines; records are separated by a blank
		// line.
		var found []string
		for rec := range strings.SplitSeq(b.String(), "\n\n") {
			if !strings.Contains(rec, fn) {
				continue
			}
			labels := ""
			for line := range strings.Lines(rec) {
				if l, ok := strings.CutPrefix(line, "# labels: "); ok {
					labels = strings.TrimSpace(l)
				}
			}
			found = append(found, labels)
		}
		if len(found) > 0 {
			return found, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no goroutine runs %s", fn)
		}
		time.Sleep(time.Millisecond)
	}
}
