package broker

import (
	"bytes"
	"errors"
	"sync"
	"time"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/broker/topics"
	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/mqtt"
	"github.com/mqgate/mqgate/store/wal"
)

// handlePublish handles an inbound PUBLISH: topic alias, limits,
// authorization, the QoS 2 duplicate check, retained store, routing and the
// acknowledgement.
func (c *conn) handlePublish(p *mqtt.Publish) error {
	b := c.b
	b.m.publishReceived.Add(1)
	b.m.msgReceived.Add(1)
	b.m.msgQoSReceived[p.QoS].Add(1)

	if c.version == mqtt.V5 && len(p.Props.SubscriptionIDs) > 0 {
		// [MQTT-3.3.4-6] a client never sends a Subscription Identifier.
		c.setStop(mqtt.ProtocolError, "protocol_error")
		return errStop
	}
	if c.version == mqtt.V5 && p.Props.Has(mqtt.PropTopicAlias) {
		a := p.Props.TopicAlias
		if a == 0 || a > b.opts.MaxTopicAlias {
			// [MQTT-3.3.2-9] [MQTT-3.3.2-10] alias out of range.
			c.setStop(mqtt.TopicAliasInvalid, "topic_alias_invalid")
			return errStop
		}
		if p.Topic == "" {
			t, ok := c.aliasIn[a]
			if !ok {
				c.setStop(mqtt.ProtocolError, "topic_alias_unknown")
				return errStop
			}
			p.Topic = t
		} else {
			if c.aliasIn == nil {
				c.aliasIn = make(map[uint16]string)
			}
			c.aliasIn[a] = p.Topic
		}
		p.Props.Clear(mqtt.PropTopicAlias)
	}
	if err := mqtt.ValidTopicName(p.Topic); err != nil || (b.opts.MaxTopicLevels > 0 && mqtt.TopicLevels(p.Topic) > b.opts.MaxTopicLevels) {
		b.m.publishError.Add(1)
		c.setStop(mqtt.TopicNameInvalid, "topic_name_invalid")
		return errStop
	}
	if p.QoS > b.opts.MaxQoS {
		// [MQTT-3.2.2-11] a QoS above Maximum QoS is answered with 0x9B.
		c.setStop(mqtt.QoSNotSupported, "qos_not_supported")
		return errStop
	}
	if p.Retain && !b.opts.RetainAvailable {
		// [MQTT-3.2.2-14]
		c.setStop(mqtt.RetainNotSupported, "retain_not_supported")
		return errStop
	}
	if p.QoS == 2 {
		s := c.sess
		s.mu.Lock()
		if _, dup := s.awaitRel[p.PacketID]; dup {
			// [MQTT-4.3.3-9] a resent QoS 2 PUBLISH is not delivered again.
			s.mu.Unlock()
			c.writeAck(mqtt.Ack{PacketType: mqtt.PUBREC, PacketID: p.PacketID}, false, nil)
			return nil
		}
		// 3.1.x has no Receive Maximum, so its clients cannot know ours:
		// their 65535 packet ids bound what awaits PUBREL.
		if c.version == mqtt.V5 && len(s.awaitRel) >= b.opts.ReceiveMaximum {
			s.mu.Unlock()
			// [MQTT-3.3.4-9] more QoS 2 in flight than our Receive Maximum.
			c.setStop(mqtt.ReceiveMaximumExceeded, "receive_maximum_exceeded")
			return errStop
		}
		s.mu.Unlock()
	}

	if !c.authorizePublish(p.Topic, p.QoS, p.Retain) {
		b.m.publishAuthErr.Add(1)
		if b.opts.ACLDenyDisconnect {
			c.setStop(mqtt.NotAuthorized, "not_authorized")
			return errStop
		}
		// v5 tells the publisher; 3.1.x has no way to, the message is dropped.
		switch p.QoS {
		case 1:
			c.writeAck(mqtt.Ack{PacketType: mqtt.PUBACK, PacketID: p.PacketID, ReasonCode: mqtt.NotAuthorized}, false, nil)
		case 2:
			c.writeAck(mqtt.Ack{PacketType: mqtt.PUBREC, PacketID: p.PacketID, ReasonCode: mqtt.NotAuthorized}, false, nil)
		}
		return nil
	}

	m := c.newMessage(p)
	// pc.logged is set when routing wrote to the log (a retained message,
	// an entry of a persistent session): the acknowledgement then waits
	// until the log says it is durable, and so do the QoS 2 PUBLISH
	// packets to persistent sessions that routing held in pc.
	// Without a store nothing is logged or held: no context to allocate.
	var pc *pubCtx
	if p.QoS > 0 && b.store != nil {
		pc = &pubCtx{}
	}
	n := b.route(m, pc)
	code := mqtt.Success
	if n == 0 && c.version == mqtt.V5 {
		code = mqtt.NoMatchingSubscribers
	}
	switch p.QoS {
	case 1:
		logged, held := pc.wait()
		c.writeAck(mqtt.Ack{PacketType: mqtt.PUBACK, PacketID: p.PacketID, ReasonCode: code}, logged, held)
	case 2:
		s := c.sess
		s.mu.Lock()
		if s.awaitRel == nil {
			s.awaitRel = make(map[uint16]time.Time)
		}
		now := time.Now()
		s.awaitRel[p.PacketID] = now
		if s.persisted {
			// After the message's own records: once this one is durable,
			// so are they, and a resent PUBLISH is known for a duplicate.
			s.logRel(p.PacketID, now)
			pc.logged = true
		}
		s.mu.Unlock()
		logged, held := pc.wait()
		c.writeAck(mqtt.Ack{PacketType: mqtt.PUBREC, PacketID: p.PacketID, ReasonCode: code}, logged, held)
	}
	return nil
}

// writeAck queues an acknowledgement of an inbound PUBLISH or PUBREL. When
// durable is set (what it acknowledges was written to the log) it is sent
// once the log says the write is durable, from the log's writer goroutine,
// without holding up the reader; an acknowledgement that follows one still
// waiting takes the same way, so that they go out in the order of the
// packets they answer [MQTT-4.6.0-2] [MQTT-4.6.0-3]. An acknowledgement
// whose write cannot become durable (the log is closed or failed) is never
// sent: the client sends the packet again. The callback takes conn.wmu
// only: the log's writer must never wait for a session lock, which a
// session may hold while its Write waits for the writer (MaxPending).
//
// held are the QoS 2 PUBLISH packets to persistent sessions that routing
// the acknowledged packet produced: they go out in the same callback, first.
//
// a is taken by value and encoded through its concrete type, so that an
// acknowledgement sent at once costs no allocation.
func (c *conn) writeAck(a mqtt.Ack, durable bool, held []heldWrite) {
	st := c.b.store
	if st == nil || (!durable && len(held) == 0 && c.ackWait.Load() == 0) {
		c.writeEncoded(a.PacketType, func(dst []byte) ([]byte, error) { return a.Encode(dst, c.version) })
		return
	}
	c.ackWait.Add(1)
	later := a // only this copy goes to the heap, with the callback
	err := st.Barrier(func() {
		releaseHeld(held, true)
		c.writePacket(&later)
		c.ackWait.Add(-1)
	})
	if err != nil {
		releaseHeld(held, false)
		c.ackWait.Add(-1)
		if !errors.Is(err, wal.ErrClosed) {
			c.b.log.Error("acknowledgement dropped: the durable state cannot be written", "client", c.clientID, "err", err)
		}
	}
}

// writeRel writes a PUBREL, after the connection's held PUBLISH packets
// if any (see writeHeld), so that a resent PUBLISH and PUBREL keep their
// order [MQTT-4.6.0-1]. Session lock held.
func (c *conn) writeRel(a *mqtt.Ack) {
	if c.outWait.Load() == 0 {
		c.writePacket(a)
		return
	}
	out, err := a.Encode(nil, c.version)
	if err != nil {
		c.b.log.Error("encode failed", "client", c.clientID, "type", a.Type(), "err", err)
		return
	}
	c.writeHeld(out, nil)
}

// pubCtx is what routing one inbound QoS 1/2 PUBLISH did that its
// acknowledgement must wait for. It exists only with a store.
type pubCtx struct {
	logged bool        // it wrote to the log
	held   []heldWrite // QoS 2 PUBLISH packets to send once that is durable
}

// wait returns what the acknowledgement waits for; nothing for a nil pc.
func (pc *pubCtx) wait() (logged bool, held []heldWrite) {
	if pc == nil {
		return false, nil
	}
	return pc.logged, pc.held
}

// heldWrite is an encoded PUBLISH waiting for the log before it goes to c.
type heldWrite struct {
	c   *conn
	pkt []byte
}

// releaseHeld sends (or, when send is false, drops) held packets.
func releaseHeld(held []heldWrite, send bool) {
	for _, h := range held {
		if send {
			h.c.write(h.pkt)
		}
		h.c.outWait.Add(-1)
	}
}

// writeHeld queues pkt (which it copies) to go out once every write to
// the log so far is durable: in pc's acknowledgement callback when pc is
// not nil, else in a callback of its own. Packets that follow one held
// take the same way, so that the connection's PUBLISH packets keep their
// order. Session lock held.
func (c *conn) writeHeld(pkt []byte, pc *pubCtx) bool {
	buf := bytes.Clone(pkt)
	c.outWait.Add(1)
	if pc != nil {
		pc.held = append(pc.held, heldWrite{c: c, pkt: buf})
		return true
	}
	err := c.b.store.Barrier(func() {
		c.write(buf)
		c.outWait.Add(-1)
	})
	if err != nil {
		c.outWait.Add(-1)
		return false
	}
	return true
}

// newMessage turns an inbound PUBLISH into a routed message.
func (c *conn) newMessage(p *mqtt.Publish) *message {
	now := time.Now()
	m := &message{
		id:      c.b.newMessageID(),
		topic:   p.Topic,
		payload: p.Payload,
		qos:     p.QoS,
		retain:  p.Retain,
		created: now,
		from:    c.clientID,
	}
	if c.infoSet {
		m.fromUser, m.userSet = c.info.username, c.info.usernameSet
	}
	if c.version == mqtt.V5 && !p.Props.Empty() {
		props := p.Props
		props.SubscriptionIDs = nil // [MQTT-3.3.4-6] ids are per subscriber
		props.Clear(mqtt.PropTopicAlias)
		if props.Has(mqtt.PropMessageExpiry) {
			m.expiry = now.Add(time.Duration(props.MessageExpiry) * time.Second)
			props.Clear(mqtt.PropMessageExpiry)
		}
		if !props.Empty() {
			m.props = &props
		}
	}
	return m
}

// handleAck handles PUBACK, PUBREC, PUBREL and PUBCOMP.
func (c *conn) handleAck(p *mqtt.Ack) error {
	if p.PacketType == mqtt.PUBREL {
		s := c.sess
		s.mu.Lock()
		_, ok := s.awaitRel[p.PacketID]
		delete(s.awaitRel, p.PacketID)
		logged := ok && s.persisted
		if logged {
			// Durable before PUBCOMP: a packet id still in the log after
			// a crash would make the client's next QoS 2 message with
			// that id look like a duplicate.
			s.unlogRel(p.PacketID)
		}
		s.mu.Unlock()
		code := mqtt.Success
		if !ok && c.version == mqtt.V5 {
			code = mqtt.PacketIDNotFound
		}
		// [MQTT-4.3.3-11] answer PUBREL with PUBCOMP.
		c.writeAck(mqtt.Ack{PacketType: mqtt.PUBCOMP, PacketID: p.PacketID, ReasonCode: code}, logged, nil)
		return nil
	}
	c.sess.ack(c, p)
	return nil
}

// matchPool recycles the slices Match fills.
var matchPool = sync.Pool{New: func() any { s := make([]topics.Sub, 0, 16); return &s }}

// publish routes m to every matching subscription, stores or clears it as
// a retained message, and returns the number of deliveries.
func (b *Broker) publish(m *message) int { return b.route(m, nil) }

// route is publish; it records in pc (when not nil) what it wrote to the
// log and the packets that wait for it.
func (b *Broker) route(m *message, pc *pubCtx) int {
	if m.retain && b.storeRetained(m) && pc != nil {
		pc.logged = true
	}
	if bus := b.opts.Events; !m.sys && bus.Wants(events.MessagePublish) {
		// The publication is when the broker got it: no second clock read
		// per message.
		bus.PublishMessage(&events.MessageRef{Kind: events.MessagePublish, Msg: m, ClientID: m.from, Time: m.created})
	}
	sp := matchPool.Get().(*[]topics.Sub)
	subs := b.index.Match(m.topic, m.from, (*sp)[:0])
	n := 0
	enc := encPool.Get().(*encCache)
	for i := range subs {
		sub := &subs[i]
		if sub.Client == nil {
			continue // merged into an earlier entry
		}
		if sub.Group == "" && m.from != "" && sub.Client.ClientID() == m.from && (sub.NoLocal || b.opts.IgnoreLoopDeliver) {
			// [MQTT-3.8.3-3] no local: not sent back to its publisher.
			b.m.droppedNoLocal.Add(1)
			continue
		}
		qos, rap := sub.QoS, sub.RetainAsPublished
		var ids []uint32
		if sub.ID != 0 {
			ids = []uint32{sub.ID}
		}
		s := sub.Client.(*session)
		if sub.Group == "" && s.nsubs.Load() > 1 {
			// Overlapping subscriptions of one client: one copy at the
			// highest QoS, with every subscription identifier
			// [MQTT-3.3.4-2] [MQTT-3.3.4-3] [MQTT-3.3.4-5]. Only clients
			// with several subscriptions need the scan.
			for j := i + 1; j < len(subs); j++ {
				o := &subs[j]
				if o.Client != sub.Client || o.Group != "" {
					continue
				}
				if o.QoS > qos {
					qos = o.QoS
				}
				rap = rap || o.RetainAsPublished
				if o.ID != 0 {
					ids = append(ids, o.ID)
				}
				o.Client = nil
			}
		}
		if qos > m.qos {
			qos = m.qos
		}
		// [MQTT-3.3.1-12] [MQTT-3.3.1-13] retain as published, else cleared.
		s.deliver(delivery{msg: m, qos: qos, retain: m.retain && rap, subIDs: ids, enc: enc, pc: pc, at: m.created})
		n++
	}
	enc.release()
	clear(subs)
	*sp = subs[:0]
	matchPool.Put(sp)
	if n == 0 && !m.sys {
		b.m.msgDroppedNoSubscribers.Add(1)
	}
	return n
}

// storeRetained sets or clears the retained message of m's topic
// [MQTT-3.3.1-5] [MQTT-3.3.1-6] [MQTT-3.3.1-10] [MQTT-3.3.1-11]. It
// reports whether it wrote to the log.
func (b *Broker) storeRetained(m *message) bool {
	if len(m.payload) == 0 {
		b.retainMu.Lock()
		defer b.retainMu.Unlock()
		if b.retained.Delete(m.topic) {
			return b.persistRetained(m.topic, nil)
		}
		return false
	}
	if max := b.opts.MaxRetainedPayload; max > 0 && len(m.payload) > max {
		b.log.Debug("retained message too large, not stored", "topic_len", len(m.topic), "size", len(m.payload))
		return false
	}
	if max := b.opts.MaxRetained; max > 0 && b.retained.Count() >= max {
		if _, exists := b.retained.Get(m.topic); !exists {
			b.log.Debug("retained store full, message not stored", "max", max)
			return false
		}
	}
	b.m.msgRetained.Add(1)
	b.retainMu.Lock()
	defer b.retainMu.Unlock()
	b.retained.Set(m.topic, m)
	return b.persistRetained(m.topic, m)
}

// authorizePublish is authorize for the PUBLISH packets of the reader
// goroutine: it reuses the connection's last decision while the
// authorizer's promise (access.Reuse) holds, so that a client publishing
// to the same topic again is checked with a string comparison and three
// atomic loads instead of a cache lookup.
func (c *conn) authorizePublish(topic string, qos byte, retain bool) bool {
	if m := c.aclLast; m != nil && m.topic == topic && m.qos == qos && m.retain == retain && m.reuse.Valid() {
		if m.allow {
			c.b.m.aclAllow.Add(1)
		} else {
			c.b.m.aclDeny.Add(1)
		}
		return m.allow
	}
	allow, reuse := c.decide(access.Publish, topic, qos, retain)
	if reuse != (access.Reuse{}) {
		if c.aclLast == nil {
			c.aclLast = new(lastDecision)
		}
		*c.aclLast = lastDecision{topic: topic, qos: qos, retain: retain, allow: allow, reuse: reuse}
	}
	return allow
}

// lastDecision is the last PUBLISH decision of a connection (see
// authorizePublish).
type lastDecision struct {
	topic  string
	qos    byte
	retain bool
	allow  bool
	reuse  access.Reuse
}

// authorize asks the Authorizer (or applies acl_nomatch) for this client.
func (c *conn) authorize(a access.Action, topic string, qos byte, retain bool) bool {
	allow, _ := c.decide(a, topic, qos, retain)
	return allow
}

// decide is authorize, plus how long the decision may be reused.
func (c *conn) decide(a access.Action, topic string, qos byte, retain bool) (bool, access.Reuse) {
	b := c.b
	if c.sess != nil && c.superuser {
		return true, access.Reuse{}
	}
	var reuse access.Reuse
	v := b.opts.ACLNoMatch
	if b.opts.Authorizer != nil {
		// No per-call deadline: a context.WithTimeout costs ~2 µs, more than
		// a cached decision; backends that do I/O bound their own calls.
		req := access.Request{Identity: c.identity(), Action: a, Topic: topic, QoS: qos, Retain: retain, Superuser: c.superuser}
		if g := c.grants; g != nil {
			req.Granted, req.GrantedBy, req.ExpiresAt = g.ACL, g.Source, g.ExpiresAt
		}
		d := b.opts.Authorizer.Authorize(b.ctx, req)
		if d.Verdict != access.Ignore {
			v = d.Verdict
		}
		reuse = d.Reuse
	}
	if v == access.Allow {
		b.m.aclAllow.Add(1)
		return true, reuse
	}
	b.m.aclDeny.Add(1)
	return false, reuse
}
