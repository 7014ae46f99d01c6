package topics

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Index is the subscription index: a trie with one node per topic level of
// the subscribed filters. A node holds its literal children in a map and its
// '+' and '#' children in separate fields, so that matching a topic name costs
// one map lookup and two pointer checks per level.
//
// An Index is safe for concurrent use. Match takes only the read lock;
// Subscribe and Unsubscribe take the write lock.
type Index struct {
	strategy Strategy

	mu      sync.RWMutex
	root    node
	clients map[Subscriber]map[subKey]*entry // every subscription, by owner
	count   int                              // subscriptions, shared ones included
	shared  int                              // shared subscriptions
	routes  int                              // nodes holding at least one subscription
}

// node is one level of the trie. The path from the root to a node spells a
// topic filter; the node holds the subscriptions to exactly that filter.
type node struct {
	parent   *node
	key      string           // this node's level in parent.children ("" for '+' and '#')
	children map[string]*node // literal levels; nil when there are none
	plus     *node            // the '+' level
	hash     *node            // the '#' level

	subs   []Sub    // non-shared subscriptions to this node's filter
	owners []*entry // owners[i] is the entry of subs[i]
	groups []*group // shared groups on this node's filter; usually very few
}

// empty reports whether n holds nothing and leads nowhere, so it may be pruned.
func (n *node) empty() bool {
	return len(n.subs) == 0 && len(n.groups) == 0 && len(n.children) == 0 && n.plus == nil && n.hash == nil
}

// group is a shared subscription group, identified by its name and the node
// of its filter.
type group struct {
	name    string
	members []Sub
	owners  []*entry // owners[i] is the entry of members[i]
	next    atomic.Uint32
}

// subKey identifies one subscription of a client.
type subKey struct {
	filter, group string
}

// entry locates a subscription inside the trie: at n.subs[idx], or at
// g.members[idx] for a shared one.
type entry struct {
	n   *node
	g   *group
	idx int
}

// NewIndex returns an empty index whose shared groups pick members with s.
func NewIndex(s Strategy) *Index {
	return &Index{strategy: s, clients: make(map[Subscriber]map[subKey]*entry)}
}

// Strategy returns the shared subscription strategy of the index.
func (ix *Index) Strategy() Strategy { return ix.strategy }

// Subscribe adds a subscription, or replaces the options of the existing one
// with the same Client, Filter and Group, and reports whether one existed
// before. A replaced subscription keeps its place in its shared group.
func (ix *Index) Subscribe(s Sub) (replaced bool) {
	key := subKey{filter: s.Filter, group: s.Group}
	ix.mu.Lock()
	defer ix.mu.Unlock()

	own := ix.clients[s.Client]
	if e := own[key]; e != nil {
		// [MQTT-3.8.4-3] A SUBSCRIBE to a filter identical to one of the
		// session's subscriptions replaces it: same place, new options.
		if e.g != nil {
			e.g.members[e.idx] = s
		} else {
			e.n.subs[e.idx] = s
		}
		return true
	}
	if own == nil {
		own = make(map[subKey]*entry)
		ix.clients[s.Client] = own
	}

	n := ix.insert(s.Filter)
	if len(n.subs) == 0 && len(n.groups) == 0 {
		ix.routes++
	}
	e := &entry{n: n}
	if s.Group == "" {
		e.idx = len(n.subs)
		n.subs = append(n.subs, s)
		n.owners = append(n.owners, e)
	} else {
		// A shared group is identified by its name and its filter (MQTT 5
		// §4.8.2): the same name on two filters makes two groups.
		var g *group
		for _, cand := range n.groups {
			if cand.name == s.Group {
				g = cand
				break
			}
		}
		if g == nil {
			g = &group{name: s.Group}
			n.groups = append(n.groups, g)
		}
		e.g = g
		e.idx = len(g.members)
		g.members = append(g.members, s)
		g.owners = append(g.owners, e)
		ix.shared++
	}
	own[key] = e
	ix.count++
	return false
}

// insert returns the node of filter, creating the missing levels.
// The write lock must be held.
func (ix *Index) insert(filter string) *node {
	n := &ix.root
	for i := 0; i >= 0; {
		var level string
		level, i = nextLevel(filter, i)
		switch level {
		case "+":
			if n.plus == nil {
				n.plus = &node{parent: n}
			}
			n = n.plus
		case "#":
			if n.hash == nil {
				n.hash = &node{parent: n}
			}
			n = n.hash
		default:
			c := n.children[level]
			if c == nil {
				// Clone the level so that the trie does not keep the
				// whole filter string of the first subscriber alive.
				c = &node{parent: n, key: strings.Clone(level)}
				if n.children == nil {
					n.children = make(map[string]*node)
				}
				n.children[c.key] = c
			}
			n = c
		}
	}
	return n
}

// Unsubscribe removes the subscription of c to filter in group ("" for a
// non-shared one) and reports whether it existed. Filters are compared
// character by character, without normalization [MQTT-4.7.3-4].
func (ix *Index) Unsubscribe(c Subscriber, filter, group string) bool {
	key := subKey{filter: filter, group: group}
	ix.mu.Lock()
	defer ix.mu.Unlock()

	own := ix.clients[c]
	e := own[key]
	if e == nil {
		return false
	}
	delete(own, key)
	if len(own) == 0 {
		delete(ix.clients, c)
	}
	ix.remove(e)
	return true
}

// UnsubscribeAll removes every subscription of c, as when its session ends,
// and returns how many there were.
func (ix *Index) UnsubscribeAll(c Subscriber) int {
	ix.mu.Lock()
	defer ix.mu.Unlock()

	own := ix.clients[c]
	for _, e := range own {
		ix.remove(e)
	}
	delete(ix.clients, c)
	return len(own)
}

// remove takes e out of the trie and prunes the nodes left empty.
// The write lock must be held.
func (ix *Index) remove(e *entry) {
	n := e.n
	ix.count--
	if g := e.g; g != nil {
		ix.shared--
		g.members, g.owners = swapRemove(g.members, g.owners, e.idx)
		if len(g.members) == 0 {
			i := slices.Index(n.groups, g)
			last := len(n.groups) - 1
			n.groups[i] = n.groups[last]
			n.groups[last] = nil
			n.groups = n.groups[:last]
			if last == 0 {
				n.groups = nil
			}
		}
	} else {
		n.subs, n.owners = swapRemove(n.subs, n.owners, e.idx)
	}
	if len(n.subs) == 0 && len(n.groups) == 0 {
		ix.routes--
	}
	ix.prune(n)
}

// swapRemove removes subs[i] and owners[i] by moving the last element into
// their place, fixes the index of the moved entry, and clears the vacated slot
// so that it keeps no subscriber alive. Emptied slices are released.
func swapRemove(subs []Sub, owners []*entry, i int) ([]Sub, []*entry) {
	last := len(subs) - 1
	if i != last {
		subs[i] = subs[last]
		owners[i] = owners[last]
		owners[i].idx = i
	}
	subs[last] = Sub{}
	owners[last] = nil
	if last == 0 {
		return nil, nil
	}
	return subs[:last], owners[:last]
}

// prune unlinks n and then each ancestor while they are empty, so that the
// trie does not grow with subscription churn. The write lock must be held.
func (ix *Index) prune(n *node) {
	for n != &ix.root && n.empty() {
		p := n.parent
		switch n {
		case p.plus:
			p.plus = nil
		case p.hash:
			p.hash = nil
		default:
			delete(p.children, n.key)
			if len(p.children) == 0 {
				p.children = nil
			}
		}
		n.parent = nil
		n = p
	}
}

// Match appends to dst every non-shared subscription whose filter matches
// topic, and one member of each shared group whose filter matches topic, and
// returns the extended slice. The subscriptions are copies, safe to use after
// Match returns. A client with overlapping subscriptions appears once per
// matching subscription; the caller combines them (maximum QoS, all
// subscription identifiers).
//
// A shared group's member is chosen by the index's strategy, publisher being
// the publishing client's identifier; if that member is not connected, the
// next connected member in the group's order is taken instead, and if none is
// connected the strategy's choice is kept.
//
// Match does not allocate, apart from growing dst.
func (ix *Index) Match(topic, publisher string, dst []Sub) []Sub {
	ix.mu.RLock()
	dst = ix.match(&ix.root, topic, 0, publisher, dst)
	ix.mu.RUnlock()
	return dst
}

// match walks the trie from n for the levels of topic that start at byte i
// (-1 when every level has been consumed). The read lock must be held.
func (ix *Index) match(n *node, topic string, i int, publisher string, dst []Sub) []Sub {
	if i < 0 {
		dst = ix.collect(n, topic, publisher, dst)
		if n.hash != nil {
			// [MQTT-4.7.1-2] '#' also matches the parent level:
			// "a/#" matches "a".
			dst = ix.collect(n.hash, topic, publisher, dst)
		}
		return dst
	}
	level, next := nextLevel(topic, i)
	// [MQTT-4.7.2-1] Filters beginning with a wildcard do not match topic
	// names beginning with '$'. Only the first level can begin the topic.
	if i != 0 || !isDollar(topic) {
		if n.hash != nil {
			// '#' matches this level and every level after it.
			dst = ix.collect(n.hash, topic, publisher, dst)
		}
		if n.plus != nil {
			// [MQTT-4.7.1-3] '+' matches exactly one level, empty or not.
			dst = ix.match(n.plus, topic, next, publisher, dst)
		}
	}
	if c := n.children[level]; c != nil {
		dst = ix.match(c, topic, next, publisher, dst)
	}
	return dst
}

// collect appends the subscriptions held by n, picking one member of each
// shared group. The read lock must be held.
func (ix *Index) collect(n *node, topic, publisher string, dst []Sub) []Sub {
	dst = append(dst, n.subs...)
	for _, g := range n.groups {
		dst = append(dst, g.members[ix.pick(g, topic, publisher)])
	}
	return dst
}

// pick returns the index of the member of g that receives a message: one
// member per group (MQTT 5 §4.8.2). The read lock must be held: membership
// does not change, and only the round-robin counter is written, atomically.
func (ix *Index) pick(g *group, topic, publisher string) int {
	n := uint32(len(g.members))
	var i uint32
	switch ix.strategy {
	case RoundRobin:
		i = (g.next.Add(1) - 1) % n
	case HashClientID:
		i = fnv1a(publisher) % n
	case HashTopic:
		i = fnv1a(topic) % n
	default:
		i = rand.Uint32N(n)
	}
	if g.members[i].Client.Connected() {
		return int(i)
	}
	for k := uint32(1); k < n; k++ {
		j := (i + k) % n
		if g.members[j].Client.Connected() {
			return int(j)
		}
	}
	return int(i)
}

// fnv1a returns the 32-bit FNV-1a hash of s: stable for the same input, and
// free of allocations.
func fnv1a(s string) uint32 {
	const (
		offset = 2166136261
		prime  = 16777619
	)
	h := uint32(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= prime
	}
	return h
}

// Count returns the number of subscriptions, shared ones included.
func (ix *Index) Count() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.count
}

// SharedCount returns the number of shared subscriptions.
func (ix *Index) SharedCount() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.shared
}

// RouteCount returns the number of distinct filters that have at least one
// subscription: len(Routes()) without building the list.
func (ix *Index) RouteCount() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.routes
}

// Routes returns the distinct filters that have at least one subscription,
// sorted. A shared subscription contributes its filter without the group
// prefix.
func (ix *Index) Routes() []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var routes []string
	var walk func(n *node)
	walk = func(n *node) {
		switch {
		case len(n.subs) > 0:
			routes = append(routes, n.subs[0].Filter)
		case len(n.groups) > 0:
			routes = append(routes, n.groups[0].members[0].Filter)
		}
		for _, c := range n.children {
			walk(c)
		}
		if n.plus != nil {
			walk(n.plus)
		}
		if n.hash != nil {
			walk(n.hash)
		}
	}
	walk(&ix.root)
	slices.Sort(routes)
	return routes
}

// Subscriptions returns the subscriptions of c, sorted by filter and then by
// group.
func (ix *Index) Subscriptions(c Subscriber) []Sub {
	ix.mu.RLock()
	own := ix.clients[c]
	subs := make([]Sub, 0, len(own))
	for _, e := range own {
		if e.g != nil {
			subs = append(subs, e.g.members[e.idx])
		} else {
			subs = append(subs, e.n.subs[e.idx])
		}
	}
	ix.mu.RUnlock()
	slices.SortFunc(subs, func(a, b Sub) int {
		return cmp.Or(strings.Compare(a.Filter, b.Filter), strings.Compare(a.Group, b.Group))
	})
	return subs
}
