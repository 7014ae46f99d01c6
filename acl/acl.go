// Package acl is mqgate's authorization chain: an ordered list of backends
// (casbin, jwt, http, pgsql, file) asked in turn whether a client may publish
// to a topic or subscribe to a filter. The first answer that is not Ignore
// wins; when every link ignores, the broker applies acl_nomatch. Decisions
// are cached per connection and the whole cache is invalidated at once by a
// generation counter that every policy reload bumps. The package also holds
// the MQTT topic logic the backends share (Covers, Overlaps, Expand).
package acl

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqgate/mqgate/access"
)

// ErrConfig is wrapped by every configuration error of the package and its
// backends.
var ErrConfig = errors.New("invalid acl configuration")

// Generation counts policy reloads. A cached decision is valid only while
// the generation it was made in is current, so one Bump invalidates every
// connection's cache at once. The zero value is ready to use.
type Generation struct {
	n atomic.Uint64
}

// Bump starts a new generation. Backends call it after every reload.
func (g *Generation) Bump() { g.n.Add(1) }

// Load returns the current generation.
func (g *Generation) Load() uint64 { return g.n.Load() }

// Link is one named backend of the chain.
type Link struct {
	Name       string // as written in acl.chain, e.g. "casbin"
	Authorizer access.Authorizer
}

// Options configure a Chain.
type Options struct {
	Links []Link
	// NoMatch is the verdict when every link ignores (acl_nomatch). Authorize
	// still returns Ignore then, so that the broker applies its own
	// default; NoMatch is what Explain reports.
	NoMatch access.Verdict
	// Cache turns the per-connection decision cache on (enable_acl_cache).
	Cache bool
	// CacheMaxSize is the most decisions kept per connection
	// (acl_cache_max_size); the oldest is dropped first.
	CacheMaxSize int
	// CacheTTL is how long a cached decision is used (acl_cache_ttl).
	CacheTTL time.Duration
	// Generation is bumped by the backends on reload; nil gives the chain
	// its own.
	Generation *Generation
	// Now returns the current time; nil means a clock that the chain
	// advances every 50ms (the cache's expiry needs no finer time, and
	// reading the system clock on every request costs more than the rest
	// of a cache hit). Close stops that clock.
	Now func() time.Time
}

// clockTick is how often the chain's own clock advances.
const clockTick = 50 * time.Millisecond

// Chain asks its links in order. It is safe for concurrent use.
type Chain struct {
	links   []Link
	noMatch access.Verdict
	cache   bool
	maxSize int
	ttl     time.Duration
	gen     *Generation
	now     func() time.Time

	clock     atomic.Int64 // unix nanoseconds, when now is nil
	stopClock chan struct{}
	clockDone sync.WaitGroup
	closeOnce sync.Once

	clients sync.Map // client ID → *clientCache

	// Counts of forgotten caches; live ones count in their clientCache, so
	// that the hot path touches no shared cache line.
	goneMu             sync.Mutex
	goneHits, goneMiss uint64
}

var (
	_ access.Authorizer = (*Chain)(nil)
	_ access.Forgetter  = (*Chain)(nil)
)

// New validates opts and returns the chain.
func New(opts Options) (*Chain, error) {
	seen := make(map[string]bool, len(opts.Links))
	for i, l := range opts.Links {
		if l.Name == "" || l.Authorizer == nil {
			return nil, fmt.Errorf("acl: link %d: name and authorizer are required: %w", i, ErrConfig)
		}
		if seen[l.Name] {
			return nil, fmt.Errorf("acl: link %q listed twice: %w", l.Name, ErrConfig)
		}
		seen[l.Name] = true
	}
	if opts.Cache && opts.CacheMaxSize <= 0 {
		return nil, fmt.Errorf("acl: cache max size %d: must be positive: %w", opts.CacheMaxSize, ErrConfig)
	}
	if opts.Cache && opts.CacheTTL <= 0 {
		return nil, fmt.Errorf("acl: cache ttl %v: must be positive: %w", opts.CacheTTL, ErrConfig)
	}
	c := &Chain{
		links:   opts.Links,
		noMatch: opts.NoMatch,
		cache:   opts.Cache,
		maxSize: opts.CacheMaxSize,
		ttl:     opts.CacheTTL,
		gen:     opts.Generation,
		now:     opts.Now,
	}
	if c.gen == nil {
		c.gen = new(Generation)
	}
	if c.now == nil && c.cache {
		c.clock.Store(time.Now().UnixNano())
		c.stopClock = make(chan struct{})
		c.clockDone.Add(1)
		go c.runClock()
	}
	if c.noMatch == access.Ignore {
		c.noMatch = access.Allow
	}
	return c, nil
}

// runClock advances the chain's clock until Close.
func (c *Chain) runClock() {
	defer c.clockDone.Done()
	t := time.NewTicker(clockTick)
	defer t.Stop()
	for {
		select {
		case <-c.stopClock:
			return
		case now := <-t.C:
			c.clock.Store(now.UnixNano())
		}
	}
}

// nowNano returns the current time in unix nanoseconds.
func (c *Chain) nowNano() int64 {
	if c.now != nil {
		return c.now().UnixNano()
	}
	return c.clock.Load()
}

// Close stops the chain's clock. The chain keeps answering; cached
// decisions then never expire by age, only by reload.
func (c *Chain) Close() {
	c.closeOnce.Do(func() {
		if c.stopClock != nil {
			close(c.stopClock)
			c.clockDone.Wait()
		}
	})
}

// Generation returns the counter that invalidates the chain's cache.
func (c *Chain) Generation() *Generation { return c.gen }

// Authorize asks the links in order and returns the first answer that is
// not Ignore; Ignore (Source "") when every link ignores. With the cache
// on, a decision made for the same client, action, topic, QoS and retain
// flag in the current generation and within the TTL is reused.
func (c *Chain) Authorize(ctx context.Context, req access.Request) access.Decision {
	if !c.cache || req.ClientID == "" {
		return c.ask(ctx, req, nil)
	}
	k := cacheKey{action: req.Action, qos: req.QoS, retain: req.Retain, topic: req.Topic}
	gen := c.gen.Load()
	now := c.nowNano()
	cc := c.clientCache(req)
	if d, expires, ok := cc.get(k, gen, now); ok {
		d.Reuse = c.reuse(cc, gen, expires)
		return d
	}
	d := c.ask(ctx, req, nil)
	if ctx.Err() == nil {
		expires := now + int64(c.ttl)
		cc.put(k, d, gen, expires, c.maxSize)
		d.Reuse = c.reuse(cc, gen, expires)
	}
	return d
}

// reuse is the promise that goes with a decision cached in cc: it stands
// until a reload (the generation), until cc is dropped (Forget, a
// reconnect with other credentials) and until it expires. With an Options.Now
// clock there is no shared clock to check, so no promise.
func (c *Chain) reuse(cc *clientCache, gen uint64, expires int64) access.Reuse {
	if c.now != nil {
		return access.Reuse{}
	}
	return access.NewReuse([2]*atomic.Uint64{&c.gen.n, &cc.epoch}, [2]uint64{gen, 0}, &c.clock, expires, &cc.hits)
}

// ask runs the chain; each link's answer goes to each when it is not nil.
func (c *Chain) ask(ctx context.Context, req access.Request, each func(Link, access.Decision)) access.Decision {
	for _, l := range c.links {
		d := l.Authorizer.Authorize(ctx, req)
		if d.Source == "" {
			d.Source = l.Name
		}
		if each != nil {
			each(l, d)
		}
		if d.Verdict != access.Ignore {
			return d
		}
	}
	return access.Decision{Verdict: access.Ignore}
}

// Forget drops the cached decisions of a client: the broker calls it when
// the client disconnects.
func (c *Chain) Forget(clientID string) {
	if v, ok := c.clients.LoadAndDelete(clientID); ok {
		c.retire(v.(*clientCache))
	}
}

// retire keeps the counters of a cache that is dropped.
func (c *Chain) retire(cc *clientCache) {
	cc.epoch.Add(1) // its decisions are no longer reused
	cc.mu.Lock()
	h, m := cc.hits.Load(), cc.misses
	cc.mu.Unlock()
	c.goneMu.Lock()
	c.goneHits += h
	c.goneMiss += m
	c.goneMu.Unlock()
}

// CacheStats returns how many decisions came from the cache and how many
// were asked of the links.
func (c *Chain) CacheStats() (hits, misses uint64) {
	c.goneMu.Lock()
	hits, misses = c.goneHits, c.goneMiss
	c.goneMu.Unlock()
	c.clients.Range(func(_, v any) bool {
		cc := v.(*clientCache)
		cc.mu.Lock()
		hits += cc.hits.Load()
		misses += cc.misses
		cc.mu.Unlock()
		return true
	})
	return hits, misses
}

// LinkAnswer is what one link said in an explanation.
type LinkAnswer struct {
	Link     string
	Decision access.Decision
}

// Explanation is a decision with the answer of every link asked.
type Explanation struct {
	Decision access.Decision // the final verdict, acl_nomatch applied
	Links    []LinkAnswer    // in chain order; links after the decider were not asked
	NoMatch  bool            // every link ignored: acl_nomatch decided
}

// Explain runs the chain without the cache and reports what each link
// said. Unlike Authorize it applies acl_nomatch, under Source "acl_nomatch".
func (c *Chain) Explain(ctx context.Context, req access.Request) Explanation {
	var ex Explanation
	d := c.ask(ctx, req, func(l Link, d access.Decision) {
		ex.Links = append(ex.Links, LinkAnswer{Link: l.Name, Decision: d})
	})
	if d.Verdict == access.Ignore {
		ex.NoMatch = true
		d = access.Decision{Verdict: c.noMatch, Source: "acl_nomatch", Reason: "no backend allowed or denied"}
	}
	ex.Decision = d
	return ex
}

// cacheKey identifies one question of one client.
type cacheKey struct {
	action access.Action
	qos    byte
	retain bool
	topic  string
}

// cacheEntry is one cached decision.
type cacheEntry struct {
	d       access.Decision
	gen     uint64
	expires int64 // unix nanoseconds
}

// clientCache holds one connection's decisions. Whoever asks for it first
// after a connect owns it; its owner fields tell a reconnect with other
// credentials apart.
type clientCache struct {
	mu      sync.Mutex
	user    string
	grantBy string
	granted int
	entries map[cacheKey]cacheEntry
	order   []cacheKey // insertion order, for eviction; oldest first

	// hits counts decisions served from here, by the cache or reused by
	// the caller (access.Reuse); epoch, bumped when the cache is dropped,
	// ends the reuse of its decisions.
	hits   atomic.Uint64
	misses uint64
	epoch  atomic.Uint64
}

// clientCache returns the cache of req's client, replacing a cache made for
// other credentials under the same client ID.
func (c *Chain) clientCache(req access.Request) *clientCache {
	if v, ok := c.clients.Load(req.ClientID); ok {
		cc := v.(*clientCache)
		if cc.owns(req) {
			return cc
		}
		c.retire(cc)
	}
	cc := &clientCache{user: req.Username, grantBy: req.GrantedBy, granted: len(req.Granted), entries: make(map[cacheKey]cacheEntry)}
	c.clients.Store(req.ClientID, cc)
	return cc
}

// owns reports whether the cache was made for req's credentials.
func (cc *clientCache) owns(req access.Request) bool {
	return cc.user == req.Username && cc.grantBy == req.GrantedBy && cc.granted == len(req.Granted)
}

// get returns the cached decision for k if it is from generation gen and
// has not expired.
func (cc *clientCache) get(k cacheKey, gen uint64, now int64) (access.Decision, int64, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	e, ok := cc.entries[k]
	switch {
	case !ok:
	case e.gen != gen:
		// A reload happened: everything in here is stale.
		clear(cc.entries)
		cc.order = cc.order[:0]
	case now >= e.expires:
	default:
		cc.hits.Add(1)
		return e.d, e.expires, true
	}
	cc.misses++
	return access.Decision{}, 0, false
}

// put stores d under k, dropping the oldest entries beyond max.
func (cc *clientCache) put(k cacheKey, d access.Decision, gen uint64, expires int64, max int) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if _, ok := cc.entries[k]; !ok {
		for len(cc.order) >= max {
			delete(cc.entries, cc.order[0])
			cc.order = cc.order[1:]
		}
		cc.order = append(cc.order, k)
	}
	cc.entries[k] = cacheEntry{d: d, gen: gen, expires: expires}
}

// HealthChecker is implemented by backends that can be degraded while they
// keep answering, such as one serving its last good policy after a failed
// reload.
type HealthChecker interface {
	Health() error
}

// MetricsReporter is implemented by backends that count things (reloads,
// errors); the names are the metric names.
type MetricsReporter interface {
	Metrics() map[string]uint64
}

// Health returns the joined Health errors of the links, or nil when every
// link is healthy. A degraded link still answers: this is for /healthz and
// alerts, not for refusing traffic.
func (c *Chain) Health() error {
	var errs []error
	for _, l := range c.links {
		if h, ok := l.Authorizer.(HealthChecker); ok {
			if err := h.Health(); err != nil {
				errs = append(errs, fmt.Errorf("acl %s: %w", l.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Metrics returns the links' counters and the cache's: acl.cache.hits,
// acl.cache.misses and acl.generation.
func (c *Chain) Metrics() map[string]uint64 {
	m := map[string]uint64{}
	for _, l := range c.links {
		if r, ok := l.Authorizer.(MetricsReporter); ok {
			for k, v := range r.Metrics() {
				m[k] = v
			}
		}
	}
	m["acl.cache.hits"], m["acl.cache.misses"] = c.CacheStats()
	m["acl.generation"] = c.gen.Load()
	return m
}
