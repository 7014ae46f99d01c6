// Package authn is mqgate's authentication chain: an ordered list of
// backends (file, jwt, http, pgsql) asked in turn at CONNECT until one of
// them allows or denies the client. It survives connect storms with a
// decision cache, coalescing of identical concurrent requests and a bound
// on concurrent backend calls, and it turns a backend outage into
// "server unavailable", never into "bad username or password".
package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqgate/mqgate/access"
)

// ErrConfig is wrapped by every error New returns for bad options.
var ErrConfig = errors.New("authn: invalid configuration")

// OnError says what a link's backend error (an outage) means.
type OnError uint8

const (
	// ErrorDeny refuses the client with "server unavailable" (the EMQX 4
	// default for authentication).
	ErrorDeny OnError = iota
	// ErrorIgnore asks the next link, as if the backend had ignored the
	// client.
	ErrorIgnore
)

// ParseOnError parses "deny" or "ignore".
func ParseOnError(s string) (OnError, error) {
	switch s {
	case "deny":
		return ErrorDeny, nil
	case "ignore":
		return ErrorIgnore, nil
	}
	return 0, fmt.Errorf("%w: on_error %q (want deny or ignore)", ErrConfig, s)
}

// Link is one backend of the chain. A backend reports an outage by
// returning a Decision with Unavailable set; the link's OnError decides
// what the chain makes of it.
type Link struct {
	Name    string // e.g. "http"; the Source of its decisions
	Backend access.Authenticator
	OnError OnError
	// Close, if set, releases the backend's resources when the chain is
	// closed.
	Close func() error

	down atomic.Bool // in an outage: logged once when it starts and once when it ends
}

// Options configure a Chain.
type Options struct {
	Links []*Link
	// CacheTTL is how long an allow is remembered; 0 disables the cache.
	CacheTTL time.Duration
	// NegativeTTL is how long a deny (or an ignore by every link) is
	// remembered; 0 never remembers one.
	NegativeTTL time.Duration
	// Jitter adds a random part of up to this much to every entry's TTL, so
	// that entries made in one storm do not all expire together.
	Jitter time.Duration
	// CacheSize bounds the number of cached decisions (default 100000).
	CacheSize int
	// MaxConcurrent bounds the backend calls in flight (default 64); a
	// client waits for a slot until its deadline.
	MaxConcurrent int
	// Timeout bounds one chain evaluation, independently of the client
	// that started it (coalesced clients share it). Default 5s.
	Timeout time.Duration
	Logger  *slog.Logger
	Metrics *Metrics // nil: a private set
	now     func() time.Time
}

// Chain is the authentication chain. It is safe for concurrent use.
type Chain struct {
	links   []*Link
	cache   *cache
	mu      sync.Mutex
	flights map[cacheKey]*flight // evaluations in progress
	wg      sync.WaitGroup
	sem     chan struct{}
	timeout time.Duration
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time
}

var _ access.Authenticator = (*Chain)(nil)

// New builds a chain. It checks that every link has a distinct name and a
// backend.
func New(o Options) (*Chain, error) {
	var errs []error
	seen := map[string]bool{}
	for i, l := range o.Links {
		switch {
		case l == nil || l.Backend == nil:
			errs = append(errs, fmt.Errorf("%w: link %d has no backend", ErrConfig, i))
			continue
		case l.Name == "":
			errs = append(errs, fmt.Errorf("%w: link %d has no name", ErrConfig, i))
		case seen[l.Name]:
			errs = append(errs, fmt.Errorf("%w: backend %q is in the chain twice", ErrConfig, l.Name))
		}
		seen[l.Name] = true
	}
	if o.CacheTTL < 0 || o.NegativeTTL < 0 || o.Jitter < 0 || o.CacheSize < 0 || o.MaxConcurrent < 0 || o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("%w: negative durations or sizes", ErrConfig))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if o.CacheSize == 0 {
		o.CacheSize = 100000
	}
	if o.MaxConcurrent == 0 {
		o.MaxConcurrent = 64
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	if o.now == nil {
		o.now = time.Now
	}
	c := &Chain{
		links:   o.Links,
		sem:     make(chan struct{}, o.MaxConcurrent),
		timeout: o.Timeout,
		log:     o.Logger.With("component", "authn"),
		metrics: o.Metrics,
		now:     o.now,
		flights: map[cacheKey]*flight{},
	}
	for _, l := range o.Links {
		c.metrics.init(l.Name)
	}
	if o.CacheTTL > 0 || o.NegativeTTL > 0 {
		c.cache = newCache(o.CacheSize, o.CacheTTL, o.NegativeTTL, o.Jitter, o.now)
	}
	return c, nil
}

// Metrics returns the chain's counters.
func (c *Chain) Metrics() *Metrics { return c.metrics }

// Close waits for the evaluations in progress, then releases every link's
// resources.
func (c *Chain) Close() error {
	c.wg.Wait()
	var errs []error
	for _, l := range c.links {
		if l.Close != nil {
			if err := l.Close(); err != nil {
				errs = append(errs, fmt.Errorf("authn: close %s: %w", l.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Authenticate asks the links in order; the first answer other than Ignore
// wins. When every link ignores the client the chain answers Ignore and
// the broker applies allow_anonymous. Decisions come from the cache when
// a fresh one is there; identical concurrent requests share one
// evaluation.
func (c *Chain) Authenticate(ctx context.Context, id access.Identity) access.Decision {
	key := keyOf(id)
	if c.cache != nil {
		if d, ok := c.cache.get(key); ok {
			c.metrics.cacheHits.Add(1)
			d.Reason += " (cached)"
			return d
		}
		c.metrics.cacheMisses.Add(1)
	}
	f := c.join(key, id)
	select {
	case <-f.done:
		return f.d
	case <-ctx.Done():
		return access.Decision{Verdict: access.Deny, Unavailable: true, Source: "authn", Reason: "authentication timed out"}
	}
}

// flight is one evaluation of the chain that identical concurrent
// requests share.
type flight struct {
	done    chan struct{} // closed when d is set
	d       access.Decision
	waiters int // requests sharing it; c.mu must be held
}

// join returns the evaluation in progress for key, or starts one. The
// evaluation runs on its own goroutine with its own deadline, so a client
// that gives up does not cut short the others waiting for it.
func (c *Chain) join(key cacheKey, id access.Identity) *flight {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.flights[key]; ok {
		f.waiters++
		c.metrics.coalesced.Add(1)
		return f
	}
	f := &flight{done: make(chan struct{}), waiters: 1}
	c.flights[key] = f
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		f.d = c.evaluate(ctx, id)
		cancel()
		if c.cache != nil {
			c.cache.put(key, f.d)
		}
		c.mu.Lock()
		delete(c.flights, key)
		c.mu.Unlock()
		close(f.done)
	}()
	return f
}

// waiters returns how many requests share the evaluation in progress for
// key (0 when there is none).
func (c *Chain) waiters(key cacheKey) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.flights[key]; ok {
		return f.waiters
	}
	return 0
}

// evaluate runs the chain once.
func (c *Chain) evaluate(ctx context.Context, id access.Identity) access.Decision {
	for _, l := range c.links {
		d, ok := c.call(ctx, l, id)
		if !ok {
			return d
		}
		if d.Source == "" {
			d.Source = l.Name
		}
		if d.Unavailable {
			c.metrics.count(l.Name, resultError)
			if l.down.CompareAndSwap(false, true) {
				c.log.Warn("authentication backend unavailable", "backend", l.Name, "reason", d.Reason, "on_error", onErrorName(l.OnError))
			}
			if l.OnError == ErrorIgnore {
				continue
			}
			d.Verdict = access.Deny
			return d
		}
		if l.down.CompareAndSwap(true, false) {
			c.log.Info("authentication backend recovered", "backend", l.Name)
		}
		switch d.Verdict {
		case access.Allow:
			c.metrics.count(l.Name, resultAllow)
			return d
		case access.Deny:
			c.metrics.count(l.Name, resultDeny)
			return d
		default:
			c.metrics.count(l.Name, resultIgnore)
		}
	}
	return access.Decision{Verdict: access.Ignore, Source: "authn", Reason: "no backend decided"}
}

// call asks one link within the bound on concurrent backend calls. It
// returns false when no slot freed up before the deadline.
func (c *Chain) call(ctx context.Context, l *Link, id access.Identity) (access.Decision, bool) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		c.metrics.count(l.Name, resultError)
		return access.Decision{Verdict: access.Deny, Unavailable: true, Source: l.Name, Reason: "too many concurrent authentications"}, false
	}
	defer func() { <-c.sem }()
	c.metrics.backendCalls.Add(1)
	return l.Backend.Authenticate(ctx, id), true
}

func onErrorName(o OnError) string {
	if o == ErrorIgnore {
		return "ignore"
	}
	return "deny"
}
