package mqtt

import "fmt"

// ReasonCode is an MQTT 5 reason code (MQTT 5.0 §2.4). It also carries 3.1.1
// CONNACK return codes and SUBACK codes, which share the byte.
type ReasonCode byte

// Reason codes, MQTT 5.0 §2.4 table 2-6.
const (
	Success                    ReasonCode = 0x00 // also NormalDisconnection, GrantedQoS0
	GrantedQoS1                ReasonCode = 0x01
	GrantedQoS2                ReasonCode = 0x02
	DisconnectWithWill         ReasonCode = 0x04
	NoMatchingSubscribers      ReasonCode = 0x10
	NoSubscriptionExisted      ReasonCode = 0x11
	ContinueAuthentication     ReasonCode = 0x18
	ReAuthenticate             ReasonCode = 0x19
	UnspecifiedError           ReasonCode = 0x80
	MalformedPacket            ReasonCode = 0x81
	ProtocolError              ReasonCode = 0x82
	ImplementationSpecific     ReasonCode = 0x83
	UnsupportedProtocolVersion ReasonCode = 0x84
	ClientIDNotValid           ReasonCode = 0x85
	BadUsernameOrPassword      ReasonCode = 0x86
	NotAuthorized              ReasonCode = 0x87
	ServerUnavailable          ReasonCode = 0x88
	ServerBusy                 ReasonCode = 0x89
	Banned                     ReasonCode = 0x8A
	ServerShuttingDown         ReasonCode = 0x8B
	BadAuthenticationMethod    ReasonCode = 0x8C
	KeepAliveTimeout           ReasonCode = 0x8D
	SessionTakenOver           ReasonCode = 0x8E
	TopicFilterInvalid         ReasonCode = 0x8F
	TopicNameInvalid           ReasonCode = 0x90
	PacketIDInUse              ReasonCode = 0x91
	PacketIDNotFound           ReasonCode = 0x92
	ReceiveMaximumExceeded     ReasonCode = 0x93
	TopicAliasInvalid          ReasonCode = 0x94
	PacketTooLarge             ReasonCode = 0x95
	MessageRateTooHigh         ReasonCode = 0x96
	QuotaExceeded              ReasonCode = 0x97
	AdministrativeAction       ReasonCode = 0x98
	PayloadFormatInvalid       ReasonCode = 0x99
	RetainNotSupported         ReasonCode = 0x9A
	QoSNotSupported            ReasonCode = 0x9B
	UseAnotherServer           ReasonCode = 0x9C
	ServerMoved                ReasonCode = 0x9D
	SharedSubNotSupported      ReasonCode = 0x9E
	ConnectionRateExceeded     ReasonCode = 0x9F
	MaximumConnectTime         ReasonCode = 0xA0
	SubIDNotSupported          ReasonCode = 0xA1
	WildcardSubNotSupported    ReasonCode = 0xA2
)

// Other names of Success, as DISCONNECT and SUBACK use it.
const (
	NormalDisconnection ReasonCode = 0x00
	GrantedQoS0         ReasonCode = 0x00
)

// MQTT 3.1 / 3.1.1 CONNACK return codes (MQTT 3.1.1 §3.2.2.3).
const (
	V3Accepted            ReasonCode = 0
	V3BadProtocolVersion  ReasonCode = 1
	V3IdentifierRejected  ReasonCode = 2
	V3ServerUnavailable   ReasonCode = 3
	V3BadUsernamePassword ReasonCode = 4
	V3NotAuthorized       ReasonCode = 5
	V3SubackFailure       ReasonCode = 0x80
)

// Error implements error, so that a reason code can be returned as one.
func (c ReasonCode) Error() string { return c.String() }

// String names the code as the specification does.
func (c ReasonCode) String() string {
	if s, ok := reasonNames[c]; ok {
		return s
	}
	return fmt.Sprintf("reason code 0x%02X", byte(c))
}

var reasonNames = map[ReasonCode]string{
	Success: "success", GrantedQoS1: "granted qos 1", GrantedQoS2: "granted qos 2",
	DisconnectWithWill: "disconnect with will message", NoMatchingSubscribers: "no matching subscribers",
	NoSubscriptionExisted: "no subscription existed", ContinueAuthentication: "continue authentication",
	ReAuthenticate: "re-authenticate", UnspecifiedError: "unspecified error", MalformedPacket: "malformed packet",
	ProtocolError: "protocol error", ImplementationSpecific: "implementation specific error",
	UnsupportedProtocolVersion: "unsupported protocol version", ClientIDNotValid: "client identifier not valid",
	BadUsernameOrPassword: "bad user name or password", NotAuthorized: "not authorized",
	ServerUnavailable: "server unavailable", ServerBusy: "server busy", Banned: "banned",
	ServerShuttingDown: "server shutting down", BadAuthenticationMethod: "bad authentication method",
	KeepAliveTimeout: "keep alive timeout", SessionTakenOver: "session taken over",
	TopicFilterInvalid: "topic filter invalid", TopicNameInvalid: "topic name invalid",
	PacketIDInUse: "packet identifier in use", PacketIDNotFound: "packet identifier not found",
	ReceiveMaximumExceeded: "receive maximum exceeded", TopicAliasInvalid: "topic alias invalid",
	PacketTooLarge: "packet too large", MessageRateTooHigh: "message rate too high",
	QuotaExceeded: "quota exceeded", AdministrativeAction: "administrative action",
	PayloadFormatInvalid: "payload format invalid", RetainNotSupported: "retain not supported",
	QoSNotSupported: "qos not supported", UseAnotherServer: "use another server", ServerMoved: "server moved",
	SharedSubNotSupported: "shared subscriptions not supported", ConnectionRateExceeded: "connection rate exceeded",
	MaximumConnectTime: "maximum connect time", SubIDNotSupported: "subscription identifiers not supported",
	WildcardSubNotSupported: "wildcard subscriptions not supported",
}

// Error is a decoding or validation failure: the reason code to report
// (MalformedPacket, ProtocolError, ...), the specification rule it breaks and
// a human-readable detail.
type Error struct {
	Code ReasonCode
	Rule string // e.g. "MQTT-3.1.2-3"; may be empty
	Msg  string
}

func (e *Error) Error() string {
	if e.Rule != "" {
		return fmt.Sprintf("mqtt: %s: %s [%s]", e.Code, e.Msg, e.Rule)
	}
	return fmt.Sprintf("mqtt: %s: %s", e.Code, e.Msg)
}

// Is lets errors.Is(err, mqtt.MalformedPacket) match an *Error by its code.
func (e *Error) Is(target error) bool {
	c, ok := target.(ReasonCode)
	return ok && c == e.Code
}

// ConnackReturnCode maps a v5 CONNACK reason code to the nearest 3.1.1
// return code (MQTT 5.0 and 3.1.1 §3.2.2.3).
func ConnackReturnCode(c ReasonCode) ReasonCode {
	switch c {
	case Success:
		return V3Accepted
	case UnsupportedProtocolVersion:
		return V3BadProtocolVersion
	case ClientIDNotValid:
		return V3IdentifierRejected
	case BadUsernameOrPassword, BadAuthenticationMethod:
		return V3BadUsernamePassword
	case NotAuthorized, Banned:
		return V3NotAuthorized
	default:
		return V3ServerUnavailable
	}
}
