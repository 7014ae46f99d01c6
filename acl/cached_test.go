package acl

import (
	"context"
	"testing"
	"time"

	"github.com/mqgate/mqgate/access"
)

func TestCached(t *testing.T) {
	now := time.Unix(1700000000, 0)
	clock := func() time.Time { return now }
	answer := access.AuthorizerFunc(func(_ context.Context, req access.Request) access.Decision {
		switch req.Topic {
		case "ok":
			return access.Decision{Verdict: access.Allow}
		case "no":
			return access.Decision{Verdict: access.Deny}
		}
		return access.Decision{Verdict: access.Ignore}
	})
	c, err := New(Options{Links: []Link{{Name: "t", Authorizer: answer}}, NoMatch: access.Deny, Cache: true, CacheMaxSize: 10, CacheTTL: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if _, ok := c.Cached("c1"); ok {
		t.Fatal("a client that asked nothing has a cache")
	}
	ask := func(topic string, a access.Action) {
		c.Authorize(context.Background(), access.Request{Identity: access.Identity{ClientID: "c1"}, Action: a, Topic: topic})
	}
	ask("ok", access.Publish)
	now = now.Add(time.Second)
	ask("no", access.Subscribe)
	ask("other", access.Publish)
	got, ok := c.Cached("c1")
	if !ok || len(got) != 3 {
		t.Fatalf("Cached = %+v, %v", got, ok)
	}
	want := []struct {
		topic   string
		verdict access.Verdict
		noMatch bool
		at      int64
	}{{"no", access.Deny, false, 1700000001}, {"ok", access.Allow, false, 1700000000}, {"other", access.Deny, true, 1700000001}}
	for i, w := range want {
		if g := got[i]; g.Topic != w.topic || g.Decision.Verdict != w.verdict || g.NoMatch != w.noMatch || g.At.Unix() != w.at {
			t.Errorf("entry %d = %+v, want %+v", i, g, w)
		}
	}
	// Expired entries and entries of an older generation are not listed.
	now = now.Add(59*time.Second + 500*time.Millisecond)
	if got, _ := c.Cached("c1"); len(got) != 2 {
		t.Errorf("after the first entry expired: %d entries", len(got))
	}
	c.Generation().Bump()
	if got, ok := c.Cached("c1"); !ok || len(got) != 0 {
		t.Errorf("after a reload: %+v", got)
	}
}
