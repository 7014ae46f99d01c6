package broker_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// raw builds a packet from its first byte and body parts, computing the
// remaining length.
func raw(first byte, parts ...[]byte) []byte {
	var body []byte
	for _, p := range parts {
		body = append(body, p...)
	}
	out := []byte{first}
	n := len(body)
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		out = append(out, d)
		if n == 0 {
			break
		}
	}
	return append(out, body...)
}

// str is an MQTT UTF-8 string (or binary data): two byte length, then s.
func str(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

// u16 is a two byte integer.
func u16(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }

// props is a v5 property block: its length (one byte here), then p.
func props(p ...byte) []byte { return append([]byte{byte(len(p))}, p...) }

// v5only marks a case that exists only in MQTT 5.0.
const v5only = true

// malformedCase is one bad packet sent after a successful CONNECT.
type malformedCase struct {
	name string
	v5   bool // MQTT 5.0 only
	// pkt returns the bytes for protocol version v.
	pkt func(v mqtt.Version) []byte
	// code is the v5 DISCONNECT reason; 3.x connections are closed
	// silently.
	code mqtt.ReasonCode
}

// same returns a pkt function giving b for every version.
func same(b []byte) func(mqtt.Version) []byte { return func(mqtt.Version) []byte { return b } }

// withProps returns a pkt function for packets with a v5 property block
// between head and tail (no block for 3.x).
func withProps(first byte, head, p, tail []byte) func(mqtt.Version) []byte {
	return func(v mqtt.Version) []byte {
		if v == mqtt.V5 {
			return raw(first, head, p, tail)
		}
		return raw(first, head, tail)
	}
}

var malformedCases = []malformedCase{
	// [MQTT-1.5.5-1] A variable byte integer is at most four bytes long
	// and minimally encoded.
	{name: "remaining length of 5 bytes", pkt: same([]byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}), code: mqtt.MalformedPacket},
	{name: "remaining length not minimal", pkt: same([]byte{0xC0, 0x80, 0x00}), code: mqtt.MalformedPacket},
	// [MQTT-2.1.3-1] Reserved flag bits hold their fixed value.
	{name: "PINGREQ with flags", pkt: same([]byte{0xC1, 0x00}), code: mqtt.MalformedPacket},
	{name: "PUBACK with flags", pkt: same([]byte{0x41, 0x02, 0x00, 0x01}), code: mqtt.MalformedPacket},
	// [MQTT-3.8.1-1] [MQTT-3.6.1-1] [MQTT-3.10.1-1] SUBSCRIBE, PUBREL
	// and UNSUBSCRIBE have flags 0b0010.
	{name: "SUBSCRIBE flags 0", pkt: withProps(0x80, u16(1), props(), append(str("a"), 0)), code: mqtt.MalformedPacket},
	{name: "PUBREL flags 0", pkt: same([]byte{0x60, 0x02, 0x00, 0x01}), code: mqtt.MalformedPacket},
	{name: "UNSUBSCRIBE flags 0", pkt: withProps(0xA0, u16(1), props(), str("a")), code: mqtt.MalformedPacket},
	// Packet type 0 is reserved [MQTT-2.1.3-1].
	{name: "packet type 0", pkt: same([]byte{0x00, 0x00}), code: mqtt.MalformedPacket},
	// [MQTT-3.3.1-4] A PUBLISH must not have both QoS bits set.
	{name: "PUBLISH QoS 3", pkt: withProps(0x36, append(str("a"), u16(1)...), props(), []byte("x")), code: mqtt.MalformedPacket},
	// [MQTT-3.3.1-2] DUP is 0 on a QoS 0 PUBLISH.
	{name: "PUBLISH QoS 0 with DUP", pkt: withProps(0x38, str("a"), props(), []byte("x")), code: mqtt.MalformedPacket},
	// [MQTT-2.2.1-3] QoS 1 and 2 PUBLISH carry a non-zero packet id.
	{name: "PUBLISH packet id 0", pkt: withProps(0x32, append(str("a"), u16(0)...), props(), nil), code: mqtt.MalformedPacket},
	// [MQTT-3.1.0-2] A second CONNECT is a protocol error.
	{name: "second CONNECT", pkt: func(v mqtt.Version) []byte {
		b, _ := (&mqtt.Connect{ClientID: "again", CleanStart: true}).Encode(nil, v)
		return b
	}, code: mqtt.ProtocolError},
	// [MQTT-3.1.0-2] Even a second CONNECT of an unknown protocol level
	// is a protocol error, not a version refusal.
	{name: "second CONNECT of level 6", pkt: same(raw(0x10, str("MQTT"), []byte{6, 0x02, 0, 0}, str("x"))), code: mqtt.ProtocolError},
	// [MQTT-1.5.4-1] Ill-formed UTF-8 in a string is a malformed packet.
	{name: "topic with invalid UTF-8", pkt: withProps(0x30, str("a\xC3\x28"), props(), nil), code: mqtt.MalformedPacket},
	{name: "topic with a surrogate", pkt: withProps(0x30, str("a\xED\xA0\x80"), props(), nil), code: mqtt.MalformedPacket},
	{name: "filter with invalid UTF-8", pkt: withProps(0x82, u16(1), props(), append(str("\xFF"), 0)), code: mqtt.MalformedPacket},
	// [MQTT-1.5.4-2] U+0000 in a string is a malformed packet.
	{name: "topic with U+0000", pkt: withProps(0x30, str("a\x00b"), props(), nil), code: mqtt.MalformedPacket},
	{name: "filter with U+0000", pkt: withProps(0x82, u16(1), props(), append(str("a\x00"), 0)), code: mqtt.MalformedPacket},
	// [MQTT-3.3.2-2] [MQTT-4.7.0-1] No wildcard in a PUBLISH topic name.
	{name: "PUBLISH topic with +", pkt: withProps(0x30, str("a/+"), props(), nil), code: mqtt.TopicNameInvalid},
	{name: "PUBLISH topic #", pkt: withProps(0x30, str("#"), props(), nil), code: mqtt.TopicNameInvalid},
	// [MQTT-4.7.3-1] A topic name is at least one character long (5.0:
	// unless a Topic Alias stands for it).
	{name: "PUBLISH empty topic", pkt: withProps(0x30, str(""), props(), []byte("x")), code: mqtt.ProtocolError},
	// [MQTT-3.8.3-3] (3.1.1; [MQTT-3.8.3-2] in 5.0) SUBSCRIBE carries at
	// least one filter.
	{name: "SUBSCRIBE with no filters", pkt: withProps(0x82, u16(1), props(), nil), code: mqtt.ProtocolError},
	// [MQTT-3.10.3-2] UNSUBSCRIBE carries at least one filter.
	{name: "UNSUBSCRIBE with no filters", pkt: withProps(0xA2, u16(1), props(), nil), code: mqtt.ProtocolError},
	// Truncated packets: a field runs past the remaining length.
	{name: "PUBLISH QoS 1 without packet id", pkt: same(raw(0x32, str("a"))), code: mqtt.MalformedPacket},
	{name: "topic length past the end", pkt: same([]byte{0x30, 0x03, 0x00, 0x05, 'a'}), code: mqtt.MalformedPacket},
	{name: "SUBSCRIBE without options byte", pkt: withProps(0x82, u16(1), props(), str("a")), code: mqtt.MalformedPacket},
	{name: "PUBACK without packet id", pkt: same([]byte{0x40, 0x01, 0x00}), code: mqtt.MalformedPacket},
	{name: "PINGREQ with a body", pkt: same([]byte{0xC0, 0x01, 0x00}), code: mqtt.MalformedPacket},
	// Packets that only a server sends are protocol errors from a
	// client.
	{name: "CONNACK from client", pkt: withProps(0x20, []byte{0, 0}, props(), nil), code: mqtt.ProtocolError},
	{name: "SUBACK from client", pkt: withProps(0x90, u16(1), props(), []byte{0}), code: mqtt.ProtocolError},
	{name: "PINGRESP from client", pkt: same([]byte{0xD0, 0x00}), code: mqtt.ProtocolError},
	// [MQTT-3-8.3-4] (3.1.1) / MQTT 5.0 §3.8.3.1: requested QoS 3.
	{name: "SUBSCRIBE QoS 3", pkt: withProps(0x82, u16(1), props(), append(str("a"), 3)), code: mqtt.ProtocolError},

	// MQTT 5.0 only.
	// MQTT 5.0 §2.2.2.2: a property not defined for the packet type is a
	// malformed packet.
	{name: "PUBLISH with Session Expiry", v5: v5only, pkt: same(raw(0x30, str("a"), props(0x11, 0, 0, 0, 1))), code: mqtt.MalformedPacket},
	{name: "SUBSCRIBE with Message Expiry", v5: v5only, pkt: same(raw(0x82, u16(1), props(0x02, 0, 0, 0, 1), str("a"), []byte{0})), code: mqtt.MalformedPacket},
	{name: "unknown property 0x7F", v5: v5only, pkt: same(raw(0x30, str("a"), props(0x7F, 0))), code: mqtt.MalformedPacket},
	// MQTT 5.0 §3.3.2.3.3: Message Expiry Interval more than once is a
	// protocol error.
	{name: "duplicated Message Expiry", v5: v5only, pkt: same(raw(0x30, str("a"), props(0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2))), code: mqtt.ProtocolError},
	// [MQTT-3.3.4-6] A client must not send a Subscription Identifier.
	{name: "PUBLISH with Subscription Identifier", v5: v5only, pkt: same(raw(0x30, str("a"), props(0x0B, 5))), code: mqtt.ProtocolError},
	// [MQTT-3.3.2-8] Topic Alias 0 is not allowed.
	{name: "Topic Alias 0", v5: v5only, pkt: same(raw(0x30, str("a"), props(0x23, 0, 0))), code: mqtt.TopicAliasInvalid},
	// MQTT 5.0 §3.3.2.3.4: an alias the client never set is a protocol
	// error.
	{name: "unknown Topic Alias", v5: v5only, pkt: same(raw(0x30, str(""), props(0x23, 0, 9))), code: mqtt.ProtocolError},
	// [MQTT-3.8.3-5] Reserved subscription option bits are 0.
	{name: "subscription options reserved bits", v5: v5only, pkt: same(raw(0x82, u16(1), props(), str("a"), []byte{0x40})), code: mqtt.MalformedPacket},
	// [MQTT-3.8.3-4] No Local on a shared subscription.
	{name: "No Local on a shared subscription", v5: v5only, pkt: same(raw(0x82, u16(1), props(), str("$share/g/a"), []byte{0x04})), code: mqtt.ProtocolError},
	// MQTT 5.0 §3.8.3.1: Retain Handling 3 is a protocol error.
	{name: "Retain Handling 3", v5: v5only, pkt: same(raw(0x82, u16(1), props(), str("a"), []byte{0x30})), code: mqtt.ProtocolError},
	// [MQTT-3.4.2-1] A PUBACK reason code from the table only.
	{name: "PUBACK with an invalid reason code", v5: v5only, pkt: same([]byte{0x40, 0x03, 0x00, 0x01, 0x8E}), code: mqtt.ProtocolError},
	// [MQTT-3.14.2-1] A DISCONNECT reason code from the table only.
	{name: "DISCONNECT with an invalid reason code", v5: v5only, pkt: same([]byte{0xE0, 0x01, 0x03}), code: mqtt.ProtocolError},
	// MQTT 5.0 §4.12: no authentication method was used at CONNECT, so
	// AUTH is a protocol error.
	{name: "AUTH without an authentication method", v5: v5only, pkt: same([]byte{0xF0, 0x00}), code: mqtt.ProtocolError},
	{name: "AUTH re-authenticate", v5: v5only, pkt: same(raw(0xF0, []byte{0x19}, props(0x15, 0, 1, 'x'))), code: mqtt.ProtocolError},
}

// TestMalformedAfterConnect sends each bad packet on an accepted
// connection: the broker closes it (v5 first gets DISCONNECT with the
// reason the specification gives) and keeps serving others.
func TestMalformedAfterConnect(t *testing.T) {
	b, addr := testutil.RunBroker(t, nil)
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		for i, tc := range malformedCases {
			if tc.v5 && v != mqtt.V5 {
				continue
			}
			t.Run(versionNames[v]+"/"+tc.name, func(t *testing.T) {
				id := fmt.Sprintf("bad-%d-%d", v, i)
				r, _ := dialConnect(t, addr, v, &mqtt.Connect{ClientID: id, CleanStart: true,
					Will: &mqtt.Will{Topic: "will/" + id, Payload: []byte("gone")}})
				watcher := connectClean(t, addr, mqtt.V5, id+"-w")
				mustSubscribe(t, watcher, "will/"+id, 0)
				r.SendBytes(tc.pkt(v))
				expectClosedWith(t, r, tc.code)
				// The broker closed the connection: the will is due
				// [MQTT-3.1.2-8].
				if w := readPublish(t, watcher); w.Topic != "will/"+id {
					t.Fatalf("want the will, got %s", describe([]mqtt.Packet{w}))
				}
			})
		}
	}
	if n := b.Metrics()["client.connected"]; n == 0 {
		t.Fatal("no client connected")
	}
}

// TestAUTHOnV311 checks that packet type 15 is refused on a 3.1.1
// connection: AUTH does not exist before 5.0 (3.1.1 §2.2.1 reserved).
func TestAUTHOnV311(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	r := connectClean(t, addr, mqtt.V311, "auth311")
	r.SendBytes([]byte{0xF0, 0x00})
	expectClosedWith(t, r, 0)
}

// connectBytes returns a CONNECT for v with its connect flags byte (which
// follows the protocol name and level) changed by edit.
func connectBytes(t *testing.T, v mqtt.Version, c *mqtt.Connect, edit func(flags byte) byte) []byte {
	t.Helper()
	b := mustEncode(t, c, v)
	// Fixed header (2 bytes: these CONNECTs are short), protocol name
	// (2+len), level (1).
	name := "MQTT"
	if v == mqtt.V31 {
		name = "MQIsdp"
	}
	i := 2 + 2 + len(name) + 1
	b[i] = edit(b[i])
	return b
}

// TestMalformedConnect sends bad CONNECT packets: the connection is closed
// without a CONNACK that accepts it, and the broker stays up.
func TestMalformedConnect(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	tests := []struct {
		name string
		v    mqtt.Version
		pkt  func(t *testing.T) []byte
		// connack is the CONNACK the broker may send before it closes (0:
		// none).
		connack mqtt.ReasonCode
	}{
		// [MQTT-3.1.0-1] The first packet must be CONNECT.
		{"PINGREQ first", mqtt.V5, func(*testing.T) []byte { return []byte{0xC0, 0x00} }, 0},
		{"PUBLISH first", mqtt.V311, func(*testing.T) []byte { return raw(0x30, str("a"), []byte("x")) }, 0},
		{"SUBSCRIBE first", mqtt.V5, func(*testing.T) []byte { return raw(0x82, u16(1), props(), str("a"), []byte{0}) }, 0},
		// [MQTT-3.1.2-3] The reserved connect flag is 0.
		{"reserved flag v3.1.1", mqtt.V311, func(t *testing.T) []byte {
			return connectBytes(t, mqtt.V311, &mqtt.Connect{ClientID: "r", CleanStart: true}, func(f byte) byte { return f | 0x01 })
		}, mqtt.MalformedPacket},
		{"reserved flag v5", mqtt.V5, func(t *testing.T) []byte {
			return connectBytes(t, mqtt.V5, &mqtt.Connect{ClientID: "r", CleanStart: true}, func(f byte) byte { return f | 0x01 })
		}, mqtt.MalformedPacket},
		// [MQTT-3.1.2-11] (5.0; [MQTT-3.1.2-13] in 3.1.1) Will QoS is 0
		// without a will.
		{"will QoS without will flag", mqtt.V311, func(t *testing.T) []byte {
			return connectBytes(t, mqtt.V311, &mqtt.Connect{ClientID: "r", CleanStart: true}, func(f byte) byte { return f | 0x08 })
		}, mqtt.MalformedPacket},
		// [MQTT-3.1.2-12] (5.0; [MQTT-3.1.2-14] in 3.1.1) Will QoS 3.
		{"will QoS 3", mqtt.V5, func(t *testing.T) []byte {
			c := &mqtt.Connect{ClientID: "r", CleanStart: true, Will: &mqtt.Will{Topic: "w", Payload: []byte("x")}}
			return connectBytes(t, mqtt.V5, c, func(f byte) byte { return f | 0x18 })
		}, mqtt.MalformedPacket},
		// [MQTT-3.1.2-22] (3.1.1) A password needs a user name.
		{"password without user name", mqtt.V311, func(t *testing.T) []byte {
			return mustEncode(t, &mqtt.Connect{ClientID: "r", CleanStart: true, PasswordSet: true, Password: []byte("p")}, mqtt.V311)
		}, mqtt.MalformedPacket},
		// [MQTT-3.1.3-4] The client id is a UTF-8 string.
		{"client id with U+0000", mqtt.V311, func(*testing.T) []byte {
			return raw(0x10, str("MQTT"), []byte{4, 0x02, 0, 0}, str("a\x00"))
		}, mqtt.MalformedPacket},
		// [MQTT-4.7.0-1] No wildcard in a will topic.
		{"will topic with wildcard", mqtt.V5, func(t *testing.T) []byte {
			return raw(0x10, str("MQTT"), []byte{5, 0x06, 0, 0}, props(), str("w"), props(), str("a/#"), str("x"))
		}, mqtt.TopicNameInvalid},
		// MQTT 5.0 §2.2.2.2: Topic Alias is not a CONNECT property.
		{"property not allowed in CONNECT", mqtt.V5, func(t *testing.T) []byte {
			return raw(0x10, str("MQTT"), []byte{5, 0x02, 0, 0}, props(0x23, 0, 1), str("r"))
		}, mqtt.MalformedPacket},
		// MQTT 5.0 §3.1.2.11.2: Session Expiry Interval more than once.
		{"duplicated property in CONNECT", mqtt.V5, func(t *testing.T) []byte {
			return raw(0x10, str("MQTT"), []byte{5, 0x02, 0, 0}, props(0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 1), str("r"))
		}, mqtt.ProtocolError},
		// Truncated: the client id runs past the remaining length.
		{"truncated CONNECT", mqtt.V311, func(*testing.T) []byte {
			return raw(0x10, str("MQTT"), []byte{4, 0x02, 0, 0}, []byte{0, 9, 'a'})
		}, mqtt.MalformedPacket},
		// [MQTT-3.1.2-1] Another protocol name is not MQTT: close without
		// CONNACK.
		{"protocol name MQTX", mqtt.V311, func(*testing.T) []byte {
			return raw(0x10, str("MQTX"), []byte{4, 0x02, 0, 0}, str("r"))
		}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := testutil.Dial(t, addr, tc.v)
			r.SendBytes(tc.pkt(t))
			expectRefused(t, r, tc.connack)
		})
	}
	// Still serving.
	connectClean(t, addr, mqtt.V5, "after")
}

// TestUnsupportedProtocolLevel checks [MQTT-3.1.2-2]: a CONNECT of a
// protocol level the broker does not speak is answered with CONNACK 0x01
// (3.x) or 0x84 (a level above 5, in the 5.0 format), then the connection
// is closed.
func TestUnsupportedProtocolLevel(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	tests := []struct {
		name  string
		pname string
		level byte
		read  mqtt.Version // the CONNACK format expected
		want  mqtt.ReasonCode
	}{
		{"MQTT level 3", "MQTT", 3, mqtt.V311, mqtt.V3BadProtocolVersion},
		{"MQTT level 2", "MQTT", 2, mqtt.V311, mqtt.V3BadProtocolVersion},
		{"MQIsdp level 4", "MQIsdp", 4, mqtt.V311, mqtt.V3BadProtocolVersion},
		{"MQTT level 6", "MQTT", 6, mqtt.V5, mqtt.UnsupportedProtocolVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := testutil.Dial(t, addr, tc.read)
			r.SendBytes(raw(0x10, str(tc.pname), []byte{tc.level, 0x02, 0, 60}, str("lvl")))
			got := r.ExpectClosed()
			if len(got) != 1 {
				t.Fatalf("want one CONNACK, got %s", describe(got))
			}
			a, ok := got[0].(*mqtt.Connack)
			if !ok || a.ReasonCode != tc.want || a.SessionPresent {
				t.Fatalf("want CONNACK %s, got %s", tc.want, describe(got))
			}
		})
	}
}

// TestConnectWithAuthMethod checks that a CONNECT with an Authentication
// Method, when no enhanced authentication is configured, is refused with
// CONNACK 0x8C [MQTT-4.12.0-1] and closed.
func TestConnectWithAuthMethod(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	r := testutil.Dial(t, addr, mqtt.V5)
	c := &mqtt.Connect{ClientID: "scram", CleanStart: true}
	c.Props.AuthMethod = "SCRAM-SHA-1"
	c.Props.Set(mqtt.PropAuthMethod)
	if a := r.Connect(c); a.ReasonCode != mqtt.BadAuthenticationMethod {
		t.Fatalf("CONNACK %s, want %s", a.ReasonCode, mqtt.BadAuthenticationMethod)
	}
	expectClosedWith(t, r, 0)
}

// TestTruncatedStream sends half a packet and then ends the stream: the
// broker drops the connection as a network failure and publishes the will
// [MQTT-3.1.2-8].
func TestTruncatedStream(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		t.Run(versionNames[v], func(t *testing.T) {
			watcher := connectClean(t, addr, mqtt.V311, "w")
			mustSubscribe(t, watcher, "will/half", 0)
			r, _ := dialConnect(t, addr, v, &mqtt.Connect{ClientID: "half", CleanStart: true,
				Will: &mqtt.Will{Topic: "will/half", Payload: []byte("bye")}})
			full := mustEncode(t, &mqtt.Publish{Topic: "a/b", QoS: 1, PacketID: 3, Payload: []byte("0123456789")}, v)
			r.SendBytes(full[:len(full)/2])
			halfClose(t, r)
			expectClosedWith(t, r, 0)
			if w := readPublish(t, watcher); string(w.Payload) != "bye" {
				t.Fatalf("want the will, got %q", w.Payload)
			}
		})
	}
}

// TestGarbageNeverPanics feeds random bytes to accepted connections of
// every version. Whatever the bytes, the broker must not crash: each
// connection ends when the stream ends and the broker keeps accepting.
func TestGarbageNeverPanics(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 60 {
		v := []mqtt.Version{mqtt.V31, mqtt.V311, mqtt.V5}[i%3]
		r := testutil.Dial(t, addr, v)
		if i%2 == 0 {
			r.Connect(&mqtt.Connect{ClientID: fmt.Sprintf("g%d", i), CleanStart: true})
		}
		junk := make([]byte, 1+rng.IntN(300))
		for j := range junk {
			junk[j] = byte(rng.Uint32())
		}
		// Favour plausible first bytes so the decoders get exercised.
		junk[0] = byte(1+rng.IntN(15))<<4 | junk[0]&0x0F
		r.SendBytes(junk)
		// The broker may already have closed (and reset) the socket.
		_ = r.Conn.(*net.TCPConn).CloseWrite()
		r.ExpectClosed()
		_ = r.Conn.Close()
	}
	connectClean(t, addr, mqtt.V5, "alive")
}
