package authn

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	descDecisions = prometheus.NewDesc("mqgate_authn_decisions_total",
		"Authentication answers per backend and result (allow, deny, ignore, error).", []string{"backend", "result"}, nil)
	descCacheHits = prometheus.NewDesc("mqgate_authn_cache_hits_total",
		"Authentication decisions served from the cache.", nil, nil)
	descCacheMisses = prometheus.NewDesc("mqgate_authn_cache_misses_total",
		"Authentications the cache could not answer.", nil, nil)
	descBackendCalls = prometheus.NewDesc("mqgate_authn_backend_calls_total",
		"Calls made to authentication backends.", nil, nil)
	descCoalesced = prometheus.NewDesc("mqgate_authn_coalesced_total",
		"Authentications that shared an identical request's evaluation.", nil, nil)
)

// Register registers the counters on r (an injected registry, never the
// global one), as a collector that reads the atomics at scrape time.
func (m *Metrics) Register(r prometheus.Registerer) error {
	if err := r.Register(collector{m}); err != nil {
		return fmt.Errorf("authn: register metrics: %w", err)
	}
	return nil
}

// collector exports Metrics to Prometheus.
type collector struct{ m *Metrics }

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDecisions, descCacheHits, descCacheMisses, descBackendCalls, descCoalesced} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.m.Each(func(s Sample) {
		var d *prometheus.Desc
		var labels []string
		switch s.Name {
		case "mqgate_authn_decisions_total":
			d, labels = descDecisions, []string{s.Labels["backend"], s.Labels["result"]}
		case "mqgate_authn_cache_hits_total":
			d = descCacheHits
		case "mqgate_authn_cache_misses_total":
			d = descCacheMisses
		case "mqgate_authn_backend_calls_total":
			d = descBackendCalls
		case "mqgate_authn_coalesced_total":
			d = descCoalesced
		default:
			return
		}
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(s.Value), labels...)
	})
}
