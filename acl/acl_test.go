package acl

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqgate/mqgate/access"
)

// fixed answers v and counts its calls. It is a test backend at the chain's
// own seam (access.Authorizer), which every real backend also implements.
type fixed struct {
	v     access.Verdict
	calls atomic.Int64
}

func (f *fixed) Authorize(context.Context, access.Request) access.Decision {
	f.calls.Add(1)
	return access.Decision{Verdict: f.v, Reason: f.v.String() + " rule"}
}

func TestChainOrder(t *testing.T) {
	tests := []struct {
		name       string
		links      []access.Verdict
		noMatch    access.Verdict
		want       access.Verdict
		wantSource string
		wantAsked  int
		explain    access.Verdict
	}{
		{"first allow wins", []access.Verdict{access.Allow, access.Deny}, access.Deny, access.Allow, "l0", 1, access.Allow},
		{"first deny wins", []access.Verdict{access.Deny, access.Allow}, access.Allow, access.Deny, "l0", 1, access.Deny},
		{"ignore passes on", []access.Verdict{access.Ignore, access.Deny}, access.Allow, access.Deny, "l1", 2, access.Deny},
		{"all ignore, nomatch deny", []access.Verdict{access.Ignore, access.Ignore}, access.Deny, access.Ignore, "", 2, access.Deny},
		{"all ignore, nomatch allow", []access.Verdict{access.Ignore}, access.Allow, access.Ignore, "", 1, access.Allow},
		{"empty chain", nil, access.Deny, access.Ignore, "", 0, access.Deny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var links []Link
			var backends []*fixed
			for i, v := range tt.links {
				f := &fixed{v: v}
				backends = append(backends, f)
				links = append(links, Link{Name: "l" + string(rune('0'+i)), Authorizer: f})
			}
			c, err := New(Options{Links: links, NoMatch: tt.noMatch})
			if err != nil {
				t.Fatal(err)
			}
			req := access.Request{Identity: access.Identity{ClientID: "c1"}, Action: access.Publish, Topic: "a/b"}
			d := c.Authorize(context.Background(), req)
			if d.Verdict != tt.want || d.Source != tt.wantSource {
				t.Errorf("Authorize = %v from %q, want %v from %q", d.Verdict, d.Source, tt.want, tt.wantSource)
			}
			asked := 0
			for _, b := range backends {
				asked += int(b.calls.Load())
			}
			if asked != tt.wantAsked {
				t.Errorf("asked %d links, want %d", asked, tt.wantAsked)
			}
			ex := c.Explain(context.Background(), req)
			if ex.Decision.Verdict != tt.explain {
				t.Errorf("Explain = %v, want %v", ex.Decision.Verdict, tt.explain)
			}
			if len(ex.Links) != tt.wantAsked {
				t.Errorf("Explain lists %d links, want %d", len(ex.Links), tt.wantAsked)
			}
			if ex.NoMatch != (tt.want == access.Ignore) {
				t.Errorf("Explain NoMatch = %v", ex.NoMatch)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	f := &fixed{}
	tests := []struct {
		name string
		opts Options
	}{
		{"missing name", Options{Links: []Link{{Authorizer: f}}}},
		{"missing authorizer", Options{Links: []Link{{Name: "x"}}}},
		{"duplicate", Options{Links: []Link{{Name: "x", Authorizer: f}, {Name: "x", Authorizer: f}}}},
		{"cache size", Options{Cache: true, CacheTTL: time.Minute}},
		{"cache ttl", Options{Cache: true, CacheMaxSize: 4}},
	}
	for _, tt := range tests {
		if _, err := New(tt.opts); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", tt.name, err)
		}
	}
}

func TestCache(t *testing.T) {
	now := time.Unix(1000, 0)
	f := &fixed{v: access.Allow}
	c, err := New(Options{
		Links: []Link{{Name: "f", Authorizer: f}},
		Cache: true, CacheMaxSize: 2, CacheTTL: time.Minute,
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := func(client, user, topic string) access.Request {
		return access.Request{Identity: access.Identity{ClientID: client, Username: user}, Action: access.Publish, Topic: topic}
	}
	steps := []struct {
		name      string
		do        func()
		req       access.Request
		wantCalls int64
	}{
		{"first ask", nil, req("c1", "u", "a"), 1},
		{"cached", nil, req("c1", "u", "a"), 1},
		{"other topic", nil, req("c1", "u", "b"), 2},
		{"other client", nil, req("c2", "u", "a"), 3},
		{"still cached", nil, req("c1", "u", "b"), 3},
		{"evicts oldest", nil, req("c1", "u", "c"), 4},
		{"evicted entry asks again", nil, req("c1", "u", "a"), 5},
		{"generation bump invalidates", func() { c.Generation().Bump() }, req("c1", "u", "a"), 6},
		{"then cached again", nil, req("c1", "u", "a"), 6},
		{"ttl expiry", func() { now = now.Add(time.Minute) }, req("c1", "u", "a"), 7},
		{"forget", func() { c.Forget("c1") }, req("c1", "u", "a"), 8},
		{"other credentials, same client ID", nil, req("c1", "v", "a"), 9},
	}
	for _, s := range steps {
		if s.do != nil {
			s.do()
		}
		if d := c.Authorize(ctx, s.req); d.Verdict != access.Allow {
			t.Fatalf("%s: verdict %v", s.name, d.Verdict)
		}
		if got := f.calls.Load(); got != s.wantCalls {
			t.Fatalf("%s: backend called %d times, want %d", s.name, got, s.wantCalls)
		}
	}
	hits, misses := c.CacheStats()
	if hits != 3 || misses != 9 {
		t.Errorf("CacheStats = %d hits, %d misses; want 3, 9", hits, misses)
	}
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestCacheOwnClock checks the expiry with the chain's own clock: a
// decision is asked again once the TTL has passed, and Close stops the
// clock.
func TestCacheOwnClock(t *testing.T) {
	f := &fixed{v: access.Deny}
	c, err := New(Options{Links: []Link{{Name: "f", Authorizer: f}}, Cache: true, CacheMaxSize: 4, CacheTTL: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := access.Request{Identity: access.Identity{ClientID: "c1"}, Action: access.Subscribe, Topic: "a/#"}
	deadline := time.Now().Add(10 * time.Second)
	for f.calls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the cached decision never expired")
		}
		if d := c.Authorize(context.Background(), req); d.Verdict != access.Deny {
			t.Fatalf("verdict %v", d.Verdict)
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.Close()
	c.Close() // twice is fine
}

// TestReuse: a decision from the cache carries a promise (access.Reuse)
// that holds until a reload (the generation), until the client's cache is
// dropped (Forget) and until the TTL passes on the chain's clock; every
// reuse counts as a cache hit.
func TestReuse(t *testing.T) {
	f := &fixed{v: access.Allow}
	gen := new(Generation)
	c, err := New(Options{Links: []Link{{Name: "f", Authorizer: f}}, Cache: true, CacheMaxSize: 4,
		CacheTTL: time.Hour, Generation: gen})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	req := access.Request{Identity: access.Identity{ClientID: "c1"}, Action: access.Publish, Topic: "a/b"}

	d := c.Authorize(ctx, req)
	for range 2 {
		if !d.Reuse.Valid() {
			t.Fatal("a fresh decision cannot be reused")
		}
	}
	if hits, _ := c.CacheStats(); hits != 2 {
		t.Fatalf("%d cache hits after two reuses, want 2", hits)
	}
	gen.Bump()
	if d.Reuse.Valid() {
		t.Fatal("reused after a reload")
	}

	d = c.Authorize(ctx, req)
	if !d.Reuse.Valid() {
		t.Fatal("the decision after the reload cannot be reused")
	}
	c.Forget("c1")
	if d.Reuse.Valid() {
		t.Fatal("reused after Forget")
	}

	if (access.Reuse{}).Valid() {
		t.Fatal("the zero Reuse is valid")
	}
	// The chain's clock ends the promise at the TTL.
	short, err := New(Options{Links: []Link{{Name: "f", Authorizer: f}}, Cache: true, CacheMaxSize: 4, CacheTTL: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer short.Close()
	d = short.Authorize(ctx, req)
	for deadline := time.Now().Add(10 * time.Second); d.Reuse.Valid(); {
		if time.Now().After(deadline) {
			t.Fatal("the promise never expired")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A chain on an injected clock makes no promise.
	fake, err := New(Options{Links: []Link{{Name: "f", Authorizer: f}}, Cache: true, CacheMaxSize: 4, CacheTTL: time.Hour,
		Now: func() time.Time { return time.Unix(1, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	if d := fake.Authorize(ctx, req); d.Reuse.Valid() {
		t.Fatal("a promise on an injected clock")
	}
}
