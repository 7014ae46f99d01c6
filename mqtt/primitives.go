package mqtt

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrIncomplete reports that b does not yet hold a whole fixed header; read
// more bytes and try again.
var ErrIncomplete = errors.New("mqtt: incomplete packet")

// ErrInvalidPacket is wrapped by every Encode error: the packet holds a value
// that cannot be written for the requested protocol version (a string longer
// than 65,535 bytes, a QoS above 2, a property the packet type does not
// carry, ...).
var ErrInvalidPacket = errors.New("mqtt: packet cannot be encoded")

// MaxRemainingLength is the largest remaining length a fixed header can carry:
// a variable byte integer is at most four bytes long (MQTT 5.0 §1.5.5).
const MaxRemainingLength = 268_435_455

// maxStringLen is the longest UTF-8 string or binary data field: its length
// prefix is a two byte integer (MQTT 5.0 §1.5.4, §1.5.6).
const maxStringLen = 65_535

func malformed(rule, format string, args ...any) error {
	return &Error{Code: MalformedPacket, Rule: rule, Msg: fmt.Sprintf(format, args...)}
}

func protocolError(rule, format string, args ...any) error {
	return &Error{Code: ProtocolError, Rule: rule, Msg: fmt.Sprintf(format, args...)}
}

func encodeError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidPacket}, args...)...)
}

// ruleFor picks the rule id of the specification version v speaks: some rules
// are numbered differently in 3.1.1 and 5.0.
func ruleFor(v Version, v5, v311 string) string {
	if v == V5 {
		return v5
	}
	return v311
}

func validVersion(v Version) bool { return v == V31 || v == V311 || v == V5 }

// parseVarint decodes a variable byte integer at the start of b and returns
// its value and length. It returns ErrIncomplete when b ends before the last
// byte of the integer.
func parseVarint(b []byte) (v, n int, err error) {
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, ErrIncomplete
		}
		c := b[i]
		v |= int(c&0x7F) << (7 * i)
		if c&0x80 == 0 {
			// [MQTT-1.5.5-1] The encoded value must use the minimum
			// number of bytes: a trailing zero byte only pads.
			if i > 0 && c == 0 {
				return 0, 0, malformed("MQTT-1.5.5-1", "variable byte integer is not minimally encoded")
			}
			return v, i + 1, nil
		}
	}
	return 0, 0, malformed("MQTT-1.5.5-1", "variable byte integer is longer than 4 bytes")
}

// varintLen is the number of bytes appendVarint writes for v.
func varintLen(v int) int {
	switch {
	case v < 1<<7:
		return 1
	case v < 1<<14:
		return 2
	case v < 1<<21:
		return 3
	default:
		return 4
	}
}

// appendVarint appends v, which must be in [0, MaxRemainingLength], as a
// variable byte integer.
func appendVarint(b []byte, v int) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendUint16(b []byte, v uint16) []byte { return append(b, byte(v>>8), byte(v)) }

func appendUint32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// appendString appends s with its two byte length prefix; the caller has
// checked that len(s) <= maxStringLen.
func appendString(b []byte, s string) []byte {
	b = appendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// appendBinary appends p with its two byte length prefix; the caller has
// checked that len(p) <= maxStringLen.
func appendBinary(b, p []byte) []byte {
	b = appendUint16(b, uint16(len(p)))
	return append(b, p...)
}

// checkLen reports an encode error when a string or binary field of n bytes
// does not fit its two byte length prefix.
func checkLen(field string, n int) error {
	if n > maxStringLen {
		return encodeError("%s is %d bytes, longer than %d", field, n, maxStringLen)
	}
	return nil
}

// ValidUTF8 reports whether s is a well-formed UTF-8 string as MQTT requires:
// valid UTF-8 without surrogate code points [MQTT-1.5.4-1] and without U+0000
// [MQTT-1.5.4-2]. Control characters U+0001..U+001F and U+007F..U+009F and
// non-characters are allowed: the specification only says a receiver MAY
// reject them.
func ValidUTF8(s string) bool {
	// utf8.ValidString rejects ill-formed sequences, overlong forms,
	// surrogates (U+D800..U+DFFF) and code points above U+10FFFF.
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

func validUTF8Bytes(b []byte) bool {
	return utf8.Valid(b) && bytes.IndexByte(b, 0) < 0
}

// decoder reads MQTT data types from the front of a packet body. Every read
// that runs past the end of the body is a malformed packet.
type decoder struct {
	b []byte
}

func short(field string) error {
	return malformed("", "%s: packet too short", field)
}

func (d *decoder) readByte(field string) (byte, error) {
	if len(d.b) < 1 {
		return 0, short(field)
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c, nil
}

func (d *decoder) readUint16(field string) (uint16, error) {
	if len(d.b) < 2 {
		return 0, short(field)
	}
	v := uint16(d.b[0])<<8 | uint16(d.b[1])
	d.b = d.b[2:]
	return v, nil
}

func (d *decoder) readUint32(field string) (uint32, error) {
	if len(d.b) < 4 {
		return 0, short(field)
	}
	v := uint32(d.b[0])<<24 | uint32(d.b[1])<<16 | uint32(d.b[2])<<8 | uint32(d.b[3])
	d.b = d.b[4:]
	return v, nil
}

func (d *decoder) readVarint(field string) (int, error) {
	v, n, err := parseVarint(d.b)
	if errors.Is(err, ErrIncomplete) {
		return 0, short(field)
	}
	if err != nil {
		return 0, err
	}
	d.b = d.b[n:]
	return v, nil
}

// readBinaryView reads two byte length prefixed data (MQTT 5.0 §1.5.6) and
// returns a slice of the body: copy it before keeping it.
func (d *decoder) readBinaryView(field string) ([]byte, error) {
	n, err := d.readUint16(field)
	if err != nil {
		return nil, err
	}
	if int(n) > len(d.b) {
		return nil, malformed("", "%s: length %d exceeds the packet", field, n)
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p, nil
}

// readStringView reads a UTF-8 encoded string (MQTT 5.0 §1.5.4) and returns a
// slice of the body: copy it before keeping it.
func (d *decoder) readStringView(field string) ([]byte, error) {
	p, err := d.readBinaryView(field)
	if err != nil {
		return nil, err
	}
	// [MQTT-1.5.4-1] [MQTT-1.5.4-2] Ill-formed UTF-8 or U+0000 in a
	// string makes the packet malformed.
	if !validUTF8Bytes(p) {
		if bytes.IndexByte(p, 0) >= 0 {
			return nil, malformed("MQTT-1.5.4-2", "%s contains U+0000", field)
		}
		return nil, malformed("MQTT-1.5.4-1", "%s is not well-formed UTF-8", field)
	}
	return p, nil
}

// readString reads a UTF-8 encoded string into a new string.
func (d *decoder) readString(field string) (string, error) {
	p, err := d.readStringView(field)
	if err != nil {
		return "", err
	}
	return string(p), nil
}

// readBinary reads binary data into a new slice; empty data reads as nil.
func (d *decoder) readBinary(field string) ([]byte, error) {
	p, err := d.readBinaryView(field)
	if err != nil || len(p) == 0 {
		return nil, err
	}
	return bytes.Clone(p), nil
}

// done reports leftover bytes after the last field of a packet as a
// malformed packet.
func (d *decoder) done(packet string) error {
	if len(d.b) != 0 {
		return malformed("", "%s: %d unexpected bytes after the last field", packet, len(d.b))
	}
	return nil
}
