package mqtt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// decodeRaw parses the fixed header of a whole packet and decodes its body.
func decodeRaw(raw []byte, v Version) (Packet, error) {
	h, n, err := ParseFixedHeader(raw)
	if err != nil {
		return nil, err
	}
	if len(raw)-n != h.Remaining {
		return nil, fmt.Errorf("test fixture: remaining length %d but %d bytes follow the header", h.Remaining, len(raw)-n)
	}
	return Decode(h, raw[n:], v)
}

// encodeVersion is the version to encode p with on a connection of version v:
// a CONNECT carries its own.
func encodeVersion(p Packet, v Version) Version {
	if c, ok := p.(*Connect); ok {
		return c.Version
	}
	return v
}

func TestDecode(t *testing.T) {
	for _, f := range validFixtures {
		t.Run(f.name, func(t *testing.T) {
			got, err := decodeRaw(f.raw, f.v)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, f.want) {
				t.Errorf("decode:\n got  %#v\n want %#v", got, f.want)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	for _, f := range validFixtures {
		t.Run(f.name, func(t *testing.T) {
			want := f.raw
			if f.canon != nil {
				want = f.canon
			}
			got, err := f.want.Encode(nil, encodeVersion(f.want, f.v))
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("encode:\n got  % X\n want % X", got, want)
			}
			// Encode appends: an existing prefix is kept.
			prefix := []byte{0xAA, 0xBB}
			got, err = f.want.Encode(prefix, encodeVersion(f.want, f.v))
			if err != nil || !bytes.Equal(got, append([]byte{0xAA, 0xBB}, want...)) {
				t.Errorf("encode after a prefix: % X, %v", got, err)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, f := range invalidFixtures {
		t.Run(f.name, func(t *testing.T) {
			p, err := decodeRaw(f.raw, f.v)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("decode = %#v, %v; want a *Error", p, err)
			}
			if e.Code != f.code || (f.rule != "" && e.Rule != f.rule) {
				t.Errorf("error %v: code %s rule %q, want code %s rule %q", err, e.Code, e.Rule, f.code, f.rule)
			}
			if !errors.Is(err, f.code) {
				t.Errorf("errors.Is(%v, %s) = false", err, f.code)
			}
			if p != nil && f.code != UnsupportedProtocolVersion {
				t.Errorf("packet %#v returned with the error", p)
			}
		})
	}
}

// [MQTT-3.1.2-2] The caller needs name and level of an unsupported CONNECT
// to answer CONNACK 0x01 (3.x) or 0x84 (5.0).
func TestDecodeUnsupportedVersionReturnsConnect(t *testing.T) {
	raw := []byte{0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x06, 0x02, 0x00, 0x3C, 0x00, 0x00}
	p, err := decodeRaw(raw, 0)
	if !errors.Is(err, UnsupportedProtocolVersion) {
		t.Fatalf("err = %v, want UnsupportedProtocolVersion", err)
	}
	want := &Connect{ProtocolName: "MQTT", Version: 6}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("packet = %#v, want %#v", p, want)
	}
}

func TestDecodeBodyLengthMismatch(t *testing.T) {
	_, err := Decode(FixedHeader{Type: PUBLISH, Remaining: 5}, []byte{0x00, 0x01, 't'}, V311)
	if !errors.Is(err, MalformedPacket) {
		t.Errorf("err = %v, want MalformedPacket", err)
	}
}

func TestDecodeUnknownVersion(t *testing.T) {
	for _, v := range []Version{0, 2, 6} {
		_, err := Decode(FixedHeader{Type: PINGREQ}, nil, v)
		if !errors.Is(err, ProtocolError) {
			t.Errorf("version %d: err = %v, want ProtocolError", v, err)
		}
	}
}

// Decoded strings and slices must not alias the body: the caller reuses its
// read buffer.
func TestDecodeDoesNotAliasBody(t *testing.T) {
	fixtures := append([]fixture{}, validFixtures...)
	big := &Publish{QoS: 1, PacketID: 3, Topic: "big/topic", Payload: bytes.Repeat([]byte("0123456789"), 100)}
	raw, err := big.Encode(nil, V311)
	if err != nil {
		t.Fatal(err)
	}
	fixtures = append(fixtures, fixture{name: "publish with a large payload", v: V311, raw: raw, want: big})
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			buf := bytes.Clone(f.raw)
			got, err := decodeRaw(buf, f.v)
			if err != nil {
				t.Fatal(err)
			}
			for i := range buf {
				buf[i] = 0xEE
			}
			if !reflect.DeepEqual(got, f.want) {
				t.Errorf("after overwriting the body:\n got  %#v\n want %#v", got, f.want)
			}
		})
	}
}

// A small PUBLISH shares one allocation between topic and payload: growing
// the payload must never write over the topic.
func TestPublishPayloadAppendKeepsTopic(t *testing.T) {
	p, err := decodeRaw([]byte{0x30, 0x07, 0x00, 0x03, 'a', '/', 'b', 'h', 'i'}, V311)
	if err != nil {
		t.Fatal(err)
	}
	pub := p.(*Publish)
	pub.Payload = append(pub.Payload, "!!!!!!!!"...)
	pub.Payload[0] = 'H'
	if pub.Topic != "a/b" || string(pub.Payload) != "Hi!!!!!!!!" {
		t.Errorf("topic %q payload %q", pub.Topic, pub.Payload)
	}
}

// Every packet type round-trips through Encode and Decode for every version
// it exists in.
func TestRoundTrip(t *testing.T) {
	all := []Version{V31, V311, V5}
	v5 := []Version{V5}
	type sample struct {
		name     string
		p        Packet
		versions []Version
	}
	samples := []sample{
		{"connect", &Connect{ClientID: "id", CleanStart: true, KeepAlive: 5, UsernameSet: true, Username: "u",
			PasswordSet: true, Password: []byte{0, 1, 0xFF},
			Will: &Will{Topic: "will/t", Payload: []byte("gone"), QoS: 2, Retain: true}}, all},
		{"connect 5", &Connect{ClientID: "id",
			Props: withProps(Properties{SessionExpiry: 1, ReceiveMaximum: 2, MaximumPacketSize: 3, TopicAliasMaximum: 4,
				RequestResponseInfo: 1, RequestProblemInfo: 0, AuthMethod: "m", AuthData: []byte("d"),
				User: []UserProperty{{"a", "1"}, {"a", "2"}, {"", ""}}},
				PropSessionExpiry, PropReceiveMaximum, PropMaximumPacketSize, PropTopicAliasMaximum,
				PropRequestResponseInfo, PropRequestProblemInfo, PropAuthMethod, PropAuthData),
			Will: &Will{Topic: "t", Props: withProps(Properties{WillDelay: 9, MessageExpiry: 8, ContentType: "c",
				ResponseTopic: "r", CorrelationData: []byte{1}, PayloadFormat: 0}, PropWillDelay, PropMessageExpiry,
				PropContentType, PropResponseTopic, PropCorrelationData, PropPayloadFormat)}}, v5},
		{"connack", &Connack{SessionPresent: true}, []Version{V311, V5}},
		{"connack refused", &Connack{ReasonCode: 3}, []Version{V31, V311}},
		{"connack 5", &Connack{ReasonCode: QuotaExceeded, Props: withProps(Properties{SessionExpiry: 1, ReceiveMaximum: 2,
			MaximumQoS: 1, RetainAvailable: 1, MaximumPacketSize: 5, AssignedClientID: "a", TopicAliasMaximum: 6,
			ReasonString: "r", WildcardSubAvailable: 1, SubIDAvailable: 0, SharedSubAvailable: 1, ServerKeepAlive: 7,
			ResponseInfo: "ri", ServerReference: "sr", AuthMethod: "am", AuthData: []byte("ad"),
			User: []UserProperty{{"k", "v"}}},
			PropSessionExpiry, PropReceiveMaximum, PropMaximumQoS, PropRetainAvailable, PropMaximumPacketSize,
			PropAssignedClientID, PropTopicAliasMaximum, PropReasonString, PropWildcardSubAvailable,
			PropSubIDAvailable, PropSharedSubAvailable, PropServerKeepAlive, PropResponseInfo,
			PropServerReference, PropAuthMethod, PropAuthData)}, v5},
		{"publish", &Publish{QoS: 2, Dup: true, Retain: true, Topic: "a/b", PacketID: 65535, Payload: []byte("x")}, all},
		{"publish 5", &Publish{QoS: 1, PacketID: 1, Topic: "a", Payload: bytes.Repeat([]byte{7}, 300),
			Props: withProps(Properties{PayloadFormat: 1, MessageExpiry: 1, TopicAlias: 65535, ResponseTopic: "r/t",
				CorrelationData: []byte{9}, ContentType: "json", SubscriptionIDs: []uint32{1, 268_435_455},
				User: []UserProperty{{"u", "v"}}},
				PropPayloadFormat, PropMessageExpiry, PropTopicAlias, PropResponseTopic, PropCorrelationData,
				PropContentType)}, v5},
		{"puback", &Ack{PacketType: PUBACK, PacketID: 1}, all},
		{"pubrec", &Ack{PacketType: PUBREC, PacketID: 2}, all},
		{"pubrel", &Ack{PacketType: PUBREL, PacketID: 3}, all},
		{"pubcomp", &Ack{PacketType: PUBCOMP, PacketID: 4}, all},
		{"puback 5", &Ack{PacketType: PUBACK, PacketID: 1, ReasonCode: QuotaExceeded,
			Props: withProps(Properties{ReasonString: "q"}, PropReasonString)}, v5},
		{"pubrec 5", &Ack{PacketType: PUBREC, PacketID: 1, ReasonCode: PacketIDInUse}, v5},
		{"pubrel 5", &Ack{PacketType: PUBREL, PacketID: 1, Props: Properties{User: []UserProperty{{"a", "b"}}}}, v5},
		{"pubcomp 5", &Ack{PacketType: PUBCOMP, PacketID: 1, ReasonCode: PacketIDNotFound}, v5},
		{"subscribe", &Subscribe{PacketID: 9, Subscriptions: []Subscription{{Filter: "a/+", QoS: 2}, {Filter: "#"}}}, all},
		{"subscribe 5", &Subscribe{PacketID: 9, Props: Properties{SubscriptionIDs: []uint32{300}, User: []UserProperty{{"a", "b"}}},
			Subscriptions: []Subscription{{Filter: "a", QoS: 1, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}}}, v5},
		{"suback", &Suback{PacketID: 9, ReasonCodes: []ReasonCode{0, 1, 2, 0x80}}, all},
		{"suback 5", &Suback{PacketID: 9, Props: withProps(Properties{ReasonString: "r"}, PropReasonString),
			ReasonCodes: []ReasonCode{WildcardSubNotSupported, SharedSubNotSupported, GrantedQoS2}}, v5},
		{"unsubscribe", &Unsubscribe{PacketID: 1, Filters: []string{"a", "b/#"}}, all},
		{"unsubscribe 5", &Unsubscribe{PacketID: 1, Props: Properties{User: []UserProperty{{"x", "y"}}}, Filters: []string{"a"}}, v5},
		{"unsuback", &Unsuback{PacketID: 1}, []Version{V31, V311}},
		{"unsuback 5", &Unsuback{PacketID: 1, Props: withProps(Properties{ReasonString: "r"}, PropReasonString),
			ReasonCodes: []ReasonCode{Success, NotAuthorized}}, v5},
		{"pingreq", &Pingreq{}, all},
		{"pingresp", &Pingresp{}, all},
		{"disconnect", &Disconnect{}, all},
		{"disconnect 5", &Disconnect{ReasonCode: ServerMoved, Props: withProps(Properties{ServerReference: "other:1883",
			ReasonString: "moved", SessionExpiry: 10}, PropServerReference, PropReasonString, PropSessionExpiry)}, v5},
		{"disconnect 5 reason only", &Disconnect{ReasonCode: KeepAliveTimeout}, v5},
		{"auth", &Auth{ReasonCode: ReAuthenticate, Props: withProps(Properties{AuthMethod: "m", AuthData: []byte("d"),
			ReasonString: "r"}, PropAuthMethod, PropAuthData, PropReasonString)}, v5},
		{"auth short", &Auth{}, v5},
	}
	for _, s := range samples {
		for _, v := range s.versions {
			t.Run(fmt.Sprintf("%s/v%d", s.name, v), func(t *testing.T) {
				p := s.p
				if c, ok := p.(*Connect); ok {
					cc := *c
					cc.Version = v
					cc.ProtocolName = map[Version]string{V31: "MQIsdp", V311: "MQTT", V5: "MQTT"}[v]
					p = &cc
				}
				raw, err := p.Encode(nil, v)
				if err != nil {
					t.Fatalf("encode: %v", err)
				}
				got, err := decodeRaw(raw, v)
				if err != nil {
					t.Fatalf("decode % X: %v", raw, err)
				}
				if !reflect.DeepEqual(got, p) {
					t.Errorf("round trip:\n got  %#v\n want %#v", got, p)
				}
			})
		}
	}
}

// For 3.x, Encode leaves out what only 5.0 has.
func TestEncodeDropsV5Fields(t *testing.T) {
	tests := []struct {
		name string
		p    Packet
		v    Version
		want []byte
	}{
		{"ack reason and properties", &Ack{PacketType: PUBACK, PacketID: 7, ReasonCode: NotAuthorized,
			Props: withProps(Properties{ReasonString: "x"}, PropReasonString)}, V311, []byte{0x40, 0x02, 0x00, 0x07}},
		{"subscribe options", &Subscribe{PacketID: 1, Props: Properties{SubscriptionIDs: []uint32{1}},
			Subscriptions: []Subscription{{Filter: "a", QoS: 1, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}}},
			V311, []byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x01}},
		{"unsuback codes", &Unsuback{PacketID: 2, ReasonCodes: []ReasonCode{Success}}, V311, []byte{0xB0, 0x02, 0x00, 0x02}},
		{"disconnect reason", &Disconnect{ReasonCode: ServerShuttingDown,
			Props: withProps(Properties{ReasonString: "bye"}, PropReasonString)}, V311, []byte{0xE0, 0x00}},
		{"connack 3.1 session present", &Connack{SessionPresent: true}, V31, []byte{0x20, 0x02, 0x00, 0x00}},
		{"connack properties", &Connack{ReasonCode: V3NotAuthorized,
			Props: withProps(Properties{ReasonString: "x"}, PropReasonString)}, V311, []byte{0x20, 0x02, 0x00, 0x05}},
		{"publish properties", &Publish{Topic: "t", Props: withProps(Properties{TopicAlias: 1}, PropTopicAlias)},
			V311, []byte{0x30, 0x03, 0x00, 0x01, 't'}},
		{"connect will properties", &Connect{Version: V311, ClientID: "c", Props: withProps(Properties{SessionExpiry: 1}, PropSessionExpiry),
			Will: &Will{Topic: "w", Props: withProps(Properties{WillDelay: 1}, PropWillDelay)}}, V311,
			[]byte{0x10, 0x12, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x04, 0x00, 0x00, 0x00, 0x01, 'c', 0x00, 0x01, 'w', 0x00, 0x00}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.p.Encode(nil, tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("got % X, want % X", got, tt.want)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	long := strings.Repeat("x", maxStringLen+1)
	tests := []struct {
		name string
		p    Packet
		v    Version
	}{
		{"unknown version 0", &Pingreq{}, 0},
		{"unknown version 6", &Publish{Topic: "t"}, 6},
		{"auth in 3.1.1", &Auth{}, V311},
		{"publish qos 3", &Publish{Topic: "t", QoS: 3}, V311},
		{"publish topic too long", &Publish{Topic: long}, V311},
		{"publish property not allowed", &Publish{Topic: "t", Props: withProps(Properties{}, PropSessionExpiry)}, V5},
		{"publish unknown property bit", &Publish{Topic: "t", Props: Properties{Present: 1 << 60}}, V5},
		{"publish subscription identifier too large", &Publish{Topic: "t", Props: Properties{SubscriptionIDs: []uint32{maxVarint + 1}}}, V5},
		{"publish content type too long", &Publish{Topic: "t", Props: withProps(Properties{ContentType: long}, PropContentType)}, V5},
		{"publish correlation data too long", &Publish{Topic: "t",
			Props: withProps(Properties{CorrelationData: []byte(long)}, PropCorrelationData)}, V5},
		{"publish user property too long", &Publish{Topic: "t", Props: Properties{User: []UserProperty{{"k", long}}}}, V5},
		{"connect version mismatch", &Connect{Version: V5}, V311},
		{"connect will qos 3", &Connect{Will: &Will{Topic: "t", QoS: 3}}, V311},
		{"connect client id too long", &Connect{ClientID: long}, V311},
		{"connect password too long", &Connect{PasswordSet: true, Password: []byte(long)}, V5},
		{"connect will property not allowed", &Connect{Will: &Will{Topic: "t",
			Props: withProps(Properties{}, PropSessionExpiry)}}, V5},
		{"connack topic alias", &Connack{Props: withProps(Properties{TopicAlias: 1}, PropTopicAlias)}, V5},
		{"connack subscription identifier", &Connack{Props: Properties{SubscriptionIDs: []uint32{1}}}, V5},
		{"ack of type CONNECT", &Ack{PacketType: CONNECT}, V311},
		{"ack property not allowed", &Ack{PacketType: PUBREL, Props: withProps(Properties{}, PropSessionExpiry)}, V5},
		{"subscribe qos 3", &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a", QoS: 3}}}, V311},
		{"subscribe retain handling 3", &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a", RetainHandling: 3}}}, V5},
		{"subscribe two subscription identifiers", &Subscribe{PacketID: 1, Props: Properties{SubscriptionIDs: []uint32{1, 2}},
			Subscriptions: []Subscription{{Filter: "a"}}}, V5},
		{"subscribe filter too long", &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: long}}}, V311},
		{"unsubscribe filter too long", &Unsubscribe{PacketID: 1, Filters: []string{long}}, V311},
		{"disconnect property not allowed", &Disconnect{Props: withProps(Properties{}, PropAuthMethod)}, V5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte{1, 2, 3}
			got, err := tt.p.Encode(dst, tt.v)
			if !errors.Is(err, ErrInvalidPacket) {
				t.Fatalf("err = %v, want ErrInvalidPacket", err)
			}
			if !bytes.Equal(got, []byte{1, 2, 3}) {
				t.Errorf("dst changed to % X", got)
			}
		})
	}
	if _, err := startPacket(nil, 0x30, MaxRemainingLength+1); !errors.Is(err, ErrInvalidPacket) {
		t.Errorf("remaining length above the maximum: err = %v", err)
	}
}

func TestEncodePublishIDOffset(t *testing.T) {
	for _, v := range []Version{V311, V5} {
		for _, qos := range []byte{0, 1, 2} {
			t.Run(fmt.Sprintf("v%d/qos%d", v, qos), func(t *testing.T) {
				p := &Publish{QoS: qos, Topic: "a/b", Payload: []byte("data"),
					Props: withProps(Properties{MessageExpiry: 5}, PropMessageExpiry)}
				prefix := []byte("previous packets")
				out, off, err := EncodePublish(prefix, p, v)
				if err != nil {
					t.Fatal(err)
				}
				if qos == 0 {
					if off != -1 {
						t.Errorf("offset %d for QoS 0, want -1", off)
					}
					return
				}
				// The broker encodes once with id 0 and patches it.
				binary.BigEndian.PutUint16(out[off:], 0xBEEF)
				got, err := decodeRaw(out[len(prefix):], v)
				if err != nil {
					t.Fatal(err)
				}
				if id := got.(*Publish).PacketID; id != 0xBEEF {
					t.Errorf("patched packet id = %#x, want 0xBEEF", id)
				}
			})
		}
	}
}

func TestParseFixedHeader(t *testing.T) {
	tests := []struct {
		name    string
		b       []byte
		want    FixedHeader
		n       int
		wantErr error
	}{
		{"empty", nil, FixedHeader{}, 0, ErrIncomplete},
		{"type only", []byte{0x30}, FixedHeader{}, 0, ErrIncomplete},
		{"length continues", []byte{0x30, 0x80}, FixedHeader{}, 0, ErrIncomplete},
		{"length continues 3", []byte{0x30, 0x80, 0x80, 0x80}, FixedHeader{}, 0, ErrIncomplete},
		{"bad type before length", []byte{0x0F}, FixedHeader{}, 0, MalformedPacket},
		{"zero", []byte{0xC0, 0x00}, FixedHeader{Type: PINGREQ}, 2, nil},
		{"127", []byte{0x30, 0x7F}, FixedHeader{Type: PUBLISH, Remaining: 127}, 2, nil},
		{"128", []byte{0x30, 0x80, 0x01}, FixedHeader{Type: PUBLISH, Remaining: 128}, 3, nil},
		{"16383", []byte{0x30, 0xFF, 0x7F}, FixedHeader{Type: PUBLISH, Remaining: 16383}, 3, nil},
		{"16384", []byte{0x30, 0x80, 0x80, 0x01}, FixedHeader{Type: PUBLISH, Remaining: 16384}, 4, nil},
		{"2097152", []byte{0x30, 0x80, 0x80, 0x80, 0x01}, FixedHeader{Type: PUBLISH, Remaining: 2097152}, 5, nil},
		{"maximum", []byte{0x3D, 0xFF, 0xFF, 0xFF, 0x7F}, FixedHeader{Type: PUBLISH, Flags: 0xD, Remaining: MaxRemainingLength}, 5, nil},
		{"body bytes ignored", []byte{0x62, 0x02, 0x00, 0x01}, FixedHeader{Type: PUBREL, Flags: 2, Remaining: 2}, 2, nil},
		{"five byte length", []byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}, FixedHeader{}, 0, MalformedPacket},
		{"overlong length", []byte{0x30, 0x80, 0x80, 0x00}, FixedHeader{}, 0, MalformedPacket},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n, err := ParseFixedHeader(tt.b)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || h != tt.want || n != tt.n {
				t.Errorf("got %+v, %d, %v; want %+v, %d", h, n, err, tt.want, tt.n)
			}
		})
	}
}

// [MQTT-1.5.5-1] Variable byte integers use the fewest bytes.
func TestVarint(t *testing.T) {
	for _, v := range []int{0, 1, 127, 128, 16383, 16384, 2097151, 2097152, MaxRemainingLength} {
		b := appendVarint(nil, v)
		if len(b) != varintLen(v) {
			t.Errorf("%d: %d bytes, varintLen says %d", v, len(b), varintLen(v))
		}
		got, n, err := parseVarint(b)
		if err != nil || got != v || n != len(b) {
			t.Errorf("%d: parse % X = %d, %d, %v", v, b, got, n, err)
		}
	}
}

func TestReadPacket(t *testing.T) {
	var stream []byte
	var want []Packet
	for _, f := range validFixtures {
		if f.v == V5 {
			stream = append(stream, f.raw...)
			want = append(want, f.want)
		}
	}
	for name, r := range map[string]io.Reader{
		"whole":       bytes.NewReader(stream),
		"byte a time": iotest.OneByteReader(bytes.NewReader(stream)),
	} {
		t.Run(name, func(t *testing.T) {
			for i, w := range want {
				got, err := ReadPacket(r, V5, 0)
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if !reflect.DeepEqual(got, w) {
					t.Fatalf("packet %d:\n got  %#v\n want %#v", i, got, w)
				}
			}
			if _, err := ReadPacket(r, V5, 0); err != io.EOF {
				t.Errorf("after the last packet: err = %v, want io.EOF", err)
			}
		})
	}
}

func TestReadPacketErrors(t *testing.T) {
	publish := []byte{0x30, 0x07, 0x00, 0x03, 'a', '/', 'b', 'h', 'i'}
	tests := []struct {
		name    string
		in      []byte
		maxSize int
		want    error
	}{
		{"too large", publish, 8, PacketTooLarge},
		{"exactly the maximum", publish, 9, nil},
		{"header cut", publish[:1], 0, io.ErrUnexpectedEOF},
		{"length cut", []byte{0x30, 0x80}, 0, io.ErrUnexpectedEOF},
		{"body cut", publish[:5], 0, io.ErrUnexpectedEOF},
		{"malformed header", []byte{0x00, 0x00}, 0, MalformedPacket},
		{"five byte length", []byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}, 0, MalformedPacket},
		{"malformed body", []byte{0x38, 0x03, 0x00, 0x01, 't'}, 0, MalformedPacket},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadPacket(bytes.NewReader(tt.in), V311, tt.maxSize)
			if tt.want == nil {
				if err != nil {
					t.Errorf("err = %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestValidReasonCode(t *testing.T) {
	tests := []struct {
		t    Type
		c    ReasonCode
		want bool
	}{
		{CONNACK, Success, true},
		{CONNACK, BadUsernameOrPassword, true},
		{CONNACK, GrantedQoS1, false},
		{PUBACK, NoMatchingSubscribers, true},
		{PUBACK, PacketIDNotFound, false},
		{PUBREL, PacketIDNotFound, true},
		{PUBCOMP, NotAuthorized, false},
		{SUBACK, GrantedQoS2, true},
		{SUBACK, NoSubscriptionExisted, false},
		{UNSUBACK, NoSubscriptionExisted, true},
		{DISCONNECT, DisconnectWithWill, true},
		{DISCONNECT, GrantedQoS1, false},
		{AUTH, ReAuthenticate, true},
		{AUTH, NotAuthorized, false},
		{PUBLISH, Success, false},
	}
	for _, tt := range tests {
		if got := ValidReasonCode(tt.t, tt.c); got != tt.want {
			t.Errorf("ValidReasonCode(%s, %s) = %v, want %v", tt.t, tt.c, got, tt.want)
		}
	}
}

func TestTypeString(t *testing.T) {
	for typ, want := range map[Type]string{0: "RESERVED", CONNECT: "CONNECT", PUBREL: "PUBREL", AUTH: "AUTH", 16: "RESERVED"} {
		if got := typ.String(); got != want {
			t.Errorf("Type(%d).String() = %q, want %q", byte(typ), got, want)
		}
	}
}

// Allocation counts are part of the design (see DESIGN.md §6): decoding a
// small PUBLISH takes the packet and one buffer for topic and payload, and
// encoding into a reused buffer takes nothing.
func TestAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts in -short mode")
	}
	for _, v := range []Version{V311, V5} {
		raw, err := (&Publish{QoS: 1, PacketID: 1, Topic: "sensors/room1/temperature", Payload: make([]byte, 16)}).Encode(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			h, n, _ := ParseFixedHeader(raw)
			if _, err := Decode(h, raw[n:], v); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 2 {
			t.Errorf("v%d: decoding a small PUBLISH takes %v allocations, want <= 2", v, allocs)
		}
	}
	p := &Publish{QoS: 1, PacketID: 1, Topic: "sensors/room1/temperature", Payload: make([]byte, 1024),
		Props: Properties{User: []UserProperty{{"k", "v"}}}}
	buf := make([]byte, 0, 2048)
	if allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := EncodePublish(buf[:0], p, V5); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("EncodePublish into a reused buffer takes %v allocations, want 0", allocs)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		Match("sensors/+/temperature/#", "sensors/room1/temperature")
	}); allocs != 0 {
		t.Errorf("Match takes %v allocations, want 0", allocs)
	}
}

// decodeIntoFixtures decodes every fixture of the given types, valid or
// not, with into, twice over (the second round decodes over every packet
// of the first), and checks each against Decode: the same error, or an
// equal packet, which it hands to kept with Decode's. It returns how many
// fixtures it decoded and how many of them without error.
func decodeIntoFixtures(t *testing.T, types []Type, into func(FixedHeader, []byte, Version) (Packet, error), kept func(got, want Packet)) (n, valid int) {
	t.Helper()
	check := func(name string, raw []byte, v Version) {
		h, hn, err := ParseFixedHeader(raw)
		if err != nil || !slices.Contains(types, h.Type) || len(raw)-hn != h.Remaining {
			return
		}
		n++
		want, werr := Decode(h, raw[hn:], v)
		got, err := into(h, raw[hn:], v)
		if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
			t.Fatalf("%s: error %v, Decode error %v", name, err, werr)
		}
		if err != nil {
			return
		}
		valid++
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n got  %#v\n want %#v", name, got, want)
		}
		kept(got, want)
	}
	for round := range 2 {
		for _, f := range validFixtures {
			check(fmt.Sprint(f.name, " ", round), f.raw, f.v)
		}
		for _, f := range invalidFixtures {
			check(fmt.Sprint(f.name, " ", round), f.raw, f.v)
		}
	}
	return n, valid
}

// decodeAllocs encodes p for MQTT 5.0 and returns the allocations of one
// decode of it by decode, which must succeed.
func decodeAllocs(t *testing.T, p Packet, decode func(h FixedHeader, body []byte) error) float64 {
	t.Helper()
	raw, err := p.Encode(nil, V5)
	if err != nil {
		t.Fatal(err)
	}
	h, hn, _ := ParseFixedHeader(raw)
	return testing.AllocsPerRun(100, func() {
		if err := decode(h, raw[hn:]); err != nil {
			t.Fatal(err)
		}
	})
}

// DecodePublish gives what Decode gives for every PUBLISH fixture, valid or
// not, into one reused Publish: nothing of an earlier packet shows through
// (a v5 packet's properties, a QoS 1 packet id), and what an earlier packet
// handed out (its topic and payload) is not overwritten.
func TestDecodePublishReuse(t *testing.T) {
	var scratch Publish
	type kept struct {
		topic   string
		payload []byte
		want    *Publish
	}
	var all []kept
	n, valid := decodeIntoFixtures(t, []Type{PUBLISH}, func(h FixedHeader, body []byte, v Version) (Packet, error) {
		return &scratch, DecodePublish(h, body, v, &scratch)
	}, func(_, want Packet) {
		all = append(all, kept{scratch.Topic, scratch.Payload, want.(*Publish)})
	})
	if n < 10 || valid < 4 {
		t.Fatalf("only %d PUBLISH fixtures (%d valid)", n, valid)
	}
	for i, k := range all {
		if k.topic != k.want.Topic || !bytes.Equal(k.payload, k.want.Payload) {
			t.Errorf("packet %d: topic %q payload %q changed by later decodes, want %q %q", i, k.topic, k.payload, k.want.Topic, k.want.Payload)
		}
	}
	if err := DecodePublish(FixedHeader{Type: PUBACK, Remaining: 2}, []byte{0, 1}, V311, &scratch); err == nil {
		t.Error("DecodePublish took a PUBACK")
	}
	small := &Publish{QoS: 1, PacketID: 1, Topic: "sensors/room1/temperature", Payload: make([]byte, 16)}
	if allocs := decodeAllocs(t, small, func(h FixedHeader, body []byte) error {
		return DecodePublish(h, body, V5, &scratch)
	}); allocs > 1 {
		t.Errorf("DecodePublish of a small PUBLISH takes %v allocations, want <= 1 (its topic and payload)", allocs)
	}
}

// DecodeAck gives what Decode gives for every PUBACK, PUBREC, PUBREL and
// PUBCOMP fixture, valid or not, into one reused Ack: nothing of an
// earlier packet (a v5 reason code or reason string) shows through.
func TestDecodeAckReuse(t *testing.T) {
	var scratch Ack
	n, valid := decodeIntoFixtures(t, []Type{PUBACK, PUBREC, PUBREL, PUBCOMP}, func(h FixedHeader, body []byte, v Version) (Packet, error) {
		return &scratch, DecodeAck(h, body, v, &scratch)
	}, func(_, _ Packet) {})
	if n < 10 || valid < 4 {
		t.Fatalf("only %d acknowledgement fixtures (%d valid)", n, valid)
	}
	if err := DecodeAck(FixedHeader{Type: PUBLISH, Remaining: 3}, []byte{0, 1, 't'}, V311, &scratch); err == nil {
		t.Error("DecodeAck took a PUBLISH")
	}
	ack := &Ack{PacketType: PUBACK, PacketID: 7, ReasonCode: NoMatchingSubscribers}
	if allocs := decodeAllocs(t, ack, func(h FixedHeader, body []byte) error {
		return DecodeAck(h, body, V5, &scratch)
	}); allocs != 0 {
		t.Errorf("DecodeAck takes %v allocations, want 0", allocs)
	}
}

// Decode checks the flags again: a header need not come from
// ParseFixedHeader.
func TestDecodeChecksFlags(t *testing.T) {
	_, err := Decode(FixedHeader{Type: SUBSCRIBE, Flags: 0, Remaining: 6}, []byte{0x00, 0x01, 0x00, 0x01, 'a', 0x00}, V311)
	var e *Error
	if !errors.As(err, &e) || e.Rule != "MQTT-3.8.1-1" {
		t.Errorf("err = %v, want MalformedPacket [MQTT-3.8.1-1]", err)
	}
}

func TestErrorString(t *testing.T) {
	_, err := decodeRaw([]byte{0x38, 0x03, 0x00, 0x01, 't'}, V311)
	if got, want := err.Error(), "mqtt: malformed packet: DUP flag on a QoS 0 PUBLISH [MQTT-3.3.1-2]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	_, err = (&Auth{}).Encode(nil, V311)
	if got, want := err.Error(), "mqtt: packet cannot be encoded: AUTH does not exist in protocol version 4"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
