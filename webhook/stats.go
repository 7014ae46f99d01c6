package webhook

import (
	"time"

	"github.com/mqgate/mqgate/events"
)

// Counts are the delivery counts of one endpoint and event.
type Counts struct {
	Queued    uint64 // accepted into the outbox (or loaded from it at start)
	InFlight  int64  // in a request now
	Delivered uint64 // acknowledged with a 2xx
	Retried   uint64 // failed attempts that will be retried
	Failed    uint64 // refused for good, kept as dead letters
	Dropped   uint64 // dropped because the outbox was full
}

// Stats is a snapshot of the dispatcher's counters.
type Stats struct {
	// Endpoints maps each endpoint URL, then event name, to its counts.
	Endpoints map[string]map[string]Counts
	Pending   int           // deliveries in the outbox
	Bytes     int64         // size of the pending deliveries
	Memory    int64         // bytes of pending bodies held in memory (Options.MaxMemory)
	Oldest    time.Duration // age of the oldest pending delivery; 0 if none
	// BusDropped counts events lost before reaching the outbox because the
	// inbox (Options.QueueSize events) was full.
	BusDropped uint64
	// Commits counts the outbox writes: each takes the events and the
	// acknowledgements gathered in one commit interval.
	Commits uint64
	// State maps each endpoint URL to its queue and last failure.
	State map[string]EndpointState
}

// EndpointState is the queue and the last failure of one endpoint URL.
type EndpointState struct {
	Pending     int           // deliveries waiting or in a request
	Oldest      time.Duration // age of its oldest pending delivery; 0 if none
	LastError   string        // the last failed attempt: status or error; "" if none
	LastErrorAt time.Time
	Open        bool // the circuit breaker holds deliveries back
}

// state reads ep's queue and last failure; it takes ep.mu.
func (ep *endpoint) state(now time.Time) EndpointState {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	st := EndpointState{LastError: ep.lastErr, LastErrorAt: ep.lastErrAt, Open: now.Before(ep.openUntil)}
	for _, l := range ep.lanes {
		st.Pending += l.q.len()
		if l.q.len() > 0 {
			st.Oldest = max(st.Oldest, now.Sub(l.q.front().created))
		}
	}
	return st
}

// Stats returns the current counters.
func (d *Dispatcher) Stats() Stats {
	s := Stats{Endpoints: map[string]map[string]Counts{}}
	d.epMu.Lock()
	for _, ep := range d.eps {
		m := s.Endpoints[ep.url]
		if m == nil {
			m = map[string]Counts{}
			s.Endpoints[ep.url] = m
		}
		for i, c := range ep.ctr {
			if c == nil {
				continue
			}
			k := events.Kind(i)
			old := m[k.String()]
			m[k.String()] = Counts{
				Queued:    old.Queued + c.queued.Load(),
				InFlight:  old.InFlight + c.inFlight.Load(),
				Delivered: old.Delivered + c.delivered.Load(),
				Retried:   old.Retried + c.retried.Load(),
				Failed:    old.Failed + c.failed.Load(),
				Dropped:   old.Dropped + c.dropped.Load(),
			}
		}
	}
	eps := make([]*endpoint, 0, len(d.eps))
	for _, ep := range d.eps {
		eps = append(eps, ep)
	}
	d.epMu.Unlock()
	now := time.Now()
	s.State = map[string]EndpointState{}
	for _, ep := range eps {
		st := ep.state(now)
		old, seen := s.State[ep.url]
		if seen {
			st.Pending += old.Pending
			st.Oldest = max(st.Oldest, old.Oldest)
			st.Open = st.Open || old.Open
			if old.LastErrorAt.After(st.LastErrorAt) {
				st.LastError, st.LastErrorAt = old.LastError, old.LastErrorAt
			}
		}
		s.State[ep.url] = st
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.compact()
	if d.pending.len() > 0 {
		s.Oldest = now.Sub(d.pending.front().created)
	}
	for _, ep := range d.epList {
		if ep.spill.len() == 0 {
			continue
		}
		st := s.State[ep.url]
		st.Pending += ep.spill.len()
		st.Oldest = max(st.Oldest, now.Sub(time.Unix(0, ep.spill.front().created)))
		s.State[ep.url] = st
	}
	for _, st := range s.State { // jobs taken back from the spill are in lanes only
		s.Oldest = max(s.Oldest, st.Oldest)
	}
	s.Pending = d.count
	s.Bytes = d.bytes
	s.Memory = d.mem
	s.BusDropped = d.busDropped
	s.Commits = d.commits.Load()
	if d.sub != nil {
		s.BusDropped = d.sub.Dropped()
	}
	return s
}

// Total sums the counts of every endpoint for event kind k.
func (s Stats) Total(k events.Kind) Counts {
	var t Counts
	for _, m := range s.Endpoints {
		c := m[k.String()]
		t.Queued += c.Queued
		t.InFlight += c.InFlight
		t.Delivered += c.Delivered
		t.Retried += c.Retried
		t.Failed += c.Failed
		t.Dropped += c.Dropped
	}
	return t
}
