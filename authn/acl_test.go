package authn

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/mqgate/mqgate/access"
)

func TestParseACL(t *testing.T) {
	id := access.Identity{Username: "u1", ClientID: "c1"}
	allowPub := func(f string) access.Rule {
		return access.Rule{Verdict: access.Allow, Action: access.Publish, Filter: f}
	}
	denyAll := access.Rule{Verdict: access.Deny, Filter: "#"}
	tests := []struct {
		name string
		raw  string
		want []access.Rule
		ok   bool
	}{
		{"empty", ``, nil, true},
		{"null", `null`, nil, true},
		// EMQX 4: allow-lists; what no list matches is denied.
		{"emqx4", `{"pub":["a/%u"],"sub":["b/%c/#"],"all":["c"]}`, []access.Rule{
			allowPub("a/u1"),
			{Verdict: access.Allow, Action: access.Subscribe, Filter: "b/c1/#"},
			{Verdict: access.Allow, Filter: "c"},
			denyAll,
		}, true},
		{"emqx4 empty lists deny all", `{}`, []access.Rule{denyAll}, true},
		// EMQX 5: ordered rules; what none matches falls through.
		{"emqx5", `[{"permission":"allow","action":"publish","topic":"t/${username}"},{"permission":"deny","action":"all","topic":"#"}]`,
			[]access.Rule{allowPub("t/u1"), denyAll}, true},
		{"emqx5 topics", `[{"permission":"allow","action":"subscribe","topics":["x","y/${clientid}"]}]`, []access.Rule{
			{Verdict: access.Allow, Action: access.Subscribe, Filter: "x"},
			{Verdict: access.Allow, Action: access.Subscribe, Filter: "y/c1"},
		}, true},
		{"bad permission", `[{"permission":"maybe","topic":"x"}]`, nil, false},
		{"bad action", `[{"permission":"allow","action":"read","topic":"x"}]`, nil, false},
		{"no topic", `[{"permission":"allow"}]`, nil, false},
		{"not json", `[`, nil, false},
		{"wrong type", `"pub"`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseACL(json.RawMessage(tt.raw), id)
			if (err == nil) != tt.ok {
				t.Fatalf("err %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("rule %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestExpand(t *testing.T) {
	id := access.Identity{Username: "u", ClientID: "c", Password: []byte("p"), Peer: netip.MustParseAddrPort("[::ffff:10.1.2.3]:99"),
		CertCN: "cn", CertDN: "dn"}
	tests := []struct{ in, want string }{
		{"%u-%c-%a-%r-%P-%p-%C-%d", "u-c-10.1.2.3-mqtt-p-1883-cn-dn"},
		{"100%", "100%"},
		{"%z%%u", "%z%u"},
		{"plain", "plain"},
	}
	for _, tt := range tests {
		if got := Expand(tt.in, id, "1883"); got != tt.want {
			t.Errorf("Expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := Expand("%a", access.Identity{}, ""); got != "" {
		t.Errorf("no peer: %q", got)
	}
}

func TestMetricsEach(t *testing.T) {
	m := NewMetrics()
	m.init("http")
	m.count("http", resultAllow)
	m.count("jwt", resultDeny)
	m.cacheHits.Add(2)
	got := map[string]uint64{}
	m.Each(func(s Sample) { got[s.Name+"/"+s.Labels["backend"]+"/"+s.Labels["result"]] = s.Value })
	want := map[string]uint64{
		"mqgate_authn_decisions_total/http/allow": 1, "mqgate_authn_decisions_total/http/ignore": 0,
		"mqgate_authn_decisions_total/jwt/deny": 1, "mqgate_authn_cache_hits_total//": 2,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %d (present %v), want %d", k, g, ok, v)
		}
	}
	if len(got) != 2*len(results)+4 {
		t.Errorf("%d samples, want %d", len(got), 2*len(results)+4)
	}
}
