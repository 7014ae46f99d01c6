// Package broker is the MQTT 3.1 / 3.1.1 / 5.0 broker core: listeners,
// connections, sessions, the QoS 1 and 2 state machines, retained and will
// messages, $SYS topics and the limits that protect the process.
//
// The broker never imports an authentication or authorization backend: it
// asks the access.Authenticator and access.Authorizer it is given, and it
// reports what happens on an events.Bus that never blocks it.
package broker

import (
	"log/slog"
	"time"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/broker/topics"
	"github.com/mqgate/mqgate/events"
)

// Listener is one named TCP listener.
type Listener struct {
	Name           string // e.g. "external"; the identifier is "tcp:<name>"
	Addr           string // host:port; port 0 picks a free port
	MaxConnections int    // 0 = unlimited
}

// Options configure a Broker. DefaultOptions gives the embedded defaults.
type Options struct {
	NodeName string
	Version  string // reported in $SYS and logs
	Logger   *slog.Logger

	Listeners []Listener

	// Decisions. With no Authenticator, AllowAnonymous decides every
	// CONNECT; with no Authorizer, ACLNoMatch decides every request. A
	// chain that answers Ignore falls back to the same defaults.
	Authenticator     access.Authenticator
	Authorizer        access.Authorizer
	AllowAnonymous    bool
	ACLNoMatch        access.Verdict // Allow or Deny
	ACLDenyDisconnect bool           // acl_deny_action = disconnect

	Events *events.Bus // may be nil

	MaxPacketSize        int    // bytes, inbound and advertised to v5 clients
	MaxClientIDLen       int    // characters
	MaxTopicLevels       int    // 0 = unlimited
	MaxQoS               byte   // 0..2
	MaxTopicAlias        uint16 // topic aliases a client may use towards us
	RetainAvailable      bool
	WildcardSubscription bool
	SharedSubscription   bool
	MaxKeepAlive         uint16 // cap on keep alive (v5 Server Keep Alive); 0 = no cap
	MaxSubscriptions     int    // per client; 0 = unlimited
	MaxInflight          int    // outbound QoS 1/2 window per session
	ReceiveMaximum       int    // inbound QoS 2 window (v5 Receive Maximum)
	MaxMqueueLen         int    // offline/overflow queue per session; 0 = unlimited
	MqueueStoreQoS0      bool   // queue QoS 0 messages for offline sessions
	MqueueDropNew        bool   // on overflow drop the new message instead of the oldest
	MaxQueuedBytes       int    // outbound bytes pending on one connection before it is cut
	RetryInterval        time.Duration
	AwaitRelTimeout      time.Duration
	SessionExpiry        time.Duration // for 3.1.x clients with clean session 0
	MaxSessionExpiry     time.Duration // cap on v5 session expiry; 0 = no cap
	IdleTimeout          time.Duration // time allowed between accept and CONNECT
	IgnoreLoopDeliver    bool

	SysInterval     time.Duration // $SYS stats and metrics; 0 disables $SYS
	SysHeartbeat    time.Duration // $SYS uptime and datetime
	SharedStrategy  topics.Strategy
	ShutdownTimeout time.Duration

	MaxRetained        int // 0 = unlimited
	MaxRetainedPayload int // bytes
	PresenceQoS        byte
}

// DefaultOptions returns the embedded defaults, the same as the defaults of
// the configuration schema.
func DefaultOptions() Options {
	return Options{
		NodeName:             "mqgate@127.0.0.1",
		Version:              "dev",
		Listeners:            []Listener{{Name: "external", Addr: "127.0.0.1:1883"}},
		AllowAnonymous:       true,
		ACLNoMatch:           access.Allow,
		MaxPacketSize:        1 << 20,
		MaxClientIDLen:       65535,
		MaxTopicLevels:       128,
		MaxQoS:               2,
		MaxTopicAlias:        65535,
		RetainAvailable:      true,
		WildcardSubscription: true,
		SharedSubscription:   true,
		MaxKeepAlive:         65535,
		MaxInflight:          32,
		ReceiveMaximum:       128,
		MaxMqueueLen:         1000,
		MqueueStoreQoS0:      true,
		MaxQueuedBytes:       8 << 20,
		RetryInterval:        30 * time.Second,
		AwaitRelTimeout:      300 * time.Second,
		SessionExpiry:        2 * time.Hour,
		IdleTimeout:          15 * time.Second,
		SysInterval:          time.Minute,
		SysHeartbeat:         30 * time.Second,
		SharedStrategy:       topics.Random,
		ShutdownTimeout:      10 * time.Second,
		MaxRetainedPayload:   1 << 20,
		PresenceQoS:          1,
	}
}
