package mqtt

import "math/bits"

// propSpec says which properties one packet type (or the will) may carry,
// MQTT 5.0 §2.2.2.2 table 2-4.
type propSpec struct {
	name    string
	allowed uint64 // bit n set = property n allowed
	// multiSubID allows several Subscription Identifiers (PUBLISH from the
	// server); everywhere else at most one is allowed.
	multiSubID bool
}

func bit(id PropID) uint64 { return 1 << uint(id) }

// sliceProps are held in slices rather than flagged in Properties.Present.
var sliceProps = bit(PropSubscriptionID) | bit(PropUserProperty)

var (
	connectProps = propSpec{name: "CONNECT", allowed: bit(PropSessionExpiry) | bit(PropReceiveMaximum) |
		bit(PropMaximumPacketSize) | bit(PropTopicAliasMaximum) | bit(PropRequestResponseInfo) |
		bit(PropRequestProblemInfo) | bit(PropUserProperty) | bit(PropAuthMethod) | bit(PropAuthData)}
	willProps = propSpec{name: "will", allowed: bit(PropWillDelay) | bit(PropPayloadFormat) |
		bit(PropMessageExpiry) | bit(PropContentType) | bit(PropResponseTopic) |
		bit(PropCorrelationData) | bit(PropUserProperty)}
	connackProps = propSpec{name: "CONNACK", allowed: bit(PropSessionExpiry) | bit(PropReceiveMaximum) |
		bit(PropMaximumQoS) | bit(PropRetainAvailable) | bit(PropMaximumPacketSize) |
		bit(PropAssignedClientID) | bit(PropTopicAliasMaximum) | bit(PropReasonString) |
		bit(PropUserProperty) | bit(PropWildcardSubAvailable) | bit(PropSubIDAvailable) |
		bit(PropSharedSubAvailable) | bit(PropServerKeepAlive) | bit(PropResponseInfo) |
		bit(PropServerReference) | bit(PropAuthMethod) | bit(PropAuthData)}
	publishProps = propSpec{name: "PUBLISH", multiSubID: true, allowed: bit(PropPayloadFormat) |
		bit(PropMessageExpiry) | bit(PropTopicAlias) | bit(PropResponseTopic) |
		bit(PropCorrelationData) | bit(PropUserProperty) | bit(PropSubscriptionID) | bit(PropContentType)}
	ackProps = [...]propSpec{
		PUBACK:  {name: "PUBACK", allowed: bit(PropReasonString) | bit(PropUserProperty)},
		PUBREC:  {name: "PUBREC", allowed: bit(PropReasonString) | bit(PropUserProperty)},
		PUBREL:  {name: "PUBREL", allowed: bit(PropReasonString) | bit(PropUserProperty)},
		PUBCOMP: {name: "PUBCOMP", allowed: bit(PropReasonString) | bit(PropUserProperty)},
	}
	subscribeProps   = propSpec{name: "SUBSCRIBE", allowed: bit(PropSubscriptionID) | bit(PropUserProperty)}
	subackProps      = propSpec{name: "SUBACK", allowed: bit(PropReasonString) | bit(PropUserProperty)}
	unsubscribeProps = propSpec{name: "UNSUBSCRIBE", allowed: bit(PropUserProperty)}
	unsubackProps    = propSpec{name: "UNSUBACK", allowed: bit(PropReasonString) | bit(PropUserProperty)}
	disconnectProps  = propSpec{name: "DISCONNECT", allowed: bit(PropSessionExpiry) | bit(PropReasonString) |
		bit(PropUserProperty) | bit(PropServerReference)}
	authProps = propSpec{name: "AUTH", allowed: bit(PropAuthMethod) | bit(PropAuthData) |
		bit(PropReasonString) | bit(PropUserProperty)}
)

// maxVarint is the largest value a variable byte integer holds.
const maxVarint = MaxRemainingLength

// decodeProps reads a property length and the properties that follow into p,
// which must be empty.
func decodeProps(d *decoder, s *propSpec, p *Properties) error {
	n, err := d.readVarint("property length")
	if err != nil {
		return err
	}
	if n > len(d.b) {
		return malformed("", "%s property length %d exceeds the packet", s.name, n)
	}
	pd := decoder{b: d.b[:n:n]}
	d.b = d.b[n:]
	for len(pd.b) > 0 {
		c, _ := pd.readByte("property identifier")
		id := PropID(c)
		// MQTT 5.0 §2.2.2.2: an identifier that is unknown or not valid
		// for the packet type makes the packet malformed.
		if id >= 64 || s.allowed&bit(id) == 0 {
			return malformed("", "property 0x%02X is not allowed in %s", c, s.name)
		}
		if err := decodeProp(&pd, s, id, p); err != nil {
			return err
		}
	}
	return nil
}

func decodeProp(d *decoder, s *propSpec, id PropID, p *Properties) error {
	switch id {
	case PropUserProperty:
		// [MQTT-1.5.7-1] Both strings of the pair are UTF-8 strings.
		k, err := d.readString("user property name")
		if err != nil {
			return err
		}
		v, err := d.readString("user property value")
		if err != nil {
			return err
		}
		p.User = append(p.User, UserProperty{Key: k, Value: v})
		return nil
	case PropSubscriptionID:
		v, err := d.readVarint("subscription identifier")
		if err != nil {
			return err
		}
		// MQTT 5.0 §3.3.2.3.8, §3.8.2.1.2: a Subscription Identifier of
		// 0 is a protocol error; SUBSCRIBE carries at most one.
		if v == 0 {
			return protocolError("", "subscription identifier 0 in %s", s.name)
		}
		if !s.multiSubID && len(p.SubscriptionIDs) > 0 {
			return protocolError("", "more than one subscription identifier in %s", s.name)
		}
		p.SubscriptionIDs = append(p.SubscriptionIDs, uint32(v))
		return nil
	}
	// Every other property may appear at most once (MQTT 5.0 §3.x: "It is
	// a Protocol Error to include ... more than once").
	if p.Present&bit(id) != 0 {
		return protocolError("", "property 0x%02X appears more than once in %s", byte(id), s.name)
	}
	p.Present |= bit(id)
	var err error
	switch id {
	case PropPayloadFormat:
		p.PayloadFormat, err = readFlagProp(d, "payload format indicator")
	case PropMessageExpiry:
		p.MessageExpiry, err = d.readUint32("message expiry interval")
	case PropContentType:
		// [MQTT-3.3.2-19] The Content Type is a UTF-8 string.
		p.ContentType, err = d.readString("content type")
	case PropResponseTopic:
		// [MQTT-3.3.2-13] The Response Topic is a UTF-8 string;
		// [MQTT-3.3.2-14] it is a topic name, without wildcards.
		if p.ResponseTopic, err = d.readString("response topic"); err == nil {
			if ValidTopicName(p.ResponseTopic) != nil {
				err = protocolError("MQTT-3.3.2-14", "response topic %q is not a valid topic name", p.ResponseTopic)
			}
		}
	case PropCorrelationData:
		p.CorrelationData, err = d.readBinary("correlation data")
	case PropSessionExpiry:
		p.SessionExpiry, err = d.readUint32("session expiry interval")
	case PropAssignedClientID:
		p.AssignedClientID, err = d.readString("assigned client identifier")
	case PropServerKeepAlive:
		p.ServerKeepAlive, err = d.readUint16("server keep alive")
	case PropAuthMethod:
		p.AuthMethod, err = d.readString("authentication method")
	case PropAuthData:
		p.AuthData, err = d.readBinary("authentication data")
	case PropRequestProblemInfo:
		p.RequestProblemInfo, err = readFlagProp(d, "request problem information")
	case PropWillDelay:
		p.WillDelay, err = d.readUint32("will delay interval")
	case PropRequestResponseInfo:
		p.RequestResponseInfo, err = readFlagProp(d, "request response information")
	case PropResponseInfo:
		p.ResponseInfo, err = d.readString("response information")
	case PropServerReference:
		p.ServerReference, err = d.readString("server reference")
	case PropReasonString:
		p.ReasonString, err = d.readString("reason string")
	case PropReceiveMaximum:
		// MQTT 5.0 §3.1.2.11.3, §3.2.2.3.3: Receive Maximum 0 is a
		// protocol error.
		if p.ReceiveMaximum, err = d.readUint16("receive maximum"); err == nil && p.ReceiveMaximum == 0 {
			err = protocolError("", "receive maximum 0")
		}
	case PropTopicAliasMaximum:
		p.TopicAliasMaximum, err = d.readUint16("topic alias maximum")
	case PropTopicAlias:
		// [MQTT-3.3.2-8] A Topic Alias of 0 is not permitted; the
		// receiver answers with DISCONNECT 0x94 (MQTT 5.0 §3.3.4).
		if p.TopicAlias, err = d.readUint16("topic alias"); err == nil && p.TopicAlias == 0 {
			err = &Error{Code: TopicAliasInvalid, Rule: "MQTT-3.3.2-8", Msg: "topic alias 0"}
		}
	case PropMaximumQoS:
		p.MaximumQoS, err = readFlagProp(d, "maximum qos")
	case PropRetainAvailable:
		p.RetainAvailable, err = readFlagProp(d, "retain available")
	case PropMaximumPacketSize:
		// MQTT 5.0 §3.1.2.11.4, §3.2.2.3.6: Maximum Packet Size 0 is a
		// protocol error.
		if p.MaximumPacketSize, err = d.readUint32("maximum packet size"); err == nil && p.MaximumPacketSize == 0 {
			err = protocolError("", "maximum packet size 0")
		}
	case PropWildcardSubAvailable:
		p.WildcardSubAvailable, err = readFlagProp(d, "wildcard subscription available")
	case PropSubIDAvailable:
		p.SubIDAvailable, err = readFlagProp(d, "subscription identifiers available")
	case PropSharedSubAvailable:
		p.SharedSubAvailable, err = readFlagProp(d, "shared subscription available")
	}
	return err
}

// readFlagProp reads a byte property whose only values are 0 and 1; any other
// value is a protocol error (MQTT 5.0 §3.1.2.11.6-7, §3.2.2.3.4-5,
// §3.2.2.3.11-13, §3.3.2.3.2).
func readFlagProp(d *decoder, field string) (byte, error) {
	c, err := d.readByte(field)
	if err == nil && c > 1 {
		err = protocolError("", "%s is %d, want 0 or 1", field, c)
	}
	return c, err
}

// propsLen checks that p can be encoded for the packet described by s and
// returns the length of its encoding, property length prefix excluded.
func propsLen(p *Properties, s *propSpec) (int, error) {
	if p.Present == 0 && len(p.SubscriptionIDs) == 0 && len(p.User) == 0 {
		return 0, nil
	}
	if extra := p.Present &^ s.allowed &^ sliceProps; extra != 0 {
		return 0, encodeError("property 0x%02X is not allowed in %s", bits.TrailingZeros64(extra), s.name)
	}
	if len(p.SubscriptionIDs) > 0 {
		if s.allowed&bit(PropSubscriptionID) == 0 {
			return 0, encodeError("subscription identifier is not allowed in %s", s.name)
		}
		if !s.multiSubID && len(p.SubscriptionIDs) > 1 {
			return 0, encodeError("%s carries at most one subscription identifier", s.name)
		}
	}
	n := 0
	for m := p.Present &^ sliceProps; m != 0; m &= m - 1 {
		id := PropID(bits.TrailingZeros64(m))
		switch id {
		case PropPayloadFormat, PropRequestProblemInfo, PropRequestResponseInfo, PropMaximumQoS,
			PropRetainAvailable, PropWildcardSubAvailable, PropSubIDAvailable, PropSharedSubAvailable:
			n += 2
		case PropServerKeepAlive, PropReceiveMaximum, PropTopicAliasMaximum, PropTopicAlias:
			n += 3
		case PropMessageExpiry, PropSessionExpiry, PropWillDelay, PropMaximumPacketSize:
			n += 5
		case PropCorrelationData, PropAuthData:
			l := len(p.binaryProp(id))
			if err := checkLen("property", l); err != nil {
				return 0, err
			}
			n += 3 + l
		default:
			l := len(p.stringProp(id))
			if err := checkLen("property", l); err != nil {
				return 0, err
			}
			n += 3 + l
		}
	}
	for _, v := range p.SubscriptionIDs {
		if v > maxVarint {
			return 0, encodeError("subscription identifier %d is too large", v)
		}
		n += 1 + varintLen(int(v))
	}
	for _, u := range p.User {
		if err := checkLen("user property", max(len(u.Key), len(u.Value))); err != nil {
			return 0, err
		}
		n += 5 + len(u.Key) + len(u.Value)
	}
	if n > maxVarint {
		return 0, encodeError("properties are %d bytes, more than %d", n, maxVarint)
	}
	return n, nil
}

// binaryProp returns the binary data property id.
func (p *Properties) binaryProp(id PropID) []byte {
	if id == PropAuthData {
		return p.AuthData
	}
	return p.CorrelationData
}

// stringProp returns the UTF-8 string property id.
func (p *Properties) stringProp(id PropID) string {
	switch id {
	case PropContentType:
		return p.ContentType
	case PropResponseTopic:
		return p.ResponseTopic
	case PropAssignedClientID:
		return p.AssignedClientID
	case PropAuthMethod:
		return p.AuthMethod
	case PropResponseInfo:
		return p.ResponseInfo
	case PropServerReference:
		return p.ServerReference
	case PropReasonString:
		return p.ReasonString
	}
	return ""
}

// appendProps appends the property length n (from propsLen) and the
// properties of p, in identifier order with user properties last, in their
// original order [MQTT-3.3.2-18].
func appendProps(b []byte, p *Properties, n int) []byte {
	b = appendVarint(b, n)
	if n == 0 {
		return b
	}
	for m := p.Present &^ sliceProps; m != 0; m &= m - 1 {
		id := PropID(bits.TrailingZeros64(m))
		b = append(b, byte(id))
		switch id {
		case PropPayloadFormat:
			b = append(b, p.PayloadFormat)
		case PropRequestProblemInfo:
			b = append(b, p.RequestProblemInfo)
		case PropRequestResponseInfo:
			b = append(b, p.RequestResponseInfo)
		case PropMaximumQoS:
			b = append(b, p.MaximumQoS)
		case PropRetainAvailable:
			b = append(b, p.RetainAvailable)
		case PropWildcardSubAvailable:
			b = append(b, p.WildcardSubAvailable)
		case PropSubIDAvailable:
			b = append(b, p.SubIDAvailable)
		case PropSharedSubAvailable:
			b = append(b, p.SharedSubAvailable)
		case PropServerKeepAlive:
			b = appendUint16(b, p.ServerKeepAlive)
		case PropReceiveMaximum:
			b = appendUint16(b, p.ReceiveMaximum)
		case PropTopicAliasMaximum:
			b = appendUint16(b, p.TopicAliasMaximum)
		case PropTopicAlias:
			b = appendUint16(b, p.TopicAlias)
		case PropMessageExpiry:
			b = appendUint32(b, p.MessageExpiry)
		case PropSessionExpiry:
			b = appendUint32(b, p.SessionExpiry)
		case PropWillDelay:
			b = appendUint32(b, p.WillDelay)
		case PropMaximumPacketSize:
			b = appendUint32(b, p.MaximumPacketSize)
		case PropCorrelationData, PropAuthData:
			b = appendBinary(b, p.binaryProp(id))
		default:
			b = appendString(b, p.stringProp(id))
		}
	}
	for _, v := range p.SubscriptionIDs {
		b = appendVarint(append(b, byte(PropSubscriptionID)), int(v))
	}
	for _, u := range p.User {
		b = append(b, byte(PropUserProperty))
		b = appendString(b, u.Key)
		b = appendString(b, u.Value)
	}
	return b
}
