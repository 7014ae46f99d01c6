package broker

import (
	"strings"
	"time"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/broker/topics"
	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/mqtt"
)

// handleSubscribe answers SUBSCRIBE with one SUBACK code per filter, then
// replays retained messages to the new subscriptions. The retained
// messages are chosen before the SUBACK goes out: a client that has its
// SUBACK may publish at once, and a message it retains then reaches the
// new subscription live; chosen after, it was also replayed, and arrived
// twice, once with RETAIN set.
func (c *conn) handleSubscribe(p *mqtt.Subscribe) error {
	b := c.b
	b.m.subscribeReceived.Add(1)
	var subID uint32
	if c.version == mqtt.V5 && len(p.Props.SubscriptionIDs) > 0 {
		subID = p.Props.SubscriptionIDs[0]
	}
	codes := make([]mqtt.ReasonCode, len(p.Subscriptions))
	var replays []delivery
	for i, sub := range p.Subscriptions {
		code, replay := c.subscribeOne(sub, subID)
		if c.version != mqtt.V5 && code >= 0x80 {
			code = mqtt.V3SubackFailure // 3.1.1 knows only 0x80 [MQTT-3.9.3-2]
		}
		codes[i] = code
		if replay != nil {
			replays = c.retainedFor(*replay, replays)
		}
	}
	// [MQTT-3.8.4-1] SUBACK with the same packet id, one code per filter
	// [MQTT-3.8.4-6].
	c.writePacket(&mqtt.Suback{PacketID: p.PacketID, ReasonCodes: codes})
	for _, d := range replays {
		c.sess.deliver(d)
	}
	return nil
}

// subscribeOne validates, authorizes and records one subscription. It
// returns the SUBACK code and, when retained messages are to be sent, the
// subscription to replay them for.
func (c *conn) subscribeOne(sub mqtt.Subscription, subID uint32) (mqtt.ReasonCode, *topics.Sub) {
	b := c.b
	s := c.sess
	if bus := b.opts.Events; bus.Wants(events.ClientSubscribe) {
		e := c.clientEvent(events.ClientSubscribe)
		e.Topic = sub.Filter
		e.Opts = events.SubOpts{QoS: sub.QoS, RH: sub.RetainHandling, RAP: sub.RetainAsPublished, NL: sub.NoLocal}
		bus.Publish(e)
	}
	if err := mqtt.ValidTopicFilter(sub.Filter); err != nil {
		return mqtt.TopicFilterInvalid, nil
	}
	group, filter, shared := mqtt.ParseShared(sub.Filter)
	if shared && !b.opts.SharedSubscription {
		return mqtt.SharedSubNotSupported, nil
	}
	if !b.opts.WildcardSubscription && strings.ContainsAny(filter, "+#") {
		return mqtt.WildcardSubNotSupported, nil
	}
	if b.opts.MaxTopicLevels > 0 && mqtt.TopicLevels(filter) > b.opts.MaxTopicLevels {
		return mqtt.TopicFilterInvalid, nil
	}
	if !c.authorize(access.Subscribe, sub.Filter, sub.QoS, false) {
		b.m.subscribeAuthErr.Add(1)
		return mqtt.NotAuthorized, nil
	}
	qos := sub.QoS
	if qos > b.opts.MaxQoS {
		qos = b.opts.MaxQoS // grant a lower QoS than asked (MQTT 5.0 §3.9.3)
	}
	ts := topics.Sub{
		Client:            s,
		Filter:            filter,
		Group:             group,
		QoS:               qos,
		NoLocal:           sub.NoLocal,
		RetainAsPublished: sub.RetainAsPublished,
		RetainHandling:    sub.RetainHandling,
		ID:                subID,
	}
	s.mu.Lock()
	_, existed := s.subs[sub.Filter]
	if !existed && b.opts.MaxSubscriptions > 0 && len(s.subs) >= b.opts.MaxSubscriptions {
		s.mu.Unlock()
		return mqtt.QuotaExceeded, nil
	}
	if s.subs == nil {
		s.subs = make(map[string]subEntry)
	}
	e := subEntry{sub: ts, added: time.Now()}
	s.subs[sub.Filter] = e
	s.nsubs.Store(int32(len(s.subs)))
	if s.persisted {
		s.logSub(sub.Filter, e)
	}
	s.mu.Unlock()
	// [MQTT-3.8.4-3] a subscription to an existing filter replaces it.
	b.index.Subscribe(ts)
	if bus := b.opts.Events; bus.Wants(events.SessionSubscribed) {
		e := c.clientEvent(events.SessionSubscribed)
		e.Topic = sub.Filter
		e.Opts = events.SubOpts{QoS: qos, RH: sub.RetainHandling, RAP: sub.RetainAsPublished, NL: sub.NoLocal}
		bus.Publish(e)
	}
	code := mqtt.ReasonCode(qos)
	// Retained messages: not for shared subscriptions (MQTT 5.0 §4.8.2); per
	// Retain Handling 0 always, 1 only for a new subscription, 2 never
	// [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11].
	if shared || sub.RetainHandling == 2 || (sub.RetainHandling == 1 && existed) {
		return code, nil
	}
	return code, &ts
}

// retainedFor appends to out the deliveries of the retained messages that
// match sub, with the RETAIN flag set [MQTT-3.3.1-8]. The store's read
// lock is held only to collect them: authorizing each one may wait for an
// ACL backend, and while a reader waited under that lock no message could
// be retained or cleared.
func (c *conn) retainedFor(sub topics.Sub, out []delivery) []delivery {
	b := c.b
	now := time.Now()
	var expired []string
	var ids []uint32
	if sub.ID != 0 {
		ids = []uint32{sub.ID}
	}
	start := len(out)
	b.retained.Match(sub.Filter, func(topic string, m *message) bool {
		if m.expired(now) {
			expired = append(expired, topic)
			return true
		}
		out = append(out, delivery{msg: m, qos: min(m.qos, sub.QoS), retain: true, subIDs: ids})
		return true
	})
	// A retained message is replayed only if the client may subscribe to
	// its very topic: a deny on a/secret holds under a grant of a/#.
	kept := out[:start]
	for _, d := range out[start:] {
		if c.authorize(access.Subscribe, d.msg.topic, sub.QoS, false) {
			kept = append(kept, d)
		}
	}
	clear(out[len(kept):])
	out = kept
	for _, t := range expired {
		b.retainMu.Lock()
		if m, ok := b.retained.Get(t); ok && m.expired(now) {
			b.retained.Delete(t)
			b.persistRetained(t, nil)
		}
		b.retainMu.Unlock()
	}
	return out
}

// handleUnsubscribe removes subscriptions and answers UNSUBACK.
func (c *conn) handleUnsubscribe(p *mqtt.Unsubscribe) error {
	b := c.b
	s := c.sess
	b.m.unsubscribeReceived.Add(1)
	codes := make([]mqtt.ReasonCode, len(p.Filters))
	for i, f := range p.Filters {
		if bus := b.opts.Events; bus.Wants(events.ClientUnsubscribe) {
			e := c.clientEvent(events.ClientUnsubscribe)
			e.Topic = f
			bus.Publish(e)
		}
		group, filter, _ := mqtt.ParseShared(f)
		s.mu.Lock()
		_, had := s.subs[f]
		delete(s.subs, f)
		s.nsubs.Store(int32(len(s.subs)))
		if had && s.persisted {
			s.unlogSub(f)
		}
		s.mu.Unlock()
		removed := b.index.Unsubscribe(s, filter, group)
		if had || removed {
			codes[i] = mqtt.Success
			if bus := b.opts.Events; bus.Wants(events.SessionUnsubscribed) {
				e := c.clientEvent(events.SessionUnsubscribed)
				e.Topic = f
				bus.Publish(e)
			}
		} else {
			codes[i] = mqtt.NoSubscriptionExisted
		}
	}
	// [MQTT-3.10.4-4] UNSUBACK with the same packet id.
	c.writePacket(&mqtt.Unsuback{PacketID: p.PacketID, ReasonCodes: codes})
	return nil
}
