package broker

import (
	"sync/atomic"
)

// metrics are the broker's counters. They are plain atomics so that the hot
// path pays one atomic add; Metrics and Stats export them with EMQX 4 names.
type metrics struct {
	bytesReceived, bytesSent     atomic.Uint64
	packetsReceived, packetsSent atomic.Uint64
	connectReceived              atomic.Uint64
	connackSent, connackAuthErr  atomic.Uint64
	connackError                 atomic.Uint64
	publishReceived, publishSent atomic.Uint64
	publishAuthErr, publishError atomic.Uint64
	subscribeReceived            atomic.Uint64
	subscribeAuthErr             atomic.Uint64
	unsubscribeReceived          atomic.Uint64
	pingReceived                 atomic.Uint64
	disconnectReceived           atomic.Uint64
	disconnectSent               atomic.Uint64
	authReceived                 atomic.Uint64

	msgReceived, msgSent       atomic.Uint64
	msgQoSReceived, msgQoSSent [3]atomic.Uint64
	msgRetained                atomic.Uint64
	msgDropped                 atomic.Uint64
	msgDroppedNoSubscribers    atomic.Uint64
	msgDelivered, msgAcked     atomic.Uint64

	droppedNoLocal, droppedTooLarge, droppedQueueFull atomic.Uint64
	droppedExpired, droppedQoS0                       atomic.Uint64

	clientConnected, clientDisconnected atomic.Uint64
	authSuccess, authAnonymous          atomic.Uint64
	authFailure                         atomic.Uint64
	aclAllow, aclDeny                   atomic.Uint64

	sessionCreated, sessionResumed, sessionTakenOver atomic.Uint64
	sessionDiscarded, sessionTerminated              atomic.Uint64

	connRefused    atomic.Uint64 // max_connections reached
	slowConsumers  atomic.Uint64 // connections cut for max_queued_bytes
	connCount      atomic.Int64
	connMax        atomic.Int64
	sessionsMax    atomic.Int64
	subsMax        atomic.Int64
	retainedMax    atomic.Int64
	keepaliveKicks atomic.Uint64

	handshakeFailed atomic.Uint64 // TLS handshakes and WebSocket upgrades that failed
	connRateLimited atomic.Uint64 // max_conn_rate reached
}

// Metrics returns every counter by its EMQX 4 metric name
// (`packets.publish.received`, `messages.qos1.sent`, ...), plus mqgate's own
// (`connections.refused`, `connections.slow_consumer`).
func (b *Broker) Metrics() map[string]uint64 {
	m := &b.m
	return map[string]uint64{
		"store.bytes":                     b.storeBytes(),
		"bytes.received":                  m.bytesReceived.Load(),
		"bytes.sent":                      m.bytesSent.Load(),
		"packets.received":                m.packetsReceived.Load(),
		"packets.sent":                    m.packetsSent.Load(),
		"packets.connect.received":        m.connectReceived.Load(),
		"packets.connack.sent":            m.connackSent.Load(),
		"packets.connack.error":           m.connackError.Load(),
		"packets.connack.auth_error":      m.connackAuthErr.Load(),
		"packets.publish.received":        m.publishReceived.Load(),
		"packets.publish.sent":            m.publishSent.Load(),
		"packets.publish.error":           m.publishError.Load(),
		"packets.publish.auth_error":      m.publishAuthErr.Load(),
		"packets.subscribe.received":      m.subscribeReceived.Load(),
		"packets.subscribe.auth_error":    m.subscribeAuthErr.Load(),
		"packets.unsubscribe.received":    m.unsubscribeReceived.Load(),
		"packets.pingreq.received":        m.pingReceived.Load(),
		"packets.pingresp.sent":           m.pingReceived.Load(),
		"packets.disconnect.received":     m.disconnectReceived.Load(),
		"packets.disconnect.sent":         m.disconnectSent.Load(),
		"packets.auth.received":           m.authReceived.Load(),
		"messages.received":               m.msgReceived.Load(),
		"messages.sent":                   m.msgSent.Load(),
		"messages.qos0.received":          m.msgQoSReceived[0].Load(),
		"messages.qos1.received":          m.msgQoSReceived[1].Load(),
		"messages.qos2.received":          m.msgQoSReceived[2].Load(),
		"messages.qos0.sent":              m.msgQoSSent[0].Load(),
		"messages.qos1.sent":              m.msgQoSSent[1].Load(),
		"messages.qos2.sent":              m.msgQoSSent[2].Load(),
		"messages.publish":                m.msgReceived.Load(),
		"messages.retained":               m.msgRetained.Load(),
		"messages.dropped":                m.msgDropped.Load(),
		"messages.dropped.no_subscribers": m.msgDroppedNoSubscribers.Load(),
		"messages.delivered":              m.msgDelivered.Load(),
		"messages.acked":                  m.msgAcked.Load(),
		"delivery.dropped":                m.droppedNoLocal.Load() + m.droppedTooLarge.Load() + m.droppedQueueFull.Load() + m.droppedExpired.Load() + m.droppedQoS0.Load(),
		"delivery.dropped.no_local":       m.droppedNoLocal.Load(),
		"delivery.dropped.too_large":      m.droppedTooLarge.Load(),
		"delivery.dropped.queue_full":     m.droppedQueueFull.Load(),
		"delivery.dropped.expired":        m.droppedExpired.Load(),
		"delivery.dropped.qos0_msg":       m.droppedQoS0.Load(),
		"client.connected":                m.clientConnected.Load(),
		"client.disconnected":             m.clientDisconnected.Load(),
		"client.auth.success":             m.authSuccess.Load(),
		"client.auth.success.anonymous":   m.authAnonymous.Load(),
		"client.auth.failure":             m.authFailure.Load(),
		"client.acl.allow":                m.aclAllow.Load(),
		"client.acl.deny":                 m.aclDeny.Load(),
		"session.created":                 m.sessionCreated.Load(),
		"session.resumed":                 m.sessionResumed.Load(),
		"session.takenover":               m.sessionTakenOver.Load(),
		"session.discarded":               m.sessionDiscarded.Load(),
		"session.terminated":              m.sessionTerminated.Load(),
		"connections.refused":             m.connRefused.Load(),
		"connections.handshake_failed":    m.handshakeFailed.Load(),
		"connections.rate_limited":        m.connRateLimited.Load(),
		"connections.slow_consumer":       m.slowConsumers.Load(),
		"connections.keepalive_timeout":   m.keepaliveKicks.Load(),
	}
}

// Stats returns the gauges by their EMQX 4 stats names
// (`connections.count`, `sessions.count`, `retained.count`, ...), each with
// its `.max` high-water mark.
func (b *Broker) Stats() map[string]int64 {
	conns := b.m.connCount.Load()
	b.mu.Lock()
	sessions := int64(len(b.sessions))
	b.mu.Unlock()
	subs := int64(b.index.Count())
	shared := int64(b.index.SharedCount())
	routes := int64(b.index.RouteCount())
	retained := int64(b.retained.Count())
	bump(&b.m.connMax, conns)
	bump(&b.m.sessionsMax, sessions)
	bump(&b.m.subsMax, subs)
	bump(&b.m.retainedMax, retained)
	return map[string]int64{
		"connections.count":          conns,
		"connections.max":            b.m.connMax.Load(),
		"live_connections.count":     conns,
		"live_connections.max":       b.m.connMax.Load(),
		"channels.count":             conns,
		"channels.max":               b.m.connMax.Load(),
		"sessions.count":             sessions,
		"sessions.max":               b.m.sessionsMax.Load(),
		"subscriptions.count":        subs,
		"subscriptions.max":          b.m.subsMax.Load(),
		"subscriptions.shared.count": shared,
		"subscribers.count":          subs,
		"suboptions.count":           subs,
		"topics.count":               routes,
		"routes.count":               routes,
		"retained.count":             retained,
		"retained.max":               b.m.retainedMax.Load(),
	}
}

func bump(max *atomic.Int64, v int64) {
	for {
		cur := max.Load()
		if v <= cur || max.CompareAndSwap(cur, v) {
			return
		}
	}
}
