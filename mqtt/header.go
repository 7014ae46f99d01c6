package mqtt

// ParseFixedHeader parses the fixed header at the start of b and returns it
// with the number of bytes it took. The body (h.Remaining bytes) follows.
//
// It returns ErrIncomplete when b is too short to hold the whole header, and a
// *Error with Code MalformedPacket when the packet type is 0, when the flags
// are wrong for the type [MQTT-2.1.3-1], or when the remaining length is
// longer than four bytes or not minimally encoded [MQTT-1.5.5-1]. The first
// byte is checked as soon as it is present, so garbage is rejected before the
// rest of the header arrives. AUTH (a v5 packet) is accepted here; Decode
// rejects it on a 3.x connection.
func ParseFixedHeader(b []byte) (h FixedHeader, n int, err error) {
	if len(b) == 0 {
		return h, 0, ErrIncomplete
	}
	t, flags := Type(b[0]>>4), b[0]&0x0F
	if err := checkFlags(t, flags); err != nil {
		return h, 0, err
	}
	rem, m, err := parseVarint(b[1:])
	if err != nil {
		return h, 0, err
	}
	return FixedHeader{Type: t, Flags: flags, Remaining: rem}, 1 + m, nil
}

// checkFlags validates the packet type and the flag nibble of the first byte
// (MQTT 5.0 §2.1.3 table 2-2).
func checkFlags(t Type, flags byte) error {
	switch t {
	case 0:
		return malformed("MQTT-2.1.3-1", "packet type 0 is reserved")
	case PUBLISH:
		// [MQTT-3.3.1-4] A PUBLISH packet must not have both QoS bits set.
		if flags&0x06 == 0x06 {
			return malformed("MQTT-3.3.1-4", "PUBLISH with QoS 3")
		}
	case PUBREL:
		// [MQTT-3.6.1-1] PUBREL flags are 0b0010.
		if flags != 0x02 {
			return malformed("MQTT-3.6.1-1", "PUBREL flags 0x%X, want 0x2", flags)
		}
	case SUBSCRIBE:
		// [MQTT-3.8.1-1] SUBSCRIBE flags are 0b0010.
		if flags != 0x02 {
			return malformed("MQTT-3.8.1-1", "SUBSCRIBE flags 0x%X, want 0x2", flags)
		}
	case UNSUBSCRIBE:
		// [MQTT-3.10.1-1] UNSUBSCRIBE flags are 0b0010.
		if flags != 0x02 {
			return malformed("MQTT-3.10.1-1", "UNSUBSCRIBE flags 0x%X, want 0x2", flags)
		}
	default:
		// [MQTT-2.1.3-1] Reserved flag bits must hold the listed value,
		// 0 for every other type (3.1.1 numbers this rule
		// [MQTT-2.2.2-1]).
		if flags != 0 {
			return malformed("MQTT-2.1.3-1", "%s flags 0x%X, want 0", t, flags)
		}
	}
	return nil
}

// appendHeader appends a fixed header. rem must not exceed
// MaxRemainingLength.
func appendHeader(b []byte, first byte, rem int) []byte {
	return appendVarint(append(b, first), rem)
}

// String names the packet type as the specification does ("PUBLISH").
func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return "RESERVED"
}

var typeNames = [...]string{
	CONNECT: "CONNECT", CONNACK: "CONNACK", PUBLISH: "PUBLISH", PUBACK: "PUBACK",
	PUBREC: "PUBREC", PUBREL: "PUBREL", PUBCOMP: "PUBCOMP", SUBSCRIBE: "SUBSCRIBE",
	SUBACK: "SUBACK", UNSUBSCRIBE: "UNSUBSCRIBE", UNSUBACK: "UNSUBACK", PINGREQ: "PINGREQ",
	PINGRESP: "PINGRESP", DISCONNECT: "DISCONNECT", AUTH: "AUTH",
}
