// Package wire is the deliberately small MQTT 3.1.1 codec of the load
// generator: only the packets a benchmark client sends or receives (CONNECT,
// CONNACK, SUBSCRIBE, SUBACK, PUBLISH, PUBACK, PINGREQ, PINGRESP and
// DISCONNECT).
//
// It is independent of the broker's own codec on purpose: a measuring client
// must cost little CPU and must not share bugs with the thing it measures.
// Encoders append to a caller's slice (typically a bufio.Writer's
// AvailableBuffer) and the Reader hands out packet bodies that alias its
// buffer, so the hot path neither allocates nor copies.
package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Control packet types (MQTT 3.1.1 §2.2.1).
const (
	TypeConnect    byte = 1
	TypeConnack    byte = 2
	TypePublish    byte = 3
	TypePuback     byte = 4
	TypeSubscribe  byte = 8
	TypeSuback     byte = 9
	TypePingreq    byte = 12
	TypePingresp   byte = 13
	TypeDisconnect byte = 14
)

// MaxRemaining is the largest remaining length four length bytes can carry
// (MQTT 3.1.1 §2.2.3).
const MaxRemaining = 268435455

// SubackFailure is the SUBACK return code that refuses a subscription
// (MQTT 3.1.1 §3.9.3).
const SubackFailure = 0x80

var (
	// ErrMalformed reports bytes that are not a well-formed packet.
	ErrMalformed = errors.New("wire: malformed packet")
	// ErrTooLarge reports a packet longer than the reader accepts.
	ErrTooLarge = errors.New("wire: packet too large")
)

// appendLength appends the remaining length n in the variable byte encoding:
// seven bits per byte, least significant group first, high bit set on every
// byte but the last [MQTT-2.2.3].
func appendLength(dst []byte, n int) []byte {
	for {
		b := byte(n & 0x7f)
		n >>= 7
		if n == 0 {
			return append(dst, b)
		}
		dst = append(dst, b|0x80)
	}
}

func appendString(dst []byte, s string) []byte {
	dst = append(dst, byte(len(s)>>8), byte(len(s)))
	return append(dst, s...)
}

// AppendConnect appends a 3.1.1 CONNECT without will, username or password.
func AppendConnect(dst []byte, clientID string, keepAlive uint16, cleanSession bool) []byte {
	var flags byte
	if cleanSession {
		flags |= 0x02
	}
	// Variable header: protocol name "MQTT" (6), level (1), flags (1), keep alive (2).
	rem := 10 + 2 + len(clientID)
	dst = append(dst, TypeConnect<<4)
	dst = appendLength(dst, rem)
	dst = appendString(dst, "MQTT")
	dst = append(dst, 4, flags, byte(keepAlive>>8), byte(keepAlive)) // level 4 is 3.1.1 [MQTT-3.1.2-2]
	return appendString(dst, clientID)
}

// AppendSubscribe appends a SUBSCRIBE for one topic filter.
func AppendSubscribe(dst []byte, id uint16, filter string, qos byte) []byte {
	// The SUBSCRIBE fixed header flags are reserved and must be 0010 [MQTT-3.8.1-1].
	dst = append(dst, TypeSubscribe<<4|0x02)
	dst = appendLength(dst, 2+2+len(filter)+1)
	dst = append(dst, byte(id>>8), byte(id))
	dst = appendString(dst, filter)
	return append(dst, qos)
}

// AppendPublish appends a PUBLISH. The packet identifier is written only for
// QoS 1 and 2 [MQTT-2.3.1-5].
func AppendPublish(dst []byte, topic string, qos byte, id uint16, payload []byte) []byte {
	rem := 2 + len(topic) + len(payload)
	if qos > 0 {
		rem += 2
	}
	dst = append(dst, TypePublish<<4|qos<<1)
	dst = appendLength(dst, rem)
	dst = appendString(dst, topic)
	if qos > 0 {
		dst = append(dst, byte(id>>8), byte(id))
	}
	return append(dst, payload...)
}

// PublishLen is the encoded size of the PUBLISH that AppendPublish writes.
func PublishLen(topicLen int, qos byte, payloadLen int) int {
	rem := 2 + topicLen + payloadLen
	if qos > 0 {
		rem += 2
	}
	n := 2
	for r := rem >> 7; r > 0; r >>= 7 {
		n++
	}
	return n + rem
}

// AppendPuback appends the PUBACK that acknowledges packet id.
func AppendPuback(dst []byte, id uint16) []byte {
	return append(dst, TypePuback<<4, 2, byte(id>>8), byte(id))
}

// AppendPingreq appends a PINGREQ.
func AppendPingreq(dst []byte) []byte { return append(dst, TypePingreq<<4, 0) }

// AppendDisconnect appends a DISCONNECT.
func AppendDisconnect(dst []byte) []byte { return append(dst, TypeDisconnect<<4, 0) }

// Packet is one received packet. Body aliases the Reader's buffer and is valid
// only until the next call to Next.
type Packet struct {
	Type  byte
	Flags byte // low nibble of the first byte
	Body  []byte
}

// Reader decodes packets from a byte stream through one buffer.
type Reader struct {
	br      *bufio.Reader
	scratch []byte
	max     int
}

// NewReader returns a Reader that buffers size bytes and accepts packets of up
// to max bytes of remaining length.
func NewReader(r io.Reader, size, max int) *Reader {
	if max <= 0 || max > MaxRemaining {
		max = MaxRemaining
	}
	return &Reader{br: bufio.NewReaderSize(r, size), max: max}
}

// Buffered reports how many received bytes are waiting to be decoded. A reader
// loop that sees zero is about to block and should publish its counters and
// flush its replies first.
func (rd *Reader) Buffered() int { return rd.br.Buffered() }

// Next reads one packet. Bodies that fit the buffer are not copied.
func (rd *Reader) Next() (Packet, error) {
	first, err := rd.br.ReadByte()
	if err != nil {
		return Packet{}, err
	}
	n, err := rd.readLength()
	if err != nil {
		return Packet{}, err
	}
	if n > rd.max {
		return Packet{}, fmt.Errorf("remaining length %d: %w", n, ErrTooLarge)
	}
	p := Packet{Type: first >> 4, Flags: first & 0x0f}
	if n == 0 {
		return p, nil
	}
	if n <= rd.br.Size() {
		body, err := rd.br.Peek(n)
		if err != nil {
			return Packet{}, unexpected(err)
		}
		// Discard only moves the read index: body stays valid until the
		// next read refills the buffer.
		if _, err := rd.br.Discard(n); err != nil {
			return Packet{}, unexpected(err)
		}
		p.Body = body
		return p, nil
	}
	if cap(rd.scratch) < n {
		rd.scratch = make([]byte, n)
	}
	p.Body = rd.scratch[:n]
	if _, err := io.ReadFull(rd.br, p.Body); err != nil {
		return Packet{}, unexpected(err)
	}
	return p, nil
}

// readLength decodes the remaining length; more than four bytes is malformed
// [MQTT-2.2.3].
func (rd *Reader) readLength() (int, error) {
	n, shift := 0, 0
	for i := 0; i < 4; i++ {
		b, err := rd.br.ReadByte()
		if err != nil {
			return 0, unexpected(err)
		}
		n |= int(b&0x7f) << shift
		if b&0x80 == 0 {
			return n, nil
		}
		shift += 7
	}
	return 0, fmt.Errorf("remaining length longer than four bytes: %w", ErrMalformed)
}

// unexpected turns an end of stream inside a packet into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Connack is a decoded CONNACK.
type Connack struct {
	SessionPresent bool
	Code           byte // 0 accepts the connection
}

// ParseConnack decodes a CONNACK body, which is exactly two bytes
// [MQTT-3.2.2].
func ParseConnack(body []byte) (Connack, error) {
	if len(body) != 2 || body[0]&0xfe != 0 {
		return Connack{}, fmt.Errorf("connack: %w", ErrMalformed)
	}
	return Connack{SessionPresent: body[0]&1 == 1, Code: body[1]}, nil
}

// ParseSuback decodes a SUBACK body: the packet identifier and one return code
// per filter of the SUBSCRIBE, in order [MQTT-3.9.3-1]. Codes alias body.
func ParseSuback(body []byte) (id uint16, codes []byte, err error) {
	if len(body) < 3 {
		return 0, nil, fmt.Errorf("suback: %w", ErrMalformed)
	}
	for _, c := range body[2:] {
		if c > 2 && c != SubackFailure {
			return 0, nil, fmt.Errorf("suback return code %#x: %w", c, ErrMalformed)
		}
	}
	return uint16(body[0])<<8 | uint16(body[1]), body[2:], nil
}

// ParseID decodes the body of a PUBACK (or any packet that is only a packet
// identifier).
func ParseID(body []byte) (uint16, error) {
	if len(body) != 2 {
		return 0, fmt.Errorf("packet identifier: %w", ErrMalformed)
	}
	return uint16(body[0])<<8 | uint16(body[1]), nil
}

// Publish is a decoded PUBLISH. Topic and Payload alias the packet body.
type Publish struct {
	QoS     byte
	Dup     bool
	Retain  bool
	ID      uint16
	Topic   []byte
	Payload []byte
}

// ParsePublish decodes a PUBLISH from its fixed header flags and body.
func ParsePublish(flags byte, body []byte) (Publish, error) {
	p := Publish{QoS: flags >> 1 & 3, Dup: flags&8 != 0, Retain: flags&1 != 0}
	if p.QoS == 3 {
		// A PUBLISH must not have both QoS bits set [MQTT-3.3.1-4].
		return Publish{}, fmt.Errorf("publish qos 3: %w", ErrMalformed)
	}
	if len(body) < 2 {
		return Publish{}, fmt.Errorf("publish: %w", ErrMalformed)
	}
	tl := int(body[0])<<8 | int(body[1])
	rest := body[2:]
	if len(rest) < tl {
		return Publish{}, fmt.Errorf("publish topic: %w", ErrMalformed)
	}
	p.Topic, rest = rest[:tl], rest[tl:]
	if p.QoS > 0 {
		if len(rest) < 2 {
			return Publish{}, fmt.Errorf("publish packet identifier: %w", ErrMalformed)
		}
		p.ID = uint16(rest[0])<<8 | uint16(rest[1])
		if p.ID == 0 {
			// QoS 1 and 2 packets carry a non-zero identifier [MQTT-2.3.1-1].
			return Publish{}, fmt.Errorf("publish packet identifier 0: %w", ErrMalformed)
		}
		rest = rest[2:]
	}
	p.Payload = rest
	return p, nil
}
