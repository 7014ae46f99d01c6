package broker

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqgate/mqgate/broker/topics"
	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/mqtt"
)

// message is one application message as routed inside the broker. It is
// immutable once routed and shared by every subscriber's queue.
type message struct {
	id      uint64
	topic   string
	payload []byte
	qos     byte
	retain  bool
	props   *mqtt.Properties // v5 properties passed through (nil = none)
	expiry  time.Time        // from Message Expiry Interval; zero = never
	created time.Time

	from     string // publishing client id ("" for the broker itself)
	fromUser string
	userSet  bool
	sys      bool // a $SYS message from the broker

	refs int32 // durable session entries that refer to it; Broker.persistMu
}

// expired reports whether the message's expiry has passed at now.
func (m *message) expired(now time.Time) bool {
	return !m.expiry.IsZero() && !now.Before(m.expiry)
}

// outState is the state of an outbound QoS 1/2 message.
type outState uint8

const (
	awaitPuback  outState = iota + 1 // QoS 1 sent, waiting for PUBACK
	awaitPubrec                      // QoS 2 sent, waiting for PUBREC
	awaitPubcomp                     // PUBREL sent, waiting for PUBCOMP
)

// outMsg is one delivery to one session.
type outMsg struct {
	msg    *message
	qos    byte
	retain bool
	subIDs []uint32
	pid    uint16
	state  outState
	seq    uint64    // send order, for redelivery in order
	sent   time.Time // last (re)send, for retry_interval
	pk     uint64    // key of its durable entry; 0 = not in the log
}

// session is the state of one client id: subscriptions, outbound QoS 1/2
// messages in flight, queued messages, and inbound QoS 2 packet ids awaiting
// PUBREL. It outlives connections when it is persistent.
type session struct {
	b  *Broker
	id string

	online atomic.Bool  // a connection is attached (read without the lock)
	nsubs  atomic.Int32 // len(subs), read without the lock when routing

	mu         sync.Mutex
	conn       *conn // nil while offline
	version    mqtt.Version
	expiry     time.Duration // session expiry after disconnect; 0 = ends with the connection
	neverEnds  bool          // v5 expiry 0xFFFFFFFF
	subs       map[string]subEntry
	inflight   map[uint16]*outMsg
	sendSeq    uint64
	queue      []outMsg // waiting for the window or for the client to come back
	nextPID    uint16
	awaitRel   map[uint16]time.Time // inbound QoS 2 ids whose PUBREL is pending
	expiryT    *time.Timer
	willT      *time.Timer
	willAtEnd  *conn // whose will goes out when the session expires
	created    time.Time
	username   string
	usernameOK bool
	dropped    uint64
	ended      bool
	persisted  bool   // its changes go to the log (see persist.go)
	inc        uint64 // its incarnation in the log's keys
	pseq       uint64 // last key of a durable entry
	last       lastConn
}

// lastConn is what an offline session remembers of its last connection,
// for the management API (EMQX 4 lists an offline session with the
// address, protocol and times of the connection it had). A persistent
// session saves it with its header (logHeader).
type lastConn struct {
	peer           netip.AddrPort
	listener       string
	protoName      string
	cleanStart     bool
	keepAlive      uint16
	connectedAt    time.Time
	disconnectedAt time.Time
}

// subEntry is one subscription as the session remembers it.
type subEntry struct {
	sub   topics.Sub
	added time.Time
}

// ClientID implements topics.Subscriber.
func (s *session) ClientID() string { return s.id }

// Connected implements topics.Subscriber.
func (s *session) Connected() bool { return s.online.Load() }

func newSession(b *Broker, id string) *session {
	return &session{
		b:       b,
		id:      id,
		created: time.Now(),
	}
}

// window is how many QoS 1/2 messages may be in flight to the client.
// Lock held.
func (s *session) window() int {
	w := s.b.opts.MaxInflight
	if s.conn != nil && s.conn.clientRecvMax > 0 && s.conn.clientRecvMax < w {
		w = s.conn.clientRecvMax
	}
	return w
}

// allocPID returns a free packet identifier. Lock held; the caller has
// checked that the window has room, so one exists.
func (s *session) allocPID() uint16 {
	for {
		s.nextPID++
		if s.nextPID == 0 {
			s.nextPID = 1
		}
		if _, used := s.inflight[s.nextPID]; !used {
			return s.nextPID
		}
	}
}

// delivery is one message on its way to one session, with the options of
// the subscription(s) it matched.
type delivery struct {
	msg    *message
	qos    byte
	retain bool
	subIDs []uint32
	enc    *encCache // shared encodings of this message; may be nil
	pk     uint64    // the durable entry of a queued message; 0 = none
	pc     *pubCtx   // the inbound PUBLISH being routed; may be nil
	// at is the send time to record for the retry sweep when the caller
	// has one (a live route: the receipt time; drain: its clock); zero:
	// send reads the clock.
	at time.Time
}

// deliver hands d to the session: written at once when the client is online
// and the window allows, queued otherwise. It never blocks on the network.
func (s *session) deliver(d delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	if s.conn == nil || (d.qos > 0 && (len(s.inflight) >= s.window() || len(s.queue) > 0)) {
		s.enqueue(d)
		return
	}
	s.send(d)
}

// enqueue appends d to the session queue, applying the bound. Lock held.
func (s *session) enqueue(d delivery) {
	b := s.b
	if d.qos == 0 && s.conn == nil && !b.opts.MqueueStoreQoS0 {
		b.m.droppedQoS0.Add(1)
		s.onDropped(d.msg, "qos0_msg")
		return
	}
	if s.conn == nil && s.expiry == 0 && !s.neverEnds {
		return // a session that ends with its connection keeps nothing
	}
	if max := b.opts.MaxMqueueLen; max > 0 && len(s.queue) >= max {
		b.m.droppedQueueFull.Add(1)
		if b.opts.MqueueDropNew {
			s.onDropped(d.msg, "queue_full")
			return
		}
		old := s.queue[0]
		s.queue[0] = outMsg{}
		s.queue = s.queue[1:]
		if old.pk != 0 {
			s.unlogEntry(old.msg, old.pk)
		}
		s.onDropped(old.msg, "queue_full")
	}
	om := outMsg{msg: d.msg, qos: d.qos, retain: d.retain, subIDs: d.subIDs}
	if s.persisted && d.qos > 0 {
		s.logEntry(&om, d.pc)
	}
	s.queue = append(s.queue, om)
}

func (s *session) onDropped(m *message, reason string) {
	s.dropped++
	s.b.m.msgDropped.Add(1)
	if bus := s.b.opts.Events; bus.Wants(events.MessageDropped) {
		bus.PublishMessage(&events.MessageRef{Kind: events.MessageDropped, Msg: m, ClientID: s.id,
			Username: s.username, UsernameSet: s.usernameOK, Reason: reason})
	}
}

// send writes d to the connection, entering it in flight when QoS > 0. The
// caller checked the window. Lock held, conn attached.
func (s *session) send(d delivery) {
	c := s.conn
	var om *outMsg
	var pid uint16
	if d.qos > 0 {
		pid = s.allocPID()
		s.sendSeq++
		sent := d.at
		if sent.IsZero() {
			sent = time.Now()
		}
		om = &outMsg{msg: d.msg, qos: d.qos, retain: d.retain, subIDs: d.subIDs, pid: pid, seq: s.sendSeq, sent: sent}
		if d.qos == 1 {
			om.state = awaitPuback
		} else {
			om.state = awaitPubrec
		}
	}
	if om != nil && s.persisted {
		// Logged before it is written: a QoS 2 PUBLISH waits for the log
		// (see writePublish), and must wait for this record too.
		om.pk = d.pk
		s.logEntry(om, d.pc)
	}
	if !c.writePublish(d, pid, false) && (om == nil || !c.isStopping()) {
		// Too large for the client, or expired: the message is dropped.
		// A QoS 1/2 message that only missed a closing connection stays
		// in flight for the next one [MQTT-4.4.0-1].
		if om != nil && om.pk != 0 {
			s.unlogEntry(d.msg, om.pk)
		} else if d.pk != 0 {
			s.unlogEntry(d.msg, d.pk)
		}
		return
	}
	if om != nil {
		if s.inflight == nil {
			s.inflight = make(map[uint16]*outMsg)
		}
		s.inflight[pid] = om
	}
}

// drain moves queued messages to the connection while the window has
// room. Lock held.
func (s *session) drain() {
	if s.conn == nil {
		return
	}
	if len(s.queue) == 0 {
		s.queue = nil // the rule after an acknowledgement: no clock read
		return
	}
	now := time.Now()
	w := s.window()
	i := 0
	for ; i < len(s.queue); i++ {
		q := s.queue[i]
		if q.qos > 0 && len(s.inflight) >= w {
			break
		}
		s.queue[i] = outMsg{}
		if q.msg.expired(now) {
			s.b.m.droppedExpired.Add(1)
			s.onDropped(q.msg, "expired")
			if q.pk != 0 {
				s.unlogEntry(q.msg, q.pk)
			}
			continue
		}
		s.send(delivery{msg: q.msg, qos: q.qos, retain: q.retain, subIDs: q.subIDs, pk: q.pk, at: now})
		if s.conn == nil {
			i++
			break
		}
	}
	s.queue = s.queue[i:]
	if len(s.queue) == 0 {
		s.queue = nil
	}
}

// resend writes every in-flight message again after a reconnect, in their
// original order: PUBLISH with DUP set, or PUBREL [MQTT-4.4.0-1]. Lock held.
func (s *session) resend() {
	if len(s.inflight) == 0 {
		return
	}
	list := make([]*outMsg, 0, len(s.inflight))
	for _, om := range s.inflight {
		list = append(list, om)
	}
	slices.SortFunc(list, func(a, b *outMsg) int { return cmp.Compare(a.seq, b.seq) })
	for _, om := range list {
		if om.state == awaitPubcomp {
			s.conn.writeRel(&mqtt.Ack{PacketType: mqtt.PUBREL, PacketID: om.pid})
			continue
		}
		d := delivery{msg: om.msg, qos: om.qos, retain: om.retain, subIDs: om.subIDs}
		if !s.conn.writePublish(d, om.pid, true) && !s.conn.isStopping() {
			delete(s.inflight, om.pid)
			if om.pk != 0 {
				s.unlogEntry(om.msg, om.pk)
			}
		}
	}
}

// ack handles PUBACK, PUBREC and PUBCOMP from the client. Lock not held.
func (s *session) ack(c *conn, p *mqtt.Ack) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != c {
		return // the session has moved to another connection
	}
	om := s.inflight[p.PacketID]
	switch p.PacketType {
	case mqtt.PUBACK:
		if om == nil || om.state != awaitPuback {
			return
		}
		delete(s.inflight, p.PacketID)
		s.acked(om)
	case mqtt.PUBREC:
		if om == nil || om.state != awaitPubrec {
			// Answer with PUBREL 0x92 so the client can finish (MQTT 5.0 §3.6.2.1).
			if c.version == mqtt.V5 {
				c.writePacket(&mqtt.Ack{PacketType: mqtt.PUBREL, PacketID: p.PacketID, ReasonCode: mqtt.PacketIDNotFound})
			} else {
				c.writePacket(&mqtt.Ack{PacketType: mqtt.PUBREL, PacketID: p.PacketID})
			}
			return
		}
		if p.ReasonCode >= 0x80 {
			// v5: a PUBREC with an error ends the exchange (MQTT 5.0 §4.3.3).
			delete(s.inflight, p.PacketID)
			s.acked(om)
			break
		}
		om.state = awaitPubcomp
		om.sent = time.Now()
		if om.pk != 0 {
			s.logEntry(om, nil)
		}
		// [MQTT-4.3.3-3] answer PUBREC with PUBREL.
		c.writeRel(&mqtt.Ack{PacketType: mqtt.PUBREL, PacketID: p.PacketID})
		return
	case mqtt.PUBCOMP:
		if om == nil || om.state != awaitPubcomp {
			return
		}
		delete(s.inflight, p.PacketID)
		s.acked(om)
	}
	s.drain()
}

func (s *session) acked(om *outMsg) {
	if om.pk != 0 {
		s.unlogEntry(om.msg, om.pk)
	}
	s.b.m.msgAcked.Add(1)
	if bus := s.b.opts.Events; bus.Wants(events.MessageAcked) {
		bus.PublishMessage(&events.MessageRef{Kind: events.MessageAcked, Msg: om.msg, ClientID: s.id,
			Username: s.username, UsernameSet: s.usernameOK})
	}
}

// stopTimers cancels the expiry and will-delay timers.
func (s *session) stopTimers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.expiryT != nil {
		s.expiryT.Stop()
		s.expiryT = nil
	}
	if s.willT != nil {
		s.willT.Stop()
		s.willT = nil
	}
}
