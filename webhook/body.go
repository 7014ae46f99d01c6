package webhook

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/mqgate/mqgate/events"
)

// Encoding is how the payload field of message bodies is written
// (web.hook.body.encoding_of_payload_field).
type Encoding uint8

// Payload encodings.
const (
	Plain  Encoding = iota // the payload bytes as a JSON string
	Base64                 // standard base64 with padding
	Base62                 // EMQX's base62: base64's 6-bit groups in a 62-letter alphabet
)

// ParseEncoding reads plain, base64 or base62.
func ParseEncoding(s string) (Encoding, error) {
	switch s {
	case "plain", "":
		return Plain, nil
	case "base64":
		return Base64, nil
	case "base62":
		return Base62, nil
	}
	return 0, fmt.Errorf("webhook: unknown payload encoding %q (want plain, base64 or base62)", s)
}

func (enc Encoding) encode(p []byte) string {
	switch enc {
	case Base64:
		return base64.StdEncoding.EncodeToString(p)
	case Base62:
		return base62(p)
	}
	return string(p)
}

// base62 encodes p as EMQX 4's emqx_base62 does: the bits are cut into 6-bit
// groups as in base64 (a last partial group keeps its value unshifted); the
// values 0-60 are A-Z, a-z, 0-8, and 61-63 are written 9A, 9B, 9C. There is
// no padding.
func base62(p []byte) string {
	var sb strings.Builder
	sb.Grow(len(p)*4/3 + 4)
	put := func(v byte) {
		switch {
		case v < 26:
			sb.WriteByte('A' + v)
		case v < 52:
			sb.WriteByte('a' + v - 26)
		case v < 61:
			sb.WriteByte('0' + v - 52)
		default:
			sb.WriteByte('9')
			sb.WriteByte('A' + v - 61)
		}
	}
	for len(p) >= 3 {
		put(p[0] >> 2)
		put((p[0]&0x03)<<4 | p[1]>>4)
		put((p[1]&0x0f)<<2 | p[2]>>6)
		put(p[2] & 0x3f)
		p = p[3:]
	}
	switch len(p) {
	case 2:
		put(p[0] >> 2)
		put((p[0]&0x03)<<4 | p[1]>>4)
		put(p[1] & 0x0f)
	case 1:
		put(p[0] >> 2)
		put(p[0] & 0x03)
	}
	return sb.String()
}

// connAckNames are EMQX's names of the CONNACK codes (emqx_reason_codes),
// keyed by MQTT 5 reason code.
var connAckNames = map[byte]string{
	0x00: "success",
	0x80: "unspecified_error",
	0x81: "malformed_packet",
	0x82: "protocol_error",
	0x83: "implementation_specific_error",
	0x84: "unsupported_protocol_version",
	0x85: "client_identifier_not_valid",
	0x86: "bad_username_or_password",
	0x87: "not_authorized",
	0x88: "server_unavailable",
	0x89: "server_busy",
	0x8A: "banned",
	0x8C: "bad_authentication_method",
	0x95: "packet_too_large",
	0x97: "quota_exceeded",
	0x99: "payload_format_invalid",
	0x9A: "retain_not_supported",
	0x9B: "qos_not_supported",
	0x9C: "use_another_server",
	0x9D: "server_moved",
	0x9F: "connection_rate_exceeded",
}

func connAckName(code byte) string {
	if n, ok := connAckNames[code]; ok {
		return n
	}
	return fmt.Sprintf("unknown_error_%d", code)
}

// Body returns the JSON body EMQX 4.4 posts for e, plus the id and seq
// fields: EMQX's field names, order and types (username null when absent,
// times in milliseconds). node is the node name; enc applies to message
// payloads. The encoder is hand-written because it runs for every event.
func Body(e *events.Event, node string, enc Encoding, id string, seq uint64) ([]byte, error) {
	return AppendBody(make([]byte, 0, bodySize(e)), e, node, enc, id, seq)
}

// bodySize is a good first capacity for the body of e.
func bodySize(e *events.Event) int {
	return 256 + len(e.ClientID) + len(e.Topic) + len(e.Payload)*4/3
}

// AppendBody appends the body of e (see Body) to b. The id may be a
// string or bytes.
func AppendBody[ID string | []byte](b []byte, e *events.Event, node string, enc Encoding, id ID, seq uint64) ([]byte, error) {
	return appendBodyAfter(appendBodyHead(b, e.Kind, node), e, enc, id, seq)
}

// appendBodyHead appends the start of the body of an event of kind k,
// the same for all of them on a node: its action and node fields.
func appendBodyHead(b []byte, k events.Kind, node string) []byte {
	b = append(b, `{"action":`...)
	b = appendString(b, actionName(k))
	b = append(b, `,"node":`...)
	return appendString(b, node)
}

// bodyHeads holds appendBodyHead's output for each kind and one node,
// which a dispatcher copies instead of escaping the two strings again
// for each event it posts.
type bodyHeads [events.NumKinds][]byte

func newBodyHeads(node string) *bodyHeads {
	var h bodyHeads
	for k := range h {
		h[k] = appendBodyHead(nil, events.Kind(k), node)
	}
	return &h
}

// appendBodyAfter appends the body of e after its head (appendBodyHead).
func appendBodyAfter[ID string | []byte](b []byte, e *events.Event, enc Encoding, id ID, seq uint64) ([]byte, error) {
	switch e.Kind {
	case events.ClientConnect, events.ClientConnack, events.ClientConnected:
		b = appendClient(b, e)
		b = append(b, `,"ipaddress":`...)
		ip := ""
		if e.Peer.IsValid() {
			ip = e.Peer.Addr().Unmap().String()
		}
		b = appendString(b, ip)
		if e.Kind == events.ClientConnack {
			b = append(b, `,"conn_ack":`...)
			b = appendString(b, connAckName(e.ConnAck))
		}
		b = append(b, `,"keepalive":`...)
		b = strconv.AppendUint(b, uint64(e.KeepAlive), 10)
		b = append(b, `,"proto_ver":`...)
		b = strconv.AppendUint(b, uint64(e.ProtoVer), 10)
		if e.Kind != events.ClientConnect && !e.ConnectedAt.IsZero() {
			b = append(b, `,"connected_at":`...)
			b = strconv.AppendInt(b, e.ConnectedAt.UnixMilli(), 10)
		}
	case events.ClientDisconnected:
		b = appendClient(b, e)
		b = append(b, `,"reason":`...)
		b = appendString(b, e.Reason)
		b = append(b, `,"connected_at":`...)
		b = strconv.AppendInt(b, ms(e.ConnectedAt), 10)
		b = append(b, `,"disconnected_at":`...)
		b = strconv.AppendInt(b, ms(e.Time), 10)
	case events.ClientSubscribe, events.ClientUnsubscribe, events.SessionSubscribed, events.SessionUnsubscribed:
		b = appendClient(b, e)
		b = append(b, `,"topic":`...)
		b = appendString(b, e.Topic)
		if e.Kind != events.SessionUnsubscribed {
			b = append(b, `,"opts":{"qos":`...)
			b = strconv.AppendUint(b, uint64(e.Opts.QoS), 10)
			b = append(b, `,"rh":`...)
			b = strconv.AppendUint(b, uint64(e.Opts.RH), 10)
			b = append(b, `,"rap":`...)
			b = strconv.AppendInt(b, int64(boolInt(e.Opts.RAP)), 10)
			b = append(b, `,"nl":`...)
			b = strconv.AppendInt(b, int64(boolInt(e.Opts.NL)), 10)
			b = append(b, '}')
		}
	case events.SessionTerminated:
		b = appendClient(b, e)
		b = append(b, `,"reason":`...)
		b = appendString(b, e.Reason)
	case events.MessagePublish, events.MessageDelivered, events.MessageAcked, events.MessageDropped:
		if e.Kind != events.MessagePublish {
			b = appendClient(b, e)
		}
		b = append(b, `,"from_client_id":`...)
		b = appendString(b, e.FromClientID)
		b = append(b, `,"from_username":`...)
		b = appendOptString(b, e.FromUsername, e.FromUserSet)
		b = append(b, `,"topic":`...)
		b = appendString(b, e.Topic)
		b = append(b, `,"qos":`...)
		b = strconv.AppendUint(b, uint64(e.QoS), 10)
		b = append(b, `,"retain":`...)
		b = strconv.AppendBool(b, e.Retain)
		b = append(b, `,"payload":`...)
		if enc == Plain {
			b = appendBytesString(b, e.Payload)
		} else {
			b = appendString(b, enc.encode(e.Payload))
		}
		b = append(b, `,"ts":`...)
		b = strconv.AppendInt(b, messageTS(e), 10)
		if e.Kind == events.MessageDropped {
			reason := e.Reason
			if reason == "" {
				reason = "dropped"
			}
			b = append(b, `,"reason":`...)
			b = appendString(b, reason)
		}
	default:
		return nil, fmt.Errorf("webhook: no body for event %s", e.Kind)
	}
	b = append(b, `,"id":`...)
	b = appendString(b, string(id)) // 26 bytes: a copy on the stack, when bytes
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, '}'), nil
}

// appendClient appends the clientid and username fields of e. A function
// rather than a closure in AppendBody: a closure that appends to b keeps
// b in memory, not in registers, for the whole body.
func appendClient(b []byte, e *events.Event) []byte {
	b = append(b, `,"clientid":`...)
	b = appendString(b, e.ClientID)
	b = append(b, `,"username":`...)
	return appendOptString(b, e.Username, e.UsernameSet)
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func appendOptString(b []byte, s string, set bool) []byte {
	if !set {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

const hexDigits = "0123456789abcdef"

// appendBytesString is appendString for bytes, without copying them to a
// string first.
func appendBytesString(b []byte, p []byte) []byte {
	return appendString(b, unsafe.String(unsafe.SliceData(p), len(p)))
}

// jsonPlain marks the bytes that appendString copies as they are: ASCII
// but the control characters, '"' and '\\'. A table costs a load per
// byte where the three comparisons cost three branches: with the generic
// encoder it replaced, a message.publish body took 410 ns, a quarter of it
// scanning the strings a byte at a time.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plain8 reports whether the first 8 bytes of s are all jsonPlain, with a
// word's arithmetic instead of 8 loads: a byte of the word is under 0x20
// when subtracting 0x20 from it borrows while its own top bit is clear,
// and is c when its XOR with c is 0, which is under 1. A 26-character
// event id is 3 words and 2 bytes.
func plain8(s string) bool {
	const ones, tops = 0x0101010101010101, 0x8080808080808080
	x := binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s), 8))
	quote, backslash := x^(ones*'"'), x^(ones*'\\')
	return ((x-ones*0x20)&^x|(quote-ones)&^quote|(backslash-ones)&^backslash|x)&tops == 0
}

// appendString appends s as a JSON string. Like encoding/json it writes
// invalid UTF-8 as U+FFFD and escapes control characters, U+2028 and U+2029;
// unlike it, it leaves <, > and & alone, as EMQX does.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && plain8(s[i:]) {
			i += 8
			continue
		}
		// A byte at a time to the end of the word, not a word test at
		// each byte: JSON text has a quote every few bytes.
		for end := min(i+8, len(s)); i < end; {
			c := s[i]
			if jsonPlain[c] {
				i++
				continue
			}
			if c < utf8.RuneSelf {
				if start < i { // not a call to copy nothing: binary payloads escape most bytes
					b = append(b, s[start:i]...)
				}
				switch c {
				case '"', '\\':
					b = append(b, '\\', c)
				case '\n':
					b = append(b, '\\', 'n')
				case '\r':
					b = append(b, '\\', 'r')
				case '\t':
					b = append(b, '\\', 't')
				default:
					b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
				}
				i++
				start = i
				continue
			}
			// Decoded only when it can be valid: a continuation byte, an
			// overlong or too large lead, or a lead not followed by a
			// continuation byte is not, and those are most bytes of a
			// binary payload.
			r, size := utf8.RuneError, 1
			if c >= 0xc2 && c <= 0xf4 && i+1 < len(s) && s[i+1]&0xc0 == 0x80 {
				r, size = utf8.DecodeRuneInString(s[i:])
			}
			if r == utf8.RuneError && size == 1 {
				if start < i {
					b = append(b, s[start:i]...)
				}
				b = append(b, `\ufffd`...)
				i++
				start = i
				continue
			}
			if r == '\u2028' || r == '\u2029' {
				b = append(b, s[start:i]...)
				b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
				i += size
				start = i
				continue
			}
			i += size
		}
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// messageTS is the message's creation time in milliseconds (EMQX's ts).
func messageTS(e *events.Event) int64 {
	if !e.MessageTime.IsZero() {
		return e.MessageTime.UnixMilli()
	}
	return e.Time.UnixMilli()
}
