package authn

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/mqgate/mqgate/access"
)

// cacheKey identifies a set of credentials without holding them: an HMAC,
// under a key drawn at start, of the username, client id, password, peer
// IP, listener and certificate names. The clear password is never stored.
type cacheKey [sha256.Size]byte

// keySecret keys the HMAC, so that a dump of the cache cannot be checked
// against a dictionary of passwords.
var keySecret = func() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}()

var macPool = sync.Pool{New: func() any { return hmac.New(sha256.New, keySecret) }}

func keyOf(id access.Identity) cacheKey {
	h := macPool.Get().(hash.Hash)
	h.Reset()
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	set := byte(0)
	if id.UsernameSet {
		set = 1
	}
	h.Write([]byte{set, id.Proto})
	field([]byte(id.Username))
	field([]byte(id.ClientID))
	field(id.Password)
	field(id.Peer.Addr().AsSlice())
	field([]byte(id.Listener))
	field([]byte(id.CertCN))
	field([]byte(id.CertDN))
	var k cacheKey
	h.Sum(k[:0])
	macPool.Put(h)
	return k
}

type cacheEntry struct {
	d       access.Decision
	expires time.Time
}

// cache remembers chain decisions for a while. Allows live for ttl,
// denies and all-ignore answers for negTTL, each plus a random jitter;
// outages are never remembered. An entry never outlives the credentials'
// own expiry.
type cache struct {
	mu      sync.Mutex
	m       map[cacheKey]cacheEntry
	max     int
	ttl     time.Duration
	negTTL  time.Duration
	jitter  time.Duration
	now     func() time.Time
	evicted uint64
}

func newCache(max int, ttl, negTTL, jitter time.Duration, now func() time.Time) *cache {
	return &cache{m: make(map[cacheKey]cacheEntry), max: max, ttl: ttl, negTTL: negTTL, jitter: jitter, now: now}
}

func (c *cache) get(k cacheKey) (access.Decision, bool) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[k]
	if ok && !now.Before(e.expires) {
		delete(c.m, k)
		ok = false
	}
	c.mu.Unlock()
	return e.d, ok
}

func (c *cache) put(k cacheKey, d access.Decision) {
	if d.Unavailable {
		return
	}
	ttl := c.negTTL
	if d.Verdict == access.Allow {
		ttl = c.ttl
	}
	if ttl <= 0 {
		return
	}
	if c.jitter > 0 {
		ttl += mrand.N(c.jitter)
	}
	now := c.now()
	exp := now.Add(ttl)
	if !d.ExpiresAt.IsZero() && d.ExpiresAt.Before(exp) {
		exp = d.ExpiresAt
	}
	if !now.Before(exp) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		c.makeRoom(now)
	}
	c.m[k] = cacheEntry{d: d, expires: exp}
}

// makeRoom drops expired entries, or, when none has expired, one entry
// picked by map order (effectively at random). c.mu must be held.
func (c *cache) makeRoom(now time.Time) {
	for k, e := range c.m {
		if !now.Before(e.expires) {
			delete(c.m, k)
		}
	}
	if len(c.m) < c.max {
		return
	}
	for k := range c.m {
		delete(c.m, k)
		c.evicted++
		return
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
