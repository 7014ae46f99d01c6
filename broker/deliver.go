package broker

import (
	"sync"
	"time"

	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/mqtt"
)

// encCache holds the encodings of one message that subscribers share when
// they need nothing of their own (no subscription identifier, no topic
// alias, no DUP): the PUBLISH is encoded once per variant (protocol family ×
// QoS × retain flag) and only the packet id is patched per subscriber.
//
// Caches come from encPool and their buffers from writePool: route takes
// one per message, and a fan-in profile had the cache itself (which
// escapes through the delivery) and the slice headers handed back to the
// pool as a fifth of the broker's CPU, in allocation and collection.
type encCache struct {
	buf [2][3][2]*[]byte // from writePool; nil until that variant is encoded
	off [2][3][2]int
}

var encPool = sync.Pool{New: func() any { return new(encCache) }}

// release returns the cached encodings to writePool and e to encPool.
func (e *encCache) release() {
	for v := range e.buf {
		for q := range e.buf[v] {
			for r := range e.buf[v][q] {
				if bp := e.buf[v][q][r]; bp != nil {
					if cap(*bp) <= maxPooledWrite {
						*bp = (*bp)[:0]
						writePool.Put(bp)
					}
					e.buf[v][q][r] = nil
				}
			}
		}
	}
	encPool.Put(e)
}

// expiryLeft returns the seconds of message expiry left at now, rounded up,
// for the v5 Message Expiry Interval sent on [MQTT-3.3.2-6].
func expiryLeft(m *message, now time.Time) uint32 {
	left := m.expiry.Sub(now)
	secs := (left + time.Second - 1) / time.Second
	if secs < 1 {
		secs = 1
	}
	return uint32(secs)
}

// publishPacket builds the PUBLISH for message m as seen by a client of
// version v.
func publishPacket(m *message, v mqtt.Version, qos byte, retain bool, now time.Time) mqtt.Publish {
	p := mqtt.Publish{QoS: qos, Retain: retain, Topic: m.topic, Payload: m.payload}
	if v == mqtt.V5 {
		if m.props != nil {
			p.Props = *m.props
		}
		if !m.expiry.IsZero() {
			p.Props.MessageExpiry = expiryLeft(m, now)
			p.Props.Set(mqtt.PropMessageExpiry)
		}
	}
	return p
}

// writePublish encodes d for this connection with packet id pid and queues
// it. It returns false when the message was not sent: expired, larger than
// the client's Maximum Packet Size, or the connection is gone. Session lock
// held.
func (c *conn) writePublish(d delivery, pid uint16, dup bool) bool {
	b := c.b
	m := d.msg
	var now time.Time // only read for messages that expire
	if !m.expiry.IsZero() {
		now = time.Now()
		if m.expired(now) {
			// [MQTT-3.3.2-5] an expired message is not delivered.
			b.m.droppedExpired.Add(1)
			c.sess.onDropped(m, "expired")
			return false
		}
	}
	vi := 0
	if c.version == mqtt.V5 {
		vi = 1
	}
	ri := 0
	if d.retain {
		ri = 1
	}
	var pkt []byte
	var bp *[]byte
	shared := d.enc != nil && !dup && len(d.subIDs) == 0 && c.clientAliasMax == 0
	if shared {
		enc := d.enc
		if enc.buf[vi][d.qos][ri] == nil {
			p := publishPacket(m, c.version, d.qos, d.retain, now)
			if d.qos > 0 {
				p.PacketID = 1 // patched below
			}
			nb := writePool.Get().(*[]byte)
			out, off, err := mqtt.EncodePublish((*nb)[:0], &p, c.version)
			if err != nil {
				writePool.Put(nb)
				b.log.Error("encode publish", "err", err)
				return false
			}
			*nb = out
			enc.buf[vi][d.qos][ri], enc.off[vi][d.qos][ri] = nb, off
		}
		pkt = *enc.buf[vi][d.qos][ri]
		if off := enc.off[vi][d.qos][ri]; off >= 0 {
			pkt[off], pkt[off+1] = byte(pid>>8), byte(pid)
		}
	} else {
		p := publishPacket(m, c.version, d.qos, d.retain, now)
		p.Dup = dup
		p.PacketID = pid
		if c.version == mqtt.V5 {
			p.Props.SubscriptionIDs = d.subIDs
			if c.clientAliasMax > 0 {
				c.aliasTopic(&p)
			}
		}
		bp = writePool.Get().(*[]byte)
		out, _, err := mqtt.EncodePublish((*bp)[:0], &p, c.version)
		if err != nil {
			writePool.Put(bp)
			b.log.Error("encode publish", "err", err)
			return false
		}
		pkt = out
		*bp = out
	}
	if c.clientMaxPacket > 0 && len(pkt) > int(c.clientMaxPacket) {
		// [MQTT-3.1.2-24] never send a packet larger than the client allows.
		b.m.droppedTooLarge.Add(1)
		c.sess.onDropped(m, "too_large")
		if bp != nil {
			writePool.Put(bp)
		}
		return false
	}
	var ok bool
	if s := c.sess; (s != nil && s.persisted && d.qos == 2) || c.outWait.Load() > 0 {
		// Exactly once across a crash: a QoS 2 PUBLISH to a persistent
		// session goes out only once its entry is durable (after a
		// restart it is resent with its packet id, which the client
		// recognises), and only with the publisher's PUBREC, after the
		// record that makes a resent PUBLISH a duplicate.
		ok = c.writeHeld(pkt, d.pc)
	} else {
		ok = c.write(pkt)
	}
	if bp != nil {
		*bp = (*bp)[:0]
		writePool.Put(bp)
	}
	if !ok {
		return false
	}
	b.m.publishSent.Add(1)
	b.m.msgSent.Add(1)
	b.m.msgQoSSent[d.qos].Add(1)
	b.m.msgDelivered.Add(1)
	if bus := b.opts.Events; bus.Wants(events.MessageDelivered) {
		r := events.MessageRef{Kind: events.MessageDelivered, Msg: m, ClientID: c.clientID}
		if c.sess != nil {
			r.Username, r.UsernameSet = c.sess.username, c.sess.usernameOK
		}
		bus.PublishMessage(&r)
	}
	return true
}

// aliasTopic applies an outbound topic alias [MQTT-3.3.2-7]: the first
// message on a topic carries the topic and a new alias, later ones only the
// alias, while the client's Topic Alias Maximum allows. Session lock held.
func (c *conn) aliasTopic(p *mqtt.Publish) {
	if a, ok := c.aliasOut[p.Topic]; ok {
		p.Props.TopicAlias = a
		p.Props.Set(mqtt.PropTopicAlias)
		p.Topic = ""
		return
	}
	if len(c.aliasOut) >= int(c.clientAliasMax) {
		return
	}
	if c.aliasOut == nil {
		c.aliasOut = make(map[string]uint16)
	}
	a := uint16(len(c.aliasOut) + 1)
	c.aliasOut[p.Topic] = a
	p.Props.TopicAlias = a
	p.Props.Set(mqtt.PropTopicAlias)
}

// Fields returns m's fields as an event's (events.Message): a message is
// handed to the bus by reference (events.MessageRef), and an event is built
// from it only for a subscriber that needs one.
func (m *message) Fields() events.MessageFields {
	return events.MessageFields{Topic: m.topic, Payload: m.payload, QoS: m.qos, Retain: m.retain,
		FromClientID: m.from, FromUsername: m.fromUser, FromUserSet: m.userSet, MessageID: m.id, MessageTime: m.created}
}

// Topic is m's topic (events.Message).
func (m *message) Topic() string { return m.topic }

// Size is the bytes of m's topic and payload (events.Message).
func (m *message) Size() int { return len(m.topic) + len(m.payload) }
