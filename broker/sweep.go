package broker

import (
	"time"

	"github.com/mqgate/mqgate/mqtt"
)

// startSweeper starts the housekeeping loop: it resends unacknowledged
// QoS 1/2 messages to connected 3.1.x clients after retry_interval, and
// forgets inbound QoS 2 packet ids whose PUBREL did not come within
// await_rel_timeout.
func (b *Broker) startSweeper() {
	every := time.Second
	if r := b.opts.RetryInterval; r > 0 && r/2 < every {
		every = max(r/2, 10*time.Millisecond)
	}
	b.goRun(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-b.ctx.Done():
				return
			case now := <-t.C:
				b.sweep(now)
			}
		}
	})
}

func (b *Broker) sweep(now time.Time) {
	for _, s := range b.sessionList() {
		s.sweep(now)
	}
}

// sweep does one session's housekeeping.
func (s *session) sweep(now time.Time) {
	b := s.b
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := b.opts.AwaitRelTimeout; t > 0 {
		for id, at := range s.awaitRel {
			if now.Sub(at) > t {
				delete(s.awaitRel, id)
				if s.persisted {
					s.unlogRel(id)
				}
			}
		}
	}
	// MQTT 5 forbids resending except on reconnect [MQTT-4.4.0-1]; 3.1.1
	// allows a retry on the same connection.
	r := b.opts.RetryInterval
	if r <= 0 || s.conn == nil || s.version == mqtt.V5 {
		return
	}
	for _, om := range s.inflight {
		if now.Sub(om.sent) < r {
			continue
		}
		om.sent = now
		if om.state == awaitPubcomp {
			s.conn.writeRel(&mqtt.Ack{PacketType: mqtt.PUBREL, PacketID: om.pid})
			continue
		}
		s.conn.writePublish(delivery{msg: om.msg, qos: om.qos, retain: om.retain, subIDs: om.subIDs}, om.pid, true)
	}
}
