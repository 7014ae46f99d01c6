package topics

import (
	"strings"
	"sync"
)

// Retained is the store of retained messages, keyed by topic name and matched
// by topic filter. It is a trie of topic levels, so that a filter such as
// "sensor/+/temp" visits only the topics it can match. M is the broker's
// message type.
//
// A Retained store is safe for concurrent use.
type Retained[M any] struct {
	mu    sync.RWMutex
	root  rnode[M]
	count int
}

// rnode is one level of the retained trie. The path from the root spells a
// topic name; set says whether a message is retained at exactly that name.
type rnode[M any] struct {
	parent   *rnode[M]
	key      string // this node's level in parent.children
	children map[string]*rnode[M]
	topic    string // the full topic name, when set
	msg      M
	set      bool
}

// NewRetained returns an empty store.
func NewRetained[M any]() *Retained[M] {
	return &Retained[M]{}
}

// Set stores m as the retained message of topic, replacing the previous one
// [MQTT-3.3.1-5]. Deleting a retained message on a zero-length payload is the
// caller's decision, made with Delete.
func (r *Retained[M]) Set(topic string, m M) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := &r.root
	for i := 0; i >= 0; {
		var level string
		level, i = nextLevel(topic, i)
		c := n.children[level]
		if c == nil {
			c = &rnode[M]{parent: n, key: strings.Clone(level)}
			if n.children == nil {
				n.children = make(map[string]*rnode[M])
			}
			n.children[c.key] = c
		}
		n = c
	}
	if !n.set {
		n.set = true
		n.topic = strings.Clone(topic)
		r.count++
	}
	n.msg = m
}

// find returns the node of topic, or nil. The lock must be held.
func (r *Retained[M]) find(topic string) *rnode[M] {
	n := &r.root
	for i := 0; i >= 0 && n != nil; {
		var level string
		level, i = nextLevel(topic, i)
		n = n.children[level]
	}
	return n
}

// Delete removes the retained message of topic and reports whether there was
// one [MQTT-3.3.1-6].
func (r *Retained[M]) Delete(topic string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.find(topic)
	if n == nil || !n.set {
		return false
	}
	var zero M
	n.msg, n.set, n.topic = zero, false, ""
	r.count--
	// Prune the levels left empty, so that churn does not grow the trie.
	for n != &r.root && !n.set && len(n.children) == 0 {
		p := n.parent
		delete(p.children, n.key)
		if len(p.children) == 0 {
			p.children = nil
		}
		n.parent = nil
		n = p
	}
	return true
}

// Get returns the retained message of topic and whether there is one.
func (r *Retained[M]) Get(topic string) (M, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if n := r.find(topic); n != nil && n.set {
		return n.msg, true
	}
	var zero M
	return zero, false
}

// Count returns the number of retained messages.
func (r *Retained[M]) Count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.count
}

// Match calls fn for each retained message whose topic name matches filter,
// in no particular order, until fn returns false. The filter must not carry a
// "$share/" or "$queue/" prefix. Topics beginning with '$' are not matched by
// filters beginning with '+' or '#' [MQTT-4.7.2-1].
//
// fn is called with the store's read lock held: it must not call methods of r
// and should not block.
func (r *Retained[M]) Match(filter string, fn func(topic string, m M) bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	r.match(&r.root, filter, 0, fn)
}

// match visits the nodes under n that match the levels of filter starting at
// byte i (-1 when every level has been consumed), and reports whether to go
// on. The read lock must be held.
func (r *Retained[M]) match(n *rnode[M], filter string, i int, fn func(string, M) bool) bool {
	if i < 0 {
		return !n.set || fn(n.topic, n.msg)
	}
	level, next := nextLevel(filter, i)
	switch level {
	case "#":
		// [MQTT-4.7.1-2] '#' matches the parent level and every level
		// below it: "a/#" matches "a", "a/" and "a/b/c".
		if n.set && !fn(n.topic, n.msg) {
			return false
		}
		for key, c := range n.children {
			if n == &r.root && isDollar(key) {
				continue // [MQTT-4.7.2-1]
			}
			if !r.visitAll(c, fn) {
				return false
			}
		}
		return true
	case "+":
		// [MQTT-4.7.1-3] '+' matches exactly one level, empty or not.
		for key, c := range n.children {
			if n == &r.root && isDollar(key) {
				continue // [MQTT-4.7.2-1]
			}
			if !r.match(c, filter, next, fn) {
				return false
			}
		}
		return true
	default:
		if c := n.children[level]; c != nil {
			return r.match(c, filter, next, fn)
		}
		return true
	}
}

// visitAll calls fn for every message at or below n and reports whether to go
// on. The read lock must be held.
func (r *Retained[M]) visitAll(n *rnode[M], fn func(string, M) bool) bool {
	if n.set && !fn(n.topic, n.msg) {
		return false
	}
	for _, c := range n.children {
		if !r.visitAll(c, fn) {
			return false
		}
	}
	return true
}
