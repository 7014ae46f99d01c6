package config

import "slices"

// Kind is the type of a config value. It decides how the text after "=" is
// parsed and which getter reads it.
type Kind int

const (
	// String is free text, read with Config.String. Any value is valid,
	// including the empty one.
	String Kind = iota + 1
	// Int is a base-10 integer within [Key.Min, Key.Max], read with Config.Int.
	Int
	// Bool is true, false, on or off, read with Config.Bool.
	Bool
	// Duration is a number with a unit (500ms, 15s, 1m, 2h, 1d); a bare number
	// is seconds. Read with Config.Duration.
	Duration
	// Bytesize is a number with a unit (64KB, 1MB, 1GB; 1KB = 1024 bytes); a
	// bare number is bytes. The byte count lies within [Key.Min, Key.Max].
	// Read with Config.Bytes.
	Bytesize
	// Enum is one of Key.Enum, read with Config.String.
	Enum
	// Addr is a listen address: IP:port, [IPv6]:port, a bare port meaning
	// 0.0.0.0:port, or off. Config.String returns it as host:port (or "off").
	Addr
	// Float is a finite decimal number, read with Config.Float.
	Float
)

// String returns the kind's name as used in documentation.
func (k Kind) String() string {
	switch k {
	case String:
		return "string"
	case Int:
		return "integer"
	case Bool:
		return "boolean"
	case Duration:
		return "duration"
	case Bytesize:
		return "size"
	case Enum:
		return "enum"
	case Addr:
		return "address"
	case Float:
		return "number"
	}
	return "invalid kind"
}

// Key describes one config key: its type, default and documentation.
//
// A segment written <name> in Name matches any one segment of a concrete key
// made of letters, digits, '_' and '-'; a last segment written <...> matches
// one or more such segments. Keys with such segments are pattern keys: their
// Default applies to every instance. A non-pattern key that also matches a
// pattern (listener.tcp.external for listener.tcp.<name>) declares a default
// instance, and wins over the pattern.
type Key struct {
	Name    string   // e.g. "mqtt.max_packet_size" or "listener.tcp.<name>.max_connections"
	Kind    Kind     // how the value is parsed
	Default string   // in config syntax, e.g. "1MB"
	Doc     string   // one line: what it does
	Enum    []string // the allowed values of an Enum
	Min     int64    // smallest allowed Int, or Bytesize in bytes
	Max     int64    // largest allowed Int, or Bytesize in bytes; 0 = no max
	Reload  bool     // hot-reloadable; false = a change needs a restart
}

// maxPacketSize is the largest packet MQTT can frame: the Remaining Length is
// a Variable Byte Integer of at most four bytes (MQTT 3.1.1 §2.2.3, MQTT 5.0
// §1.5.5).
const maxPacketSize = 268435455

// Schema is every key mqgate knows, in documentation order. deploy/mqgate.conf
// is generated from it, so it is the one place that holds the defaults. Keys
// are grouped in the documentation by their first segment (keys without a dot
// form one group); groupTitles names the groups. Each area's keys live in
// their own table (coreKeys here, authKeys, aclKeys and webhookKeys beside
// it) so that the areas can grow independently.
var Schema = slices.Concat(coreKeys, authKeys, aclKeys, webhookKeys, apiKeys, listenKeys, storeKeys)

// coreKeys are the keys of the node, logging, listeners and the broker core.
var coreKeys = []Key{
	// node
	{Name: "node.name", Kind: String, Default: "mqgate@127.0.0.1",
		Doc: "Name of this node, shown in $SYS topics, the management API and logs."},
	{Name: "node.data_dir", Kind: String, Default: "data",
		Doc: "Directory for persistent state (sessions, retained messages, webhook outbox); a relative path is relative to the working directory."},
	{Name: "node.heap_floor", Kind: Bytesize, Default: "64MB", Min: 0,
		Doc: "Heap size below which the Go garbage collector does not run, kept by an allocation that is never written: a broker with a small live heap otherwise collects every few megabytes of allocation (every 6 ms under load, 7-12% of its CPU). Under load the process holds up to about this much more memory between collections. 0 = Go's default."},

	// log
	{Name: "log.level", Kind: Enum, Default: "info", Enum: []string{"debug", "info", "warn", "error"}, Reload: true,
		Doc: "Lowest level of log records that are written."},
	{Name: "log.format", Kind: Enum, Default: "text", Enum: []string{"text", "json"},
		Doc: "Log output format: text (key=value pairs) or json (one object per line)."},

	// listener
	{Name: "listener.tcp.<name>", Kind: Addr, Default: "off",
		Doc: "Address of the MQTT TCP listener <name>; a name that is not set, or set to off, has no listener."},
	{Name: "listener.tcp.external", Kind: Addr, Default: "127.0.0.1:1883",
		Doc: "The default MQTT TCP listener; only loopback clients can reach it until the operator sets another address, e.g. 0.0.0.0:1883 or 1883."},
	{Name: "listener.tcp.<name>.max_connections", Kind: Int, Default: "1024000", Min: 0,
		Doc: "Maximum number of concurrent connections on the TCP listener <name>; 0 = unlimited."},

	// access control defaults
	{Name: "allow_anonymous", Kind: Bool, Default: "true", Reload: true,
		Doc: "Accept a client that no authentication backend accepts or rejects (true), or refuse it (false)."},
	{Name: "acl_nomatch", Kind: Enum, Default: "allow", Enum: []string{"allow", "deny"}, Reload: true,
		Doc: "Verdict for a publish or subscribe that no ACL backend allows or denies."},
	{Name: "acl_deny_action", Kind: Enum, Default: "ignore", Enum: []string{"ignore", "disconnect"}, Reload: true,
		Doc: "What follows an ACL deny: refuse only the request (ignore), or also disconnect the client."},

	// mqtt
	{Name: "mqtt.max_packet_size", Kind: Bytesize, Default: "1MB", Min: 1, Max: maxPacketSize, Reload: true,
		Doc: "Largest MQTT packet accepted from a client (sent to MQTT 5 clients as Maximum Packet Size); a larger packet closes the connection."},
	// [MQTT-3.1.3-5] the server must accept client identifiers of 1 to 23
	// bytes, hence the minimum.
	{Name: "mqtt.max_clientid_len", Kind: Int, Default: "65535", Min: 23, Max: 65535, Reload: true,
		Doc: "Longest client identifier accepted in CONNECT, in bytes."},
	{Name: "mqtt.max_topic_levels", Kind: Int, Default: "128", Min: 0, Reload: true,
		Doc: "Maximum number of levels in a topic name or filter; 0 = unlimited."},
	{Name: "mqtt.max_qos_allowed", Kind: Int, Default: "2", Min: 0, Max: 2, Reload: true,
		Doc: "Highest QoS the broker accepts and grants (sent to MQTT 5 clients as Maximum QoS)."},
	{Name: "mqtt.max_topic_alias", Kind: Int, Default: "65535", Min: 0, Max: 65535, Reload: true,
		Doc: "Highest topic alias a client may send (MQTT 5 Topic Alias Maximum); 0 = clients may not use topic aliases."},
	{Name: "mqtt.retain_available", Kind: Bool, Default: "true", Reload: true,
		Doc: "Accept retained messages (sent to MQTT 5 clients as Retain Available)."},
	{Name: "mqtt.wildcard_subscription", Kind: Bool, Default: "true", Reload: true,
		Doc: "Accept subscriptions to filters with + or # (sent to MQTT 5 clients as Wildcard Subscription Available)."},
	{Name: "mqtt.shared_subscription", Kind: Bool, Default: "true", Reload: true,
		Doc: "Accept $share/<group>/<filter> subscriptions (sent to MQTT 5 clients as Shared Subscription Available)."},
	{Name: "mqtt.max_keepalive", Kind: Int, Default: "65535", Min: 0, Max: 65535, Reload: true,
		Doc: "Longest keep alive a client may ask for, in seconds; MQTT 5 clients asking more (or asking 0 when this is below 65535) get this as Server Keep Alive; 0 = no cap."},
	{Name: "mqtt.max_subscriptions", Kind: Int, Default: "0", Min: 0, Reload: true,
		Doc: "Maximum number of subscriptions of one client; 0 = unlimited."},
	{Name: "mqtt.max_inflight", Kind: Int, Default: "32", Min: 1, Max: 65535, Reload: true,
		Doc: "Outbound QoS 1 and 2 window: messages sent to a client and not yet acknowledged."},
	{Name: "mqtt.receive_maximum", Kind: Int, Default: "128", Min: 1, Max: 65535, Reload: true,
		Doc: "Inbound QoS 1 and 2 window, sent to MQTT 5 clients as Receive Maximum; also the most QoS 2 messages awaiting PUBREL per client."},
	{Name: "mqtt.max_mqueue_len", Kind: Int, Default: "1000", Min: 0, Reload: true,
		Doc: "Maximum number of messages queued for a client that is offline or whose inflight window is full; 0 = unlimited."},
	{Name: "mqtt.mqueue_store_qos0", Kind: Bool, Default: "true", Reload: true,
		Doc: "Queue QoS 0 messages for an offline client with a persistent session."},
	{Name: "mqtt.mqueue_overflow", Kind: Enum, Default: "drop_oldest", Enum: []string{"drop_oldest", "drop_new"}, Reload: true,
		Doc: "Message dropped when a client's queue is full: the oldest queued one, or the new one."},
	{Name: "mqtt.max_queued_bytes", Kind: Bytesize, Default: "8MB", Min: 1, Reload: true,
		Doc: "Outbound bytes pending on one connection before it is disconnected as a slow consumer."},
	{Name: "mqtt.retry_interval", Kind: Duration, Default: "30s", Reload: true,
		Doc: "Interval for resending unacknowledged QoS 1 and 2 messages to connected clients; 0 = resend only on reconnect."},
	{Name: "mqtt.await_rel_timeout", Kind: Duration, Default: "300s", Reload: true,
		Doc: "How long an inbound QoS 2 message waits for its PUBREL before it is discarded."},
	{Name: "mqtt.session_expiry_interval", Kind: Duration, Default: "2h", Reload: true,
		Doc: "How long the session of an MQTT 3.1 or 3.1.1 client with clean session false outlives its connection."},
	{Name: "mqtt.max_session_expiry", Kind: Duration, Default: "0", Reload: true,
		Doc: "Cap on the Session Expiry Interval an MQTT 5 client may ask for; 0 = no cap."},
	{Name: "mqtt.idle_timeout", Kind: Duration, Default: "15s", Reload: true,
		Doc: "How long to wait for CONNECT after a TCP connection is accepted."},
	{Name: "mqtt.ignore_loop_deliver", Kind: Bool, Default: "false", Reload: true,
		Doc: "Never deliver a client's own messages back to it, as if every subscription had the MQTT 5 No Local option."},
	{Name: "mqtt.strict_mode", Kind: Bool, Default: "false", Reload: true,
		Doc: "Reserved for stricter protocol checks; has no effect yet."},

	// broker
	{Name: "broker.sys_interval", Kind: Duration, Default: "1m", Reload: true,
		Doc: "Interval for publishing statistics and metrics under $SYS; 0 disables $SYS."},
	{Name: "broker.sys_heartbeat", Kind: Duration, Default: "30s", Reload: true,
		Doc: "Interval for publishing uptime and date under $SYS."},
	{Name: "broker.shared_subscription_strategy", Kind: Enum, Default: "random",
		Enum: []string{"random", "round_robin", "hash_clientid", "hash_topic"}, Reload: true,
		Doc: "How a shared subscription group picks the member that receives a message."},
	{Name: "broker.shutdown_timeout", Kind: Duration, Default: "10s", Reload: true,
		Doc: "How long a graceful shutdown waits for outbound data to be flushed before closing connections."},

	// retainer
	{Name: "retainer.max_retained_messages", Kind: Int, Default: "0", Min: 0, Reload: true,
		Doc: "Maximum number of retained messages stored; 0 = unlimited."},
	{Name: "retainer.max_payload_size", Kind: Bytesize, Default: "1MB", Min: 0, Max: maxPacketSize, Reload: true,
		Doc: "Largest payload of a retained message that is stored; a larger one is delivered but not retained."},

	// module
	{Name: "module.presence.qos", Kind: Int, Default: "1", Min: 0, Max: 2, Reload: true,
		Doc: "QoS of the client connected and disconnected messages published under $SYS."},
}

// groupTitles names the documentation groups of Schema, by first key segment;
// "" is the group of keys without a dot. A group without a title is headed by
// its segment.
var groupTitles = map[string]string{
	"node":     "Node",
	"log":      "Logging",
	"listener": "Listeners",
	"":         "Access control defaults (used when no authentication or ACL backend decides)",
	"mqtt":     "MQTT protocol",
	"broker":   "Broker",
	"retainer": "Retained messages",
	"module":   "Modules",
}

// groupTitle returns the documentation title of the group named name, from
// the core table or an area's.
func groupTitle(name string) string {
	for _, m := range []map[string]string{groupTitles, authGroupTitles, aclGroupTitles, webhookGroupTitles, apiGroupTitles, listenGroupTitles, storeGroupTitles} {
		if t, ok := m[name]; ok {
			return t
		}
	}
	return ""
}
