package mqtt

import "slices"

// startPacket checks the remaining length, grows dst to hold the whole packet
// and appends the fixed header.
func startPacket(dst []byte, first byte, rem int) ([]byte, error) {
	if rem > MaxRemainingLength {
		return dst, encodeError("%s remaining length %d exceeds %d", Type(first>>4), rem, MaxRemainingLength)
	}
	dst = slices.Grow(dst, 1+varintLen(rem)+rem)
	return appendHeader(dst, first, rem), nil
}

func checkVersion(v Version) error {
	if !validVersion(v) {
		return encodeError("unknown protocol version %d", v)
	}
	return nil
}

func checkQoS(field string, q byte) error {
	if q > 2 {
		return encodeError("%s %d is above 2", field, q)
	}
	return nil
}

// propsSize returns the encoded size of p (length prefix included) and the
// property length for appendProps; both are 0 for versions before 5.0.
func propsSize(p *Properties, s *propSpec, v Version) (size, n int, err error) {
	if v != V5 {
		return 0, 0, nil
	}
	n, err = propsLen(p, s)
	return varintLen(n) + n, n, err
}

// EncodePublish appends p encoded for version v and returns the extended
// slice and the index in it of the two byte packet identifier, or -1 for
// QoS 0. A broker can encode a PUBLISH once per variant and patch the
// identifier for each subscriber:
//
//	out, off, err := mqtt.EncodePublish(buf[:0], p, v)
//	binary.BigEndian.PutUint16(out[off:], id)
//
// p.PacketID may be 0 for that reason. Appending to a buffer with enough
// capacity does not allocate. On error dst is returned unchanged.
func EncodePublish(dst []byte, p *Publish, v Version) (out []byte, idOffset int, err error) {
	if err := checkVersion(v); err != nil {
		return dst, -1, err
	}
	if err := checkQoS("PUBLISH QoS", p.QoS); err != nil {
		return dst, -1, err
	}
	if err := checkLen("topic name", len(p.Topic)); err != nil {
		return dst, -1, err
	}
	ps, pl, err := propsSize(&p.Props, &publishProps, v)
	if err != nil {
		return dst, -1, err
	}
	rem := 2 + len(p.Topic) + ps + len(p.Payload)
	if p.QoS > 0 {
		rem += 2
	}
	first := byte(PUBLISH)<<4 | p.QoS<<1
	if p.Dup {
		first |= 0x08
	}
	if p.Retain {
		first |= 0x01
	}
	b, err := startPacket(dst, first, rem)
	if err != nil {
		return dst, -1, err
	}
	b = appendString(b, p.Topic)
	idOffset = -1
	if p.QoS > 0 {
		idOffset = len(b)
		b = appendUint16(b, p.PacketID)
	}
	if v == V5 {
		b = appendProps(b, &p.Props, pl)
	}
	return append(b, p.Payload...), idOffset, nil
}

// Encode implements Packet; see EncodePublish.
func (p *Publish) Encode(dst []byte, v Version) ([]byte, error) {
	b, _, err := EncodePublish(dst, p, v)
	return b, err
}

// Encode implements Packet. The protocol level written is v; c.Version must
// be 0 or v. An empty ProtocolName is written as "MQIsdp" for 3.1 and "MQTT"
// otherwise; any other name is written as given.
func (c *Connect) Encode(dst []byte, v Version) ([]byte, error) {
	if err := checkVersion(v); err != nil {
		return dst, err
	}
	if c.Version != 0 && c.Version != v {
		return dst, encodeError("CONNECT of version %d encoded as version %d", c.Version, v)
	}
	name := c.ProtocolName
	if name == "" {
		name = "MQTT"
		if v == V31 {
			name = "MQIsdp"
		}
	}
	if err := checkLen("protocol name", len(name)); err != nil {
		return dst, err
	}
	if err := checkLen("client identifier", len(c.ClientID)); err != nil {
		return dst, err
	}
	ps, pl, err := propsSize(&c.Props, &connectProps, v)
	if err != nil {
		return dst, err
	}
	rem := 2 + len(name) + 4 + ps + 2 + len(c.ClientID)
	var flags byte
	if c.CleanStart {
		flags |= 0x02
	}
	w := c.Will
	var wpl int
	if w != nil {
		if err := checkQoS("will QoS", w.QoS); err != nil {
			return dst, err
		}
		if err := checkLen("will topic", len(w.Topic)); err != nil {
			return dst, err
		}
		if err := checkLen("will payload", len(w.Payload)); err != nil {
			return dst, err
		}
		var wps int
		if wps, wpl, err = propsSize(&w.Props, &willProps, v); err != nil {
			return dst, err
		}
		rem += wps + 4 + len(w.Topic) + len(w.Payload)
		flags |= 0x04 | w.QoS<<3
		if w.Retain {
			flags |= 0x20
		}
	}
	if c.UsernameSet {
		if err := checkLen("user name", len(c.Username)); err != nil {
			return dst, err
		}
		rem += 2 + len(c.Username)
		flags |= 0x80
	}
	if c.PasswordSet {
		if err := checkLen("password", len(c.Password)); err != nil {
			return dst, err
		}
		rem += 2 + len(c.Password)
		flags |= 0x40
	}
	b, err := startPacket(dst, byte(CONNECT)<<4, rem)
	if err != nil {
		return dst, err
	}
	b = appendString(b, name)
	b = append(b, byte(v), flags)
	b = appendUint16(b, c.KeepAlive)
	if v == V5 {
		b = appendProps(b, &c.Props, pl)
	}
	b = appendString(b, c.ClientID)
	if w != nil {
		if v == V5 {
			b = appendProps(b, &w.Props, wpl)
		}
		b = appendString(b, w.Topic)
		b = appendBinary(b, w.Payload)
	}
	if c.UsernameSet {
		b = appendString(b, c.Username)
	}
	if c.PasswordSet {
		b = appendBinary(b, c.Password)
	}
	return b, nil
}

// Encode implements Packet. For 3.x, ReasonCode is written as the return
// code as it is (map a 5.0 code with ConnackReturnCode first), and for 3.1
// the session present flag is left out.
func (c *Connack) Encode(dst []byte, v Version) ([]byte, error) {
	if err := checkVersion(v); err != nil {
		return dst, err
	}
	ps, pl, err := propsSize(&c.Props, &connackProps, v)
	if err != nil {
		return dst, err
	}
	b, err := startPacket(dst, byte(CONNACK)<<4, 2+ps)
	if err != nil {
		return dst, err
	}
	var flags byte
	if c.SessionPresent && v != V31 {
		flags = 0x01
	}
	b = append(b, flags, byte(c.ReasonCode))
	if v == V5 {
		b = appendProps(b, &c.Props, pl)
	}
	return b, nil
}

// Encode implements Packet. In 5.0 a Success ack without properties is
// written in its short form (packet identifier only) and another reason code
// without properties without the property length (MQTT 5.0 §3.4.2.1).
func (a *Ack) Encode(dst []byte, v Version) ([]byte, error) {
	if err := checkVersion(v); err != nil {
		return dst, err
	}
	t := a.PacketType
	if t < PUBACK || t > PUBCOMP {
		return dst, encodeError("ack of packet type %d", t)
	}
	first := byte(t) << 4
	if t == PUBREL {
		first |= 0x02 // [MQTT-3.6.1-1]
	}
	_, pl, err := propsSize(&a.Props, &ackProps[t], v)
	if err != nil {
		return dst, err
	}
	rem := 2
	if v == V5 && pl > 0 {
		rem = 3 + varintLen(pl) + pl
	} else if v == V5 && a.ReasonCode != Success {
		rem = 3
	}
	b, err := startPacket(dst, first, rem)
	if err != nil {
		return dst, err
	}
	b = appendUint16(b, a.PacketID)
	if rem > 2 {
		b = append(b, byte(a.ReasonCode))
	}
	if rem > 3 {
		b = appendProps(b, &a.Props, pl)
	}
	return b, nil
}

// Encode implements Packet. For 3.x only each filter's QoS is written.
func (s *Subscribe) Encode(dst []byte, v Version) ([]byte, error) {
	if err := checkVersion(v); err != nil {
		return dst, err
	}
	ps, pl, err := propsSize(&s.Props, &subscribeProps, v)
	if err != nil {
		return dst, err
	}
	rem := 2 + ps
	for i := range s.Subscriptions {
		sub := &s.Subscriptions[i]
		if err := checkLen("topic filter", len(sub.Filter)); err != nil {
			return dst, err
		}
		if err := checkQoS("subscription QoS", sub.QoS); err != nil {
			return dst, err
		}
		if sub.RetainHandling > 2 {
			return dst, encodeError("retain handling %d is above 2", sub.RetainHandling)
		}
		rem += 3 + len(sub.Filter)
	}
	b, err := startPacket(dst, byte(SUBSCRIBE)<<4|0x02, rem) // [MQTT-3.8.1-1]
	if err != nil {
		return dst, err
	}
	b = appendUint16(b, s.PacketID)
	if v == V5 {
		b = appendProps(b, &s.Props, pl)
	}
	for i := range s.Subscriptions {
		sub := &s.Subscriptions[i]
		b = appendString(b, sub.Filter)
		opts := sub.QoS
		if v == V5 {
			if sub.NoLocal {
				opts |= 0x04
			}
			if sub.RetainAsPublished {
				opts |= 0x08
			}
			opts |= sub.RetainHandling << 4
		}
		b = append(b, opts)
	}
	return b, nil
}

// Encode implements Packet. For 3.x the codes are written as they are
// (0x00, 0x01, 0x02 or 0x80 are the valid ones).
func (s *Suback) Encode(dst []byte, v Version) ([]byte, error) {
	if err := checkVersion(v); err != nil {
		return dst, err
	}
	ps, pl, err := propsSize(&s.Props, &subackProps, v)
	if err != nil {
		return dst, err
	}
	b, err := startPacket(dst, byte(SUBACK)<<4, 2+ps+len(s.ReasonCodes))
	if err != nil {
		return dst, err
	}
	b = appendUint16(b, s.PacketID)
	if v == V5 {
		b = appendProps(b, &s.Props, pl)
	}
	for _, c := range s.ReasonCodes {
		b = append(b, byte(c))
	}
	return b, nil
}

// Encode implements Packet.
func (u *Unsubscribe) Encode(dst []byte, v Version) ([]byte, error) {
	if err := checkVersion(v); err != nil {
		return dst, err
	}
	ps, pl, err := propsSize(&u.Props, &unsubscribeProps, v)
	if err != nil {
		return dst, err
	}
	rem := 2 + ps
	for _, f := range u.Filters {
		if err := checkLen("topic filter", len(f)); err != nil {
			return dst, err
		}
		rem += 2 + len(f)
	}
	b, err := startPacket(dst, byte(UNSUBSCRIBE)<<4|0x02, rem) // [MQTT-3.10.1-1]
	if err != nil {
		return dst, err
	}
	b = appendUint16(b, u.PacketID)
	if v == V5 {
		b = appendProps(b, &u.Props, pl)
	}
	for _, f := range u.Filters {
		b = appendString(b, f)
	}
	return b, nil
}

// Encode implements Packet. For 3.x only the packet identifier is written.
func (u *Unsuback) Encode(dst []byte, v Version) ([]byte, error) {
	if err := checkVersion(v); err != nil {
		return dst, err
	}
	ps, pl, err := propsSize(&u.Props, &unsubackProps, v)
	if err != nil {
		return dst, err
	}
	rem := 2
	if v == V5 {
		rem += ps + len(u.ReasonCodes)
	}
	b, err := startPacket(dst, byte(UNSUBACK)<<4, rem)
	if err != nil {
		return dst, err
	}
	b = appendUint16(b, u.PacketID)
	if v == V5 {
		b = appendProps(b, &u.Props, pl)
		for _, c := range u.ReasonCodes {
			b = append(b, byte(c))
		}
	}
	return b, nil
}

// Encode implements Packet.
func (*Pingreq) Encode(dst []byte, v Version) ([]byte, error) {
	if err := checkVersion(v); err != nil {
		return dst, err
	}
	return append(dst, byte(PINGREQ)<<4, 0), nil
}

// Encode implements Packet.
func (*Pingresp) Encode(dst []byte, v Version) ([]byte, error) {
	if err := checkVersion(v); err != nil {
		return dst, err
	}
	return append(dst, byte(PINGRESP)<<4, 0), nil
}

// Encode implements Packet. For 3.x it is always the two bytes 0xE0 0x00; in
// 5.0 a Success without properties has remaining length 0, and another
// reason code without properties has no property length (MQTT 5.0
// §3.14.2.1).
func (p *Disconnect) Encode(dst []byte, v Version) ([]byte, error) {
	if err := checkVersion(v); err != nil {
		return dst, err
	}
	return encodeReasonPacket(dst, byte(DISCONNECT)<<4, p.ReasonCode, &p.Props, &disconnectProps, v)
}

// Encode implements Packet. AUTH exists only in 5.0: other versions are an
// error. Success without properties is written with remaining length 0.
func (a *Auth) Encode(dst []byte, v Version) ([]byte, error) {
	if v != V5 {
		return dst, encodeError("AUTH does not exist in protocol version %d", v)
	}
	return encodeReasonPacket(dst, byte(AUTH)<<4, a.ReasonCode, &a.Props, &authProps, v)
}

// encodeReasonPacket writes DISCONNECT and AUTH, which share their layout:
// an optional reason code followed by optional properties.
func encodeReasonPacket(dst []byte, first byte, code ReasonCode, p *Properties, s *propSpec, v Version) ([]byte, error) {
	ps, pl, err := propsSize(p, s, v)
	if err != nil {
		return dst, err
	}
	rem := 0
	switch {
	case v != V5:
	case pl > 0:
		rem = 1 + ps
	case code != Success:
		rem = 1
	}
	b, err := startPacket(dst, first, rem)
	if err != nil {
		return dst, err
	}
	if rem > 0 {
		b = append(b, byte(code))
	}
	if rem > 1 {
		b = appendProps(b, p, pl)
	}
	return b, nil
}
