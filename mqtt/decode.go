package mqtt

import (
	"errors"
	"fmt"
	"io"
	"unsafe"
)

// Decode decodes one packet body: body is exactly the h.Remaining bytes that
// follow the fixed header h. v is the protocol version negotiated on the
// connection; it is ignored for CONNECT, which carries its own level.
// Returned strings and byte slices never alias body, so the caller may reuse
// its buffer. Empty binary fields (payload, password, correlation data, ...)
// decode as nil. A small PUBLISH payload (up to 256 bytes) shares one
// allocation with the topic name, so a caller that keeps Topic long after
// the packet (a map key, say) and cares about those bytes should
// strings.Clone it.
//
// Errors are *Error values carrying the reason code a v5 DISCONNECT or CONNACK
// should send: mostly MalformedPacket or ProtocolError, plus TopicNameInvalid
// (a PUBLISH topic or will topic with wildcards), TopicAliasInvalid (Topic
// Alias 0) and UnsupportedProtocolVersion (a CONNECT with protocol name "MQTT"
// or "MQIsdp" but a level this package does not speak). Test for them with
// errors.Is(err, mqtt.UnsupportedProtocolVersion). In that last case only,
// Decode also returns a *Connect holding just ProtocolName and Version, so
// the caller can pick the CONNACK format (0x01 for 3.x, 0x84 for 5.0).
//
// Decode checks what the packet alone can tell. Checks that need connection
// state are the caller's: Topic Alias against Topic Alias Maximum, the
// packet direction (a client must not send a Subscription Identifier in
// PUBLISH [MQTT-3.3.4-6]), topic filter syntax in SUBSCRIBE and UNSUBSCRIBE
// (answered per filter with SUBACK 0x8F / 0x80, see ValidTopicFilter), and
// payload UTF-8 validity when the payload format indicator is 1.
func Decode(h FixedHeader, body []byte, v Version) (Packet, error) {
	if err := checkHeader(h, body, v); err != nil {
		return nil, err
	}
	d := decoder{b: body}
	switch h.Type {
	case CONNECT:
		return decodeConnect(&d)
	case CONNACK:
		return decodeConnack(&d, v)
	case PUBLISH:
		return decodePublish(&d, h.Flags, v)
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		return decodeAck(&d, h.Type, v)
	case SUBSCRIBE:
		return decodeSubscribe(&d, v)
	case SUBACK:
		return decodeSuback(&d, v)
	case UNSUBSCRIBE:
		return decodeUnsubscribe(&d, v)
	case UNSUBACK:
		return decodeUnsuback(&d, v)
	case PINGREQ:
		if err := d.done("PINGREQ"); err != nil {
			return nil, err
		}
		return &Pingreq{}, nil
	case PINGRESP:
		if err := d.done("PINGRESP"); err != nil {
			return nil, err
		}
		return &Pingresp{}, nil
	case DISCONNECT:
		return decodeDisconnect(&d, v)
	case AUTH:
		return decodeAuth(&d, v)
	}
	// Unreachable: checkFlags rejected type 0 and a nibble holds 0..15.
	return nil, malformed("", "unknown packet type %d", h.Type)
}

// ReadPacket reads exactly one packet from r: the fixed header, then the
// body, which it decodes with Decode (see there for v and the errors). When
// maxSize > 0 and the whole packet would be larger, it returns a *Error with
// Code PacketTooLarge without reading the body, which leaves r in the middle
// of a packet. A clean end of stream before the first byte is io.EOF; a
// stream that ends inside a packet gives an error wrapping
// io.ErrUnexpectedEOF.
func ReadPacket(r io.Reader, v Version, maxSize int) (Packet, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:2]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("mqtt: read fixed header: %w", err)
	}
	n := 2
	for n < len(hdr) && hdr[n-1]&0x80 != 0 {
		if _, err := io.ReadFull(r, hdr[n:n+1]); err != nil {
			return nil, fmt.Errorf("mqtt: read fixed header: %w", noEOF(err))
		}
		n++
	}
	h, hl, err := ParseFixedHeader(hdr[:n])
	if err != nil {
		return nil, err
	}
	if maxSize > 0 && hl+h.Remaining > maxSize {
		return nil, &Error{Code: PacketTooLarge, Msg: fmt.Sprintf("%s of %d bytes exceeds the maximum of %d", h.Type, hl+h.Remaining, maxSize)}
	}
	body := make([]byte, h.Remaining)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("mqtt: read %s body: %w", h.Type, noEOF(err))
	}
	return Decode(h, body, v)
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func decodeConnect(d *decoder) (Packet, error) {
	// [MQTT-3.1.2-1] The protocol name is "MQTT" (3.1.1, 5.0) or
	// "MQIsdp" (3.1); another name is not MQTT at all, so the connection
	// is closed without a CONNACK.
	name, err := d.readStringView("protocol name")
	if err != nil {
		return nil, err
	}
	level, err := d.readByte("protocol level")
	if err != nil {
		return nil, err
	}
	c := &Connect{Version: Version(level)}
	switch string(name) {
	case "MQTT":
		c.ProtocolName = "MQTT"
	case "MQIsdp":
		c.ProtocolName = "MQIsdp"
	default:
		return nil, protocolError("MQTT-3.1.2-1", "unknown protocol name %q", name)
	}
	// [MQTT-3.1.2-2] An unsupported level is answered with CONNACK 0x01
	// (3.x) or 0x84 (5.0), so the caller gets the name and level.
	switch {
	case c.ProtocolName == "MQTT" && (c.Version == V311 || c.Version == V5):
	case c.ProtocolName == "MQIsdp" && c.Version == V31:
	default:
		return c, &Error{Code: UnsupportedProtocolVersion, Rule: "MQTT-3.1.2-2",
			Msg: fmt.Sprintf("protocol %q level %d", c.ProtocolName, level)}
	}
	v := c.Version

	flags, err := d.readByte("connect flags")
	if err != nil {
		return nil, err
	}
	// [MQTT-3.1.2-3] The reserved flag must be 0.
	if flags&0x01 != 0 {
		return nil, malformed("MQTT-3.1.2-3", "reserved connect flag is set")
	}
	c.CleanStart = flags&0x02 != 0
	willFlag := flags&0x04 != 0
	willQoS := flags >> 3 & 0x03
	willRetain := flags&0x20 != 0
	c.PasswordSet = flags&0x40 != 0
	c.UsernameSet = flags&0x80 != 0
	if !willFlag {
		// [MQTT-3.1.2-11] [MQTT-3.1.2-13] (5.0; [MQTT-3.1.2-13]
		// [MQTT-3.1.2-15] in 3.1.1) Without a will, will QoS and will
		// retain must be 0.
		if willQoS != 0 {
			return nil, malformed(ruleFor(v, "MQTT-3.1.2-11", "MQTT-3.1.2-13"), "will QoS %d without will flag", willQoS)
		}
		if willRetain {
			return nil, malformed(ruleFor(v, "MQTT-3.1.2-13", "MQTT-3.1.2-15"), "will retain without will flag")
		}
	} else if willQoS == 3 {
		// [MQTT-3.1.2-12] (5.0; [MQTT-3.1.2-14] in 3.1.1) Will QoS 3 is
		// malformed.
		return nil, malformed(ruleFor(v, "MQTT-3.1.2-12", "MQTT-3.1.2-14"), "will QoS 3")
	}
	// [MQTT-3.1.2-22] (3.1.1) A password needs a user name; 5.0 allows a
	// password alone.
	if v != V5 && c.PasswordSet && !c.UsernameSet {
		return nil, malformed("MQTT-3.1.2-22", "password flag without user name flag")
	}
	if c.KeepAlive, err = d.readUint16("keep alive"); err != nil {
		return nil, err
	}
	if v == V5 {
		if err := decodeProps(d, &connectProps, &c.Props); err != nil {
			return nil, err
		}
		// MQTT 5.0 §3.1.2.11.10: Authentication Data without an
		// Authentication Method is a protocol error.
		if c.Props.Has(PropAuthData) && !c.Props.Has(PropAuthMethod) {
			return nil, protocolError("", "authentication data without authentication method")
		}
	}

	// [MQTT-3.1.3-1] Payload fields in order: client identifier, will
	// (properties, topic, payload), user name, password.
	// [MQTT-3.1.3-3] [MQTT-3.1.3-4] The client identifier is always there
	// and is a UTF-8 string.
	if c.ClientID, err = d.readString("client identifier"); err != nil {
		return nil, err
	}
	if willFlag {
		w := &Will{QoS: willQoS, Retain: willRetain}
		if v == V5 {
			if err := decodeProps(d, &willProps, &w.Props); err != nil {
				return nil, err
			}
		}
		// [MQTT-3.1.3-9] (5.0) The will topic is a UTF-8 string, and a
		// topic name: no wildcards [MQTT-4.7.0-1].
		if w.Topic, err = d.readString("will topic"); err != nil {
			return nil, err
		}
		if err := ValidTopicName(w.Topic); err != nil {
			return nil, err
		}
		if w.Payload, err = d.readBinary("will payload"); err != nil {
			return nil, err
		}
		c.Will = w
	}
	if c.UsernameSet {
		// [MQTT-3.1.3-10] (5.0) The user name is a UTF-8 string.
		if c.Username, err = d.readString("user name"); err != nil {
			return nil, err
		}
	}
	if c.PasswordSet {
		if c.Password, err = d.readBinary("password"); err != nil {
			return nil, err
		}
	}
	if err := d.done("CONNECT"); err != nil {
		return nil, err
	}
	return c, nil
}

func decodeConnack(d *decoder, v Version) (Packet, error) {
	flags, err := d.readByte("connack flags")
	if err != nil {
		return nil, err
	}
	code, err := d.readByte("connack reason code")
	if err != nil {
		return nil, err
	}
	c := &Connack{ReasonCode: ReasonCode(code)}
	// MQTT 3.1 has no session present flag: its first byte is unused.
	if v != V31 {
		// [MQTT-3.2.2-1] Bits 7-1 of the acknowledge flags are reserved.
		if flags&0xFE != 0 {
			return nil, malformed("MQTT-3.2.2-1", "reserved connack flags 0x%02X", flags)
		}
		c.SessionPresent = flags&0x01 != 0
	}
	if v == V5 {
		// [MQTT-3.2.2-8] The reason code is one of table 3-1.
		if !connackCodes.has(c.ReasonCode) {
			return nil, protocolError("MQTT-3.2.2-8", "reason code 0x%02X is not valid in CONNACK", code)
		}
		if err := decodeProps(d, &connackProps, &c.Props); err != nil {
			return nil, err
		}
	} else if code > byte(V3NotAuthorized) {
		// MQTT 3.1.1 §3.2.2.3: return codes 6-255 are reserved.
		return nil, protocolError("", "reserved connack return code %d", code)
	}
	// [MQTT-3.2.2-6] (5.0; [MQTT-3.2.2-4] in 3.1.1) A refused
	// connection has no session.
	if c.SessionPresent && code != 0 {
		return nil, protocolError(ruleFor(v, "MQTT-3.2.2-6", "MQTT-3.2.2-4"), "session present with reason code 0x%02X", code)
	}
	if err := d.done("CONNACK"); err != nil {
		return nil, err
	}
	return c, nil
}

// smallPayload is the largest PUBLISH payload that shares one allocation
// with the topic name. Sharing saves an allocation per packet but keeps the
// payload alive as long as the topic string; the bound keeps that cost small
// for callers that hold on to topic names (route caches, alias tables).
const smallPayload = 256

// checkHeader checks what the fixed header says against the body and the
// protocol version, before any packet is decoded.
func checkHeader(h FixedHeader, body []byte, v Version) error {
	if len(body) != h.Remaining {
		return malformed("", "%s body is %d bytes, remaining length is %d", h.Type, len(body), h.Remaining)
	}
	if err := checkFlags(h.Type, h.Flags); err != nil {
		return err
	}
	if h.Type != CONNECT && !validVersion(v) {
		return protocolError("", "unknown protocol version %d", v)
	}
	return nil
}

// DecodePublish is Decode for a PUBLISH packet (h.Type must be PUBLISH),
// into *p instead of a new packet: p is zeroed first, so nothing of an
// earlier packet remains (after an error it holds what was decoded).
// It is for a reader that handles one PUBLISH at a time and keeps only
// the values of p's fields, never p itself: a broker's read loop then
// needs no allocation for the packet (the topic and payload still get
// their own memory, which the caller may keep). It checks what Decode
// checks.
func DecodePublish(h FixedHeader, body []byte, v Version, p *Publish) error {
	*p = Publish{}
	if h.Type != PUBLISH {
		return malformed("", "%s is not a PUBLISH", h.Type)
	}
	if err := checkHeader(h, body, v); err != nil {
		return err
	}
	d := decoder{b: body}
	return decodePublishInto(&d, h.Flags, v, p)
}

func decodePublish(d *decoder, flags byte, v Version) (Packet, error) {
	p := &Publish{}
	if err := decodePublishInto(d, flags, v, p); err != nil {
		return nil, err
	}
	return p, nil
}

func decodePublishInto(d *decoder, flags byte, v Version, p *Publish) error {
	p.Dup = flags&0x08 != 0
	p.QoS = flags >> 1 & 0x03
	p.Retain = flags&0x01 != 0
	// [MQTT-3.3.1-2] QoS 0 messages have DUP 0.
	if p.QoS == 0 && p.Dup {
		return malformed("MQTT-3.3.1-2", "DUP flag on a QoS 0 PUBLISH")
	}
	// [MQTT-3.3.2-1] The topic name comes first and is a UTF-8 string.
	topic, err := d.readStringView("topic name")
	if err != nil {
		return err
	}
	// [MQTT-3.3.2-2] [MQTT-4.7.0-1] No wildcards in a topic name.
	for _, c := range topic {
		if c == '+' || c == '#' {
			return &Error{Code: TopicNameInvalid, Rule: "MQTT-3.3.2-2", Msg: fmt.Sprintf("wildcard in topic name %q", topic)}
		}
	}
	if p.QoS > 0 {
		if p.PacketID, err = d.readUint16("packet identifier"); err != nil {
			return err
		}
		// [MQTT-2.2.1-3] (5.0; [MQTT-2.3.1-1] in 3.1.1) QoS 1 and 2
		// PUBLISH packets carry a non-zero packet identifier.
		if p.PacketID == 0 {
			return malformed(ruleFor(v, "MQTT-2.2.1-3", "MQTT-2.3.1-1"), "PUBLISH QoS %d with packet identifier 0", p.QoS)
		}
	}
	if v == V5 {
		if err := decodeProps(d, &publishProps, &p.Props); err != nil {
			return err
		}
	}
	// [MQTT-4.7.3-1] A topic name is at least one character long. In 5.0
	// an empty topic name stands for the one a Topic Alias maps to, and
	// without a Topic Alias it is a protocol error (MQTT 5.0 §3.3.2.1).
	if len(topic) == 0 && !p.Props.Has(PropTopicAlias) {
		return protocolError("MQTT-4.7.3-1", "empty topic name without topic alias")
	}
	payload := d.b
	d.b = nil
	if len(payload) <= smallPayload {
		// One allocation for both: the topic string is the first part of
		// buf and is never written again; the payload is the rest, with
		// its capacity capped so appending to it cannot reach the topic
		// (nothing can, a slice cannot be extended backwards).
		buf := make([]byte, len(topic)+len(payload))
		copy(buf, topic)
		copy(buf[len(topic):], payload)
		if len(topic) > 0 {
			p.Topic = unsafe.String(&buf[0], len(topic))
		}
		if len(payload) > 0 {
			p.Payload = buf[len(topic):]
		}
	} else {
		p.Topic = string(topic)
		p.Payload = make([]byte, len(payload))
		copy(p.Payload, payload)
	}
	return nil
}

// DecodeAck is Decode for a PUBACK, PUBREC, PUBREL or PUBCOMP packet, into
// *a instead of a new packet, as DecodePublish is for PUBLISH: a is zeroed
// first (after an error it holds what was decoded).
func DecodeAck(h FixedHeader, body []byte, v Version, a *Ack) error {
	*a = Ack{}
	switch h.Type {
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
	default:
		return malformed("", "%s is not an acknowledgement", h.Type)
	}
	if err := checkHeader(h, body, v); err != nil {
		return err
	}
	d := decoder{b: body}
	return decodeAckInto(&d, h.Type, v, a)
}

func decodeAck(d *decoder, t Type, v Version) (Packet, error) {
	a := &Ack{}
	if err := decodeAckInto(d, t, v, a); err != nil {
		return nil, err
	}
	return a, nil
}

func decodeAckInto(d *decoder, t Type, v Version, a *Ack) error {
	id, err := d.readUint16("packet identifier")
	if err != nil {
		return err
	}
	a.PacketType, a.PacketID = t, id
	// MQTT 5.0 §3.4.2.1: with remaining length 2 the reason code is 0x00
	// (success) and there are no properties; with 3 there are no
	// properties.
	if v == V5 && len(d.b) > 0 {
		code, _ := d.readByte("reason code")
		a.ReasonCode = ReasonCode(code)
		// [MQTT-3.4.2-1] [MQTT-3.5.2-1] [MQTT-3.6.2-1] [MQTT-3.7.2-1]
		// The reason code is one the packet type defines.
		if !ackCodes[t].has(a.ReasonCode) {
			return protocolError("", "reason code 0x%02X is not valid in %s", code, t)
		}
		if len(d.b) > 0 {
			if err := decodeProps(d, &ackProps[t], &a.Props); err != nil {
				return err
			}
		}
	}
	if err := d.done(t.String()); err != nil {
		return err
	}
	return nil
}

func decodeSubscribe(d *decoder, v Version) (Packet, error) {
	s := &Subscribe{}
	var err error
	if s.PacketID, err = readNonZeroID(d, v, "SUBSCRIBE"); err != nil {
		return nil, err
	}
	if v == V5 {
		if err := decodeProps(d, &subscribeProps, &s.Props); err != nil {
			return nil, err
		}
	}
	for len(d.b) > 0 {
		// [MQTT-3.8.3-1] Topic filters are UTF-8 strings. Their syntax is
		// checked per filter by the caller (SUBACK 0x8F / 0x80), not
		// here.
		filter, err := d.readString("topic filter")
		if err != nil {
			return nil, err
		}
		opts, err := d.readByte("subscription options")
		if err != nil {
			return nil, err
		}
		sub := Subscription{Filter: filter, QoS: opts & 0x03}
		if v == V5 {
			// [MQTT-3.8.3-5] Bits 7-6 of the options are reserved.
			if opts&0xC0 != 0 {
				return nil, malformed("MQTT-3.8.3-5", "reserved subscription option bits 0x%02X", opts)
			}
			sub.NoLocal = opts&0x04 != 0
			sub.RetainAsPublished = opts&0x08 != 0
			sub.RetainHandling = opts >> 4 & 0x03
			// MQTT 5.0 §3.8.3.1: QoS 3 and Retain Handling 3 are
			// protocol errors.
			if sub.QoS == 3 {
				return nil, protocolError("", "subscription QoS 3 for %q", filter)
			}
			if sub.RetainHandling == 3 {
				return nil, protocolError("", "retain handling 3 for %q", filter)
			}
			// [MQTT-3.8.3-4] No Local on a shared subscription is a
			// protocol error.
			if _, _, shared := ParseShared(filter); shared && sub.NoLocal {
				return nil, protocolError("MQTT-3.8.3-4", "no local on shared subscription %q", filter)
			}
		} else if opts&0xFC != 0 || sub.QoS == 3 {
			// [MQTT-3-8.3-4] (3.1.1, numbered so in the specification)
			// The requested QoS byte holds 0, 1 or 2 and nothing else.
			return nil, malformed("MQTT-3-8.3-4", "requested QoS byte 0x%02X for %q", opts, filter)
		}
		s.Subscriptions = append(s.Subscriptions, sub)
	}
	// [MQTT-3.8.3-2] (5.0; [MQTT-3.8.3-3] in 3.1.1) At least one filter.
	if len(s.Subscriptions) == 0 {
		return nil, protocolError(ruleFor(v, "MQTT-3.8.3-2", "MQTT-3.8.3-3"), "SUBSCRIBE without topic filters")
	}
	return s, nil
}

func decodeSuback(d *decoder, v Version) (Packet, error) {
	s := &Suback{}
	var err error
	if s.PacketID, err = d.readUint16("packet identifier"); err != nil {
		return nil, err
	}
	codes := &subackCodes
	if v == V5 {
		if err := decodeProps(d, &subackProps, &s.Props); err != nil {
			return nil, err
		}
	} else {
		codes = &subackV3Codes
	}
	if s.ReasonCodes, err = readReasonCodes(d, codes, "SUBACK"); err != nil {
		return nil, err
	}
	return s, nil
}

func decodeUnsubscribe(d *decoder, v Version) (Packet, error) {
	u := &Unsubscribe{}
	var err error
	if u.PacketID, err = readNonZeroID(d, v, "UNSUBSCRIBE"); err != nil {
		return nil, err
	}
	if v == V5 {
		if err := decodeProps(d, &unsubscribeProps, &u.Props); err != nil {
			return nil, err
		}
	}
	for len(d.b) > 0 {
		// [MQTT-3.10.3-1] Topic filters are UTF-8 strings.
		f, err := d.readString("topic filter")
		if err != nil {
			return nil, err
		}
		u.Filters = append(u.Filters, f)
	}
	// [MQTT-3.10.3-2] At least one filter.
	if len(u.Filters) == 0 {
		return nil, protocolError("MQTT-3.10.3-2", "UNSUBSCRIBE without topic filters")
	}
	return u, nil
}

func decodeUnsuback(d *decoder, v Version) (Packet, error) {
	u := &Unsuback{}
	var err error
	if u.PacketID, err = d.readUint16("packet identifier"); err != nil {
		return nil, err
	}
	if v != V5 {
		if err := d.done("UNSUBACK"); err != nil {
			return nil, err
		}
		return u, nil
	}
	if err := decodeProps(d, &unsubackProps, &u.Props); err != nil {
		return nil, err
	}
	if u.ReasonCodes, err = readReasonCodes(d, &unsubackCodes, "UNSUBACK"); err != nil {
		return nil, err
	}
	return u, nil
}

func decodeDisconnect(d *decoder, v Version) (Packet, error) {
	p := &Disconnect{}
	// MQTT 5.0 §3.14.2.1: remaining length 0 means reason 0x00 and no
	// properties; remaining length 1 means no properties.
	if v == V5 && len(d.b) > 0 {
		code, _ := d.readByte("reason code")
		p.ReasonCode = ReasonCode(code)
		// [MQTT-3.14.2-1] The reason code is one of table 3-10.
		if !disconnectCodes.has(p.ReasonCode) {
			return nil, protocolError("MQTT-3.14.2-1", "reason code 0x%02X is not valid in DISCONNECT", code)
		}
		if len(d.b) > 0 {
			if err := decodeProps(d, &disconnectProps, &p.Props); err != nil {
				return nil, err
			}
		}
	}
	if err := d.done("DISCONNECT"); err != nil {
		return nil, err
	}
	return p, nil
}

func decodeAuth(d *decoder, v Version) (Packet, error) {
	// AUTH exists only in 5.0; type 15 is reserved in 3.x.
	if v != V5 {
		return nil, protocolError("", "AUTH packet on a version %d connection", v)
	}
	a := &Auth{}
	// MQTT 5.0 §3.15.2.1: remaining length 0 means reason 0x00 and no
	// properties.
	if len(d.b) > 0 {
		code, _ := d.readByte("reason code")
		a.ReasonCode = ReasonCode(code)
		// [MQTT-3.15.2-1] The reason code is one of table 3-13.
		if !authCodes.has(a.ReasonCode) {
			return nil, protocolError("MQTT-3.15.2-1", "reason code 0x%02X is not valid in AUTH", code)
		}
		if len(d.b) > 0 {
			if err := decodeProps(d, &authProps, &a.Props); err != nil {
				return nil, err
			}
		}
	}
	if err := d.done("AUTH"); err != nil {
		return nil, err
	}
	return a, nil
}

// readNonZeroID reads the packet identifier of a SUBSCRIBE or UNSUBSCRIBE,
// which must not be 0 [MQTT-2.2.1-3] (5.0; [MQTT-2.3.1-1] in 3.1.1).
func readNonZeroID(d *decoder, v Version, packet string) (uint16, error) {
	id, err := d.readUint16("packet identifier")
	if err == nil && id == 0 {
		err = malformed(ruleFor(v, "MQTT-2.2.1-3", "MQTT-2.3.1-1"), "%s with packet identifier 0", packet)
	}
	return id, err
}

// readReasonCodes reads the rest of a SUBACK or UNSUBACK: one or more reason
// codes, each from the set the packet type defines ([MQTT-3.9.3-2],
// [MQTT-3.11.3-2]).
func readReasonCodes(d *decoder, valid *codeSet, packet string) ([]ReasonCode, error) {
	if len(d.b) == 0 {
		return nil, protocolError("", "%s without reason codes", packet)
	}
	codes := make([]ReasonCode, len(d.b))
	for i, c := range d.b {
		if !valid.has(ReasonCode(c)) {
			return nil, protocolError("", "reason code 0x%02X is not valid in %s", c, packet)
		}
		codes[i] = ReasonCode(c)
	}
	d.b = nil
	return codes, nil
}

// codeSet is a set of reason codes.
type codeSet [4]uint64

func newCodeSet(codes ...ReasonCode) codeSet {
	var s codeSet
	for _, c := range codes {
		s[c>>6] |= 1 << (c & 63)
	}
	return s
}

func (s *codeSet) has(c ReasonCode) bool { return s[c>>6]&(1<<(c&63)) != 0 }

// Reason codes each packet type may carry (MQTT 5.0 tables 3-1, 3-4 to 3-13).
var (
	connackCodes = newCodeSet(Success, UnspecifiedError, MalformedPacket, ProtocolError,
		ImplementationSpecific, UnsupportedProtocolVersion, ClientIDNotValid, BadUsernameOrPassword,
		NotAuthorized, ServerUnavailable, ServerBusy, Banned, BadAuthenticationMethod,
		TopicNameInvalid, PacketTooLarge, QuotaExceeded, PayloadFormatInvalid, RetainNotSupported,
		QoSNotSupported, UseAnotherServer, ServerMoved, ConnectionRateExceeded)
	pubCodes = newCodeSet(Success, NoMatchingSubscribers, UnspecifiedError, ImplementationSpecific,
		NotAuthorized, TopicNameInvalid, PacketIDInUse, QuotaExceeded, PayloadFormatInvalid)
	pubrelCodes = newCodeSet(Success, PacketIDNotFound)
	ackCodes    = [...]codeSet{PUBACK: pubCodes, PUBREC: pubCodes, PUBREL: pubrelCodes, PUBCOMP: pubrelCodes}
	subackCodes = newCodeSet(GrantedQoS0, GrantedQoS1, GrantedQoS2, UnspecifiedError,
		ImplementationSpecific, NotAuthorized, TopicFilterInvalid, PacketIDInUse, QuotaExceeded,
		SharedSubNotSupported, SubIDNotSupported, WildcardSubNotSupported)
	// [MQTT-3.9.3-2] (3.1.1) SUBACK return codes are 0x00-0x02 and 0x80.
	subackV3Codes = newCodeSet(GrantedQoS0, GrantedQoS1, GrantedQoS2, V3SubackFailure)
	unsubackCodes = newCodeSet(Success, NoSubscriptionExisted, UnspecifiedError,
		ImplementationSpecific, NotAuthorized, TopicFilterInvalid, PacketIDInUse)
	disconnectCodes = newCodeSet(Success, DisconnectWithWill, UnspecifiedError, MalformedPacket,
		ProtocolError, ImplementationSpecific, NotAuthorized, ServerBusy, ServerShuttingDown,
		KeepAliveTimeout, SessionTakenOver, TopicFilterInvalid, TopicNameInvalid,
		ReceiveMaximumExceeded, TopicAliasInvalid, PacketTooLarge, MessageRateTooHigh,
		QuotaExceeded, AdministrativeAction, PayloadFormatInvalid, RetainNotSupported,
		QoSNotSupported, UseAnotherServer, ServerMoved, SharedSubNotSupported,
		ConnectionRateExceeded, MaximumConnectTime, SubIDNotSupported, WildcardSubNotSupported)
	authCodes = newCodeSet(Success, ContinueAuthentication, ReAuthenticate)
)

// ValidReasonCode reports whether c is a reason code that a packet of type t
// may carry in MQTT 5.0 (tables 3-1 and 3-4 to 3-13). It is false for types
// without a reason code.
func ValidReasonCode(t Type, c ReasonCode) bool {
	switch t {
	case CONNACK:
		return connackCodes.has(c)
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		return ackCodes[t].has(c)
	case SUBACK:
		return subackCodes.has(c)
	case UNSUBACK:
		return unsubackCodes.has(c)
	case DISCONNECT:
		return disconnectCodes.has(c)
	case AUTH:
		return authCodes.has(c)
	}
	return false
}
