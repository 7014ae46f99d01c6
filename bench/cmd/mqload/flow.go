package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqgate/mqgate/bench/latency"
	"github.com/mqgate/mqgate/bench/wire"
)

// epoch is the origin of the send timestamps carried in payloads. time.Since
// reads the monotonic clock, so timestamps survive wall-clock steps.
var epoch = time.Now()

func nowNS() int64 { return int64(time.Since(epoch)) }

// Payload layout, little-endian: send time in ns since epoch (8 bytes),
// publisher index (4), sequence number from 0 (4). Longer payloads are padded.
const stampLen = 16

func putStamp(p []byte, ts int64, pub, seq uint32) {
	binary.LittleEndian.PutUint64(p, uint64(ts))
	binary.LittleEndian.PutUint32(p[8:], pub)
	binary.LittleEndian.PutUint32(p[12:], seq)
}

func readStamp(p []byte) (ts int64, pub, seq uint32, ok bool) {
	if len(p) < stampLen {
		return 0, 0, 0, false
	}
	return int64(binary.LittleEndian.Uint64(p)), binary.LittleEndian.Uint32(p[8:]), binary.LittleEndian.Uint32(p[12:]), true
}

// gate is the flow control shared by publishers and subscribers: publishers
// reserve messages before writing them and wait while more than window
// deliveries are outstanding, so that no broker is made to queue without
// bound; subscribers add what they received.
type gate struct {
	sent   atomic.Uint64 // publishes reserved (and then written)
	recv   atomic.Uint64 // deliveries counted by subscribers
	credit atomic.Uint64 // deliveries written off after a stall
	stop   atomic.Bool

	factor uint64 // deliveries per publish (the number of subscribers)
	window uint64 // outstanding deliveries allowed
	limit  uint64 // publishes allowed in the whole run
}

// acquire reserves n publishes, waiting while the window is full. It reports
// false once the run is stopping or the count bound is reached.
func (g *gate) acquire(n uint64) bool {
	for {
		if g.stop.Load() {
			return false
		}
		s := g.sent.Load()
		if s >= g.limit {
			return false
		}
		if (s+n)*g.factor <= g.recv.Load()+g.credit.Load()+g.window {
			g.sent.Add(n)
			return true
		}
		// A full window is normal at saturation; the 100 µs nap is far
		// below the time the broker needs to drain a window.
		time.Sleep(100 * time.Microsecond)
	}
}

// outstanding reports deliveries expected but neither received nor written off.
func (g *gate) outstanding() int64 {
	return int64(g.sent.Load()*g.factor) - int64(g.recv.Load()) - int64(g.credit.Load())
}

// stallTimeout is how long deliveries may stop while some are outstanding
// before they are written off as dropped (a broker may drop QoS 0 messages
// by policy; the run must go on and report them as lost).
const stallTimeout = time.Second

// stallWatch notices a lack of progress.
type stallWatch struct {
	last   uint64
	since  time.Time
	stalls int
}

// check writes the outstanding deliveries off when nothing arrived for
// stallTimeout, and reports whether it did.
func (w *stallWatch) check(g *gate, now time.Time) bool {
	recv := g.recv.Load()
	if recv != w.last || w.since.IsZero() {
		w.last, w.since = recv, now
		return false
	}
	if now.Sub(w.since) < stallTimeout {
		return false
	}
	w.since = now
	if out := g.outstanding(); out > 0 {
		g.credit.Add(uint64(out))
		w.stalls++
		return true
	}
	return false
}

// errOnce keeps the first error of many goroutines.
type errOnce struct {
	mu  sync.Mutex
	err error
}

func (e *errOnce) set(err error) {
	e.mu.Lock()
	if e.err == nil {
		e.err = err
	}
	e.mu.Unlock()
}

func (e *errOnce) get() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// timeWindow is the interval of send times whose latency is recorded: the
// measured interval, excluding warm-up and drain.
type timeWindow struct{ start, end atomic.Int64 }

func newTimeWindow() *timeWindow {
	w := &timeWindow{}
	w.start.Store(math.MaxInt64)
	w.end.Store(math.MaxInt64)
	return w
}

func (w *timeWindow) contains(ts int64) bool { return ts >= w.start.Load() && ts < w.end.Load() }

// tracker records which (publisher, sequence) pairs arrived, to tell loss
// from duplication. It belongs to one subscriber goroutine.
type tracker struct {
	seen    [][]uint64 // one bitmap per publisher
	unique  uint64
	dup     uint64
	invalid uint64 // payloads without a valid stamp
}

func newTracker(pubs int, perPub uint64) *tracker {
	t := &tracker{seen: make([][]uint64, pubs)}
	for i := range t.seen {
		t.seen[i] = make([]uint64, perPub/64+1)
	}
	return t
}

func (t *tracker) mark(pub, seq uint32) {
	if int(pub) >= len(t.seen) || int(seq>>6) >= len(t.seen[pub]) {
		t.invalid++
		return
	}
	word, bit := &t.seen[pub][seq>>6], uint64(1)<<(seq&63)
	if *word&bit != 0 {
		t.dup++
		return
	}
	*word |= bit
	t.unique++
}

// missing lists up to n (publisher, sequence) pairs below sent[publisher]
// that never arrived, as "p/seq" strings.
func (t *tracker) missing(sent []uint32, n int) string {
	var out []string
	for p, upto := range sent {
		for seq := uint32(0); seq < upto && len(out) < n; seq++ {
			if p >= len(t.seen) || int(seq>>6) >= len(t.seen[p]) || t.seen[p][seq>>6]&(1<<(seq&63)) == 0 {
				out = append(out, fmt.Sprintf("%d/%d", p, seq))
			}
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, " ")
}

// subscriber is a receiving connection: it counts deliveries into the gate
// and optionally records latency, tracks loss and acknowledges QoS 1.
type subscriber struct {
	c       *client
	g       *gate
	hist    *latency.Histogram // nil: no latency
	win     *timeWindow
	track   *tracker // nil: count only
	closing *atomic.Bool
}

// run is the connection's only reader. It publishes its count to the gate
// and flushes its PUBACKs whenever it has consumed everything received, that
// is just before it would block.
func (s *subscriber) run(errs *errOnce) {
	var n uint64
	parse := s.hist != nil || s.track != nil
	for {
		p, err := s.c.rd.Next()
		if err != nil {
			s.g.recv.Add(n)
			if !s.closing.Load() {
				errs.set(fmt.Errorf("subscriber: %w", err))
			}
			return
		}
		if p.Type != wire.TypePublish {
			continue
		}
		n++
		if parse {
			pub, err := wire.ParsePublish(p.Flags, p.Body)
			if err != nil {
				errs.set(fmt.Errorf("subscriber: %w", err))
				return
			}
			if pub.QoS == 1 {
				// A QoS 1 receiver acknowledges with a PUBACK carrying the
				// same packet identifier [MQTT-4.3.2-2].
				if s.c.w.Available() < 4 {
					if err := s.c.w.Flush(); err != nil {
						errs.set(fmt.Errorf("subscriber: %w", err))
						return
					}
				}
				s.c.w.Write(wire.AppendPuback(s.c.w.AvailableBuffer(), pub.ID))
			}
			ts, pi, seq, ok := readStamp(pub.Payload)
			if s.track != nil {
				if ok {
					s.track.mark(pi, seq)
				} else {
					s.track.invalid++
				}
			}
			if s.hist != nil && ok && s.win.contains(ts) {
				s.hist.Record(nowNS() - ts)
			}
		}
		if s.c.rd.Buffered() == 0 || n >= 256 {
			s.g.recv.Add(n)
			n = 0
			if s.c.w.Buffered() > 0 && s.c.rd.Buffered() == 0 {
				if err := s.c.w.Flush(); err != nil {
					errs.set(fmt.Errorf("subscriber: %w", err))
					return
				}
			}
		}
	}
}
