package main

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqgate/mqgate/bench/latency"
	"github.com/mqgate/mqgate/bench/wire"
)

// errLoss marks a run in which acknowledged QoS 1 messages never arrived.
var errLoss = errors.New("messages lost")

// run holds the connections and shared state of one message scenario.
type run struct {
	cfg     *config
	m       meter
	g       *gate
	done    chan struct{} // closed when publishers must stop
	stopped sync.Once
	closed  sync.Once
	errs    errOnce
	closing atomic.Bool
	win     *timeWindow
	subs    []*subscriber
	pubs    []*client
	readers sync.WaitGroup
	writers sync.WaitGroup
	stall   stallWatch
}

func newRun(cfg *config, factor, window, limit uint64) *run {
	return &run{
		cfg:  cfg,
		m:    meter{pid: cfg.pid},
		g:    &gate{factor: factor, window: window, limit: limit},
		done: make(chan struct{}),
		win:  newTimeWindow(),
	}
}

func (r *run) clientID(role string, i int) string {
	return fmt.Sprintf("mqload-%d-%s-%s%d", os.Getpid(), r.cfg.scenario, role, i)
}

// addSubscriber connects and subscribes a receiver, then starts its reader.
func (r *run) addSubscriber(i int, filter string, qos byte, hist *latency.Histogram, track *tracker) error {
	c, err := dialSession(r.cfg.tr, r.cfg.addr, r.clientID("sub", i), uint16(r.cfg.keepAlive), !r.cfg.persistent)
	if err != nil {
		return err
	}
	if err := c.subscribe(filter, qos); err != nil {
		c.disconnect()
		return err
	}
	s := &subscriber{c: c, g: r.g, hist: hist, win: r.win, track: track, closing: &r.closing}
	r.subs = append(r.subs, s)
	r.readers.Add(1)
	go func() {
		defer r.readers.Done()
		s.run(&r.errs)
	}()
	return nil
}

func (r *run) dialPublisher(i int) (*client, error) {
	c, err := dial(r.cfg.tr, r.cfg.addr, r.clientID("pub", i), uint16(r.cfg.keepAlive))
	if err != nil {
		return nil, err
	}
	r.pubs = append(r.pubs, c)
	return c, nil
}

// startWriter runs a publisher loop on its own goroutine.
func (r *run) startWriter(f func() error) {
	r.writers.Add(1)
	go func() {
		defer r.writers.Done()
		if err := f(); err != nil && !r.closing.Load() {
			r.errs.set(fmt.Errorf("publisher: %w", err))
			r.stop()
		}
	}()
}

func (r *run) stop() {
	r.stopped.Do(func() {
		r.g.stop.Store(true)
		close(r.done)
	})
}

// sleep waits for d, watching for errors and stalls, and returns early when
// the count bound is reached.
func (r *run) sleep(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if err := r.errs.get(); err != nil {
			return err
		}
		now := time.Now()
		if !now.Before(deadline) || r.g.sent.Load() >= r.g.limit {
			return nil
		}
		r.stall.check(r.g, now)
		time.Sleep(min(20*time.Millisecond, deadline.Sub(now)))
	}
}

// measure runs the warm-up, then the measured interval over the gate's
// delivery count, then stops the publishers and waits for them.
func (r *run) measure(res *result) error {
	if err := r.sleep(r.cfg.warmup); err != nil {
		return err
	}
	s0, err := r.m.snap(r.g.recv.Load())
	if err != nil {
		return err
	}
	r.win.start.Store(nowNS())
	err = r.sleep(r.cfg.duration)
	s1, serr := r.m.snap(r.g.recv.Load())
	r.win.end.Store(nowNS())
	r.stop()
	r.writers.Wait()
	if err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	res.measure(s0, s1)
	return nil
}

// drain waits until received catches up with expected, or until nothing has
// arrived for stallTimeout, or at most 10 s.
func (r *run) drain(expected, received func() uint64) {
	deadline := time.Now().Add(10 * time.Second)
	last, since := received(), time.Now()
	for received() < expected() && time.Now().Before(deadline) && r.errs.get() == nil {
		time.Sleep(5 * time.Millisecond)
		if now := received(); now != last {
			last, since = now, time.Now()
		} else if time.Since(since) > stallTimeout {
			return
		}
	}
}

// close disconnects everything and waits for the readers to end. It may be
// called more than once.
func (r *run) close() {
	r.closed.Do(func() {
		r.closing.Store(true)
		r.stop()
		r.writers.Wait()
		for _, c := range r.pubs {
			c.disconnect()
		}
		for _, s := range r.subs {
			s.c.disconnect()
		}
		r.readers.Wait()
	})
}

// runThroughput is fanin and fanout: nPub QoS 0 publishers on topic(i), nSub
// subscribers on filter, the gate keeping at most window deliveries
// outstanding.
func runThroughput(cfg *config, res *result, nPub, nSub int, topic func(i int) string, filter string) error {
	r := newRun(cfg, uint64(nSub), cfg.window, cfg.count)
	defer r.close()
	for i := 0; i < nSub; i++ {
		if err := r.addSubscriber(i, filter, 0, nil, nil); err != nil {
			return err
		}
	}
	// Batches small enough that all publishers together stay within the
	// window, large enough to make each write system call carry many packets.
	batch := max(1, min(256, cfg.window/uint64(nSub)/uint64(nPub)/4))
	for i := 0; i < nPub; i++ {
		c, err := r.dialPublisher(i)
		if err != nil {
			return err
		}
		t := topic(i)
		payload := make([]byte, cfg.payload)
		r.startWriter(func() error { return publishQoS0(c, r.g, t, uint32(i), payload, batch) })
	}
	err := r.measure(res)
	r.drain(func() uint64 { return r.g.sent.Load() * r.g.factor }, r.g.recv.Load)
	res.Sent = r.g.sent.Load()
	res.Expected = res.Sent * r.g.factor
	res.Received = r.g.recv.Load()
	res.Lost = int64(res.Expected) - int64(res.Received)
	res.Stalls = r.stall.stalls
	return err
}

// publishQoS0 writes batches of QoS 0 PUBLISH packets as fast as the gate
// allows, one write system call per batch.
func publishQoS0(c *client, g *gate, topic string, idx uint32, payload []byte, batch uint64) error {
	size := wire.PublishLen(len(topic), 0, len(payload))
	var seq uint32
	for g.acquire(batch) {
		for i := uint64(0); i < batch; i++ {
			if len(payload) >= stampLen {
				putStamp(payload, 0, idx, seq)
			}
			seq++
			if c.w.Available() < size {
				if err := c.w.Flush(); err != nil {
					return err
				}
			}
			c.w.Write(wire.AppendPublish(c.w.AvailableBuffer(), topic, 0, 0, payload))
		}
		if err := c.w.Flush(); err != nil {
			return err
		}
	}
	return c.w.Flush()
}

func runFanin(cfg *config, res *result) error {
	return runThroughput(cfg, res, cfg.pubs, 1, func(i int) string { return fmt.Sprintf("bench/%d/x", i) }, "bench/+/x")
}

func runFanout(cfg *config, res *result) error {
	return runThroughput(cfg, res, 1, cfg.subs, func(int) string { return "bench/fanout" }, "bench/fanout")
}

// ackPublisher is a QoS 1 publisher with at most a window of unacknowledged
// messages; its reader goroutine consumes the PUBACKs.
type ackPublisher struct {
	c        *client
	idx      uint32
	inflight atomic.Int64
	acked    atomic.Uint64
	notify   chan struct{}
	seq      uint32 // publishes written; owned by run until it returns
}

func (p *ackPublisher) readAcks(errs *errOnce, closing *atomic.Bool) {
	var n int64
	for {
		pk, err := p.c.rd.Next()
		if err != nil {
			if !closing.Load() {
				errs.set(fmt.Errorf("publisher %d: %w", p.idx, err))
			}
			return
		}
		if pk.Type == wire.TypePuback {
			if _, err := wire.ParseID(pk.Body); err != nil {
				errs.set(fmt.Errorf("publisher %d: %w", p.idx, err))
				return
			}
			n++
		}
		if p.c.rd.Buffered() == 0 && n > 0 {
			p.inflight.Add(-n)
			p.acked.Add(uint64(n))
			n = 0
			select {
			case p.notify <- struct{}{}:
			default:
			}
		}
	}
}

func (p *ackPublisher) run(g *gate, done <-chan struct{}, topic string, payload []byte, window int64) error {
	size := wire.PublishLen(len(topic), 1, len(payload))
	var id uint16
	for {
		free := window - p.inflight.Load()
		if free <= 0 {
			select {
			case <-p.notify:
			case <-done:
				return p.c.w.Flush()
			}
			continue
		}
		if !g.acquire(uint64(free)) {
			return p.c.w.Flush()
		}
		p.inflight.Add(free)
		for i := int64(0); i < free; i++ {
			id++
			if id == 0 {
				id = 1 // QoS 1 packets need a non-zero identifier [MQTT-2.3.1-1]
			}
			putStamp(payload, nowNS(), p.idx, p.seq)
			p.seq++
			if p.c.w.Available() < size {
				if err := p.c.w.Flush(); err != nil {
					return err
				}
			}
			p.c.w.Write(wire.AppendPublish(p.c.w.AvailableBuffer(), topic, 1, id, payload))
		}
		if err := p.c.w.Flush(); err != nil {
			return err
		}
	}
}

// runQoS1: cfg.pubs QoS 1 publishers with cfg.inflight unacknowledged
// messages each, one QoS 1 subscriber that acknowledges, every message
// tracked so that loss and duplication are counted.
func runQoS1(cfg *config, res *result) error {
	r := newRun(cfg, 1, cfg.window, cfg.count)
	defer r.close()
	var hist latency.Histogram
	// Bitmaps large enough for any one publisher sending the whole bound.
	track := newTracker(cfg.pubs, cfg.count+uint64(cfg.pubs*cfg.inflight)+1)
	if err := r.addSubscriber(0, "bench/q/+", 1, &hist, track); err != nil {
		return err
	}
	pubs := make([]*ackPublisher, cfg.pubs)
	for i := range pubs {
		c, err := r.dialPublisher(i)
		if err != nil {
			return err
		}
		p := &ackPublisher{c: c, idx: uint32(i), notify: make(chan struct{}, 1)}
		pubs[i] = p
		r.readers.Add(1)
		go func() {
			defer r.readers.Done()
			p.readAcks(&r.errs, &r.closing)
		}()
		topic := fmt.Sprintf("bench/q/%d", i)
		payload := make([]byte, max(cfg.payload, stampLen))
		r.startWriter(func() error { return p.run(r.g, r.done, topic, payload, int64(cfg.inflight)) })
	}
	err := r.measure(res)
	acked := func() uint64 {
		var n uint64
		for _, p := range pubs {
			n += p.acked.Load()
		}
		return n
	}
	// Every publish is acknowledged, then every one is delivered.
	r.drain(r.g.sent.Load, acked)
	r.drain(r.g.sent.Load, r.g.recv.Load)
	r.close() // the subscriber's goroutine has ended: its tracker may be read
	res.Sent = r.g.sent.Load()
	res.Expected = res.Sent
	res.Received = r.g.recv.Load()
	res.Dup = track.dup
	res.Stalls = r.stall.stalls
	res.Lost = int64(res.Sent) - int64(track.unique)
	res.Latency = figures(&hist)
	if err != nil {
		return err
	}
	if unacked := res.Sent - acked(); unacked > 0 {
		return fmt.Errorf("%d publishes never acknowledged: %w", unacked, errLoss)
	}
	if res.Lost != 0 || track.invalid > 0 {
		sent := make([]uint32, len(pubs))
		for i, p := range pubs {
			sent[i] = p.seq
		}
		return fmt.Errorf("%d of %d acknowledged messages not delivered (first missing: %s), %d malformed payloads: %w",
			res.Lost, res.Sent, track.missing(sent, 5), track.invalid, errLoss)
	}
	return nil
}

// runLatency: one QoS 0 publisher at a fixed rate, one subscriber recording
// publish→delivery latency.
func runLatency(cfg *config, res *result) error {
	// The window defaults to a second's worth of messages: enough never to
	// hold back a healthy broker, bounded for one that stops delivering.
	r := newRun(cfg, 1, cfg.window, cfg.count)
	defer r.close()
	var hist latency.Histogram
	if err := r.addSubscriber(0, "bench/lat", 0, &hist, nil); err != nil {
		return err
	}
	c, err := r.dialPublisher(0)
	if err != nil {
		return err
	}
	payload := make([]byte, max(cfg.payload, stampLen))
	r.startWriter(func() error { return publishPaced(c, r.g, "bench/lat", payload, cfg.rate) })
	err = r.measure(res)
	r.drain(r.g.sent.Load, r.g.recv.Load)
	r.close()
	res.Sent = r.g.sent.Load()
	res.Expected = res.Sent
	res.Received = r.g.recv.Load()
	res.Lost = int64(res.Sent) - int64(res.Received)
	res.Stalls = r.stall.stalls
	res.Latency = figures(&hist)
	return err
}

// publishPaced sends rate messages per second, each stamped just before it
// is written and flushed at once unless the next one is already due.
func publishPaced(c *client, g *gate, topic string, payload []byte, rate int) error {
	interval := int64(time.Second) / int64(rate)
	size := wire.PublishLen(len(topic), 0, len(payload))
	next := nowNS()
	var seq uint32
	for !g.stop.Load() {
		now := nowNS()
		if d := next - now; d > 0 {
			time.Sleep(time.Duration(d))
			continue
		}
		if now-next > int64(time.Second) {
			next = now // far behind (the process was descheduled): do not burst
		}
		for next <= now {
			if !g.acquire(1) {
				return c.w.Flush()
			}
			putStamp(payload, nowNS(), 0, seq)
			seq++
			if c.w.Available() < size {
				if err := c.w.Flush(); err != nil {
					return err
				}
			}
			c.w.Write(wire.AppendPublish(c.w.AvailableBuffer(), topic, 0, 0, payload))
			next += interval
		}
		if err := c.w.Flush(); err != nil {
			return err
		}
	}
	return c.w.Flush()
}
