package authn

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqgate/mqgate/access"
)

func TestPrometheus(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Links: []*Link{answer("http", outage, ErrorIgnore, nil), answer("jwt", allow, ErrorDeny, nil)},
		CacheTTL: 60e9, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	id := access.Identity{ClientID: "c"}
	c.Authenticate(context.Background(), id)
	c.Authenticate(context.Background(), id)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"mqgate_authn_cache_hits_total":                          1,
		"mqgate_authn_backend_calls_total":                       2,
		"mqgate_authn_decisions_total,backend=http,result=error": 1,
		"mqgate_authn_decisions_total,backend=http,result=allow": 0,
		"mqgate_authn_decisions_total,backend=jwt,result=allow":  1,
		"mqgate_authn_decisions_total,backend=jwt,result=deny":   0,
		"mqgate_authn_decisions_total,backend=jwt,result=ignore": 0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if n := len(got); n != 12 {
		t.Errorf("%d series, want 12 (8 decisions, 4 totals)", n)
	}
	// A second registration on the same registry is refused.
	if err := m.Register(reg); err == nil {
		t.Fatal("registered twice")
	}
}
