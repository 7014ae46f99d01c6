package casbin

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/acl"
)

// benchPolicy returns 1,000 p rules over 100 roles and 300 users with
// roles, ending with the rules the benchmark's requests need.
func benchPolicy() string {
	var sb strings.Builder
	for i := range 996 {
		act := "subscribe"
		if i%2 == 1 {
			act = "publish"
		}
		fmt.Fprintf(&sb, "p, role%d, app/%d/+/data, %s, allow\n", i%100, i, act)
	}
	sb.WriteString("p, $all, bench/#, publish, allow\np, $all, bench/+/x, subscribe, allow\np, $all, bench/#, subscribe, allow\np, role7, bench/secret/#, publish, deny\n")
	for u := range 300 {
		fmt.Fprintf(&sb, "g, user%d, role%d\n", u, u%100)
	}
	return sb.String()
}

func benchBackend(b *testing.B) *Backend {
	b.Helper()
	model, err := os.ReadFile("../../policies/model.conf")
	if err != nil {
		b.Fatal(err)
	}
	be, err := New(Options{Model: string(model), Policy: benchPolicy()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	return be
}

// BenchmarkCasbinEnforce is one uncached decision over 1,000 rules.
func BenchmarkCasbinEnforce(b *testing.B) {
	be := benchBackend(b)
	req := access.Request{Identity: access.Identity{Username: "user7", ClientID: "c7"}, Action: access.Publish, Topic: "bench/1/x"}
	b.ReportAllocs()
	for b.Loop() {
		if d := be.Authorize(context.Background(), req); d.Verdict != access.Allow {
			b.Fatal(d.Verdict)
		}
	}
}

// BenchmarkChainCached is a decision answered by the per-connection cache,
// the case of a client publishing to the same topics again and again.
func BenchmarkChainCached(b *testing.B) {
	be := benchBackend(b)
	c, err := acl.New(acl.Options{Links: []acl.Link{{Name: "casbin", Authorizer: be}}, Cache: true, CacheMaxSize: 32, CacheTTL: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := access.Request{Identity: access.Identity{Username: "user7", ClientID: fmt.Sprint("c", time.Now().UnixNano())}, Action: access.Publish, Topic: "bench/1/x"}
		for pb.Next() {
			if d := c.Authorize(context.Background(), req); d.Verdict != access.Allow {
				b.Fatal(d.Verdict)
			}
		}
	})
}
