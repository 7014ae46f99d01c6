// Package broker is the MQTT 3.1 / 3.1.1 / 5.0 broker core: listeners,
// connections, sessions, the QoS 1 and 2 state machines, retained and will
// messages, $SYS topics and the limits that protect the process.
//
// The broker never imports an authentication or authorization backend: it
// asks the access.Authenticator and access.Authorizer it is given, and it
// reports what happens on an events.Bus that never blocks it.
package broker

import (
	"crypto/tls"
	"log/slog"
	"net/netip"
	"time"

	"github.com/mqgate/mqgate/access"
	transport "github.com/mqgate/mqgate/broker/listener"
	"github.com/mqgate/mqgate/broker/topics"
	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/store/wal"
)

// Listener is one named listener.
type Listener struct {
	Name           string // e.g. "external"; the identifier is "<kind>:<name>"
	Addr           string // host:port; port 0 picks a free port
	MaxConnections int    // 0 = unlimited

	// Kind is the transport: tcp (the default when empty), ssl, ws or wss.
	Kind transport.Kind
	// TLS serves ssl and wss listeners; transport.Certs.Config gives one
	// that follows certificate reloads.
	TLS *tls.Config
	// HandshakeTimeout bounds the TLS handshake and the WebSocket upgrade;
	// 0 = transport.DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// WSPath is the HTTP path of ws and wss listeners; "" = /mqtt.
	WSPath string
	// PeerCertAsUsername and PeerCertAsClientID, "cn", "dn", "crt",
	// "pem" or "md5", replace the username or client identifier of the
	// CONNECT with the common name, subject, DER, base64 DER or hex MD5
	// of the DER of the client's verified certificate
	// (listener.Peer.CertAs); "" keeps what the client sent.
	PeerCertAsUsername string
	PeerCertAsClientID string
	// ProxyProtocol expects a PROXY protocol v1 or v2 header on every
	// connection (behind a load balancer) and takes the client's address
	// from it; ProxyProtocolTimeout bounds the wait (0 = 3 s).
	ProxyProtocol        bool
	ProxyProtocolTimeout time.Duration
	// MaxConnRate is the number of new connections accepted per second
	// (with a burst of as many); the excess is closed at once and counted.
	// 0 = unlimited.
	MaxConnRate int
	// ws and wss behind an HTTP proxy: from an address in TrustedProxies,
	// the client's address is read from ProxyAddressHeader (e.g.
	// X-Forwarded-For) and its port from ProxyPortHeader. No trusted
	// proxy = the headers are ignored.
	TrustedProxies     []netip.Prefix
	ProxyAddressHeader string
	ProxyPortHeader    string
	// AllowAnonymous, when not nil, replaces Options.AllowAnonymous for
	// the clients of this listener.
	AllowAnonymous *bool
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

	// StoreDir is the directory of the durable state (persistent
	// sessions and retained messages, under StoreDir/broker); "" keeps
	// everything in memory only.
	// StoreSync and StoreBatchInterval tune its group commit.
	StoreDir           string
	StoreSync          wal.Sync
	StoreBatchInterval time.Duration

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
