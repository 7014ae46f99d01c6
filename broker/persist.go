package broker

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mqgate/mqgate/broker/topics"
	"github.com/mqgate/mqgate/mqtt"
	"github.com/mqgate/mqgate/store/wal"
)

// Durable state. With Options.StoreDir set, the broker writes every change
// of its durable state to a store/wal log under that directory, as a put or
// a delete of one key, and Start replays the log before any listener opens.
//
// Keys (id is a client id, written as its length (uvarint) then its bytes,
// so that no byte of it can be mistaken for what follows; inc (uvarint) is
// the session's incarnation, a number it gets when it becomes persistent,
// so that an ended session and a new one of the same client id never share
// a key):
//
//	'r' topic             a retained message (encodeMessage)
//	'm' msgid             a message some session holds (encodeMessage);
//	                      msgid is 8 bytes big endian
//	's' id inc            a persistent session's header (logHeader)
//	'u' id inc filter     one of its subscriptions with its options
//	'q' id inc seq        one of its queued or in-flight QoS 1/2 messages:
//	                      the message id, the delivery's QoS, retain flag and
//	                      subscription ids, its state and packet id; seq (8
//	                      bytes big endian) orders them
//	'p' id inc packetid   an inbound QoS 2 packet id awaiting PUBREL
//	'w' id inc            its delayed will message, with the time it is due
//
// A message routed to many persistent sessions is written once ('m') and
// each session's entry ('q') refers to it by id; the broker counts the
// entries that refer to a message (message.refs) and deletes the message
// with the last of them. A message's life is therefore one put of the
// message, then per session one put when it is queued, one when it goes in
// flight (so that it is resent with DUP and the same packet id after a
// restart), one more at PUBREC for QoS 2, and one delete at the end; a
// session never rewrites more than the entry that changed. A retained
// message that is also queued is stored twice, as 'r' and as 'm': the
// retained record is replaced by the next retained message of its topic
// while the queued copy must live until it is delivered.
//
// Only persistent sessions (clean session 0 in 3.1.x, Session Expiry
// Interval > 0 in 5.0) and QoS 1 and 2 messages are written: a session that
// ends with its connection, and QoS 0 messages, never touch the disk (QoS 0
// messages queued for an offline session are kept in memory only, as their
// QoS allows). The session header is written when a persistent session
// attaches (online) and when it detaches (with the time, from which its
// expiry counts); a session found online in the log (the broker was killed)
// counts its expiry from the restart.
//
// Durable before acknowledged (publish.go, writeAck and writeHeld): the
// PUBACK, PUBREC or PUBCOMP of a packet that wrote to the log goes out
// from a wal.Log.Barrier callback, once every write so far is durable; a
// QoS 2 PUBLISH to a persistent session waits the same way (in the
// callback of its publisher's PUBREC when routing produced it), so that a
// subscriber never has a QoS 2 message the log could lose.
//
// Replay does not rely on the order of records across keys (compaction
// copies live records forward in any order): Start collects every record,
// then rebuilds the sessions, drops those whose expiry passed and deletes
// their keys, along with entries whose message is missing and messages no
// entry refers to.

// errBadRecord is returned for a log record the broker cannot decode.
var errBadRecord = errors.New("broker: malformed record in the log")

const (
	keyRetained = 'r'
	keyMessage  = 'm'
	keySession  = 's'
	keySub      = 'u'
	keyEntry    = 'q'
	keyRel      = 'p'
	keyWill     = 'w'
)

// openStore opens the log and replays it into the broker's state. Expired
// retained messages and sessions are dropped and deleted from the log.
func (b *Broker) openStore() error {
	if b.opts.StoreDir == "" {
		return nil
	}
	o := wal.Options{Sync: b.opts.StoreSync, BatchInterval: b.opts.StoreBatchInterval, Logger: b.opts.Logger}
	start := time.Now()
	rs := &replay{b: b, sessions: make(map[skey]*rsession), msgs: make(map[uint64]*message)}
	l, err := wal.Open(filepath.Join(b.opts.StoreDir, "broker"), o, rs.apply)
	if err != nil {
		return fmt.Errorf("broker: store: %w", err)
	}
	b.store = l
	var expired []string
	now := time.Now()
	b.retained.Match("#", func(topic string, m *message) bool {
		if m.expired(now) {
			expired = append(expired, topic)
		}
		return true
	})
	for _, t := range expired {
		b.retained.Delete(t)
		_ = l.Delete(string(keyRetained) + t)
	}
	if rs.maxID > b.msgSeq.Load() {
		b.msgSeq.Store(rs.maxID)
	}
	for _, m := range rs.unnumbered {
		m.id = b.newMessageID()
	}
	for id, m := range rs.msgs {
		// A queued message that is also the retained one of its topic is
		// one message: share it, so that its references are counted once.
		if r, ok := b.retained.Get(m.topic); ok && m.retain && r.id == id {
			rs.msgs[id] = r
		}
	}
	n, dropped, wills := b.restoreSessions(rs, now)
	b.log.Info("state restored", "retained", b.retained.Count(), "expired", len(expired),
		"sessions", n, "sessions_expired", dropped, "bytes", l.Size(), "took", time.Since(start).Round(time.Millisecond))
	for _, c := range wills {
		b.publishWill(c)
	}
	return nil
}

// replay collects the records of the log as Open reads them.
type replay struct {
	b          *Broker
	sessions   map[skey]*rsession
	msgs       map[uint64]*message
	unnumbered []*message // retained messages written without their id
	maxID      uint64
}

// skey names one incarnation of a session in the log: a client id and the
// number the session got when it became persistent. A session that ends
// and a new one of the same client id never share a key, so that the
// deletes of the first, whenever they are written, cannot remove records
// of the second.
type skey struct {
	id  string
	inc uint64
}

// rsession is what the log holds of one session.
type rsession struct {
	hdr     []byte
	subs    map[string][]byte
	entries map[uint64][]byte
	rels    map[uint16]int64
	will    []byte
}

func (r *replay) session(sk skey) *rsession {
	s := r.sessions[sk]
	if s == nil {
		s = &rsession{}
		r.sessions[sk] = s
	}
	return s
}

// apply applies one replayed record.
func (r *replay) apply(op wal.Op) error {
	if len(op.Key) == 0 {
		return errBadRecord
	}
	b := r.b
	kind := op.Key[0]
	switch kind {
	case keyRetained:
		topic := op.Key[1:]
		if op.Delete {
			b.retained.Delete(topic)
			return nil
		}
		m, err := decodeMessage(op.Value)
		if err != nil {
			return err
		}
		if m.id == 0 {
			r.unnumbered = append(r.unnumbered, m)
		}
		r.maxID = max(r.maxID, m.id)
		b.retained.Set(topic, m)
		return nil
	case keyMessage:
		if len(op.Key) != 9 {
			return errBadRecord
		}
		id := binary.BigEndian.Uint64([]byte(op.Key[1:]))
		r.maxID = max(r.maxID, id)
		if op.Delete {
			delete(r.msgs, id)
			return nil
		}
		m, err := decodeMessage(op.Value)
		if err != nil {
			return err
		}
		m.id = id
		r.msgs[id] = m
		return nil
	case keySession, keySub, keyEntry, keyRel, keyWill:
	default:
		return nil // a key of a later version: ignored
	}
	sk, rest, ok := splitSessionKey(op.Key)
	if !ok {
		return errBadRecord
	}
	r.maxID = max(r.maxID, sk.inc)
	if op.Delete {
		s := r.sessions[sk]
		if s == nil {
			return nil
		}
		switch kind {
		case keySession:
			s.hdr = nil
		case keySub:
			delete(s.subs, rest)
		case keyEntry:
			if len(rest) == 8 {
				delete(s.entries, binary.BigEndian.Uint64([]byte(rest)))
			}
		case keyRel:
			if len(rest) == 2 {
				delete(s.rels, binary.BigEndian.Uint16([]byte(rest)))
			}
		case keyWill:
			s.will = nil
		}
		return nil
	}
	s := r.session(sk)
	val := append([]byte(nil), op.Value...)
	switch kind {
	case keySession:
		s.hdr = val
	case keySub:
		if s.subs == nil {
			s.subs = make(map[string][]byte)
		}
		s.subs[rest] = val
	case keyEntry:
		if len(rest) != 8 {
			return errBadRecord
		}
		if s.entries == nil {
			s.entries = make(map[uint64][]byte)
		}
		s.entries[binary.BigEndian.Uint64([]byte(rest))] = val
	case keyRel:
		if len(rest) != 2 {
			return errBadRecord
		}
		if s.rels == nil {
			s.rels = make(map[uint16]int64)
		}
		at, _ := binary.Varint(val)
		s.rels[binary.BigEndian.Uint16([]byte(rest))] = at
	case keyWill:
		s.will = val
	}
	return nil
}

// restoreSessions rebuilds the sessions the replay found, offline, with
// their subscriptions, queues, in-flight messages, inbound QoS 2 ids and
// delayed wills, and deletes from the log what is no longer needed. It
// returns the number of sessions restored and dropped, and the connections
// standing for the wills that fell due while the broker was down.
func (b *Broker) restoreSessions(rs *replay, now time.Time) (n, dropped int, due []*conn) {
	keys := make([]skey, 0, len(rs.sessions))
	for sk := range rs.sessions {
		keys = append(keys, sk)
	}
	// By client id, the newest incarnation last: it is the one restored,
	// the older ones (whose deletes did not make it to the log) go.
	slices.SortFunc(keys, func(a, b skey) int {
		if c := strings.Compare(a.id, b.id); c != 0 {
			return c
		}
		return cmp.Compare(a.inc, b.inc)
	})
	newest := make(map[string]uint64, len(keys))
	for _, sk := range keys {
		if rs.sessions[sk].hdr != nil {
			newest[sk.id] = sk.inc
		}
	}
	for _, sk := range keys {
		id, inc, r := sk.id, sk.inc, rs.sessions[sk]
		if r.hdr != nil && newest[id] != inc {
			b.deleteRestored(id, inc, r)
			continue
		}
		h, err := decodeHeader(r.hdr)
		var left time.Duration
		if err == nil {
			from := h.offlineAt
			if from.IsZero() {
				from = now // online when the broker stopped
			}
			left = from.Add(h.expiry).Sub(now)
		}
		var wc *conn
		var willDue time.Time
		if r.will != nil && err == nil {
			wc, willDue, err = b.decodeWill(id, r.will)
			if err != nil {
				b.log.Warn("dropping a will message the log cannot decode", "client", id, "err", err)
				err = nil
			}
		}
		if err != nil || (!h.neverEnds && left <= 0) {
			if err != nil && r.hdr != nil {
				b.log.Warn("dropping a session the log cannot decode", "client", id, "err", err)
			}
			if wc != nil {
				due = append(due, wc) // the will of an expired session is due
			}
			b.deleteRestored(id, inc, r)
			if r.hdr != nil {
				dropped++
			}
			continue
		}
		s := b.restoreSession(id, inc, h, r, rs.msgs)
		n++
		s.mu.Lock()
		if wc != nil {
			if !willDue.After(now) {
				due = append(due, wc)
				_ = b.store.Delete(sessionKey(keyWill, id, inc, nil))
			} else if s.neverEnds || willDue.Before(now.Add(left)) {
				s.armWill(wc, willDue.Sub(now))
			} else {
				s.willAtEnd = wc
			}
		}
		if !s.neverEnds {
			s.expiryT = time.AfterFunc(left, func() { b.expireSession(s, wc) })
		}
		s.mu.Unlock()
	}
	// Messages no entry refers to any more.
	for id, m := range rs.msgs {
		if m.refs == 0 {
			_ = b.store.Delete(messageKey(id))
		}
	}
	return n, dropped, due
}

// restoreSession builds one offline session from the log.
func (b *Broker) restoreSession(id string, inc uint64, h header, r *rsession, msgs map[uint64]*message) *session {
	s := newSession(b, id)
	s.inc = inc
	s.version, s.expiry, s.neverEnds = h.version, h.expiry, h.neverEnds
	s.created, s.username, s.usernameOK = h.created, h.username, h.usernameOK
	s.last = h.last
	s.persisted = true
	for filter, v := range r.subs {
		ts, added, err := decodeSub(s, filter, v)
		if err != nil {
			b.log.Warn("dropping a subscription the log cannot decode", "client", id, "err", err)
			_ = b.store.Delete(sessionKey(keySub, id, inc, []byte(filter)))
			continue
		}
		if s.subs == nil {
			s.subs = make(map[string]subEntry)
		}
		s.subs[filter] = subEntry{sub: ts, added: added}
		b.index.Subscribe(ts)
	}
	s.nsubs.Store(int32(len(s.subs)))
	seqs := make([]uint64, 0, len(r.entries))
	for seq := range r.entries {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		om, msgID, err := decodeEntry(r.entries[seq])
		if err == nil {
			om.msg = msgs[msgID]
			if om.msg == nil {
				err = fmt.Errorf("%w: message %d is missing", errBadRecord, msgID)
			}
		}
		if err != nil {
			b.log.Warn("dropping a queued message the log cannot decode", "client", id, "err", err)
			_ = b.store.Delete(entryKey(id, inc, seq))
			continue
		}
		om.msg.refs++
		om.pk, om.seq = seq, seq
		s.pseq, s.sendSeq = seq, seq
		if om.state == 0 {
			s.queue = append(s.queue, *om)
			continue
		}
		if s.inflight == nil {
			s.inflight = make(map[uint16]*outMsg)
		}
		if old := s.inflight[om.pid]; old != nil {
			// Cannot happen unless the log was damaged: keep the newest.
			old.msg.refs--
			_ = b.store.Delete(entryKey(id, inc, old.pk))
		}
		s.inflight[om.pid] = om
		s.nextPID = om.pid
	}
	for pid, at := range r.rels {
		if s.awaitRel == nil {
			s.awaitRel = make(map[uint16]time.Time)
		}
		s.awaitRel[pid] = time.Unix(0, at)
	}
	b.sessions[id] = s
	return s
}

// deleteRestored deletes every key of a session found in the log.
func (b *Broker) deleteRestored(id string, inc uint64, r *rsession) {
	ops := []wal.Op{{Key: sessionKey(keySession, id, inc, nil), Delete: true}, {Key: sessionKey(keyWill, id, inc, nil), Delete: true}}
	for f := range r.subs {
		ops = append(ops, wal.Op{Key: sessionKey(keySub, id, inc, []byte(f)), Delete: true})
	}
	for seq := range r.entries {
		ops = append(ops, wal.Op{Key: entryKey(id, inc, seq), Delete: true})
	}
	for pid := range r.rels {
		ops = append(ops, wal.Op{Key: relKey(id, inc, pid), Delete: true})
	}
	_ = b.store.Write(ops, nil)
}

// sessionKey returns kind + the length of id + id + inc (uvarint) + rest.
func sessionKey(kind byte, id string, inc uint64, rest []byte) string {
	k := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(id)+len(rest))
	k = append(k, kind)
	k = binary.AppendUvarint(k, uint64(len(id)))
	k = append(k, id...)
	k = binary.AppendUvarint(k, inc)
	return string(append(k, rest...))
}

// splitSessionKey returns the client id and incarnation of a session key,
// and what follows them.
func splitSessionKey(key string) (sk skey, rest string, ok bool) {
	b := []byte(key[1:])
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return sk, "", false
	}
	sk.id = string(b[k : k+int(n)])
	b = b[k+int(n):]
	inc, k2 := binary.Uvarint(b)
	if k2 <= 0 {
		return sk, "", false
	}
	sk.inc = inc
	return sk, string(b[k2:]), true
}

func entryKey(id string, inc, seq uint64) string {
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], seq)
	return sessionKey(keyEntry, id, inc, s[:])
}

func relKey(id string, inc uint64, pid uint16) string {
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], pid)
	return sessionKey(keyRel, id, inc, p[:])
}

func messageKey(id uint64) string {
	var k [9]byte
	k[0] = keyMessage
	binary.BigEndian.PutUint64(k[1:], id)
	return string(k[:])
}

// logWrite writes ops to the log; a failure is logged, at most once a
// minute (a failed log refuses every later write), and a closed log is
// not: the broker is shutting down.
func (b *Broker) logWrite(ops ...wal.Op) {
	err := b.store.Write(ops, nil)
	if err == nil || errors.Is(err, wal.ErrClosed) {
		return
	}
	now := time.Now().UnixNano()
	if last := b.storeErrAt.Load(); now-last >= int64(time.Minute) && b.storeErrAt.CompareAndSwap(last, now) {
		b.log.Error("writing the durable state failed; changes are no longer saved", "err", err)
	}
}

// persistRetained saves the retained message of m's topic, or its
// clearing, and reports whether it wrote to the log. It never waits for
// the disk.
func (b *Broker) persistRetained(topic string, m *message) bool {
	if b.store == nil {
		return false
	}
	if m == nil {
		b.logWrite(wal.Op{Key: string(keyRetained) + topic, Delete: true})
	} else {
		b.logWrite(wal.Op{Key: string(keyRetained) + topic, Value: encodeMessage(nil, m)})
	}
	return true
}

// logHeader saves the session's header; offlineAt is zero while a
// connection is attached. Lock held, s.persisted.
func (s *session) logHeader(offlineAt time.Time) {
	var v []byte
	v = append(v, 1)
	var flags byte
	if s.neverEnds {
		flags |= 1
	}
	if s.usernameOK {
		flags |= 2
	}
	v = append(v, flags, byte(s.version))
	v = binary.AppendVarint(v, int64(s.expiry))
	v = binary.AppendVarint(v, s.created.UnixNano())
	var off int64
	if !offlineAt.IsZero() {
		off = offlineAt.UnixNano()
	}
	v = binary.AppendVarint(v, off)
	v = appendString(v, s.username)
	// The last connection, for the management API (optional: headers
	// written before it have none).
	if l := s.last; !l.connectedAt.IsZero() {
		var lf byte
		if l.cleanStart {
			lf |= 1
		}
		v = append(v, 1, lf)
		v = appendString(v, l.peer.String())
		v = appendString(v, l.listener)
		v = appendString(v, l.protoName)
		v = binary.AppendUvarint(v, uint64(l.keepAlive))
		v = binary.AppendVarint(v, l.connectedAt.UnixNano())
		v = binary.AppendVarint(v, l.disconnectedAt.UnixNano())
	}
	s.b.logWrite(wal.Op{Key: sessionKey(keySession, s.id, s.inc, nil), Value: v})
}

// header is a decoded session header.
type header struct {
	version    mqtt.Version
	neverEnds  bool
	usernameOK bool
	expiry     time.Duration
	created    time.Time
	offlineAt  time.Time
	username   string
	last       lastConn
}

func decodeHeader(v []byte) (header, error) {
	var h header
	if v == nil {
		return h, fmt.Errorf("%w: session without header", errBadRecord)
	}
	r := &reader{b: v}
	if r.byte() != 1 {
		return h, fmt.Errorf("%w: unknown session version", errBadRecord)
	}
	flags := r.byte()
	h.neverEnds, h.usernameOK = flags&1 != 0, flags&2 != 0
	h.version = mqtt.Version(r.byte())
	h.expiry = time.Duration(r.varint())
	h.created = time.Unix(0, r.varint())
	if off := r.varint(); off != 0 {
		h.offlineAt = time.Unix(0, off)
	}
	h.username = string(r.bytes())
	if r.err != nil || len(r.b) == 0 {
		return h, r.err
	}
	// The optional last connection: a part this version cannot read is
	// ignored, not a reason to drop the session.
	t := &reader{b: r.b}
	if t.byte() == 1 {
		lf := t.byte()
		l := lastConn{cleanStart: lf&1 != 0}
		l.peer, _ = netip.ParseAddrPort(string(t.bytes()))
		l.listener = string(t.bytes())
		l.protoName = string(t.bytes())
		l.keepAlive = uint16(t.uvarint())
		l.connectedAt = time.Unix(0, t.varint())
		l.disconnectedAt = time.Unix(0, t.varint())
		if t.err == nil {
			h.last = l
		}
	}
	return h, nil
}

// logSub saves one subscription. Lock held, s.persisted.
func (s *session) logSub(filter string, e subEntry) {
	var v []byte
	var flags byte
	if e.sub.NoLocal {
		flags |= 1
	}
	if e.sub.RetainAsPublished {
		flags |= 2
	}
	v = append(v, 1, e.sub.QoS, flags, e.sub.RetainHandling)
	v = binary.AppendUvarint(v, uint64(e.sub.ID))
	v = binary.AppendVarint(v, e.added.UnixNano())
	s.b.logWrite(wal.Op{Key: sessionKey(keySub, s.id, s.inc, []byte(filter)), Value: v})
}

// unlogSub deletes one subscription. Lock held, s.persisted.
func (s *session) unlogSub(filter string) {
	s.b.logWrite(wal.Op{Key: sessionKey(keySub, s.id, s.inc, []byte(filter)), Delete: true})
}

func decodeSub(s *session, filter string, v []byte) (sub topics.Sub, added time.Time, err error) {
	r := &reader{b: v}
	if r.byte() != 1 {
		return sub, added, fmt.Errorf("%w: unknown subscription version", errBadRecord)
	}
	group, f, _ := mqtt.ParseShared(filter)
	sub = topics.Sub{Client: s, Filter: f, Group: group}
	sub.QoS = r.byte()
	flags := r.byte()
	sub.NoLocal, sub.RetainAsPublished = flags&1 != 0, flags&2 != 0
	sub.RetainHandling = r.byte()
	sub.ID = uint32(r.uvarint())
	added = time.Unix(0, r.varint())
	if r.err == nil && mqtt.ValidTopicFilter(filter) != nil {
		r.err = fmt.Errorf("%w: invalid filter", errBadRecord)
	}
	return sub, added, r.err
}

// logEntry saves om, a queued (state 0) or in-flight QoS 1/2 message, under
// its key, giving it one when it has none: a new entry counts one more
// reference to its message, which is written first if it is the first
// reference. It records in pc (when not nil) that routing wrote to the
// log. Lock held, s.persisted.
func (s *session) logEntry(om *outMsg, pc *pubCtx) {
	b := s.b
	var v []byte
	v = append(v, 1)
	v = binary.AppendUvarint(v, om.msg.id)
	var flags byte
	if om.retain {
		flags |= 4
	}
	v = append(v, om.qos|flags, byte(om.state))
	v = binary.BigEndian.AppendUint16(v, om.pid)
	v = binary.AppendUvarint(v, uint64(len(om.subIDs)))
	for _, id := range om.subIDs {
		v = binary.AppendUvarint(v, uint64(id))
	}
	if om.pk != 0 {
		b.logWrite(wal.Op{Key: entryKey(s.id, s.inc, om.pk), Value: v})
	} else {
		s.pseq++
		om.pk = s.pseq
		op := wal.Op{Key: entryKey(s.id, s.inc, om.pk), Value: v}
		b.persistMu.Lock()
		om.msg.refs++
		if om.msg.refs == 1 {
			b.logWrite(wal.Op{Key: messageKey(om.msg.id), Value: encodeMessage(nil, om.msg)}, op)
		} else {
			b.logWrite(op)
		}
		b.persistMu.Unlock()
	}
	if pc != nil {
		pc.logged = true
	}
}

// unlogEntry deletes the entry of a message that left the session, and the
// message with its last entry. Lock held, s.persisted, pk != 0.
func (s *session) unlogEntry(m *message, pk uint64) {
	b := s.b
	op := wal.Op{Key: entryKey(s.id, s.inc, pk), Delete: true}
	b.persistMu.Lock()
	m.refs--
	if m.refs == 0 {
		b.logWrite(op, wal.Op{Key: messageKey(m.id), Delete: true})
	} else {
		b.logWrite(op)
	}
	b.persistMu.Unlock()
}

func decodeEntry(v []byte) (om *outMsg, msgID uint64, err error) {
	r := &reader{b: v}
	if r.byte() != 1 {
		return nil, 0, fmt.Errorf("%w: unknown entry version", errBadRecord)
	}
	msgID = r.uvarint()
	flags := r.byte()
	om = &outMsg{qos: flags & 3, retain: flags&4 != 0}
	om.state = outState(r.byte())
	hi, lo := r.byte(), r.byte()
	om.pid = uint16(hi)<<8 | uint16(lo)
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		return nil, 0, errBadRecord
	}
	for range n {
		om.subIDs = append(om.subIDs, uint32(r.uvarint()))
	}
	if r.err == nil && (om.qos == 0 || om.qos > 2 || om.state > awaitPubcomp || (om.state != 0 && om.pid == 0)) {
		r.err = fmt.Errorf("%w: bad entry", errBadRecord)
	}
	return om, msgID, r.err
}

// logRel saves an inbound QoS 2 packet id awaiting PUBREL. Lock held,
// s.persisted.
func (s *session) logRel(pid uint16, at time.Time) {
	s.b.logWrite(wal.Op{Key: relKey(s.id, s.inc, pid), Value: binary.AppendVarint(nil, at.UnixNano())})
}

// unlogRel deletes an inbound QoS 2 packet id. Lock held, s.persisted.
func (s *session) unlogRel(pid uint16) {
	s.b.logWrite(wal.Op{Key: relKey(s.id, s.inc, pid), Delete: true})
}

// forget deletes every key of a session that ended. Lock not held.
func (s *session) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.persisted {
		return
	}
	s.persisted = false
	b := s.b
	ops := []wal.Op{{Key: sessionKey(keySession, s.id, s.inc, nil), Delete: true}, {Key: sessionKey(keyWill, s.id, s.inc, nil), Delete: true}}
	for f := range s.subs {
		ops = append(ops, wal.Op{Key: sessionKey(keySub, s.id, s.inc, []byte(f)), Delete: true})
	}
	for pid := range s.awaitRel {
		ops = append(ops, wal.Op{Key: relKey(s.id, s.inc, pid), Delete: true})
	}
	b.persistMu.Lock()
	unref := func(m *message, pk uint64) {
		if pk == 0 {
			return
		}
		ops = append(ops, wal.Op{Key: entryKey(s.id, s.inc, pk), Delete: true})
		if m.refs--; m.refs == 0 {
			ops = append(ops, wal.Op{Key: messageKey(m.id), Delete: true})
		}
	}
	for i := range s.queue {
		unref(s.queue[i].msg, s.queue[i].pk)
		s.queue[i].pk = 0
	}
	for _, om := range s.inflight {
		unref(om.msg, om.pk)
		om.pk = 0
	}
	b.logWrite(ops...)
	b.persistMu.Unlock()
}

// logWill saves the delayed will of c, due at due. Lock held, s.persisted.
func (s *session) logWill(c *conn, due time.Time) {
	w := c.will()
	if w == nil {
		return
	}
	var v []byte
	v = append(v, 1)
	var flags byte
	if w.Retain {
		flags |= 4
	}
	if c.superuser {
		flags |= 8
	}
	if c.info.usernameSet {
		flags |= 16
	}
	v = append(v, w.QoS|flags, byte(c.version))
	v = binary.AppendVarint(v, due.UnixNano())
	v = appendString(v, c.info.username)
	v = appendString(v, c.l.ident)
	v = appendString(v, w.Topic)
	v = appendString(v, string(w.Payload))
	props := w.Props
	props.Clear(mqtt.PropWillDelay)
	v = appendString(v, string(encodeProps(&props)))
	s.b.logWrite(wal.Op{Key: sessionKey(keyWill, s.id, s.inc, nil), Value: v})
}

// unlogWill deletes the session's will. Lock held, s.persisted.
func (s *session) unlogWill() {
	s.b.logWrite(wal.Op{Key: sessionKey(keyWill, s.id, s.inc, nil), Delete: true})
}

// decodeWill rebuilds a delayed will as a detached connection that stands
// for the client which set it: publishWill authorizes the will with its
// identity. It returns when the will is due.
func (b *Broker) decodeWill(id string, v []byte) (*conn, time.Time, error) {
	r := &reader{b: v}
	if r.byte() != 1 {
		return nil, time.Time{}, fmt.Errorf("%w: unknown will version", errBadRecord)
	}
	flags := r.byte()
	version := mqtt.Version(r.byte())
	due := time.Unix(0, r.varint())
	username := string(r.bytes())
	ident := string(r.bytes())
	w := &mqtt.Will{QoS: flags & 3, Retain: flags&4 != 0}
	w.Topic = string(r.bytes())
	w.Payload = append([]byte(nil), r.bytes()...)
	props := r.bytes()
	if r.err != nil {
		return nil, time.Time{}, r.err
	}
	if len(props) > 0 {
		p, err := decodeProps(props)
		if err != nil {
			return nil, time.Time{}, err
		}
		w.Props = *p
	}
	c := &conn{b: b, l: &listener{ident: ident}, version: version, clientID: id, superuser: flags&8 != 0, infoSet: true}
	c.info = connInfo{username: username, usernameSet: flags&16 != 0, will: w}
	return c, due, nil
}

// encodeMessage appends m's durable form to dst: version, id, created and
// expiry (Unix nanoseconds, 0 = none), publisher, QoS, retain, topic,
// payload and the v5 properties as an encoded PUBLISH.
func encodeMessage(dst []byte, m *message) []byte {
	dst = append(dst, 2)
	dst = binary.AppendUvarint(dst, m.id)
	dst = binary.AppendVarint(dst, m.created.UnixNano())
	var exp int64
	if !m.expiry.IsZero() {
		exp = m.expiry.UnixNano()
	}
	dst = binary.AppendVarint(dst, exp)
	dst = appendString(dst, m.from)
	dst = appendString(dst, m.fromUser)
	flags := m.qos
	if m.retain {
		flags |= 4
	}
	if m.userSet {
		flags |= 8
	}
	dst = append(dst, flags)
	dst = appendString(dst, m.topic)
	dst = appendString(dst, string(m.payload))
	var props []byte
	if m.props != nil {
		props = encodeProps(m.props)
	}
	return appendString(dst, string(props))
}

// encodeProps returns PUBLISH properties as an encoded v5 PUBLISH (nil if
// they cannot be encoded).
func encodeProps(pr *mqtt.Properties) []byte {
	if pr.Empty() {
		return nil
	}
	p := mqtt.Publish{Topic: "p", Props: *pr}
	out, _, err := mqtt.EncodePublish(nil, &p, mqtt.V5)
	if err != nil {
		return nil
	}
	return out
}

// decodeProps decodes what encodeProps wrote; nil when there are none.
func decodeProps(b []byte) (*mqtt.Properties, error) {
	pkt := append([]byte(nil), b...)
	h, n, err := mqtt.ParseFixedHeader(pkt)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadRecord, err)
	}
	p, err := mqtt.Decode(h, pkt[n:], mqtt.V5)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadRecord, err)
	}
	if pub, ok := p.(*mqtt.Publish); ok && !pub.Props.Empty() {
		pr := pub.Props
		return &pr, nil
	}
	return nil, nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// reader decodes what the encoders above wrote; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errBadRecord
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errBadRecord
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.err = errBadRecord
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) bytes() []byte {
	n, k := binary.Uvarint(r.b)
	if k <= 0 || n > uint64(len(r.b)-k) {
		r.err = errBadRecord
		return nil
	}
	v := r.b[k : k+int(n)]
	r.b = r.b[k+int(n):]
	return v
}

// decodeMessage decodes a message (version 1, without an id, or 2); it
// copies what it keeps of b.
func decodeMessage(b []byte) (*message, error) {
	r := &reader{b: b}
	m := &message{}
	switch r.byte() {
	case 1:
	case 2:
		m.id = r.uvarint()
	default:
		return nil, fmt.Errorf("%w: unknown message version", errBadRecord)
	}
	m.created = time.Unix(0, r.varint())
	if exp := r.varint(); exp != 0 {
		m.expiry = time.Unix(0, exp)
	}
	m.from = string(r.bytes())
	m.fromUser = string(r.bytes())
	flags := r.byte()
	m.qos, m.retain, m.userSet = flags&3, flags&4 != 0, flags&8 != 0
	m.topic = string(r.bytes())
	m.payload = append([]byte(nil), r.bytes()...)
	props := r.bytes()
	if r.err != nil {
		return nil, r.err
	}
	if len(props) > 0 {
		p, err := decodeProps(props)
		if err != nil {
			return nil, err
		}
		m.props = p
	}
	return m, nil
}

// storeBytes returns the size of the log's files, 0 without a store.
func (b *Broker) storeBytes() uint64 {
	if b.store == nil {
		return 0
	}
	return uint64(b.store.Size())
}
