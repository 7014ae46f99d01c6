package api

import (
	"sync/atomic"

	"github.com/mqgate/mqgate/broker"
	"github.com/prometheus/client_golang/prometheus"
)

// collector exposes the broker's gauges and counters as Prometheus
// families, read from Broker.Stats and Broker.Metrics at each scrape. No
// family is labelled by client id or topic.
type collector struct {
	b            *broker.Broker
	authFailures *atomic.Uint64
}

func newCollector(b *broker.Broker, authFailures *atomic.Uint64) *collector {
	return &collector{b: b, authFailures: authFailures}
}

// family is one Prometheus family and where its value comes from.
type family struct {
	desc   *prometheus.Desc
	kind   prometheus.ValueType
	stat   string   // a Stats key (gauge), or
	metric string   // a Metrics key (counter), or
	labels []string // label values, when the family has a label
}

var (
	descConnections   = prometheus.NewDesc("mqgate_connections", "Connections with an accepted CONNECT.", nil, nil)
	descConnectionMax = prometheus.NewDesc("mqgate_connections_max", "Highest number of connections since start.", nil, nil)
	descSessions      = prometheus.NewDesc("mqgate_sessions", "Sessions, online or kept offline.", nil, nil)
	descSubscriptions = prometheus.NewDesc("mqgate_subscriptions", "Subscriptions, shared ones included.", nil, nil)
	descShared        = prometheus.NewDesc("mqgate_subscriptions_shared", "Shared subscriptions.", nil, nil)
	descRoutes        = prometheus.NewDesc("mqgate_routes", "Distinct topic filters with subscribers.", nil, nil)
	descRetained      = prometheus.NewDesc("mqgate_retained_messages", "Retained messages stored.", nil, nil)
	descMsgIn         = prometheus.NewDesc("mqgate_messages_received_total", "PUBLISH packets received from clients, by QoS.", []string{"qos"}, nil)
	descMsgOut        = prometheus.NewDesc("mqgate_messages_sent_total", "PUBLISH packets sent to clients, by QoS.", []string{"qos"}, nil)
	descBytesIn       = prometheus.NewDesc("mqgate_bytes_received_total", "Bytes received from clients.", nil, nil)
	descBytesOut      = prometheus.NewDesc("mqgate_bytes_sent_total", "Bytes sent to clients.", nil, nil)
	descPktIn         = prometheus.NewDesc("mqgate_packets_received_total", "MQTT packets received.", nil, nil)
	descPktOut        = prometheus.NewDesc("mqgate_packets_sent_total", "MQTT packets sent.", nil, nil)
	descDropped       = prometheus.NewDesc("mqgate_messages_dropped_total", "Messages or deliveries dropped, by reason.", []string{"reason"}, nil)
	descConnEvents    = prometheus.NewDesc("mqgate_client_events_total", "Client lifecycle events, by event.", []string{"event"}, nil)
	descSessEvents    = prometheus.NewDesc("mqgate_session_events_total", "Session lifecycle events, by event.", []string{"event"}, nil)
	descAuthFail      = prometheus.NewDesc("mqgate_api_auth_failures_total", "Management API requests refused for bad credentials.", nil, nil)
	descInflight      = prometheus.NewDesc("mqgate_inflight_messages", "QoS 1 and 2 messages sent to clients and not yet acknowledged.", nil, nil)
	descQueued        = prometheus.NewDesc("mqgate_queued_messages", "Messages queued for a full inflight window or an offline client.", nil, nil)
	descACL           = prometheus.NewDesc("mqgate_acl_decisions_total", "Publish and subscribe requests the broker allowed or denied after the ACL chain and acl_nomatch, by result.", []string{"result"}, nil)
	descRetainedIn    = prometheus.NewDesc("mqgate_messages_retained_total", "Messages received with the retain flag.", nil, nil)
	descStoreBytes    = prometheus.NewDesc("mqgate_store_bytes", "Bytes of the broker's durable store on disk.", nil, nil)

	families = []family{
		{desc: descConnections, kind: prometheus.GaugeValue, stat: "connections.count"},
		{desc: descConnectionMax, kind: prometheus.GaugeValue, stat: "connections.max"},
		{desc: descSessions, kind: prometheus.GaugeValue, stat: "sessions.count"},
		{desc: descSubscriptions, kind: prometheus.GaugeValue, stat: "subscriptions.count"},
		{desc: descShared, kind: prometheus.GaugeValue, stat: "subscriptions.shared.count"},
		{desc: descRoutes, kind: prometheus.GaugeValue, stat: "routes.count"},
		{desc: descRetained, kind: prometheus.GaugeValue, stat: "retained.count"},
		{desc: descMsgIn, kind: prometheus.CounterValue, metric: "messages.qos0.received", labels: []string{"0"}},
		{desc: descMsgIn, kind: prometheus.CounterValue, metric: "messages.qos1.received", labels: []string{"1"}},
		{desc: descMsgIn, kind: prometheus.CounterValue, metric: "messages.qos2.received", labels: []string{"2"}},
		{desc: descMsgOut, kind: prometheus.CounterValue, metric: "messages.qos0.sent", labels: []string{"0"}},
		{desc: descMsgOut, kind: prometheus.CounterValue, metric: "messages.qos1.sent", labels: []string{"1"}},
		{desc: descMsgOut, kind: prometheus.CounterValue, metric: "messages.qos2.sent", labels: []string{"2"}},
		{desc: descBytesIn, kind: prometheus.CounterValue, metric: "bytes.received"},
		{desc: descBytesOut, kind: prometheus.CounterValue, metric: "bytes.sent"},
		{desc: descPktIn, kind: prometheus.CounterValue, metric: "packets.received"},
		{desc: descPktOut, kind: prometheus.CounterValue, metric: "packets.sent"},
		{desc: descDropped, kind: prometheus.CounterValue, metric: "messages.dropped.no_subscribers", labels: []string{"no_subscribers"}},
		{desc: descDropped, kind: prometheus.CounterValue, metric: "delivery.dropped.no_local", labels: []string{"no_local"}},
		{desc: descDropped, kind: prometheus.CounterValue, metric: "delivery.dropped.too_large", labels: []string{"too_large"}},
		{desc: descDropped, kind: prometheus.CounterValue, metric: "delivery.dropped.queue_full", labels: []string{"queue_full"}},
		{desc: descDropped, kind: prometheus.CounterValue, metric: "delivery.dropped.expired", labels: []string{"expired"}},
		{desc: descDropped, kind: prometheus.CounterValue, metric: "delivery.dropped.qos0_msg", labels: []string{"qos0_msg"}},
		{desc: descConnEvents, kind: prometheus.CounterValue, metric: "client.connected", labels: []string{"connected"}},
		{desc: descConnEvents, kind: prometheus.CounterValue, metric: "client.disconnected", labels: []string{"disconnected"}},
		{desc: descConnEvents, kind: prometheus.CounterValue, metric: "client.auth.failure", labels: []string{"auth_failure"}},
		{desc: descConnEvents, kind: prometheus.CounterValue, metric: "connections.refused", labels: []string{"refused"}},
		{desc: descConnEvents, kind: prometheus.CounterValue, metric: "connections.slow_consumer", labels: []string{"slow_consumer"}},
		{desc: descConnEvents, kind: prometheus.CounterValue, metric: "connections.keepalive_timeout", labels: []string{"keepalive_timeout"}},
		{desc: descConnEvents, kind: prometheus.CounterValue, metric: "connections.rate_limited", labels: []string{"rate_limited"}},
		{desc: descConnEvents, kind: prometheus.CounterValue, metric: "connections.handshake_failed", labels: []string{"handshake_failed"}},
		{desc: descConnEvents, kind: prometheus.CounterValue, metric: "client.auth.success", labels: []string{"auth_success"}},
		{desc: descConnEvents, kind: prometheus.CounterValue, metric: "client.auth.success.anonymous", labels: []string{"auth_anonymous"}},
		{desc: descACL, kind: prometheus.CounterValue, metric: "client.acl.allow", labels: []string{"allow"}},
		{desc: descACL, kind: prometheus.CounterValue, metric: "client.acl.deny", labels: []string{"deny"}},
		{desc: descRetainedIn, kind: prometheus.CounterValue, metric: "messages.retained"},
		{desc: descStoreBytes, kind: prometheus.GaugeValue, metric: "store.bytes"},
		{desc: descSessEvents, kind: prometheus.CounterValue, metric: "session.created", labels: []string{"created"}},
		{desc: descSessEvents, kind: prometheus.CounterValue, metric: "session.resumed", labels: []string{"resumed"}},
		{desc: descSessEvents, kind: prometheus.CounterValue, metric: "session.takenover", labels: []string{"takenover"}},
		{desc: descSessEvents, kind: prometheus.CounterValue, metric: "session.discarded", labels: []string{"discarded"}},
		{desc: descSessEvents, kind: prometheus.CounterValue, metric: "session.terminated", labels: []string{"terminated"}},
	}
)

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	seen := map[*prometheus.Desc]bool{}
	for _, f := range families {
		if !seen[f.desc] {
			seen[f.desc] = true
			ch <- f.desc
		}
	}
	ch <- descAuthFail
	ch <- descInflight
	ch <- descQueued
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	stats := c.b.Stats()
	metrics := c.b.Metrics()
	for _, f := range families {
		var v float64
		if f.stat != "" {
			v = float64(stats[f.stat])
		} else {
			v = float64(metrics[f.metric])
		}
		ch <- prometheus.MustNewConstMetric(f.desc, f.kind, v, f.labels...)
	}
	ch <- prometheus.MustNewConstMetric(descAuthFail, prometheus.CounterValue, float64(c.authFailures.Load()))
	inflight, queued := c.b.Pending()
	ch <- prometheus.MustNewConstMetric(descInflight, prometheus.GaugeValue, float64(inflight))
	ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(queued))
}

// mapCollector exposes a map of counters as one family labelled by name.
type mapCollector struct {
	desc *prometheus.Desc
	read func() map[string]uint64
}

// NewMapCollector returns a collector that exposes the counters read
// returns at each scrape as the family name, with the map key in the label
// "name". The keys must be a small, fixed set (never client ids or topics).
func NewMapCollector(name, help string, read func() map[string]uint64) prometheus.Collector {
	return &mapCollector{desc: prometheus.NewDesc(name, help, []string{"name"}, nil), read: read}
}

// Describe implements prometheus.Collector.
func (c *mapCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *mapCollector) Collect(ch chan<- prometheus.Metric) {
	for k, v := range c.read() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.UntypedValue, float64(v), k)
	}
}
