// Package mqtt is the wire codec of MQTT 3.1, 3.1.1 and 5.0: the 15 control
// packets, MQTT 5 properties and reason codes, and topic name and filter
// validation and matching. It holds no broker state.
//
// Decoding is strict: every violation that the specification calls a
// malformed packet or a protocol error is reported as an *Error carrying the
// reason code that a v5 DISCONNECT (or CONNACK) must send, and the rule id it
// breaks. Decoding never panics on any input (see FuzzDecode).
//
// Encoding appends to a caller's buffer and does not allocate when the buffer
// is large enough. For versions before 5.0 it leaves out properties, reason
// codes and other 5.0-only fields. It fails, with an error wrapping
// ErrInvalidPacket and dst unchanged, only for values that cannot be
// represented: an unknown version, a field longer than 65,535 bytes, a QoS or
// Retain Handling above 2, a property the packet type does not carry, a
// packet longer than MaxRemainingLength, AUTH before 5.0. Other protocol rules
// are not enforced on encode (an empty SUBSCRIBE or a wildcard topic encode
// as given), so tests can build the packets a broker must reject.
//
// Rule ids, in comments and in Error.Rule, follow the MQTT 5.0 numbering.
// Where 3.1.1 numbers a rule differently both ids are given, and errors
// found on a 3.x connection carry the 3.1.1 id.
package mqtt

// Type is the MQTT control packet type (the high nibble of the first byte).
type Type byte

// Control packet types, MQTT 5.0 §2.1.2.
const (
	CONNECT     Type = 1
	CONNACK     Type = 2
	PUBLISH     Type = 3
	PUBACK      Type = 4
	PUBREC      Type = 5
	PUBREL      Type = 6
	PUBCOMP     Type = 7
	SUBSCRIBE   Type = 8
	SUBACK      Type = 9
	UNSUBSCRIBE Type = 10
	UNSUBACK    Type = 11
	PINGREQ     Type = 12
	PINGRESP    Type = 13
	DISCONNECT  Type = 14
	AUTH        Type = 15
)

// Version is the protocol level carried in CONNECT.
type Version byte

// Protocol levels.
const (
	V31  Version = 3 // MQTT 3.1, protocol name "MQIsdp"
	V311 Version = 4 // MQTT 3.1.1
	V5   Version = 5 // MQTT 5.0
)

// FixedHeader is the first part of every packet: type, the four flag bits and
// the remaining length.
type FixedHeader struct {
	Type      Type
	Flags     byte // low nibble of the first byte
	Remaining int  // remaining length: variable header plus payload
}

// Packet is any decoded control packet.
type Packet interface {
	// Type reports the control packet type.
	Type() Type
	// Encode appends the whole packet (fixed header included) for protocol
	// version v to dst and returns the extended slice.
	Encode(dst []byte, v Version) ([]byte, error)
}

// UserProperty is one MQTT 5 user property (a UTF-8 string pair).
type UserProperty struct {
	Key, Value string
}

// Will is the will message carried by CONNECT.
type Will struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	Props   Properties // v5 will properties
}

// Connect is the CONNECT packet.
type Connect struct {
	ProtocolName string  // "MQTT", or "MQIsdp" for 3.1
	Version      Version // protocol level
	CleanStart   bool    // clean session (3.1.x) or clean start (5.0)
	KeepAlive    uint16  // seconds
	Props        Properties
	ClientID     string
	Will         *Will // nil when the will flag is 0
	UsernameSet  bool
	Username     string
	PasswordSet  bool
	Password     []byte
}

// Connack is the CONNACK packet. For 3.1 and 3.1.1 ReasonCode holds the
// return code (0..5); see ConnackReturnCode for the v5 to v3 mapping.
type Connack struct {
	SessionPresent bool
	ReasonCode     ReasonCode
	Props          Properties
}

// Publish is the PUBLISH packet.
type Publish struct {
	Dup      bool
	QoS      byte
	Retain   bool
	Topic    string
	PacketID uint16 // only when QoS > 0
	Props    Properties
	Payload  []byte
}

// Ack is PUBACK, PUBREC, PUBREL or PUBCOMP: they share one layout.
type Ack struct {
	PacketType Type // PUBACK, PUBREC, PUBREL or PUBCOMP
	PacketID   uint16
	ReasonCode ReasonCode // v5 only; 0 (success) otherwise
	Props      Properties
}

// Subscription is one topic filter of a SUBSCRIBE with its options.
type Subscription struct {
	Filter            string
	QoS               byte
	NoLocal           bool // v5
	RetainAsPublished bool // v5
	RetainHandling    byte // v5: 0, 1 or 2
}

// Subscribe is the SUBSCRIBE packet.
type Subscribe struct {
	PacketID      uint16
	Props         Properties // v5: subscription identifier, user properties
	Subscriptions []Subscription
}

// Suback is the SUBACK packet. For 3.1.1 the codes are 0x00..0x02 or 0x80.
type Suback struct {
	PacketID    uint16
	Props       Properties
	ReasonCodes []ReasonCode
}

// Unsubscribe is the UNSUBSCRIBE packet.
type Unsubscribe struct {
	PacketID uint16
	Props    Properties
	Filters  []string
}

// Unsuback is the UNSUBACK packet. ReasonCodes are v5 only.
type Unsuback struct {
	PacketID    uint16
	Props       Properties
	ReasonCodes []ReasonCode
}

// Pingreq is the PINGREQ packet.
type Pingreq struct{}

// Pingresp is the PINGRESP packet.
type Pingresp struct{}

// Disconnect is the DISCONNECT packet (reason code and properties are v5 only).
type Disconnect struct {
	ReasonCode ReasonCode
	Props      Properties
}

// Auth is the v5 AUTH packet.
type Auth struct {
	ReasonCode ReasonCode
	Props      Properties
}

// Type implements Packet.
func (*Connect) Type() Type { return CONNECT }

// Type implements Packet.
func (*Connack) Type() Type { return CONNACK }

// Type implements Packet.
func (*Publish) Type() Type { return PUBLISH }

// Type implements Packet.
func (a *Ack) Type() Type { return a.PacketType }

// Type implements Packet.
func (*Subscribe) Type() Type { return SUBSCRIBE }

// Type implements Packet.
func (*Suback) Type() Type { return SUBACK }

// Type implements Packet.
func (*Unsubscribe) Type() Type { return UNSUBSCRIBE }

// Type implements Packet.
func (*Unsuback) Type() Type { return UNSUBACK }

// Type implements Packet.
func (*Pingreq) Type() Type { return PINGREQ }

// Type implements Packet.
func (*Pingresp) Type() Type { return PINGRESP }

// Type implements Packet.
func (*Disconnect) Type() Type { return DISCONNECT }

// Type implements Packet.
func (*Auth) Type() Type { return AUTH }
