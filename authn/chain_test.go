package authn

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqgate/mqgate/access"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// answer returns a link that always gives d, counting its calls.
func answer(name string, d access.Decision, onErr OnError, calls *atomic.Int64) *Link {
	return &Link{Name: name, OnError: onErr, Backend: access.AuthenticatorFunc(func(context.Context, access.Identity) access.Decision {
		if calls != nil {
			calls.Add(1)
		}
		return d
	})}
}

var (
	allow   = access.Decision{Verdict: access.Allow, Reason: "ok"}
	deny    = access.Decision{Verdict: access.Deny, Reason: "bad password"}
	ignore  = access.Decision{Verdict: access.Ignore, Reason: "unknown user"}
	outage  = access.Decision{Verdict: access.Deny, Unavailable: true, Reason: "connection refused"}
	superOK = access.Decision{Verdict: access.Allow, Superuser: true, Reason: "admin"}
)

func TestChainOrder(t *testing.T) {
	tests := []struct {
		name            string
		links           []*Link
		wantVerdict     access.Verdict
		wantSource      string
		wantUnavailable bool
		wantSuper       bool
	}{
		{"no links ignore", nil, access.Ignore, "authn", false, false},
		{"first allow wins", []*Link{answer("a", allow, ErrorDeny, nil), answer("b", deny, ErrorDeny, nil)}, access.Allow, "a", false, false},
		{"first deny wins", []*Link{answer("a", deny, ErrorDeny, nil), answer("b", allow, ErrorDeny, nil)}, access.Deny, "a", false, false},
		{"ignore asks next", []*Link{answer("a", ignore, ErrorDeny, nil), answer("b", allow, ErrorDeny, nil)}, access.Allow, "b", false, false},
		{"all ignore", []*Link{answer("a", ignore, ErrorDeny, nil), answer("b", ignore, ErrorDeny, nil)}, access.Ignore, "authn", false, false},
		// An outage with on_error = deny is "server unavailable", never a plain deny.
		{"outage deny", []*Link{answer("a", outage, ErrorDeny, nil), answer("b", allow, ErrorDeny, nil)}, access.Deny, "a", true, false},
		{"outage ignore asks next", []*Link{answer("a", outage, ErrorIgnore, nil), answer("b", allow, ErrorDeny, nil)}, access.Allow, "b", false, false},
		{"outage ignore last", []*Link{answer("a", outage, ErrorIgnore, nil)}, access.Ignore, "authn", false, false},
		{"superuser kept", []*Link{answer("a", superOK, ErrorDeny, nil)}, access.Allow, "a", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(Options{Links: tt.links})
			if err != nil {
				t.Fatal(err)
			}
			d := c.Authenticate(context.Background(), access.Identity{ClientID: "c1", Username: "u"})
			if d.Verdict != tt.wantVerdict || d.Source != tt.wantSource || d.Unavailable != tt.wantUnavailable || d.Superuser != tt.wantSuper {
				t.Errorf("got %+v, want verdict %v source %q unavailable %v superuser %v", d, tt.wantVerdict, tt.wantSource, tt.wantUnavailable, tt.wantSuper)
			}
			if d.Reason == "" {
				t.Error("decision without a reason")
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{"nil backend", Options{Links: []*Link{{Name: "a"}}}},
		{"no name", Options{Links: []*Link{answer("", allow, ErrorDeny, nil)}}},
		{"duplicate", Options{Links: []*Link{answer("a", allow, ErrorDeny, nil), answer("a", allow, ErrorDeny, nil)}}},
		{"negative ttl", Options{CacheTTL: -1}},
	}
	for _, tt := range tests {
		if _, err := New(tt.o); err == nil {
			t.Errorf("%s: New accepted bad options", tt.name)
		}
	}
	if _, err := ParseOnError("maybe"); err == nil {
		t.Error("ParseOnError accepted maybe")
	}
}

// fakeClock is a settable clock for cache expiry.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestCache(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	var calls atomic.Int64
	verdict := allow
	var mu sync.Mutex
	link := &Link{Name: "b", Backend: access.AuthenticatorFunc(func(context.Context, access.Identity) access.Decision {
		calls.Add(1)
		mu.Lock()
		defer mu.Unlock()
		return verdict
	})}
	c, err := New(Options{Links: []*Link{link}, CacheTTL: time.Minute, NegativeTTL: 5 * time.Second, now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	id := access.Identity{ClientID: "c", Username: "u", UsernameSet: true, Password: []byte("p")}
	ctx := context.Background()
	for range 3 {
		if d := c.Authenticate(ctx, id); d.Verdict != access.Allow {
			t.Fatalf("got %v", d.Verdict)
		}
	}
	if calls.Load() != 1 || c.Metrics().CacheHits() != 2 {
		t.Fatalf("calls %d hits %d, want 1 and 2", calls.Load(), c.Metrics().CacheHits())
	}
	// Another password is another key.
	other := id
	other.Password = []byte("q")
	c.Authenticate(ctx, other)
	if calls.Load() != 2 {
		t.Fatalf("another password was served from the cache")
	}
	// Expiry.
	mu.Lock()
	verdict = deny
	mu.Unlock()
	clk.add(time.Minute)
	if d := c.Authenticate(ctx, id); d.Verdict != access.Deny || calls.Load() != 3 {
		t.Fatalf("after ttl: %v, calls %d", d.Verdict, calls.Load())
	}
	// Denies are remembered for the negative TTL only.
	c.Authenticate(ctx, id)
	if calls.Load() != 3 {
		t.Fatal("deny not cached")
	}
	clk.add(5 * time.Second)
	c.Authenticate(ctx, id)
	if calls.Load() != 4 {
		t.Fatal("deny cached beyond the negative ttl")
	}
	// Outages are never cached.
	mu.Lock()
	verdict = outage
	mu.Unlock()
	clk.add(time.Hour)
	c.Authenticate(ctx, id)
	c.Authenticate(ctx, id)
	if calls.Load() != 6 {
		t.Fatalf("outage cached: calls %d", calls.Load())
	}
}

func TestCacheEntryNeverOutlivesCredentials(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	var calls atomic.Int64
	d := access.Decision{Verdict: access.Allow, ExpiresAt: clk.now().Add(10 * time.Second)}
	c, err := New(Options{Links: []*Link{answer("jwt", d, ErrorDeny, &calls)}, CacheTTL: time.Hour, now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	id := access.Identity{ClientID: "c"}
	c.Authenticate(context.Background(), id)
	clk.add(10 * time.Second)
	c.Authenticate(context.Background(), id)
	if calls.Load() != 2 {
		t.Fatalf("cached past the credentials' expiry: calls %d", calls.Load())
	}
}

func TestCacheBounded(t *testing.T) {
	c := newCache(4, time.Hour, 0, time.Second, time.Now)
	for i := range 10 {
		c.put(keyOf(access.Identity{ClientID: string(rune('a' + i))}), allow)
	}
	if n := c.len(); n != 4 {
		t.Fatalf("cache holds %d entries, want 4", n)
	}
}

func TestCacheKeyHoldsNoPassword(t *testing.T) {
	pw := []byte("s3cret-password-value")
	k := keyOf(access.Identity{ClientID: "c", Password: pw})
	if bytes.Contains(k[:], pw[:8]) {
		t.Fatal("key contains the password")
	}
	base := access.Identity{ClientID: "c", Username: "u", Password: []byte("p"), Peer: netip.MustParseAddrPort("10.0.0.1:5000")}
	variants := []func(*access.Identity){
		func(i *access.Identity) { i.ClientID = "d" },
		func(i *access.Identity) { i.Username = "v" },
		func(i *access.Identity) { i.Password = []byte("q") },
		func(i *access.Identity) { i.Peer = netip.MustParseAddrPort("10.0.0.2:5000") },
		func(i *access.Identity) { i.UsernameSet = true },
		// Field boundaries: "u"+"cp" must differ from "uc"+"p".
		func(i *access.Identity) { i.Username, i.ClientID = "uc", "" },
	}
	for n, v := range variants {
		id := base
		v(&id)
		if keyOf(id) == keyOf(base) {
			t.Errorf("variant %d has the same key", n)
		}
	}
	// The source port does not matter.
	same := base
	same.Peer = netip.MustParseAddrPort("10.0.0.1:6000")
	if keyOf(same) != keyOf(base) {
		t.Error("source port changes the key")
	}
}

// TestSingleflight checks that concurrent identical requests make one
// backend call.
func TestSingleflight(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 100)
	var calls atomic.Int64
	link := &Link{Name: "slow", Backend: access.AuthenticatorFunc(func(context.Context, access.Identity) access.Decision {
		calls.Add(1)
		entered <- struct{}{}
		<-release
		return allow
	})}
	c, err := New(Options{Links: []*Link{link}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	results := make(chan access.Decision, n)
	id := access.Identity{ClientID: "same", Password: []byte("p")}
	wg.Add(1)
	go func() { defer wg.Done(); results <- c.Authenticate(context.Background(), id) }()
	<-entered // the first evaluation is in the backend
	for range n - 1 {
		wg.Add(1)
		go func() { defer wg.Done(); results <- c.Authenticate(context.Background(), id) }()
	}
	// Let the followers join the flight before it lands.
	for c.waiters(keyOf(id)) < n {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(results)
	for d := range results {
		if d.Verdict != access.Allow {
			t.Fatalf("got %v", d.Verdict)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("backend called %d times for identical concurrent requests, want 1", calls.Load())
	}
}

// TestMaxConcurrent checks the bound on backend calls in flight.
func TestMaxConcurrent(t *testing.T) {
	var inFlight, peak atomic.Int64
	release := make(chan struct{})
	link := &Link{Name: "b", Backend: access.AuthenticatorFunc(func(context.Context, access.Identity) access.Decision {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		inFlight.Add(-1)
		return allow
	})}
	c, err := New(Options{Links: []*Link{link}, MaxConcurrent: 3})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Authenticate(context.Background(), access.Identity{ClientID: string(rune('a' + i))})
		}()
	}
	for inFlight.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if peak.Load() != 3 {
		t.Fatalf("peak backend calls %d, want 3", peak.Load())
	}
}

// TestOutageLoggedOnce checks that an outage is logged when it starts and
// when it ends, not once per client.
func TestOutageLoggedOnce(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil))
	verdict := outage
	link := &Link{Name: "http", Backend: access.AuthenticatorFunc(func(context.Context, access.Identity) access.Decision {
		mu.Lock()
		defer mu.Unlock()
		return verdict
	})}
	c, err := New(Options{Links: []*Link{link}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		d := c.Authenticate(context.Background(), access.Identity{ClientID: string(rune('a' + i))})
		if !d.Unavailable {
			t.Fatalf("outage answered %+v", d)
		}
	}
	mu.Lock()
	verdict = allow
	mu.Unlock()
	c.Authenticate(context.Background(), access.Identity{ClientID: "z"})
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if n := strings.Count(out, "authentication backend unavailable"); n != 1 {
		t.Errorf("outage logged %d times, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "authentication backend recovered"); n != 1 {
		t.Errorf("recovery logged %d times, want 1", n)
	}
	if got := c.Metrics().Decisions("http", "error"); got != 50 {
		t.Errorf("error counter %d, want 50", got)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// BenchmarkAuthenticateCached measures a decision served from the cache.
func BenchmarkAuthenticateCached(b *testing.B) {
	c, err := New(Options{Links: []*Link{answer("a", allow, ErrorDeny, nil)}, CacheTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	id := access.Identity{ClientID: "c", Username: "u", Password: []byte("p")}
	c.Authenticate(context.Background(), id)
	b.ReportAllocs()
	for b.Loop() {
		c.Authenticate(context.Background(), id)
	}
}

// BenchmarkAuthenticateMiss measures a full evaluation with the cache off.
func BenchmarkAuthenticateMiss(b *testing.B) {
	c, err := New(Options{Links: []*Link{answer("a", ignore, ErrorDeny, nil), answer("b", allow, ErrorDeny, nil)}})
	if err != nil {
		b.Fatal(err)
	}
	id := access.Identity{ClientID: "c", Username: "u", Password: []byte("p")}
	b.ReportAllocs()
	for b.Loop() {
		c.Authenticate(context.Background(), id)
	}
}
