package api

import (
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/mqgate/mqgate/webhook"
	"github.com/prometheus/client_golang/prometheus"
)

// webhookCounts is one endpoint's counts for one event.
type webhookCounts struct {
	Queued    uint64 `json:"queued"`
	InFlight  int64  `json:"in_flight"`
	Delivered uint64 `json:"delivered"`
	Retried   uint64 `json:"retried"`
	Failed    uint64 `json:"failed"`
	Dropped   uint64 `json:"dropped"`
}

// webhookEndpoint is one endpoint's status.
type webhookEndpoint struct {
	URL                  string                   `json:"url"`
	Pending              int                      `json:"pending"`
	OldestPendingSeconds float64                  `json:"oldest_pending_seconds"`
	LastError            string                   `json:"last_error,omitempty"`
	LastErrorAt          string                   `json:"last_error_at,omitempty"` // YYYY-MM-DD HH:MM:SS, local time
	BreakerOpen          bool                     `json:"breaker_open"`
	Events               map[string]webhookCounts `json:"events"`
}

// redactURL hides the password of an endpoint URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}

// redactErr hides the endpoint's password where an error quotes its URL.
func redactErr(msg, rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return msg
	}
	if p, ok := u.User.Password(); ok && p != "" {
		msg = strings.ReplaceAll(msg, rawURL, u.Redacted())
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	return msg
}

// GET /webhooks: the outbox (pending deliveries, their size, the age of
// the oldest) and, per endpoint, its queue, oldest pending delivery, last
// failure, circuit breaker and counts by event.
func (s *Server) webhooks(c echo.Context) error {
	if s.opts.Webhooks == nil {
		return reply(c, map[string]any{"enabled": false, "endpoints": []webhookEndpoint{}})
	}
	st := s.opts.Webhooks()
	eps := make([]webhookEndpoint, 0, len(st.Endpoints))
	for u, events := range st.Endpoints {
		state := st.State[u]
		ep := webhookEndpoint{URL: redactURL(u), Pending: state.Pending, OldestPendingSeconds: state.Oldest.Seconds(),
			LastError: redactErr(state.LastError, u), BreakerOpen: state.Open, Events: map[string]webhookCounts{}}
		if !state.LastErrorAt.IsZero() {
			ep.LastErrorAt = state.LastErrorAt.Format(dateTimeFormat)
		}
		for ev, n := range events {
			ep.Events[ev] = webhookCounts(n)
		}
		eps = append(eps, ep)
	}
	slices.SortFunc(eps, func(x, y webhookEndpoint) int {
		switch {
		case x.URL < y.URL:
			return -1
		case x.URL > y.URL:
			return 1
		}
		return 0
	})
	return reply(c, map[string]any{
		"enabled":                true,
		"pending":                st.Pending,
		"pending_bytes":          st.Bytes,
		"pending_memory_bytes":   st.Memory,
		"oldest_pending_seconds": st.Oldest.Seconds(),
		"bus_dropped":            st.BusDropped,
		"endpoints":              eps,
	})
}

// webhookCollector exposes the dispatcher's counters per endpoint and
// event. The endpoint label is the URL without its user information and
// query (which may carry credentials); endpoints come from the
// configuration, so the label's values are few.
type webhookCollector struct {
	stats func() webhook.Stats
}

// endpointLabel is the value of the endpoint label of raw: scheme, host
// and path only.
func endpointLabel(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

var (
	descHookPending    = prometheus.NewDesc("mqgate_webhook_pending", "Web hook deliveries waiting in the outbox.", nil, nil)
	descHookBytes      = prometheus.NewDesc("mqgate_webhook_pending_bytes", "Size of the deliveries waiting in the outbox.", nil, nil)
	descHookMemory     = prometheus.NewDesc("mqgate_webhook_pending_memory_bytes", "Bytes of waiting deliveries' bodies also held in memory (web.hook.outbox.max_memory); the others are read back from the outbox.", nil, nil)
	descHookOldest     = prometheus.NewDesc("mqgate_webhook_oldest_pending_seconds", "Age of the oldest waiting delivery; 0 when none.", nil, nil)
	descHookBusDropped = prometheus.NewDesc("mqgate_webhook_bus_dropped_total", "Events lost before reaching the outbox (event bus full).", nil, nil)
	descHookInFlight   = prometheus.NewDesc("mqgate_webhook_in_flight", "Web hook requests in progress, by endpoint and event.", []string{"endpoint", "event"}, nil)
	descHookDeliveries = prometheus.NewDesc("mqgate_webhook_deliveries_total", "Web hook deliveries by endpoint, event and result (queued, delivered, retried, failed, dropped).", []string{"endpoint", "event", "result"}, nil)
	descHookEPPending  = prometheus.NewDesc("mqgate_webhook_endpoint_pending", "Deliveries waiting for one endpoint or in a request to it.", []string{"endpoint"}, nil)
	descHookEPOldest   = prometheus.NewDesc("mqgate_webhook_endpoint_oldest_pending_seconds", "Age of the oldest delivery waiting for one endpoint; 0 when none.", []string{"endpoint"}, nil)
	descHookCommits    = prometheus.NewDesc("mqgate_webhook_outbox_commits_total", "Outbox writes, each taking the events and acknowledgements of one commit interval (web.hook.outbox.commit_interval; longer while every endpoint is down or while only batched events come).", nil, nil)
	descHookEPOpen     = prometheus.NewDesc("mqgate_webhook_endpoint_breaker_open", "1 while the endpoint's circuit breaker holds its deliveries back.", []string{"endpoint"}, nil)
)

// Describe implements prometheus.Collector.
func (w webhookCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHookPending, descHookBytes, descHookMemory, descHookOldest, descHookBusDropped, descHookCommits, descHookInFlight, descHookDeliveries,
		descHookEPPending, descHookEPOldest, descHookEPOpen} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (w webhookCollector) Collect(ch chan<- prometheus.Metric) {
	st := w.stats()
	ch <- prometheus.MustNewConstMetric(descHookPending, prometheus.GaugeValue, float64(st.Pending))
	ch <- prometheus.MustNewConstMetric(descHookBytes, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(descHookMemory, prometheus.GaugeValue, float64(st.Memory))
	ch <- prometheus.MustNewConstMetric(descHookOldest, prometheus.GaugeValue, st.Oldest.Seconds())
	ch <- prometheus.MustNewConstMetric(descHookBusDropped, prometheus.CounterValue, float64(st.BusDropped))
	ch <- prometheus.MustNewConstMetric(descHookCommits, prometheus.CounterValue, float64(st.Commits))
	// Two URLs that differ only in credentials or query share a label
	// value: their counts are summed.
	type key struct{ endpoint, event string }
	sum := map[key]webhook.Counts{}
	for u, events := range st.Endpoints {
		ep := endpointLabel(u)
		for ev, n := range events {
			k := key{ep, ev}
			t := sum[k]
			t.Queued += n.Queued
			t.InFlight += n.InFlight
			t.Delivered += n.Delivered
			t.Retried += n.Retried
			t.Failed += n.Failed
			t.Dropped += n.Dropped
			sum[k] = t
		}
	}
	for k, n := range sum {
		ch <- prometheus.MustNewConstMetric(descHookInFlight, prometheus.GaugeValue, float64(n.InFlight), k.endpoint, k.event)
		for _, r := range []struct {
			result string
			v      uint64
		}{{"queued", n.Queued}, {"delivered", n.Delivered}, {"retried", n.Retried}, {"failed", n.Failed}, {"dropped", n.Dropped}} {
			ch <- prometheus.MustNewConstMetric(descHookDeliveries, prometheus.CounterValue, float64(r.v), k.endpoint, k.event, r.result)
		}
	}
	type state struct {
		pending int
		oldest  float64
		open    bool
	}
	states := map[string]state{}
	for u, es := range st.State {
		ep := endpointLabel(u)
		t := states[ep]
		t.pending += es.Pending
		t.oldest = max(t.oldest, es.Oldest.Seconds())
		t.open = t.open || es.Open
		states[ep] = t
	}
	for ep, t := range states {
		open := 0.0
		if t.open {
			open = 1
		}
		ch <- prometheus.MustNewConstMetric(descHookEPPending, prometheus.GaugeValue, float64(t.pending), ep)
		ch <- prometheus.MustNewConstMetric(descHookEPOldest, prometheus.GaugeValue, t.oldest, ep)
		ch <- prometheus.MustNewConstMetric(descHookEPOpen, prometheus.GaugeValue, open, ep)
	}
}
