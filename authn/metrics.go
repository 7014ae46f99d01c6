package authn

import (
	"sort"
	"sync"
	"sync/atomic"
)

// Results counted per backend.
const (
	resultAllow  = "allow"
	resultDeny   = "deny"
	resultIgnore = "ignore"
	resultError  = "error"
)

var results = []string{resultAllow, resultDeny, resultIgnore, resultError}

// Metrics are the chain's counters: decisions per backend and result,
// cache hits and misses, backend calls and coalesced requests. They are
// plain atomics; Each exports them for a metrics registry (the counter
// names follow Prometheus conventions, labelled by backend and result
// only, never by client).
type Metrics struct {
	mu      sync.RWMutex
	decided map[[2]string]*atomic.Uint64 // {backend, result}
	cacheHits, cacheMisses,
	backendCalls, coalesced atomic.Uint64
}

// NewMetrics returns a zeroed set of counters. One set may be shared by
// the chains a reload builds, so that counters survive a reload.
func NewMetrics() *Metrics {
	return &Metrics{decided: map[[2]string]*atomic.Uint64{}}
}

// init pre-creates the backend's counters, so every label pair is
// exported from the start.
func (m *Metrics) init(backend string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range results {
		if m.decided[[2]string{backend, r}] == nil {
			m.decided[[2]string{backend, r}] = new(atomic.Uint64)
		}
	}
}

func (m *Metrics) count(backend, result string) {
	m.mu.RLock()
	c := m.decided[[2]string{backend, result}]
	m.mu.RUnlock()
	if c == nil {
		m.init(backend)
		m.count(backend, result)
		return
	}
	c.Add(1)
}

// Decisions returns how many times backend answered result (allow, deny,
// ignore or error).
func (m *Metrics) Decisions(backend, result string) uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if c := m.decided[[2]string{backend, result}]; c != nil {
		return c.Load()
	}
	return 0
}

// CacheHits returns how many decisions came from the cache.
func (m *Metrics) CacheHits() uint64 { return m.cacheHits.Load() }

// BackendCalls returns how many times a backend was asked.
func (m *Metrics) BackendCalls() uint64 { return m.backendCalls.Load() }

// Coalesced returns how many requests shared another's evaluation.
func (m *Metrics) Coalesced() uint64 { return m.coalesced.Load() }

// Sample is one counter value with its labels.
type Sample struct {
	Name   string            // e.g. "mqgate_authn_decisions_total"
	Labels map[string]string // e.g. backend="http", result="allow"
	Value  uint64
}

// Each calls fn for every counter, in a stable order.
func (m *Metrics) Each(fn func(Sample)) {
	m.mu.RLock()
	keys := make([][2]string, 0, len(m.decided))
	for k := range m.decided {
		keys = append(keys, k)
	}
	m.mu.RUnlock()
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		fn(Sample{Name: "mqgate_authn_decisions_total", Labels: map[string]string{"backend": k[0], "result": k[1]}, Value: m.Decisions(k[0], k[1])})
	}
	fn(Sample{Name: "mqgate_authn_cache_hits_total", Value: m.cacheHits.Load()})
	fn(Sample{Name: "mqgate_authn_cache_misses_total", Value: m.cacheMisses.Load()})
	fn(Sample{Name: "mqgate_authn_backend_calls_total", Value: m.backendCalls.Load()})
	fn(Sample{Name: "mqgate_authn_coalesced_total", Value: m.coalesced.Load()})
}
