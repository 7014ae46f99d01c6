package webhook

import "time"

// Hooks for the external tests into what a user cannot set or see.

// WithSpillWindow returns o with n jobs per endpoint in memory before new
// events spill (8192 otherwise).
func WithSpillWindow(o Options, n int) Options {
	o.spillWindow = n
	return o
}

// WithCommitGap returns o with the outbox writer's next take of the inbox
// taken to be at least gap after the start of a gather, or after now while
// it waits for events (Dispatcher.commitBefore), whatever its commits'
// real spacing.
func WithCommitGap(o Options, gap time.Duration) Options {
	o.commitGap = gap
	return o
}

// InMemory returns the jobs in memory and the spilled events of d's
// endpoints.
func (d *Dispatcher) InMemory() (live, spilled int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ep := range d.epList {
		live += ep.live
		spilled += ep.spill.len()
	}
	return live, spilled
}
