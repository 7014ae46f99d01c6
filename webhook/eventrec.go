package webhook

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
	"unsafe"

	"github.com/mqgate/mqgate/events"
)

// An event record is what the outbox keeps of an event, after a record's
// header: the event's fields in a compact binary form instead of its JSON
// body. The body is written when the event is posted, by the endpoint's
// worker straight into the request, from the copy of the record held in
// memory (job.body) or read back from the outbox. The outbox writer thus
// spends an encoding of a few copies per event instead of a JSON body
// (escaping every byte of the payload), and writes, and holds in memory,
// less: a message.publish event with a 16-byte payload was a record of 254
// bytes instead of 413 (with a JSON header; see EndpointsFile for the
// header now), 70 of them held instead of 229, so an outage fills
// web.hook.outbox.max_bytes that much later. The body is
// the same as it would have been, with the node name and payload encoding
// configured when it is posted.
//
// Layout: eventRecMark, the kind, a flags byte (eventRecUsername ... eventRecMessageTime), the QoS,
// the subscription's QoS and retain handling, the CONNACK code, the
// protocol version; then the keep-alive as a uvarint; the times that are
// set (Time, ConnectedAt, MessageTime) as varint Unix milliseconds, all a
// body uses of them; then, each as a uvarint length and its bytes, the
// peer's address (netip.Addr's binary form; empty when none), the
// client id, username, reason, topic, publisher's client id and username,
// and the payload.
const eventRecMark = 0x01 // a JSON body starts with '{'

// isEventRec reports whether a stored body is an event record.
func isEventRec(body []byte) bool { return len(body) > 0 && body[0] == eventRecMark }

const (
	eventRecUsername = 1 << iota
	eventRecFromUser
	eventRecRetain
	eventRecRAP
	eventRecNL
	eventRecTime
	eventRecConnectedAt
	eventRecMessageTime
)

// appendEventRec appends the event record of e to b.
func appendEventRec(b []byte, e *events.Event) []byte {
	b, _ = appendEventRecAt(b, e)
	return b
}

// appendEventRecAt is appendEventRec that also returns where, in the
// returned slice, the bytes of the client id of the event's key start
// (see eventRecKey): the publisher's for message.publish.
func appendEventRecAt(b []byte, e *events.Event) ([]byte, int) {
	var flags byte
	set := func(on bool, flag byte) {
		if on {
			flags |= flag
		}
	}
	set(e.UsernameSet, eventRecUsername)
	set(e.FromUserSet, eventRecFromUser)
	set(e.Retain, eventRecRetain)
	set(e.Opts.RAP, eventRecRAP)
	set(e.Opts.NL, eventRecNL)
	set(!e.Time.IsZero(), eventRecTime)
	set(!e.ConnectedAt.IsZero(), eventRecConnectedAt)
	set(!e.MessageTime.IsZero(), eventRecMessageTime)
	b = append(b, eventRecMark, byte(e.Kind), flags, e.QoS, e.Opts.QoS, e.Opts.RH, e.ConnAck, e.ProtoVer)
	b = binary.AppendUvarint(b, uint64(e.KeepAlive))
	if flags&eventRecTime != 0 {
		b = binary.AppendVarint(b, e.Time.UnixMilli())
	}
	if flags&eventRecConnectedAt != 0 {
		b = binary.AppendVarint(b, e.ConnectedAt.UnixMilli())
	}
	if flags&eventRecMessageTime != 0 {
		b = binary.AppendVarint(b, e.MessageTime.UnixMilli())
	}
	// Only the fields some body writes: the peer's address is in the
	// bodies of the three connection events alone, and a message.publish
	// body names the publisher (from_client_id) but not e.ClientID, the
	// same id again: 25 of the 104 bytes of the load generator's 16-byte
	// messages, in the inbox, the outbox and memory.
	if k := e.Kind; e.Peer.IsValid() && (k == events.ClientConnect || k == events.ClientConnack || k == events.ClientConnected) {
		var buf [64]byte
		addr, _ := e.Peer.Addr().AppendBinary(buf[:0]) // cannot fail
		b = appendField(b, addr)
	} else {
		b = append(b, 0)
	}
	var clientAt int
	if e.Kind == events.MessagePublish {
		b = append(b, 0)
	} else {
		b = appendField(b, e.ClientID)
		clientAt = len(b) - len(e.ClientID)
	}
	b = appendField(b, e.Username)
	b = appendField(b, e.Reason)
	b = appendField(b, e.Topic)
	b = appendField(b, e.FromClientID)
	if e.Kind == events.MessagePublish {
		clientAt = len(b) - len(e.FromClientID)
	}
	b = appendField(b, e.FromUsername)
	return appendField(b, e.Payload), clientAt
}

// appendField appends f's length as a uvarint and f.
func appendField[T string | []byte](b []byte, f T) []byte {
	b = binary.AppendUvarint(b, uint64(len(f)))
	return append(b, f...)
}

var errEventRec = errors.New("truncated or malformed event record")

// readEventRec sets e to the event of event record p. Its strings and
// payload are views of p, not copies: e is valid only while p is not
// changed, which is all that writing a body from it needs, and reading
// one costs no allocation.
func readEventRec(e *events.Event, p []byte) error {
	if len(p) < 8 || p[0] != eventRecMark {
		return errEventRec
	}
	kind, flags := events.Kind(p[1]), p[2]
	if kind == 0 || int(kind) >= events.NumKinds {
		return fmt.Errorf("event record of unknown kind %d", p[1])
	}
	ka, n := binary.Uvarint(p[8:])
	if n <= 0 || ka > 0xffff {
		return errEventRec
	}
	*e = events.Event{Kind: kind, KeepAlive: uint16(ka)}
	e.QoS, e.Opts.QoS, e.Opts.RH, e.ConnAck, e.ProtoVer = p[3], p[4], p[5], p[6], p[7]
	e.UsernameSet = flags&eventRecUsername != 0
	e.FromUserSet = flags&eventRecFromUser != 0
	e.Retain = flags&eventRecRetain != 0
	e.Opts.RAP = flags&eventRecRAP != 0
	e.Opts.NL = flags&eventRecNL != 0
	p = p[8+n:]
	var ok bool
	if flags&eventRecTime != 0 {
		if e.Time, p, ok = recTime(p); !ok {
			return errEventRec
		}
	}
	if flags&eventRecConnectedAt != 0 {
		if e.ConnectedAt, p, ok = recTime(p); !ok {
			return errEventRec
		}
	}
	if flags&eventRecMessageTime != 0 {
		if e.MessageTime, p, ok = recTime(p); !ok {
			return errEventRec
		}
	}
	field := func() (f []byte, ok bool) {
		f, p, ok = recField(p)
		return f, ok
	}
	peer, ok := field()
	if !ok {
		return errEventRec
	}
	if len(peer) > 0 {
		var addr netip.Addr
		if err := addr.UnmarshalBinary(peer); err != nil {
			return fmt.Errorf("event record: peer: %w", err)
		}
		e.Peer = netip.AddrPortFrom(addr, 0) // a body has the address only
	}
	for _, s := range [...]*string{&e.ClientID, &e.Username, &e.Reason, &e.Topic, &e.FromClientID, &e.FromUsername} {
		f, ok := field()
		if !ok {
			return errEventRec
		}
		if len(f) > 0 {
			*s = unsafe.String(&f[0], len(f))
		}
	}
	payload, ok := field()
	if !ok || len(p) != 0 {
		return errEventRec
	}
	if len(payload) > 0 {
		e.Payload = payload
	}
	return nil
}

// recTime reads a time of an event record from the front of p.
func recTime(p []byte) (time.Time, []byte, bool) {
	v, n := binary.Varint(p)
	if n <= 0 {
		return time.Time{}, p, false
	}
	return time.UnixMilli(v), p[n:], true
}

// recField reads a field of an event record from the front of p: its
// length, a uvarint, and its bytes.
func recField(p []byte) (f, rest []byte, ok bool) {
	var l uint64
	n := 1
	if len(p) > 0 && p[0] < 0x80 { // a length under 128: nearly all
		l = uint64(p[0])
	} else if l, n = binary.Uvarint(p); n <= 0 {
		return nil, p, false
	}
	if l > uint64(len(p)-n) {
		return nil, p, false
	}
	return p[n : n+int(l)], p[n+int(l):], true
}

// eventRecKey is what the outbox writer needs of an event to make its
// delivery: its kind, its time (zero when it had none) and the client id
// whose lane it takes, the publisher's for message.publish.
type eventRecKey struct {
	kind   events.Kind
	time   time.Time
	client string // a view of the record
}

// appendJSONBody appends to dst the JSON body of the event stored as body
// in outbox record seq, of id: the body of its event record, or body
// itself when it is one (a record of an earlier version). body must not
// share memory with dst's spare capacity.
func appendJSONBody[ID string | []byte](d *Dispatcher, dst []byte, seq uint64, id ID, body []byte) ([]byte, error) {
	if !isEventRec(body) {
		return append(dst, body...), nil
	}
	var e events.Event
	if err := readEventRec(&e, body); err != nil {
		return dst, fmt.Errorf("webhook: outbox record %d: %w", seq, err)
	}
	return appendBodyAfter(append(dst, d.heads[e.Kind]...), &e, d.o.Encoding, id, seq)
}
