// Package events defines the lifecycle events the broker emits (client,
// session and message events) and Bus, the non-blocking fan-out that carries
// them to observers such as the webhook dispatcher.
//
// The broker never waits for an observer: Publish hands an event to each
// interested subscriber's bounded queue and moves on; when a queue is full the
// event is counted as dropped for that subscriber. An observer registered
// with Observe is instead called with the event on the publisher's
// goroutine, and copies what it needs into a queue of its own (the webhook
// dispatcher keeps it in the binary form it stores), so that no event stays
// out of the pool, holding a payload, until a consumer gets to it.
//
// The message kinds are published with PublishMessage, as a MessageRef: a
// reference to the broker's message, which never changes once routed, and
// the few fields of the event that are not the message's. An observer that
// registers a Messages function takes them so, without an event being
// built or anything copied on the publisher's goroutine; the others get
// an event built from the reference.
package events

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Kind is the type of an event. The names follow EMQX 4's hook points.
type Kind uint8

// Event kinds.
const (
	ClientConnect Kind = iota + 1
	ClientConnack
	ClientConnected
	ClientDisconnected
	ClientSubscribe
	ClientUnsubscribe
	SessionCreated
	SessionSubscribed
	SessionUnsubscribed
	SessionResumed
	SessionDiscarded
	SessionTakenOver
	SessionTerminated
	MessagePublish
	MessageDelivered
	MessageAcked
	MessageDropped
	numKinds
)

var kindNames = [...]string{
	ClientConnect:       "client.connect",
	ClientConnack:       "client.connack",
	ClientConnected:     "client.connected",
	ClientDisconnected:  "client.disconnected",
	ClientSubscribe:     "client.subscribe",
	ClientUnsubscribe:   "client.unsubscribe",
	SessionCreated:      "session.created",
	SessionSubscribed:   "session.subscribed",
	SessionUnsubscribed: "session.unsubscribed",
	SessionResumed:      "session.resumed",
	SessionDiscarded:    "session.discarded",
	SessionTakenOver:    "session.takenover",
	SessionTerminated:   "session.terminated",
	MessagePublish:      "message.publish",
	MessageDelivered:    "message.delivered",
	MessageAcked:        "message.acked",
	MessageDropped:      "message.dropped",
}

// NumKinds is one more than the largest Kind: the length of an array
// indexed by Kind.
const NumKinds = int(numKinds)

// String returns the EMQX-style name, e.g. "client.connected".
func (k Kind) String() string {
	if k > 0 && k < numKinds {
		return kindNames[k]
	}
	return "unknown"
}

// ParseKind returns the Kind named s ("client.connected", ...).
func ParseKind(s string) (Kind, bool) {
	for k := Kind(1); k < numKinds; k++ {
		if kindNames[k] == s {
			return k, true
		}
	}
	return 0, false
}

// Kinds returns every kind in declaration order.
func Kinds() []Kind {
	out := make([]Kind, 0, numKinds-1)
	for k := Kind(1); k < numKinds; k++ {
		out = append(out, k)
	}
	return out
}

// SubOpts are the options of one subscription, as EMQX 4 reports them.
type SubOpts struct {
	QoS byte // qos
	RH  byte // retain handling
	RAP bool // retain as published
	NL  bool // no local
}

// Event is one lifecycle observation. Only the fields that make sense for its
// Kind are set. Events are immutable once published: observers must not
// modify them (Payload in particular is shared with the broker).
//
// An event taken from New goes back to a pool for reuse once its publisher
// and every subscription that received it have called Release; a
// subscriber that never calls Release only keeps it from being reused. After
// Release, the caller must not touch the event again.
type Event struct {
	refs int32 // references: the publisher's and one per queue it is in; see Release
	Kind Kind
	Time time.Time

	// Client fields.
	ClientID       string
	Username       string
	UsernameSet    bool // false: username absent (EMQX 4 sends JSON null)
	Peer           netip.AddrPort
	Listener       string
	ProtoName      string
	ProtoVer       byte
	KeepAlive      uint16
	CleanStart     bool
	ExpiryInterval uint32
	ConnAck        byte      // client.connack: the CONNACK code sent
	ConnectedAt    time.Time // client.connected, client.disconnected
	Reason         string    // disconnected, dropped, terminated: why

	// Subscription fields (one event per topic filter).
	Topic string
	Opts  SubOpts

	// Message fields.
	QoS          byte
	Retain       bool
	Payload      []byte
	FromClientID string
	FromUsername string
	FromUserSet  bool
	MessageID    uint64    // unique per message inside this broker process
	MessageTime  time.Time // when the broker received the message (EMQX's ts)
}

var pool = sync.Pool{New: func() any { return new(Event) }}

// New returns a zeroed event, reused from the pool when one was released.
// Publishing it hands it to the bus: the publisher must not touch it after
// Publish returns.
func New() *Event { return pool.Get().(*Event) }

// Release gives up one reference to e. When the last one goes, e is cleared
// and kept for reuse by New. Subscribers call it once they are done with an
// event they received.
func (e *Event) Release() {
	if atomic.AddInt32(&e.refs, -1) == 0 {
		e.recycle()
	}
}

// recycle clears e and keeps it for reuse by New.
func (e *Event) recycle() {
	*e = Event{}
	pool.Put(e)
}

// Message is a message the broker routed, as PublishMessage hands it over:
// by reference. It must not change once published, and it stays valid for
// as long as it is referenced (the garbage collector keeps it): an observer
// may keep it, and read it later on a goroutine of its own.
type Message interface {
	// Fields returns the message's fields. (A method that set them on an
	// event would make every event it is given escape to the heap: the
	// compiler cannot see what an interface's method keeps.)
	Fields() MessageFields
	// Topic is the message's topic.
	Topic() string
	// Size is the bytes of the message's topic and payload: what keeping it
	// keeps from the garbage collector, besides the message itself.
	Size() int
}

// MessageFields are the fields of an event that are its message's.
type MessageFields struct {
	Topic        string
	Payload      []byte
	QoS          byte
	Retain       bool
	FromUserSet  bool
	FromClientID string
	FromUsername string
	MessageID    uint64
	MessageTime  time.Time
}

// MessageRef is an event of a message kind (MessagePublish,
// MessageDelivered, MessageAcked, MessageDropped) by reference: the
// message, and the event's fields that are not the message's.
type MessageRef struct {
	Kind        Kind
	Msg         Message
	ClientID    string // the publisher for MessagePublish, else the receiver
	Username    string // the receiver's, for the kinds other than MessagePublish
	UsernameSet bool
	Reason      string    // MessageDropped: why
	Time        time.Time // when it happened; PublishMessage sets it when zero
}

// Event returns the event r stands for, taken from the pool (see New).
func (r *MessageRef) Event() *Event {
	e := New()
	r.Fill(e)
	return e
}

// Fill sets the fields of e, a zeroed event, to those of the event r
// stands for.
func (r *MessageRef) Fill(e *Event) {
	f := r.Msg.Fields()
	e.Topic, e.Payload, e.QoS, e.Retain = f.Topic, f.Payload, f.QoS, f.Retain
	e.FromClientID, e.FromUsername, e.FromUserSet = f.FromClientID, f.FromUsername, f.FromUserSet
	e.MessageID, e.MessageTime = f.MessageID, f.MessageTime
	e.Kind, e.Time = r.Kind, r.Time
	e.ClientID, e.Username, e.UsernameSet, e.Reason = r.ClientID, r.Username, r.UsernameSet, r.Reason
}

// Observer is what ObserveWith calls (see Observe).
type Observer struct {
	// Event is called with every event of the observed kinds that is not
	// taken by Messages. It must be set.
	Event func(e *Event) bool
	// Messages, when set, is called instead of Event with the events of
	// the message kinds that the broker publishes with PublishMessage, by
	// reference. Unlike an event, r.Msg may be kept after it returns.
	Messages func(r MessageRef) bool
}

// Subscription receives the events of the kinds it asked for: on a
// channel (Subscribe), or as calls (Observe).
type Subscription struct {
	name    string
	mask    uint64
	ch      chan *Event           // nil for an observer
	fn      func(*Event) bool     // an observer's
	msg     func(MessageRef) bool // an observer's that takes messages by reference
	done    chan struct{}
	dropped atomic.Uint64
	bus     *Bus
}

// C is the channel events arrive on. It is closed when the subscription is
// closed or the bus is closed. Nil for an observer.
func (s *Subscription) C() <-chan *Event { return s.ch }

// Done is closed when the subscription is closed or the bus is closed;
// for an observer, once it is, fn is not called again.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Dropped reports how many events were dropped because the queue was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Name is the subscriber's name, for metrics and logs.
func (s *Subscription) Name() string { return s.name }

// Close unsubscribes and closes the channel.
func (s *Subscription) Close() { s.bus.remove(s) }

// Bus fans events out to subscriptions without ever blocking the publisher.
// The zero value is not usable; call NewBus.
type Bus struct {
	// mu is held for reading while sending (so that no channel is closed
	// under a sender) and for writing to add, remove or close.
	mu   sync.RWMutex
	subs atomic.Pointer[[]*Subscription] // copy-on-write, read without lock
	mask atomic.Uint64                   // union of the subscriptions' kinds
	// events is the union of the kinds of the subscriptions that need an
	// event built for a PublishMessage: the channels and the observers
	// without a Messages function; refs that of the others.
	events atomic.Uint64
	refs   atomic.Uint64
	closed bool
}

// NewBus returns an empty bus.
func NewBus() *Bus {
	b := &Bus{}
	empty := []*Subscription{}
	b.subs.Store(&empty)
	return b
}

// Wants reports whether any subscription listens to k. The broker checks it
// before building an event, so an unobserved kind costs one atomic load.
func (b *Bus) Wants(k Kind) bool {
	return b != nil && b.mask.Load()&(1<<uint(k)) != 0
}

// Subscribe registers a subscription named name for kinds, with a queue of
// size events. With no kinds given it receives every kind.
func (b *Bus) Subscribe(name string, size int, kinds ...Kind) *Subscription {
	mask := maskOf(kinds)
	if size < 1 {
		size = 1
	}
	return b.add(&Subscription{name: name, mask: mask, ch: make(chan *Event, size), bus: b, done: make(chan struct{})})
}

// Observe registers fn to be called with every event of kinds (every kind
// when none is given), on the publisher's goroutine before Publish
// returns, in the order the events are published. fn must return promptly
// and never block: it copies what it needs into a queue of its own, and
// returns false when that queue has no room (the event is then counted in
// Dropped). It must not keep e, or anything of it (its Payload in
// particular), after it returns. Calls may come from many goroutines at
// once.
func (b *Bus) Observe(name string, fn func(e *Event) bool, kinds ...Kind) *Subscription {
	return b.ObserveWith(name, Observer{Event: fn}, kinds...)
}

// ObserveWith is Observe with an Observer: its Messages function, when
// set, takes the message kinds' events that come by PublishMessage by
// reference, in the order of the events that its Event function gets (the
// two are never called at once for one publisher).
func (b *Bus) ObserveWith(name string, o Observer, kinds ...Kind) *Subscription {
	if o.Event == nil {
		panic("events: ObserveWith without an Event function")
	}
	return b.add(&Subscription{name: name, mask: maskOf(kinds), fn: o.Event, msg: o.Messages, bus: b, done: make(chan struct{})})
}

func maskOf(kinds []Kind) uint64 {
	var mask uint64
	for _, k := range kinds {
		mask |= 1 << uint(k)
	}
	if len(kinds) == 0 {
		for k := Kind(1); k < numKinds; k++ {
			mask |= 1 << uint(k)
		}
	}
	return mask
}

func (b *Bus) add(s *Subscription) *Subscription {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		s.closeLocked()
		return s
	}
	old := *b.subs.Load()
	next := append(append(make([]*Subscription, 0, len(old)+1), old...), s)
	b.subs.Store(&next)
	b.recomputeMask(next)
	return s
}

func (b *Bus) recomputeMask(subs []*Subscription) {
	var m, ev, refs uint64
	for _, s := range subs {
		m |= s.mask
		if s.msg == nil {
			ev |= s.mask
		} else {
			refs |= s.mask
		}
	}
	b.mask.Store(m)
	b.events.Store(ev)
	b.refs.Store(refs)
}

func (b *Bus) remove(s *Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.subs.Load()
	next := make([]*Subscription, 0, len(old))
	found := false
	for _, o := range old {
		if o == s {
			found = true
			continue
		}
		next = append(next, o)
	}
	if !found {
		return
	}
	b.subs.Store(&next)
	b.recomputeMask(next)
	s.closeLocked()
}

// closeLocked closes s's channels; b.mu is held for writing, so no
// Publish is sending to it or calling it.
func (s *Subscription) closeLocked() {
	if s.ch != nil {
		close(s.ch)
	}
	close(s.done)
}

// Publish hands e to every subscription that wants its kind. It never blocks:
// a full queue drops the event for that subscription and counts it. Publish
// is safe for concurrent use, including concurrently with Close.
func (b *Bus) Publish(e *Event) {
	if b == nil || b.mask.Load()&(1<<uint(e.Kind)) == 0 {
		return
	}
	b.publish(e, false)
}

// PublishMessage hands the event r stands for to every subscription that
// wants its kind: by reference to the observers with a Messages function,
// as an event (built only when one of them wants it) to the others. Like
// Publish, it never blocks.
func (b *Bus) PublishMessage(r *MessageRef) {
	bit := uint64(1) << uint(r.Kind)
	if b == nil || b.mask.Load()&bit == 0 {
		return
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	if b.refs.Load()&bit != 0 {
		b.mu.RLock()
		if !b.closed {
			for _, s := range *b.subs.Load() {
				if s.mask&bit != 0 && s.msg != nil && !s.msg(*r) {
					s.dropped.Add(1)
				}
			}
		}
		b.mu.RUnlock()
	}
	if b.events.Load()&bit != 0 {
		b.publish(r.Event(), true)
	}
}

// publish is Publish of e, whose kind some subscription wants; with
// byRef, not to the observers that PublishMessage called by reference.
func (b *Bus) publish(e *Event, byRef bool) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return
	}
	subs := *b.subs.Load()
	bit := uint64(1) << uint(e.Kind)
	refs := int32(1) // the publisher's, given up at the end
	for _, s := range subs {
		if s.mask&bit != 0 && s.ch != nil {
			refs++
		}
	}
	// With observers alone, which do not keep e, nothing is counted: e
	// goes back to the pool as they return, without the two atomic
	// operations of counting references (each a full memory barrier on
	// amd64).
	if refs > 1 {
		atomic.StoreInt32(&e.refs, refs)
	}
	for _, s := range subs {
		if s.mask&bit == 0 || byRef && s.msg != nil {
			continue
		}
		if s.fn != nil {
			if !s.fn(e) {
				s.dropped.Add(1)
			}
			continue
		}
		select {
		case s.ch <- e:
		default:
			s.dropped.Add(1)
			e.Release()
		}
	}
	if refs == 1 {
		e.recycle()
	} else {
		e.Release()
	}
}

// Close closes every subscription's channel; later publishes are ignored.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for _, s := range *b.subs.Load() {
		s.closeLocked()
	}
	empty := []*Subscription{}
	b.subs.Store(&empty)
	b.mask.Store(0)
}
