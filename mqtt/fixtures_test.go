package mqtt

import "bytes"

// A fixture is one whole packet on the wire (fixed header included) with the
// packet it decodes to, or the error it must give. Comments under each byte
// row say what the bytes are; "rl" is the remaining length.
type fixture struct {
	name string
	v    Version // version of the connection (a CONNECT carries its own)
	raw  []byte

	// Valid fixtures.
	want Packet
	// canon is what want encodes to when raw is not the shortest or
	// canonical form (omitted reason code, property order, ...).
	canon []byte

	// Invalid fixtures.
	code ReasonCode
	rule string // "" when the rule has no number in the specification
}

// withProps returns p with the presence bits of ids set.
func withProps(p Properties, ids ...PropID) Properties {
	for _, id := range ids {
		p.Set(id)
	}
	return p
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

var payload200 = bytes.Repeat([]byte{0xA5}, 200)

var validFixtures = []fixture{
	// CONNECT
	{name: "connect 3.1.1 minimal", v: V311, raw: []byte{
		0x10, 0x0E, // CONNECT, rl 14
		0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
		0x04,       // level 4
		0x02,       // flags: clean session
		0x00, 0x3C, // keep alive 60
		0x00, 0x02, 'c', '1', // client id "c1"
	}, want: &Connect{ProtocolName: "MQTT", Version: V311, CleanStart: true, KeepAlive: 60, ClientID: "c1"}},

	{name: "connect 3.1 with will, user name and password", v: V31, raw: []byte{
		0x10, 0x22, // CONNECT, rl 34
		0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', // protocol name
		0x03,       // level 3
		0xEE,       // flags: user name, password, will retain, will QoS 1, will, clean
		0x00, 0x0A, // keep alive 10
		0x00, 0x03, 'a', 'b', 'c', // client id
		0x00, 0x03, 'w', '/', 't', // will topic
		0x00, 0x03, 'b', 'y', 'e', // will payload
		0x00, 0x01, 'u', // user name
		0x00, 0x02, 'p', 'w', // password
	}, want: &Connect{ProtocolName: "MQIsdp", Version: V31, CleanStart: true, KeepAlive: 10, ClientID: "abc",
		Will:        &Will{Topic: "w/t", Payload: []byte("bye"), QoS: 1, Retain: true},
		UsernameSet: true, Username: "u", PasswordSet: true, Password: []byte("pw")}},

	{name: "connect 3.1.1 empty password", v: V311, raw: []byte{
		0x10, 0x13, // CONNECT, rl 19
		0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
		0xC0,       // flags: user name, password; clean session 0
		0x00, 0x00, // keep alive 0
		0x00, 0x01, 'c', // client id
		0x00, 0x02, 'u', 'n', // user name
		0x00, 0x00, // password, empty
	}, want: &Connect{ProtocolName: "MQTT", Version: V311, ClientID: "c", UsernameSet: true, Username: "un", PasswordSet: true}},

	{name: "connect 5 with properties and will properties", v: V5, raw: []byte{
		0x10, 0x34, // CONNECT, rl 52
		0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, // "MQTT" level 5
		0x96,       // flags: user name, will QoS 2, will, clean start
		0x00, 0x1E, // keep alive 30
		0x0F,                         // property length 15
		0x11, 0x00, 0x00, 0x0E, 0x10, // session expiry 3600
		0x21, 0x00, 0x14, // receive maximum 20
		0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v', // user property k=v
		0x00, 0x00, // client id "" (server assigns one)
		0x0E,       // will property length 14
		0x01, 0x01, // payload format indicator 1
		0x03, 0x00, 0x04, 't', 'e', 'x', 't', // content type
		0x18, 0x00, 0x00, 0x00, 0x05, // will delay 5
		0x00, 0x01, 'w', // will topic
		0x00, 0x00, // will payload, empty
		0x00, 0x02, 'u', 's', // user name
	}, want: &Connect{ProtocolName: "MQTT", Version: V5, CleanStart: true, KeepAlive: 30,
		Props: withProps(Properties{SessionExpiry: 3600, ReceiveMaximum: 20, User: []UserProperty{{"k", "v"}}},
			PropSessionExpiry, PropReceiveMaximum),
		Will: &Will{Topic: "w", QoS: 2, Props: withProps(Properties{PayloadFormat: 1, ContentType: "text", WillDelay: 5},
			PropPayloadFormat, PropContentType, PropWillDelay)},
		UsernameSet: true, Username: "us"}},

	{name: "connect 5 password without user name, enhanced auth", v: V5, raw: []byte{
		0x10, 0x20, // CONNECT, rl 32
		0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05,
		0x40,       // flags: password only (allowed in 5.0)
		0x00, 0x00, // keep alive 0
		0x0D,                                      // property length 13
		0x15, 0x00, 0x05, 'S', 'C', 'R', 'A', 'M', // authentication method
		0x16, 0x00, 0x02, 0x01, 0x02, // authentication data
		0x00, 0x01, 'x', // client id
		0x00, 0x03, 's', 'e', 'c', // password
	}, want: &Connect{ProtocolName: "MQTT", Version: V5, ClientID: "x",
		Props:       withProps(Properties{AuthMethod: "SCRAM", AuthData: []byte{1, 2}}, PropAuthMethod, PropAuthData),
		PasswordSet: true, Password: []byte("sec")}},

	// CONNACK
	{name: "connack 3.1.1 session present", v: V311, raw: []byte{
		0x20, 0x02, // CONNACK, rl 2
		0x01, // session present
		0x00, // accepted
	}, want: &Connack{SessionPresent: true}},
	{name: "connack 3.1.1 bad user name or password", v: V311, raw: []byte{
		0x20, 0x02, 0x00,
		0x04, // return code 4
	}, want: &Connack{ReasonCode: V3BadUsernamePassword}},
	{name: "connack 3.1 first byte unused", v: V31, raw: []byte{
		0x20, 0x02, 0x00, 0x05, // return code 5, not authorized
	}, want: &Connack{ReasonCode: V3NotAuthorized}},
	{name: "connack 5 with properties", v: V5, raw: []byte{
		0x20, 0x10, // CONNACK, rl 16
		0x00,                            // flags
		0x00,                            // success
		0x0D,                            // property length 13
		0x12, 0x00, 0x03, 'a', 'b', 'c', // assigned client id
		0x22, 0x00, 0x0A, // topic alias maximum 10
		0x24, 0x01, // maximum QoS 1
		0x25, 0x00, // retain not available
	}, want: &Connack{Props: withProps(Properties{AssignedClientID: "abc", TopicAliasMaximum: 10, MaximumQoS: 1},
		PropAssignedClientID, PropTopicAliasMaximum, PropMaximumQoS, PropRetainAvailable)}},
	{name: "connack 5 not authorized", v: V5, raw: []byte{
		0x20, 0x03, 0x00,
		0x87, // not authorized
		0x00, // no properties
	}, want: &Connack{ReasonCode: NotAuthorized}},

	// PUBLISH
	{name: "publish 3.1.1 qos 0", v: V311, raw: []byte{
		0x30, 0x07, // PUBLISH QoS 0, rl 7
		0x00, 0x03, 'a', '/', 'b', // topic
		'h', 'i', // payload
	}, want: &Publish{Topic: "a/b", Payload: []byte("hi")}},
	{name: "publish 3.1.1 qos 1 dup retain empty payload", v: V311, raw: []byte{
		0x3B, // PUBLISH, DUP, QoS 1, RETAIN
		0x05,
		0x00, 0x01, 't', // topic
		0x00, 0x0A, // packet id 10
	}, want: &Publish{Dup: true, QoS: 1, Retain: true, Topic: "t", PacketID: 10}},
	{name: "publish 3.1 qos 2", v: V31, raw: []byte{
		0x34, 0x0C, // PUBLISH QoS 2, rl 12
		0x00, 0x05, 'x', '/', 'y', '/', 'z', // topic
		0x12, 0x34, // packet id
		0x01, 0x02, 0x03, // payload
	}, want: &Publish{QoS: 2, Topic: "x/y/z", PacketID: 0x1234, Payload: []byte{1, 2, 3}}},
	{name: "publish 3.1.1 two byte remaining length", v: V311, raw: cat([]byte{
		0x30, 0xCB, 0x01, // PUBLISH QoS 0, rl 203 (0x4B + 1*128)
		0x00, 0x01, '$', // topic "$"
	}, payload200), want: &Publish{Topic: "$", Payload: payload200}},
	// Characters MQTT allows although a receiver may reject them, and a BOM
	// that must not be stripped [MQTT-1.5.4-3].
	{name: "publish 3.1.1 topic with control characters, non-character and BOM", v: V311, raw: []byte{
		0x30, 0x0B,
		0x00, 0x09, // topic, 9 bytes:
		0x01,       // U+0001
		0xC2, 0x9F, // U+009F (C1 control)
		0xEF, 0xBF, 0xBF, // U+FFFF (non-character)
		0xEF, 0xBB, 0xBF, // U+FEFF (BOM)
	}, want: &Publish{Topic: "\x01\u009f\uffff\ufeff"}},
	{name: "publish 5 qos 1 with properties", v: V5, raw: []byte{
		0x32, 0x27, // PUBLISH QoS 1, rl 39
		0x00, 0x03, 's', '/', '1', // topic
		0x00, 0x01, // packet id 1
		0x1D,       // property length 29
		0x01, 0x01, // payload format: UTF-8
		0x02, 0x00, 0x00, 0x00, 0x3C, // message expiry 60
		0x08, 0x00, 0x05, 'r', 'e', 'p', '/', '1', // response topic
		0x09, 0x00, 0x02, 'i', 'd', // correlation data
		0x0B, 0x05, // subscription identifier 5
		0x26, 0x00, 0x01, 'a', 0x00, 0x01, 'b', // user property
		'{', '}', // payload
	}, want: &Publish{QoS: 1, Topic: "s/1", PacketID: 1, Payload: []byte("{}"),
		Props: withProps(Properties{PayloadFormat: 1, MessageExpiry: 60, ResponseTopic: "rep/1",
			CorrelationData: []byte("id"), SubscriptionIDs: []uint32{5}, User: []UserProperty{{"a", "b"}}},
			PropPayloadFormat, PropMessageExpiry, PropResponseTopic, PropCorrelationData)}},
	{name: "publish 5 empty topic with topic alias", v: V5, raw: []byte{
		0x30, 0x07,
		0x00, 0x00, // topic "" (resolved through the alias)
		0x03,             // property length 3
		0x23, 0x00, 0x05, // topic alias 5
		'p',
	}, want: &Publish{Payload: []byte("p"), Props: withProps(Properties{TopicAlias: 5}, PropTopicAlias)}},
	{name: "publish 5 two subscription identifiers", v: V5, raw: []byte{
		0x30, 0x09,
		0x00, 0x01, 'a',
		0x05,       // property length 5
		0x0B, 0x01, // subscription identifier 1
		0x0B, 0x81, 0x01, // subscription identifier 129 (two byte varint)
	}, want: &Publish{Topic: "a", Props: Properties{SubscriptionIDs: []uint32{1, 129}}}},
	{name: "publish 5 no properties", v: V5, raw: []byte{
		0x30, 0x05, 0x00, 0x01, 't',
		0x00, // property length 0
		'x',
	}, want: &Publish{Topic: "t", Payload: []byte("x")}},
	{name: "publish 5 properties out of order", v: V5, raw: []byte{
		0x30, 0x0D,
		0x00, 0x01, 't',
		0x09,                                   // property length 9
		0x26, 0x00, 0x01, 'a', 0x00, 0x01, 'b', // user property first...
		0x01, 0x01, // ...then payload format
	}, want: &Publish{Topic: "t", Props: withProps(Properties{PayloadFormat: 1, User: []UserProperty{{"a", "b"}}}, PropPayloadFormat)},
		canon: []byte{0x30, 0x0D, 0x00, 0x01, 't', 0x09, 0x01, 0x01, 0x26, 0x00, 0x01, 'a', 0x00, 0x01, 'b'}},

	// PUBACK, PUBREC, PUBREL, PUBCOMP
	{name: "puback 3.1.1", v: V311, raw: []byte{0x40, 0x02, 0x00, 0x07}, want: &Ack{PacketType: PUBACK, PacketID: 7}},
	{name: "pubrec 3.1.1", v: V311, raw: []byte{0x50, 0x02, 0x00, 0x08}, want: &Ack{PacketType: PUBREC, PacketID: 8}},
	{name: "pubrel 3.1.1", v: V311, raw: []byte{
		0x62, // PUBREL, flags 0b0010
		0x02, 0x00, 0x09,
	}, want: &Ack{PacketType: PUBREL, PacketID: 9}},
	{name: "pubcomp 3.1", v: V31, raw: []byte{0x70, 0x02, 0x00, 0x0A}, want: &Ack{PacketType: PUBCOMP, PacketID: 10}},
	{name: "puback 5 short form", v: V5, raw: []byte{
		0x40, 0x02, 0x00, 0x07, // reason code omitted: success
	}, want: &Ack{PacketType: PUBACK, PacketID: 7}},
	{name: "puback 5 reason code only", v: V5, raw: []byte{
		0x40, 0x03, 0x00, 0x07,
		0x10, // no matching subscribers; property length omitted
	}, want: &Ack{PacketType: PUBACK, PacketID: 7, ReasonCode: NoMatchingSubscribers}},
	{name: "puback 5 reason string", v: V5, raw: []byte{
		0x40, 0x09, 0x00, 0x07,
		0x87,                       // not authorized
		0x05,                       // property length 5
		0x1F, 0x00, 0x02, 'n', 'o', // reason string
	}, want: &Ack{PacketType: PUBACK, PacketID: 7, ReasonCode: NotAuthorized,
		Props: withProps(Properties{ReasonString: "no"}, PropReasonString)}},
	{name: "puback 5 success with empty properties", v: V5, raw: []byte{
		0x40, 0x04, 0x00, 0x07,
		0x00, // success
		0x00, // property length 0
	}, want: &Ack{PacketType: PUBACK, PacketID: 7}, canon: []byte{0x40, 0x02, 0x00, 0x07}},
	{name: "pubcomp 5 success without property length", v: V5, raw: []byte{
		0x70, 0x03, 0x00, 0x07, 0x00,
	}, want: &Ack{PacketType: PUBCOMP, PacketID: 7}, canon: []byte{0x70, 0x02, 0x00, 0x07}},
	{name: "pubrel 5 packet identifier not found", v: V5, raw: []byte{
		0x62, 0x03, 0x00, 0x09, 0x92,
	}, want: &Ack{PacketType: PUBREL, PacketID: 9, ReasonCode: PacketIDNotFound}},
	{name: "pubrec 5 user property", v: V5, raw: []byte{
		0x50, 0x0B, 0x00, 0x08,
		0x00,                                   // success
		0x07,                                   // property length 7
		0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v', // user property
	}, want: &Ack{PacketType: PUBREC, PacketID: 8, Props: Properties{User: []UserProperty{{"k", "v"}}}}},

	// SUBSCRIBE
	{name: "subscribe 3.1.1 two filters", v: V311, raw: []byte{
		0x82, 0x10, // SUBSCRIBE, flags 0b0010, rl 16
		0x00, 0x01, // packet id
		0x00, 0x03, 'a', '/', '#', 0x01, // "a/#" QoS 1
		0x00, 0x05, 's', '/', '+', '/', 'x', 0x02, // "s/+/x" QoS 2
	}, want: &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a/#", QoS: 1}, {Filter: "s/+/x", QoS: 2}}}},
	{name: "subscribe 5 options and subscription identifier", v: V5, raw: []byte{
		0x82, 0x16, // rl 22
		0x00, 0x02, // packet id
		0x02,       // property length 2
		0x0B, 0x0A, // subscription identifier 10
		0x00, 0x0A, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 't',
		0x29, // retain handling 2, retain as published, QoS 1
		0x00, 0x01, 'n',
		0x14, // retain handling 1, no local, QoS 0
	}, want: &Subscribe{PacketID: 2, Props: Properties{SubscriptionIDs: []uint32{10}}, Subscriptions: []Subscription{
		{Filter: "$share/g/t", QoS: 1, RetainAsPublished: true, RetainHandling: 2},
		{Filter: "n", NoLocal: true, RetainHandling: 1}}}},
	{name: "subscribe 5 bad filter syntax is left to the caller", v: V5, raw: []byte{
		0x82, 0x0B,
		0x00, 0x03, // packet id
		0x00,                                // property length 0
		0x00, 0x05, 'a', '/', '#', '/', 'b', // "a/#/b": SUBACK 0x8F, not a malformed packet
		0x00,
	}, want: &Subscribe{PacketID: 3, Subscriptions: []Subscription{{Filter: "a/#/b"}}}},

	// SUBACK
	{name: "suback 3.1.1", v: V311, raw: []byte{
		0x90, 0x05, 0x00, 0x01,
		0x00, 0x01, 0x80, // granted 0, granted 1, failure
	}, want: &Suback{PacketID: 1, ReasonCodes: []ReasonCode{GrantedQoS0, GrantedQoS1, V3SubackFailure}}},
	{name: "suback 5 with reason string", v: V5, raw: []byte{
		0x90, 0x0B, 0x00, 0x02,
		0x05,                       // property length 5
		0x1F, 0x00, 0x02, 'o', 'k', // reason string
		0x01, 0x8F, 0x00, // granted 1, topic filter invalid, granted 0
	}, want: &Suback{PacketID: 2, Props: withProps(Properties{ReasonString: "ok"}, PropReasonString),
		ReasonCodes: []ReasonCode{GrantedQoS1, TopicFilterInvalid, GrantedQoS0}}},

	// UNSUBSCRIBE, UNSUBACK
	{name: "unsubscribe 3.1.1", v: V311, raw: []byte{
		0xA2, 0x0A, // UNSUBSCRIBE, flags 0b0010, rl 10
		0x00, 0x03,
		0x00, 0x03, 'a', '/', 'b',
		0x00, 0x01, 'c',
	}, want: &Unsubscribe{PacketID: 3, Filters: []string{"a/b", "c"}}},
	{name: "unsubscribe 5", v: V5, raw: []byte{
		0xA2, 0x06, 0x00, 0x04,
		0x00, // property length 0
		0x00, 0x01, 'x',
	}, want: &Unsubscribe{PacketID: 4, Filters: []string{"x"}}},
	{name: "unsuback 3.1.1", v: V311, raw: []byte{0xB0, 0x02, 0x00, 0x03}, want: &Unsuback{PacketID: 3}},
	{name: "unsuback 5", v: V5, raw: []byte{
		0xB0, 0x05, 0x00, 0x04,
		0x00,       // property length 0
		0x00, 0x11, // success, no subscription existed
	}, want: &Unsuback{PacketID: 4, ReasonCodes: []ReasonCode{Success, NoSubscriptionExisted}}},

	// PINGREQ, PINGRESP
	{name: "pingreq 3.1.1", v: V311, raw: []byte{0xC0, 0x00}, want: &Pingreq{}},
	{name: "pingresp 5", v: V5, raw: []byte{0xD0, 0x00}, want: &Pingresp{}},

	// DISCONNECT
	{name: "disconnect 3.1.1", v: V311, raw: []byte{0xE0, 0x00}, want: &Disconnect{}},
	{name: "disconnect 5 short form", v: V5, raw: []byte{0xE0, 0x00}, want: &Disconnect{}},
	{name: "disconnect 5 reason code only", v: V5, raw: []byte{
		0xE0, 0x01,
		0x04, // disconnect with will message
	}, want: &Disconnect{ReasonCode: DisconnectWithWill}},
	{name: "disconnect 5 session expiry", v: V5, raw: []byte{
		0xE0, 0x07,
		0x00,                         // normal disconnection
		0x05,                         // property length 5
		0x11, 0x00, 0x00, 0x00, 0x00, // session expiry 0
	}, want: &Disconnect{Props: withProps(Properties{}, PropSessionExpiry)}},
	{name: "disconnect 5 success with empty properties", v: V5, raw: []byte{
		0xE0, 0x02, 0x00, 0x00,
	}, want: &Disconnect{}, canon: []byte{0xE0, 0x00}},

	// AUTH
	{name: "auth 5 continue", v: V5, raw: []byte{
		0xF0, 0x0E,
		0x18,                                      // continue authentication
		0x0C,                                      // property length 12
		0x15, 0x00, 0x05, 'S', 'C', 'R', 'A', 'M', // authentication method
		0x16, 0x00, 0x01, 'x', // authentication data
	}, want: &Auth{ReasonCode: ContinueAuthentication,
		Props: withProps(Properties{AuthMethod: "SCRAM", AuthData: []byte("x")}, PropAuthMethod, PropAuthData)}},
	{name: "auth 5 short form", v: V5, raw: []byte{0xF0, 0x00}, want: &Auth{}},
}

var invalidFixtures = []fixture{
	// Fixed header.
	{name: "packet type 0", v: V311, raw: []byte{0x00, 0x00}, code: MalformedPacket, rule: "MQTT-2.1.3-1"},
	{name: "connack with flags", v: V311, raw: []byte{0x21, 0x02, 0x00, 0x00}, code: MalformedPacket, rule: "MQTT-2.1.3-1"},
	{name: "auth with flags", v: V5, raw: []byte{0xF1, 0x00}, code: MalformedPacket, rule: "MQTT-2.1.3-1"},
	{name: "publish qos 3", v: V311, raw: []byte{0x36, 0x03, 0x00, 0x01, 't'}, code: MalformedPacket, rule: "MQTT-3.3.1-4"},
	{name: "pubrel flags 0", v: V311, raw: []byte{0x60, 0x02, 0x00, 0x01}, code: MalformedPacket, rule: "MQTT-3.6.1-1"},
	{name: "subscribe flags 0", v: V311, raw: []byte{0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00}, code: MalformedPacket, rule: "MQTT-3.8.1-1"},
	{name: "unsubscribe flags 3", v: V311, raw: []byte{0xA3, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'}, code: MalformedPacket, rule: "MQTT-3.10.1-1"},
	{name: "remaining length of 5 bytes", v: V311, raw: []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F}, code: MalformedPacket, rule: "MQTT-1.5.5-1"},
	{name: "remaining length not minimal", v: V311, raw: []byte{0xC0, 0x80, 0x00}, code: MalformedPacket, rule: "MQTT-1.5.5-1"},
	{name: "pingreq with a body", v: V311, raw: []byte{0xC0, 0x01, 0x00}, code: MalformedPacket},
	{name: "pingresp with a body", v: V5, raw: []byte{0xD0, 0x01, 0x00}, code: MalformedPacket},
	{name: "disconnect 3.1.1 with a body", v: V311, raw: []byte{0xE0, 0x01, 0x00}, code: MalformedPacket},
	{name: "auth on 3.1.1", v: V311, raw: []byte{0xF0, 0x00}, code: ProtocolError},

	// CONNECT.
	{name: "connect unknown protocol name", v: V311, raw: []byte{
		0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'X', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00,
	}, code: ProtocolError, rule: "MQTT-3.1.2-1"},
	{name: "connect MQTT level 3", v: V311, raw: []byte{
		0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x03, 0x02, 0x00, 0x3C, 0x00, 0x00,
	}, code: UnsupportedProtocolVersion, rule: "MQTT-3.1.2-2"},
	{name: "connect MQTT level 6", v: V311, raw: []byte{
		0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x06, 0x02, 0x00, 0x3C, 0x00, 0x00,
	}, code: UnsupportedProtocolVersion, rule: "MQTT-3.1.2-2"},
	{name: "connect MQIsdp level 4", v: V311, raw: []byte{
		0x10, 0x0E, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00,
	}, code: UnsupportedProtocolVersion, rule: "MQTT-3.1.2-2"},
	{name: "connect bridge bit on level", v: V311, raw: []byte{
		0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x84, 0x02, 0x00, 0x3C, 0x00, 0x00,
	}, code: UnsupportedProtocolVersion, rule: "MQTT-3.1.2-2"},
	{name: "connect reserved flag", v: V311, raw: []byte{
		0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
		0x03, // clean session + reserved bit
		0x00, 0x3C, 0x00, 0x00,
	}, code: MalformedPacket, rule: "MQTT-3.1.2-3"},
	{name: "connect 3.1.1 will qos without will", v: V311, raw: []byte{
		0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
		0x0A, // will QoS 1, no will flag
		0x00, 0x3C, 0x00, 0x00,
	}, code: MalformedPacket, rule: "MQTT-3.1.2-13"},
	{name: "connect 5 will qos without will", v: V5, raw: []byte{
		0x10, 0x0D, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05,
		0x12, // will QoS 2, no will flag
		0x00, 0x3C, 0x00, 0x00, 0x00,
	}, code: MalformedPacket, rule: "MQTT-3.1.2-11"},
	{name: "connect will qos 3", v: V311, raw: []byte{
		0x10, 0x11, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
		0x1E, // will QoS 3, will, clean
		0x00, 0x3C, 0x00, 0x00, 0x00, 0x01, 't', 0x00, 0x00,
	}, code: MalformedPacket, rule: "MQTT-3.1.2-14"},
	{name: "connect will retain without will", v: V311, raw: []byte{
		0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
		0x22, // will retain, clean
		0x00, 0x3C, 0x00, 0x00,
	}, code: MalformedPacket, rule: "MQTT-3.1.2-15"},
	{name: "connect 3.1.1 password without user name", v: V311, raw: []byte{
		0x10, 0x0E, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
		0x42, // password, clean
		0x00, 0x3C, 0x00, 0x00, 0x00, 0x00,
	}, code: MalformedPacket, rule: "MQTT-3.1.2-22"},
	{name: "connect client id not UTF-8", v: V311, raw: []byte{
		0x10, 0x0E, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3C,
		0x00, 0x02, 0xC3, 0x28, // invalid two byte sequence
	}, code: MalformedPacket, rule: "MQTT-1.5.4-1"},
	{name: "connect client id with U+0000", v: V311, raw: []byte{
		0x10, 0x0D, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3C,
		0x00, 0x01, 0x00,
	}, code: MalformedPacket, rule: "MQTT-1.5.4-2"},
	{name: "connect bytes after the payload", v: V311, raw: []byte{
		0x10, 0x0D, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00,
		0xFF, // extra
	}, code: MalformedPacket},
	{name: "connect missing client id", v: V311, raw: []byte{
		0x10, 0x0A, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3C,
	}, code: MalformedPacket},
	{name: "connect client id longer than the packet", v: V311, raw: []byte{
		0x10, 0x0D, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x05, 'a',
	}, code: MalformedPacket},
	{name: "connect user name flag without user name", v: V311, raw: []byte{
		0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x82, 0x00, 0x3C, 0x00, 0x00,
	}, code: MalformedPacket},
	{name: "connect will topic with wildcard", v: V311, raw: []byte{
		0x10, 0x11, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x06, 0x00, 0x3C, 0x00, 0x00,
		0x00, 0x01, '#', // will topic
		0x00, 0x00, // will payload
	}, code: TopicNameInvalid, rule: "MQTT-3.3.2-2"},
	{name: "connect 5 receive maximum 0", v: V5, raw: []byte{
		0x10, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3C,
		0x03, 0x21, 0x00, 0x00, // receive maximum 0
		0x00, 0x00,
	}, code: ProtocolError},
	{name: "connect 5 maximum packet size 0", v: V5, raw: []byte{
		0x10, 0x12, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3C,
		0x05, 0x27, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00,
	}, code: ProtocolError},
	{name: "connect 5 session expiry twice", v: V5, raw: []byte{
		0x10, 0x17, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3C,
		0x0A, 0x11, 0x00, 0x00, 0x00, 0x01, 0x11, 0x00, 0x00, 0x00, 0x02,
		0x00, 0x00,
	}, code: ProtocolError},
	{name: "connect 5 topic alias property", v: V5, raw: []byte{
		0x10, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3C,
		0x03, 0x23, 0x00, 0x01, // topic alias: PUBLISH only
		0x00, 0x00,
	}, code: MalformedPacket},
	{name: "connect 5 unknown property", v: V5, raw: []byte{
		0x10, 0x0F, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3C,
		0x02, 0x7F, 0x00,
		0x00, 0x00,
	}, code: MalformedPacket},
	{name: "connect 5 property length beyond the packet", v: V5, raw: []byte{
		0x10, 0x0B, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3C,
		0x09, // property length 9, but nothing follows
	}, code: MalformedPacket},
	{name: "connect 5 property cut short", v: V5, raw: []byte{
		0x10, 0x0F, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3C,
		0x02, 0x21, 0x00, // receive maximum needs two bytes
		0x00, 0x00,
	}, code: MalformedPacket},
	{name: "connect 5 request problem information 2", v: V5, raw: []byte{
		0x10, 0x0F, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3C,
		0x02, 0x17, 0x02,
		0x00, 0x00,
	}, code: ProtocolError},
	{name: "connect 5 authentication data without method", v: V5, raw: []byte{
		0x10, 0x11, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3C,
		0x04, 0x16, 0x00, 0x01, 'x',
		0x00, 0x00,
	}, code: ProtocolError},
	{name: "connect 5 session expiry in will properties", v: V5, raw: []byte{
		0x10, 0x18, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x06, 0x00, 0x3C, 0x00,
		0x00, 0x00, // client id
		0x05, 0x11, 0x00, 0x00, 0x00, 0x01, // will properties: session expiry is not a will property
		0x00, 0x01, 't', 0x00, 0x00,
	}, code: MalformedPacket},
	{name: "connect 5 response topic with wildcard in will", v: V5, raw: []byte{
		0x10, 0x17, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x06, 0x00, 0x3C, 0x00,
		0x00, 0x00,
		0x04, 0x08, 0x00, 0x01, '+', // response topic "+"
		0x00, 0x01, 't', 0x00, 0x00,
	}, code: ProtocolError, rule: "MQTT-3.3.2-14"},

	// CONNACK.
	{name: "connack reserved flags", v: V311, raw: []byte{0x20, 0x02, 0x02, 0x00}, code: MalformedPacket, rule: "MQTT-3.2.2-1"},
	{name: "connack 3.1.1 session present on refusal", v: V311, raw: []byte{0x20, 0x02, 0x01, 0x05}, code: ProtocolError, rule: "MQTT-3.2.2-4"},
	{name: "connack 5 session present on refusal", v: V5, raw: []byte{0x20, 0x03, 0x01, 0x87, 0x00}, code: ProtocolError, rule: "MQTT-3.2.2-6"},
	{name: "connack 3.1.1 reserved return code", v: V311, raw: []byte{0x20, 0x02, 0x00, 0x06}, code: ProtocolError},
	{name: "connack 3.1.1 too long", v: V311, raw: []byte{0x20, 0x03, 0x00, 0x00, 0x00}, code: MalformedPacket},
	{name: "connack 5 invalid reason code", v: V5, raw: []byte{0x20, 0x03, 0x00, 0x01, 0x00}, code: ProtocolError, rule: "MQTT-3.2.2-8"},
	{name: "connack 5 without property length", v: V5, raw: []byte{0x20, 0x02, 0x00, 0x00}, code: MalformedPacket},
	{name: "connack 5 maximum qos 2", v: V5, raw: []byte{0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x02}, code: ProtocolError},
	{name: "connack 5 retain available 2", v: V5, raw: []byte{0x20, 0x05, 0x00, 0x00, 0x02, 0x25, 0x02}, code: ProtocolError},

	// PUBLISH.
	{name: "publish dup on qos 0", v: V311, raw: []byte{0x38, 0x03, 0x00, 0x01, 't'}, code: MalformedPacket, rule: "MQTT-3.3.1-2"},
	{name: "publish topic with +", v: V311, raw: []byte{0x30, 0x05, 0x00, 0x03, 'a', '/', '+'}, code: TopicNameInvalid, rule: "MQTT-3.3.2-2"},
	{name: "publish topic with #", v: V5, raw: []byte{0x30, 0x04, 0x00, 0x01, '#', 0x00}, code: TopicNameInvalid, rule: "MQTT-3.3.2-2"},
	{name: "publish 3.1.1 qos 1 packet id 0", v: V311, raw: []byte{0x32, 0x05, 0x00, 0x01, 't', 0x00, 0x00}, code: MalformedPacket, rule: "MQTT-2.3.1-1"},
	{name: "publish 5 qos 2 packet id 0", v: V5, raw: []byte{0x34, 0x06, 0x00, 0x01, 't', 0x00, 0x00, 0x00}, code: MalformedPacket, rule: "MQTT-2.2.1-3"},
	{name: "publish 3.1.1 empty topic", v: V311, raw: []byte{0x30, 0x02, 0x00, 0x00}, code: ProtocolError, rule: "MQTT-4.7.3-1"},
	{name: "publish 5 empty topic without alias", v: V5, raw: []byte{0x30, 0x03, 0x00, 0x00, 0x00}, code: ProtocolError, rule: "MQTT-4.7.3-1"},
	{name: "publish 5 topic alias 0", v: V5, raw: []byte{
		0x30, 0x07, 0x00, 0x01, 't', 0x03, 0x23, 0x00, 0x00,
	}, code: TopicAliasInvalid, rule: "MQTT-3.3.2-8"},
	{name: "publish 5 topic alias twice", v: V5, raw: []byte{
		0x30, 0x0A, 0x00, 0x01, 't', 0x06, 0x23, 0x00, 0x01, 0x23, 0x00, 0x02,
	}, code: ProtocolError},
	{name: "publish 5 subscription identifier 0", v: V5, raw: []byte{
		0x30, 0x06, 0x00, 0x01, 't', 0x02, 0x0B, 0x00,
	}, code: ProtocolError},
	{name: "publish 5 subscription identifier of 5 bytes", v: V5, raw: []byte{
		0x30, 0x0A, 0x00, 0x01, 't', 0x06, 0x0B, 0x80, 0x80, 0x80, 0x80, 0x01,
	}, code: MalformedPacket, rule: "MQTT-1.5.5-1"},
	{name: "publish 5 payload format 2", v: V5, raw: []byte{
		0x30, 0x06, 0x00, 0x01, 't', 0x02, 0x01, 0x02,
	}, code: ProtocolError},
	{name: "publish 5 response topic with wildcard", v: V5, raw: []byte{
		0x30, 0x08, 0x00, 0x01, 't', 0x04, 0x08, 0x00, 0x01, '#',
	}, code: ProtocolError, rule: "MQTT-3.3.2-14"},
	{name: "publish 5 session expiry property", v: V5, raw: []byte{
		0x30, 0x09, 0x00, 0x01, 't', 0x05, 0x11, 0x00, 0x00, 0x00, 0x01,
	}, code: MalformedPacket},
	{name: "publish 5 property length of 5 bytes", v: V5, raw: []byte{
		0x30, 0x08, 0x00, 0x01, 't', 0x80, 0x80, 0x80, 0x80, 0x01,
	}, code: MalformedPacket, rule: "MQTT-1.5.5-1"},
	{name: "publish 5 user property value not UTF-8", v: V5, raw: []byte{
		0x30, 0x0B, 0x00, 0x01, 't', 0x07, 0x26, 0x00, 0x01, 'k', 0x00, 0x01, 0xFF,
	}, code: MalformedPacket, rule: "MQTT-1.5.4-1"},
	{name: "publish topic longer than the packet", v: V311, raw: []byte{0x30, 0x03, 0x00, 0x05, 'a'}, code: MalformedPacket},
	{name: "publish topic with a surrogate", v: V311, raw: []byte{
		0x30, 0x05, 0x00, 0x03, 0xED, 0xA0, 0x80, // U+D800 encoded
	}, code: MalformedPacket, rule: "MQTT-1.5.4-1"},
	{name: "publish topic with an overlong encoding", v: V311, raw: []byte{
		0x30, 0x04, 0x00, 0x02, 0xC0, 0xAF, // overlong '/'
	}, code: MalformedPacket, rule: "MQTT-1.5.4-1"},
	{name: "publish topic with U+0000", v: V311, raw: []byte{0x30, 0x04, 0x00, 0x02, 'a', 0x00}, code: MalformedPacket, rule: "MQTT-1.5.4-2"},
	{name: "publish qos 1 without packet id", v: V311, raw: []byte{0x32, 0x03, 0x00, 0x01, 't'}, code: MalformedPacket},

	// PUBACK, PUBREC, PUBREL, PUBCOMP.
	{name: "puback 3.1.1 too long", v: V311, raw: []byte{0x40, 0x03, 0x00, 0x01, 0x00}, code: MalformedPacket},
	{name: "puback too short", v: V311, raw: []byte{0x40, 0x01, 0x00}, code: MalformedPacket},
	{name: "puback 5 reason code of PUBREL", v: V5, raw: []byte{0x40, 0x03, 0x00, 0x01, 0x92}, code: ProtocolError},
	{name: "pubrel 5 reason code of PUBACK", v: V5, raw: []byte{0x62, 0x03, 0x00, 0x01, 0x10}, code: ProtocolError},
	{name: "pubcomp 5 topic alias property", v: V5, raw: []byte{0x70, 0x07, 0x00, 0x01, 0x00, 0x03, 0x23, 0x00, 0x01}, code: MalformedPacket},
	{name: "pubrec 5 reason string twice", v: V5, raw: []byte{
		0x50, 0x0C, 0x00, 0x01, 0x80, 0x08, 0x1F, 0x00, 0x01, 'a', 0x1F, 0x00, 0x01, 'b',
	}, code: ProtocolError},

	// SUBSCRIBE.
	{name: "subscribe 3.1.1 without filters", v: V311, raw: []byte{0x82, 0x02, 0x00, 0x01}, code: ProtocolError, rule: "MQTT-3.8.3-3"},
	{name: "subscribe 5 without filters", v: V5, raw: []byte{0x82, 0x03, 0x00, 0x01, 0x00}, code: ProtocolError, rule: "MQTT-3.8.3-2"},
	{name: "subscribe packet id 0", v: V311, raw: []byte{0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 'a', 0x00}, code: MalformedPacket, rule: "MQTT-2.3.1-1"},
	{name: "subscribe 3.1.1 reserved option bits", v: V311, raw: []byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x04}, code: MalformedPacket, rule: "MQTT-3-8.3-4"},
	{name: "subscribe 3.1.1 qos 3", v: V311, raw: []byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x03}, code: MalformedPacket, rule: "MQTT-3-8.3-4"},
	{name: "subscribe 5 reserved option bits", v: V5, raw: []byte{0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x40}, code: MalformedPacket, rule: "MQTT-3.8.3-5"},
	{name: "subscribe 5 retain handling 3", v: V5, raw: []byte{0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x30}, code: ProtocolError},
	{name: "subscribe 5 qos 3", v: V5, raw: []byte{0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x03}, code: ProtocolError},
	{name: "subscribe 5 no local on shared subscription", v: V5, raw: []byte{
		0x82, 0x10, 0x00, 0x01, 0x00,
		0x00, 0x0A, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 't',
		0x04, // no local
	}, code: ProtocolError, rule: "MQTT-3.8.3-4"},
	{name: "subscribe 5 no local on $queue subscription", v: V5, raw: []byte{
		0x82, 0x0E, 0x00, 0x01, 0x00,
		0x00, 0x08, '$', 'q', 'u', 'e', 'u', 'e', '/', 't',
		0x04,
	}, code: ProtocolError, rule: "MQTT-3.8.3-4"},
	{name: "subscribe 5 two subscription identifiers", v: V5, raw: []byte{
		0x82, 0x0B, 0x00, 0x01, 0x04, 0x0B, 0x01, 0x0B, 0x02, 0x00, 0x01, 'a', 0x00,
	}, code: ProtocolError},
	{name: "subscribe 5 subscription identifier 0", v: V5, raw: []byte{
		0x82, 0x09, 0x00, 0x01, 0x02, 0x0B, 0x00, 0x00, 0x01, 'a', 0x00,
	}, code: ProtocolError},
	{name: "subscribe filter not UTF-8", v: V311, raw: []byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x80, 0x00}, code: MalformedPacket, rule: "MQTT-1.5.4-1"},
	{name: "subscribe without options byte", v: V311, raw: []byte{0x82, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'}, code: MalformedPacket},

	// SUBACK.
	{name: "suback 3.1.1 return code 3", v: V311, raw: []byte{0x90, 0x03, 0x00, 0x01, 0x03}, code: ProtocolError},
	{name: "suback 3.1.1 return code 0x87", v: V311, raw: []byte{0x90, 0x03, 0x00, 0x01, 0x87}, code: ProtocolError},
	{name: "suback without codes", v: V311, raw: []byte{0x90, 0x02, 0x00, 0x01}, code: ProtocolError},
	{name: "suback 5 reason code 0x11", v: V5, raw: []byte{0x90, 0x04, 0x00, 0x01, 0x00, 0x11}, code: ProtocolError},

	// UNSUBSCRIBE, UNSUBACK.
	{name: "unsubscribe without filters", v: V311, raw: []byte{0xA2, 0x02, 0x00, 0x01}, code: ProtocolError, rule: "MQTT-3.10.3-2"},
	{name: "unsubscribe 5 packet id 0", v: V5, raw: []byte{0xA2, 0x06, 0x00, 0x00, 0x00, 0x00, 0x01, 'a'}, code: MalformedPacket, rule: "MQTT-2.2.1-3"},
	{name: "unsubscribe 5 subscription identifier", v: V5, raw: []byte{0xA2, 0x08, 0x00, 0x01, 0x02, 0x0B, 0x01, 0x00, 0x01, 'a'}, code: MalformedPacket},
	{name: "unsubscribe filter with U+0000", v: V311, raw: []byte{0xA2, 0x05, 0x00, 0x01, 0x00, 0x01, 0x00}, code: MalformedPacket, rule: "MQTT-1.5.4-2"},
	{name: "unsuback 3.1.1 too long", v: V311, raw: []byte{0xB0, 0x03, 0x00, 0x01, 0x00}, code: MalformedPacket},
	{name: "unsuback 5 without codes", v: V5, raw: []byte{0xB0, 0x03, 0x00, 0x01, 0x00}, code: ProtocolError},
	{name: "unsuback 5 reason code 0x8E", v: V5, raw: []byte{0xB0, 0x04, 0x00, 0x01, 0x00, 0x8E}, code: ProtocolError},

	// DISCONNECT, AUTH.
	{name: "disconnect 5 reason code 0x01", v: V5, raw: []byte{0xE0, 0x01, 0x01}, code: ProtocolError, rule: "MQTT-3.14.2-1"},
	{name: "disconnect 5 topic alias property", v: V5, raw: []byte{0xE0, 0x05, 0x00, 0x03, 0x23, 0x00, 0x01}, code: MalformedPacket},
	{name: "disconnect 5 property length beyond the packet", v: V5, raw: []byte{0xE0, 0x02, 0x00, 0x05}, code: MalformedPacket},
	{name: "auth 5 reason code 0x04", v: V5, raw: []byte{0xF0, 0x01, 0x04}, code: ProtocolError, rule: "MQTT-3.15.2-1"},
	{name: "auth 5 session expiry property", v: V5, raw: []byte{0xF0, 0x07, 0x18, 0x05, 0x11, 0x00, 0x00, 0x00, 0x01}, code: MalformedPacket},
}
