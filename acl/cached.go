package acl

import (
	"slices"
	"strings"
	"time"

	"github.com/mqgate/mqgate/access"
)

// CachedDecision is one decision held in a client's cache.
type CachedDecision struct {
	Action access.Action
	Topic  string
	QoS    byte
	Retain bool
	// Decision is the cached answer. When every link ignored, its Verdict
	// is the chain's NoMatch and NoMatch is true.
	Decision access.Decision
	NoMatch  bool
	// At is when the links were asked.
	At time.Time
}

// Cached returns the decisions cached for clientID that are still usable
// (current generation, not expired), by topic and then action. It reports
// false when the cache is off or the client has no cache.
func (c *Chain) Cached(clientID string) ([]CachedDecision, bool) {
	if !c.cache {
		return nil, false
	}
	v, ok := c.clients.Load(clientID)
	if !ok {
		return nil, false
	}
	cc := v.(*clientCache)
	gen, now := c.gen.Load(), c.nowNano()
	cc.mu.Lock()
	out := make([]CachedDecision, 0, len(cc.entries))
	for k, e := range cc.entries {
		if e.gen != gen || now >= e.expires {
			continue
		}
		cd := CachedDecision{Action: k.action, Topic: k.topic, QoS: k.qos, Retain: k.retain, Decision: e.d,
			At: time.Unix(0, e.expires-int64(c.ttl))}
		if e.d.Verdict == access.Ignore {
			cd.NoMatch = true
			cd.Decision.Verdict = c.noMatch
		}
		out = append(out, cd)
	}
	cc.mu.Unlock()
	slices.SortFunc(out, func(x, y CachedDecision) int {
		if n := strings.Compare(x.Topic, y.Topic); n != 0 {
			return n
		}
		return int(x.Action) - int(y.Action)
	})
	return out, true
}
