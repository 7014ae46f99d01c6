package broker

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mqgate/mqgate/broker/topics"
	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/mqtt"
)

// Errors returned by the administration methods.
var (
	// ErrNoClient is returned when no session has the client id, or when
	// the operation needs the client online and it is not.
	ErrNoClient = errors.New("broker: client not online")
	// ErrBadTopic is returned for an invalid topic name or filter.
	ErrBadTopic = errors.New("broker: bad topic")
	// ErrBadQoS is returned for a QoS other than 0, 1 or 2.
	ErrBadQoS = errors.New("broker: bad qos")
)

// ClientInfo describes one session and, when it is online, its connection,
// as the management API reports it.
type ClientInfo struct {
	ClientID    string
	Username    string
	UsernameSet bool
	// Peer, Listener, ProtoName, CleanStart, KeepAlive and ConnectedAt
	// are those of the connection, or while offline of the last one (zero
	// if the session has had none since the broker started).
	Peer           netip.AddrPort
	Listener       string // e.g. "tcp:external"
	Connected      bool
	ProtoName      string // "MQTT" or "MQIsdp"
	ProtoVer       byte   // 3, 4 or 5
	CleanStart     bool
	KeepAlive      uint16
	ExpiryInterval time.Duration // session expiry after disconnect
	NeverExpires   bool          // v5 expiry 0xFFFFFFFF
	ConnectedAt    time.Time
	DisconnectedAt time.Time // when the last connection ended; zero while online
	CreatedAt      time.Time // when the session was created

	Subscriptions    int
	MaxSubscriptions int // 0 = unlimited
	Inflight         int
	MaxInflight      int
	AwaitingRel      int
	MaxAwaitingRel   int // the inbound QoS 2 window
	MqueueLen        int
	MaxMqueue        int // 0 = unlimited
	MqueueDropped    uint64
}

// Subscription is one subscription of one client.
type Subscription struct {
	ClientID string
	// Topic is the filter as the client subscribed it, with its
	// "$share/<group>/" or "$queue/" prefix when shared.
	Topic string
	QoS   byte
	// Share is the shared subscription group, "" when not shared.
	Share string
}

// Message is an application message the broker publishes on behalf of an
// operator (for example from the management API).
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	// From is the client id the message is published as; "" for the
	// broker itself. A subscriber with No Local set does not receive
	// messages from its own client id [MQTT-3.8.3-3].
	From string
	// Props are MQTT 5 properties passed to v5 subscribers; Message
	// Expiry Interval is honoured. May be nil.
	Props *mqtt.Properties
}

// info reads the state of s. Broker.mu must not be held by the caller
// while it holds s.mu; info takes s.mu itself.
func (b *Broker) info(s *session) ClientInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	ci := ClientInfo{
		ClientID:         s.id,
		Username:         s.username,
		UsernameSet:      s.usernameOK,
		ProtoVer:         byte(s.version),
		ExpiryInterval:   s.expiry,
		NeverExpires:     s.neverEnds,
		CreatedAt:        s.created,
		Subscriptions:    len(s.subs),
		MaxSubscriptions: b.opts.MaxSubscriptions,
		Inflight:         len(s.inflight),
		MaxInflight:      b.opts.MaxInflight,
		AwaitingRel:      len(s.awaitRel),
		MaxAwaitingRel:   b.opts.ReceiveMaximum,
		MqueueLen:        len(s.queue),
		MaxMqueue:        b.opts.MaxMqueueLen,
		MqueueDropped:    s.dropped,
		ProtoName:        "MQTT",
	}
	if c := s.conn; c != nil {
		// The connection's CONNECT state was written before it was
		// attached under s.mu, and is read-only afterwards.
		ci.Connected = true
		ci.Peer = c.peer
		ci.Listener = c.l.ident
		ci.ConnectedAt = c.connAt
		ci.CleanStart = c.info.cleanStart
		ci.KeepAlive = c.info.keepAlive
		if c.info.protoName != "" {
			ci.ProtoName = c.info.protoName
		}
	} else if l := s.last; !l.connectedAt.IsZero() {
		ci.Peer = l.peer
		ci.Listener = l.listener
		ci.ConnectedAt = l.connectedAt
		ci.DisconnectedAt = l.disconnectedAt
		ci.CleanStart = l.cleanStart
		ci.KeepAlive = l.keepAlive
		if l.protoName != "" {
			ci.ProtoName = l.protoName
		}
	}
	return ci
}

// sessionList returns the current sessions, in no order, so that they can
// be visited without Broker.mu.
func (b *Broker) sessionList() []*session {
	b.mu.Lock()
	defer b.mu.Unlock()
	ss := make([]*session, 0, len(b.sessions))
	for _, s := range b.sessions {
		ss = append(ss, s)
	}
	return ss
}

// snapshot returns the current sessions, sorted by client id.
func (b *Broker) snapshot() []*session {
	ss := b.sessionList()
	slices.SortFunc(ss, func(x, y *session) int { return strings.Compare(x.id, y.id) })
	return ss
}

// lookup returns the session of id, or nil.
func (b *Broker) lookup(id string) *session {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sessions[id]
}

// Pending returns the QoS 1 and 2 messages sent and not yet acknowledged
// (inflight) and the messages waiting for the inflight window or for an
// offline client (queued), summed over every session.
func (b *Broker) Pending() (inflight, queued int) {
	for _, s := range b.sessionList() {
		s.mu.Lock()
		inflight += len(s.inflight)
		queued += len(s.queue)
		s.mu.Unlock()
	}
	return inflight, queued
}

// Clients returns every session, online or kept offline for its expiry,
// sorted by client id.
func (b *Broker) Clients() []ClientInfo {
	ss := b.snapshot()
	out := make([]ClientInfo, 0, len(ss))
	for _, s := range ss {
		out = append(out, b.info(s))
	}
	return out
}

// Client returns the session of id.
func (b *Broker) Client(id string) (ClientInfo, bool) {
	s := b.lookup(id)
	if s == nil {
		return ClientInfo{}, false
	}
	return b.info(s), true
}

// Kick disconnects the client id and ends its session, whatever its
// expiry. A v5 client receives DISCONNECT with reason 0x98 (administrative
// action). It reports whether the client had a session.
func (b *Broker) Kick(id string) bool {
	b.mu.Lock()
	s := b.sessions[id]
	if s == nil {
		b.mu.Unlock()
		return false
	}
	s.mu.Lock()
	c := s.conn
	if c != nil {
		// The session ends with the connection: detach sees no expiry.
		s.expiry, s.neverEnds = 0, false
		s.mu.Unlock()
		b.mu.Unlock()
		c.kick(mqtt.AdministrativeAction, "kicked")
		return true
	}
	// Offline: the session ends now, without the pending will, as a
	// session discarded by the operator.
	s.ended = true
	delete(b.sessions, id)
	if s.expiryT != nil {
		s.expiryT.Stop()
		s.expiryT = nil
	}
	if s.willT != nil {
		s.willT.Stop()
		s.willT = nil
	}
	s.willAtEnd = nil
	s.mu.Unlock()
	b.mu.Unlock()
	b.index.UnsubscribeAll(s)
	b.m.sessionTerminated.Add(1)
	b.sessionEvent(events.SessionTerminated, s, "kicked")
	return true
}

// Subscriptions returns the subscriptions of the client id, sorted by
// topic; nil when it has no session.
func (b *Broker) Subscriptions(id string) []Subscription {
	s := b.lookup(id)
	if s == nil {
		return nil
	}
	return sessionSubs(s)
}

// AllSubscriptions returns the subscriptions of every session, by client id
// and then by topic.
func (b *Broker) AllSubscriptions() []Subscription {
	var out []Subscription
	for _, s := range b.snapshot() {
		out = append(out, sessionSubs(s)...)
	}
	return out
}

func sessionSubs(s *session) []Subscription {
	s.mu.Lock()
	out := make([]Subscription, 0, len(s.subs))
	for topic, e := range s.subs {
		out = append(out, Subscription{ClientID: s.id, Topic: topic, QoS: e.sub.QoS, Share: e.sub.Group})
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(x, y Subscription) int { return strings.Compare(x.Topic, y.Topic) })
	return out
}

// Routes returns the distinct topic filters that have subscribers, sorted.
// A shared subscription's route is its filter without the group prefix.
func (b *Broker) Routes() []string {
	return b.index.Routes()
}

// Publish routes m as if a client had published it and returns the message
// id and the number of deliveries. The topic must be a valid topic name
// without wildcards [MQTT-3.3.2-2].
func (b *Broker) Publish(m Message) (id uint64, deliveries int, err error) {
	if err := mqtt.ValidTopicName(m.Topic); err != nil {
		return 0, 0, fmt.Errorf("%w: %q: %w", ErrBadTopic, m.Topic, err)
	}
	if m.QoS > 2 {
		return 0, 0, fmt.Errorf("%w: %d", ErrBadQoS, m.QoS)
	}
	now := time.Now()
	msg := &message{
		id:      b.newMessageID(),
		topic:   m.Topic,
		payload: m.Payload,
		qos:     m.QoS,
		retain:  m.Retain && b.opts.RetainAvailable,
		created: now,
		from:    m.From,
	}
	if m.Props != nil && !m.Props.Empty() {
		props := *m.Props
		props.SubscriptionIDs = nil // [MQTT-3.3.4-6] ids are per subscriber
		props.Clear(mqtt.PropTopicAlias)
		if props.Has(mqtt.PropMessageExpiry) {
			msg.expiry = now.Add(time.Duration(props.MessageExpiry) * time.Second)
			props.Clear(mqtt.PropMessageExpiry)
		}
		if !props.Empty() {
			msg.props = &props
		}
	}
	return msg.id, b.publish(msg), nil
}

// SubscribeFor subscribes the online client id to filter at qos, as if it
// had sent SUBSCRIBE. A "$share/<group>/" prefix makes a shared
// subscription. Retained messages are not replayed.
func (b *Broker) SubscribeFor(id, filter string, qos byte) error {
	if qos > 2 {
		return fmt.Errorf("%w: %d", ErrBadQoS, qos)
	}
	if err := mqtt.ValidTopicFilter(filter); err != nil {
		return fmt.Errorf("%w: %q: %w", ErrBadTopic, filter, err)
	}
	group, f, shared := mqtt.ParseShared(filter)
	if shared && !b.opts.SharedSubscription {
		return fmt.Errorf("%w: %q: shared subscriptions are disabled", ErrBadTopic, filter)
	}
	if qos > b.opts.MaxQoS {
		qos = b.opts.MaxQoS
	}
	s := b.lookup(id)
	if s == nil {
		return fmt.Errorf("%w: %q", ErrNoClient, id)
	}
	ts := topics.Sub{Client: s, Filter: f, Group: group, QoS: qos}
	s.mu.Lock()
	if s.conn == nil || s.ended {
		s.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrNoClient, id)
	}
	if s.subs == nil {
		s.subs = make(map[string]subEntry)
	}
	e := subEntry{sub: ts, added: time.Now()}
	s.subs[filter] = e
	s.nsubs.Store(int32(len(s.subs)))
	if s.persisted {
		s.logSub(filter, e)
	}
	s.mu.Unlock()
	// [MQTT-3.8.4-3] a subscription to an existing filter replaces it.
	b.index.Subscribe(ts)
	return nil
}

// UnsubscribeFor removes the subscription filter of the online client id.
// It reports whether the subscription existed.
func (b *Broker) UnsubscribeFor(id, filter string) (bool, error) {
	if err := mqtt.ValidTopicFilter(filter); err != nil {
		return false, fmt.Errorf("%w: %q: %w", ErrBadTopic, filter, err)
	}
	s := b.lookup(id)
	if s == nil {
		return false, fmt.Errorf("%w: %q", ErrNoClient, id)
	}
	group, f, _ := mqtt.ParseShared(filter)
	s.mu.Lock()
	if s.conn == nil || s.ended {
		s.mu.Unlock()
		return false, fmt.Errorf("%w: %q", ErrNoClient, id)
	}
	_, had := s.subs[filter]
	delete(s.subs, filter)
	s.nsubs.Store(int32(len(s.subs)))
	if had && s.persisted {
		s.unlogSub(filter)
	}
	s.mu.Unlock()
	removed := b.index.Unsubscribe(s, f, group)
	return had || removed, nil
}

// Uptime returns how long the broker has been started; 0 before Start.
func (b *Broker) Uptime() time.Duration {
	if b.started.IsZero() {
		return 0
	}
	return time.Since(b.started)
}

// Ready reports whether the broker serves clients: it has started, is not
// shutting down, and every configured listener is bound and accepting (an
// accept loop ends only when its listener is closed by Shutdown).
func (b *Broker) Ready() error {
	if b.started.IsZero() {
		return errors.New("broker: not started")
	}
	if b.ctx.Err() != nil {
		return errors.New("broker: shutting down")
	}
	if n, want := len(b.listeners), len(b.opts.Listeners); n != want {
		return fmt.Errorf("broker: %d of %d listeners up", n, want)
	}
	return nil
}

// NodeName returns the node name the broker reports.
func (b *Broker) NodeName() string { return b.opts.NodeName }

// Version returns the version the broker reports.
func (b *Broker) Version() string { return b.opts.Version }

// ListenerInfo describes one bound MQTT listener.
type ListenerInfo struct {
	Identifier     string // "tcp:<name>"
	Protocol       string // "mqtt:tcp"
	ListenOn       string // bound address
	MaxConns       int    // 0 = unlimited
	CurrentConns   int64
	ListenerConfig Listener
}

// Listeners returns the bound listeners in configuration order.
func (b *Broker) Listeners() []ListenerInfo {
	out := make([]ListenerInfo, 0, len(b.listeners))
	for _, l := range b.listeners {
		out = append(out, ListenerInfo{
			Identifier:     l.ident,
			Protocol:       "mqtt:tcp",
			ListenOn:       l.ln.Addr().String(),
			MaxConns:       l.cfg.MaxConnections,
			CurrentConns:   l.count.Load(),
			ListenerConfig: l.cfg,
		})
	}
	return out
}
