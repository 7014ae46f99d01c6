package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqgate/mqgate/events"
)

// counters are the delivery counts of one endpoint and event.
type counters struct {
	queued, delivered, retried, failed, dropped atomic.Uint64
	inFlight                                    atomic.Int64
}

// endpoint delivers to one URL with one header set. Its events wait in
// lanes, one per client id (one in all for a batching endpoint), so that a
// client's events are posted one after the other, in order, while different
// clients' events go out in parallel on up to PoolSize workers.
type endpoint struct {
	d       *Dispatcher
	url     string
	headers map[string]string
	batch   Batch
	ctr     [events.NumKinds]*counters // the hookEvents' (others nil); read-only after creation
	// down is set while the breaker is open (from its opening to the
	// first success after it): the outbox writer then keeps the endpoint's
	// new bodies on disk only, since they wait anyway.
	down atomic.Bool
	num  int // its number in EndpointsFile, which its new records carry; -1 until New gives it one

	// window is how many jobs it has in memory before its new events
	// spill: the spill window, or a batch's max_size where that is larger,
	// since a batch can only be made of jobs in memory.
	window int

	// Guarded by Dispatcher.mu:
	spill fifo[spilled] // events only in the outbox, oldest first
	live  int           // jobs in memory that are not done

	mu        sync.Mutex
	cond      *sync.Cond
	lanes     map[string]*lane
	ready     []*lane // lanes with a job to post, no request in flight and no timer
	parked    []*lane // lanes waiting for the breaker to close
	fails     int     // consecutive retryable failures
	openUntil time.Time
	probing   bool
	timer     *time.Timer // the breaker's
	started   bool
	closed    bool
	lastErr   string // the last failed attempt, for Stats
	lastErrAt time.Time
}

// lane is the queue of one client id. It is in at most one place at a time:
// ready, parked, in flight, or waiting on its timer; scheduled says it is in
// one of them.
type lane struct {
	key       string
	q         fifo[*job]
	attempt   int
	scheduled bool
	batchWait bool
	posting   bool // l.q's first jobs are in a request: its front must stay
	timer     *time.Timer
}

func newEndpoint(d *Dispatcher, url string, headers map[string]string, b Batch) *endpoint {
	ep := &endpoint{d: d, url: url, headers: headers, batch: b, lanes: map[string]*lane{}}
	ep.num = -1
	ep.spill.offHeap = true // grows with an outage: see offheap
	ep.window = max(d.o.spillWindow, b.MaxSize)
	ep.cond = sync.NewCond(&ep.mu)
	for k := range hookEvents {
		ep.ctr[k] = &counters{}
	}
	return ep
}

func (ep *endpoint) counters(k events.Kind) *counters {
	if int(k) < len(ep.ctr) && ep.ctr[k] != nil {
		return ep.ctr[k]
	}
	return ep.ctr[events.MessagePublish] // unreachable: every posted kind is in hookEvents
}

// jobRun returns how many of jobs, from the first, are of the first's
// kind. The counters of a batch, its events mostly of one kind, are
// updated once per run instead of once per event. jobs is not empty.
func jobRun(jobs []*job) int {
	n := 1
	for n < len(jobs) && jobs[n].event == jobs[0].event {
		n++
	}
	return n
}

// enqueue appends j to its client's lane.
func (ep *endpoint) enqueue(j *job) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.enqueueLocked(j)
}

// enqueueLocked is enqueue with ep.mu held: the outbox writer hands over
// the jobs of one commit for one endpoint under one lock.
func (ep *endpoint) enqueueLocked(j *job) {
	if ep.closed {
		return
	}
	key := j.client
	if ep.batch.MaxSize > 0 {
		key = "" // one lane: batches mix clients and keep their order
	}
	if !ep.started {
		ep.started = true
		n := ep.d.o.PoolSize
		if ep.batch.MaxSize > 0 {
			n = 1
		}
		for range n {
			ep.d.wg.Add(1)
			go labelled(ep.work)
		}
	}
	l := ep.lanes[key]
	if l == nil {
		l = &lane{key: key}
		ep.lanes[key] = l
	}
	if !l.posting {
		// Forget the jobs an outbox overflow dropped from the front, so
		// that a lane parked by the breaker during a long outage does not
		// keep every dropped job in memory.
		for l.q.len() > 0 && l.q.front().done.Load() {
			l.q.pop()
		}
	}
	l.q.push(j)
	switch {
	case !l.scheduled:
		l.scheduled = true
		ep.push(l)
	case l.batchWait && l.q.len() >= ep.batch.MaxSize && l.timer.Stop():
		l.batchWait = false
		ep.push(l)
	}
}

// push makes l ready. ep.mu must be held.
func (ep *endpoint) push(l *lane) {
	ep.ready = append(ep.ready, l)
	ep.cond.Signal()
}

// after makes l ready again after delay. ep.mu must be held.
func (ep *endpoint) after(l *lane, delay time.Duration) {
	if ep.closed {
		return
	}
	l.timer = labelledAfter(delay, func() {
		ep.mu.Lock()
		defer ep.mu.Unlock()
		l.batchWait = false
		if !ep.closed {
			ep.push(l)
		}
	})
}

// postFullBatch makes the lane of a batching endpoint ready when it waits
// for its batch's max_delay although no commit can add to the batch before
// then (Dispatcher.commitBefore). The outbox writer calls it when it has
// handed over a commit's events: a worker that looked at the lane while
// the writer committed could not know that.
func (ep *endpoint) postFullBatch(now time.Time) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	l := ep.lanes[""]
	if l == nil || !l.batchWait || l.q.len() == 0 || ep.d.commitBefore(l.q.front().created.Add(ep.batch.MaxDelay), now) {
		return
	}
	if l.timer.Stop() {
		l.batchWait = false
		ep.push(l)
	}
}

// work is one delivery worker.
func (ep *endpoint) work() {
	defer ep.d.wg.Done()
	ep.mu.Lock()
	defer ep.mu.Unlock()
	for {
		for len(ep.ready) == 0 && !ep.closed {
			ep.cond.Wait()
		}
		if ep.closed {
			return
		}
		l := ep.ready[0]
		ep.ready[0] = nil
		ep.ready = ep.ready[1:]
		for l.q.len() > 0 && l.q.front().done.Load() { // dropped while waiting
			l.q.pop()
		}
		now := time.Now()
		if l.q.len() == 0 {
			l.scheduled = false
			l.attempt = 0
			delete(ep.lanes, l.key)
			if !ep.openUntil.IsZero() && !now.Before(ep.openUntil) {
				ep.releaseProbe() // l may have been the probe
			}
			continue
		}
		if ep.probing || now.Before(ep.openUntil) {
			// The breaker is open: wait without spending anything.
			ep.parked = append(ep.parked, l)
			continue
		}
		probe := !ep.openUntil.IsZero()
		n := 1
		if ep.batch.MaxSize > 0 {
			n = min(l.q.len(), ep.batch.MaxSize)
			if wait := ep.batch.MaxDelay - now.Sub(l.q.front().created); n < ep.batch.MaxSize && wait > 0 && l.attempt == 0 && ep.d.commitBefore(now.Add(wait), now) {
				l.batchWait = true
				ep.after(l, wait)
				continue
			}
		}
		if probe {
			ep.probing = true
		}
		jobs := l.q.appendFirst(make([]*job, 0, n), n)
		l.posting = true
		ep.mu.Unlock()
		res := ep.post(jobs)
		if res.refused() {
			// Kept before ep.mu is taken again: the file's write and
			// fsync would hold up the endpoint's other workers, and the
			// outbox writer, which hands over new jobs under ep.mu. The
			// jobs are acknowledged after it (finish), so a crash in
			// between posts them again instead of losing them.
			ep.d.dead.add(ep, jobs, res)
		}
		ep.mu.Lock()
		l.posting = false
		ep.finish(l, jobs, res, probe)
	}
}

// finish records the outcome of posting jobs, the head of l. ep.mu must be
// held.
func (ep *endpoint) finish(l *lane, jobs []*job, res result, probe bool) {
	d := ep.d
	if failed := res.retry || !(res.status >= 200 && res.status < 300); failed && !res.skipped && !errors.Is(res.err, errClosed) {
		ep.lastErr, ep.lastErrAt = describe(res), time.Now()
	}
	if res.retry {
		l.attempt++
		ep.fails++
		for _, j := range jobs {
			ep.counters(j.event).retried.Add(1)
		}
		delay := backoff(d.o.MinBackoff, d.o.MaxBackoff, l.attempt)
		if res.retryAfter > delay {
			delay = min(res.retryAfter, time.Hour)
		}
		if probe || ep.fails >= d.o.BreakerThreshold && ep.openUntil.IsZero() {
			ep.probing = false
			ep.open(max(delay, backoff(d.o.MinBackoff, d.o.MaxBackoff, ep.fails-d.o.BreakerThreshold+1)))
		}
		if (l.attempt == 1 || l.attempt%10 == 0) && !errors.Is(res.err, errClosed) {
			d.log.Warn("web hook delivery failed; retrying", "url", ep.url, "status", res.status, "err", res.err,
				"attempt", l.attempt, "retry_in", delay)
		}
		ep.after(l, delay)
		return
	}
	for range jobs {
		l.q.pop()
	}
	l.attempt = 0
	if res.skipped {
		d.ack(jobs) // a no-op: they were dropped
		if probe {
			ep.probing = false // the next post probes
			ep.releaseProbe()
		}
		if l.q.len() > 0 {
			ep.push(l)
		} else {
			l.scheduled = false
			delete(ep.lanes, l.key)
		}
		return
	}
	ok := !res.refused()
	if !ok {
		d.log.Warn("web hook delivery refused; kept as a dead letter", "url", ep.url, "status", res.status, "events", len(jobs))
	}
	// Those dropped while they were posted are counted as dropped, not
	// here.
	for acked := d.ack(jobs); len(acked) > 0; {
		n := jobRun(acked)
		if c := ep.counters(acked[0].event); ok {
			c.delivered.Add(uint64(n))
		} else {
			c.failed.Add(uint64(n))
		}
		acked = acked[n:]
	}
	ep.fails = 0
	if probe || !ep.openUntil.IsZero() {
		ep.probing = false
		ep.openUntil = time.Time{}
		ep.down.Store(false)
		if ep.timer != nil {
			ep.timer.Stop()
		}
		for _, p := range ep.parked {
			ep.push(p)
		}
		ep.parked = nil
		ep.cond.Broadcast()
	}
	if l.q.len() > 0 {
		ep.push(l)
	} else {
		l.scheduled = false
		delete(ep.lanes, l.key)
	}
}

// open opens the breaker for cool: until then no lane posts; then one lane
// probes. ep.mu must be held.
func (ep *endpoint) open(cool time.Duration) {
	ep.openUntil = time.Now().Add(cool)
	ep.down.Store(true)
	if ep.timer != nil {
		ep.timer.Stop()
	}
	ep.timer = labelledAfter(cool, func() {
		ep.mu.Lock()
		defer ep.mu.Unlock()
		ep.releaseProbe()
	})
}

// releaseProbe makes one parked lane ready to probe the endpoint, unless a
// probe is under way. ep.mu must be held.
func (ep *endpoint) releaseProbe() {
	if !ep.closed && !ep.probing && len(ep.parked) > 0 {
		l := ep.parked[0]
		ep.parked[0] = nil
		ep.parked = ep.parked[1:]
		ep.push(l)
	}
}

// close stops ep's workers and timers.
func (ep *endpoint) close() {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.closed = true
	if ep.timer != nil {
		ep.timer.Stop()
	}
	for _, l := range ep.lanes {
		if l.timer != nil {
			l.timer.Stop()
		}
	}
	ep.cond.Broadcast()
}

// backoff is the delay before retry number attempt (1, 2, ...): min doubled
// per attempt up to max, with jitter taking it down by up to a half.
func backoff(lo, hi time.Duration, attempt int) time.Duration {
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	if half := int64(d / 2); half > 0 {
		d -= time.Duration(rand.Int64N(half + 1))
	}
	return d
}

// result is the outcome of one POST.
type result struct {
	skipped    bool // nothing posted: every job was dropped meanwhile
	status     int  // 0 = no response
	retry      bool
	retryAfter time.Duration
	err        error
}

// refused reports whether the endpoint refused the request for good: the
// jobs become dead letters (work) and are not posted again.
func (r result) refused() bool {
	return !r.retry && !r.skipped && (r.status < 200 || r.status >= 300)
}

// errClosed marks a request cut short by Stop.
var errClosed = errors.New("dispatcher stopped")

// post sends jobs (one, or a batch as a JSON array) to ep.
func (ep *endpoint) post(jobs []*job) result {
	d := ep.d
	inFlight := func(sign int64) {
		for run := jobs; len(run) > 0; {
			n := jobRun(run)
			ep.counters(run[0].event).inFlight.Add(sign * int64(n))
			run = run[n:]
		}
	}
	inFlight(1)
	defer inFlight(-1)
	pb := newPooledBody()
	defer pb.release()
	body, first, err := d.requestBody(*pb.buf, jobs, ep.batch.MaxSize > 0)
	*pb.buf = body
	if err != nil {
		d.log.Error("web hook: cannot read a pending event from the outbox; retrying", "url", ep.url, "err", err)
		return result{retry: true, err: err}
	}
	if first == nil {
		return result{skipped: true} // every one was dropped meanwhile
	}
	ctx, cancel := context.WithTimeout(d.ctx, d.o.RequestTimeout)
	defer cancel()
	open := pb.reader
	if len(body) <= inMemoryBody {
		b := bytes.Clone(body)
		body, open = b, func() io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }
	}
	req, err := newRequest(ctx, ep.url, ep.headers, first.id(), body, open, d.o.Signer, time.Now())
	if err != nil {
		return result{err: err} // a bad URL cannot get better: dead letter
	}
	client := d.client
	if ep.batch.MaxSize > 0 {
		client = d.batchClient
	}
	resp, err := client.Do(req)
	if err != nil {
		if d.ctx.Err() != nil {
			err = errClosed
		}
		return result{retry: true, err: err}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return classify(resp.StatusCode, resp.Header.Get("Retry-After"), time.Now())
}

// classify maps a response status to an outcome: 2xx delivered; 408, 429
// and 5xx retried (after Retry-After when given); any other a permanent
// failure.
func classify(status int, retryAfter string, now time.Time) result {
	r := result{status: status}
	switch {
	case status >= 200 && status < 300:
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		r.retry = true
		r.retryAfter = parseRetryAfter(retryAfter, now)
		r.err = fmt.Errorf("status %d", status)
	default:
		r.err = fmt.Errorf("status %d", status)
	}
	return r
}

// parseRetryAfter reads a Retry-After value: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(min(s, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// requestBody appends to b what posting jobs sends: the one body, or for a
// batch the bodies as a JSON array. A job dropped from the outbox
// meanwhile (when it was full) is left out; first is the first job posted,
// nil if none is left.
func (d *Dispatcher) requestBody(b []byte, jobs []*job, batch bool) (body []byte, first *job, err error) {
	if !batch {
		j := jobs[0]
		b, err := d.appendBody(b, j)
		if err != nil {
			if j.done.Load() {
				return b, nil, nil
			}
			return b, nil, err
		}
		return b, j, nil
	}
	n := 2
	for _, j := range jobs {
		n += int(j.size) + 1 // the stored record, about its JSON body's size; a pooled b has room already
	}
	b = append(slices.Grow(b, n), '[')
	recs := d.readBack(jobs)
	for i, j := range jobs {
		mark := len(b)
		if first != nil {
			b = append(b, ',')
		}
		if recs != nil && j.body == nil {
			b, err = d.appendStoredBody(b, j, recs[i].rec, recs[i].err)
		} else {
			b, err = d.appendBody(b, j)
		}
		if err != nil {
			if j.done.Load() {
				b = b[:mark]
				continue
			}
			return b, nil, err
		}
		if first == nil {
			first = j
		}
	}
	if first == nil {
		return b, nil, nil
	}
	return append(b, ']'), first, nil
}

// newRequest builds the POST of body to url, read through open (once per
// attempt, as the transport may retry): the configured headers, a JSON
// content type (always, as in EMQX 4), the event id as Idempotency-Key and
// webhook-id, and the Standard Webhooks signature when s is set.
func newRequest(ctx context.Context, url string, headers map[string]string, id string, body []byte, open func() io.ReadCloser, s *Signer, now time.Time) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	req.Body, req.ContentLength = open(), int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return open(), nil }
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", id)
	req.Header.Set("Webhook-Id", id)
	if s != nil {
		ts := now.Unix()
		req.Header.Set("Webhook-Timestamp", strconv.FormatInt(ts, 10))
		req.Header.Set("Webhook-Signature", s.Sign(id, ts, body))
	}
	return req, nil
}

// describe says what went wrong with an attempt, for Stats.
func describe(res result) string {
	if res.status == 0 && res.err != nil {
		return res.err.Error()
	}
	return fmt.Sprintf("HTTP %d", res.status)
}
