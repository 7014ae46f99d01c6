package config

import "slices"

// listenKeys are the keys of the TLS, WebSocket and secure WebSocket
// listeners (listener.ssl.<name>, listener.ws.<name>, listener.wss.<name>),
// named as in EMQX 4. The TCP listener keys are among coreKeys.
var listenKeys = slices.Concat(
	commonKeys("tcp", "TCP listener"),
	[]Key{
		{Name: "listener.ssl.<name>", Kind: Addr, Default: "off",
			Doc: "Address of the MQTT over TLS listener <name> (EMQX ships listener.ssl.external = 8883); a name that is not set, or set to off, has no listener."},
		{Name: "listener.ssl.<name>.max_connections", Kind: Int, Default: "102400", Min: 0,
			Doc: "Maximum number of concurrent connections on the TLS listener <name>; 0 = unlimited."},
	},
	tlsKeys("ssl", "TLS listener"),
	commonKeys("ssl", "TLS listener"),
	[]Key{
		{Name: "listener.ws.<name>", Kind: Addr, Default: "off",
			Doc: "Address of the MQTT over WebSocket listener <name> (EMQX ships listener.ws.external = 8083); a name that is not set, or set to off, has no listener."},
		{Name: "listener.ws.<name>.max_connections", Kind: Int, Default: "102400", Min: 0,
			Doc: "Maximum number of concurrent connections on the WebSocket listener <name>; 0 = unlimited."},
	},
	wsKeys("ws", "WebSocket listener"),
	commonKeys("ws", "WebSocket listener"),
	[]Key{
		{Name: "listener.wss.<name>", Kind: Addr, Default: "off",
			Doc: "Address of the MQTT over secure WebSocket listener <name> (EMQX ships listener.wss.external = 8084); a name that is not set, or set to off, has no listener."},
		{Name: "listener.wss.<name>.max_connections", Kind: Int, Default: "102400", Min: 0,
			Doc: "Maximum number of concurrent connections on the secure WebSocket listener <name>; 0 = unlimited."},
	},
	wsKeys("wss", "secure WebSocket listener"),
	tlsKeys("wss", "secure WebSocket listener"),
	commonKeys("wss", "secure WebSocket listener"),
)

// listenGroupTitles names the documentation groups of listenKeys; the
// listener group is titled by coreKeys' table.
var listenGroupTitles = map[string]string{}

// tlsKeys are the TLS settings of the listeners of kind kind.
func tlsKeys(kind, what string) []Key {
	p := "listener." + kind + ".<name>."
	return []Key{
		{Name: p + "handshake_timeout", Kind: Duration, Default: "15s",
			Doc: "Time a client has to complete the TLS handshake" + map[bool]string{true: " and the WebSocket upgrade", false: ""}[kind == "wss"] + " on the " + what + " <name>."},
		{Name: p + "keyfile", Kind: String, Default: "",
			Doc: "PEM file of the private key of the " + what + " <name>; required."},
		{Name: p + "certfile", Kind: String, Default: "",
			Doc: "PEM file of the certificate (chain) of the " + what + " <name>; required. Key, certificate and CA files are read again on a reload; a bad new set keeps the one in use."},
		{Name: p + "cacertfile", Kind: String, Default: "",
			Doc: "PEM file of the CA certificates that client certificates must chain to on the " + what + " <name>; required with verify = verify_peer."},
		{Name: p + "verify", Kind: Enum, Default: "verify_none", Enum: []string{"verify_none", "verify_peer"},
			Doc: "verify_peer asks clients of the " + what + " <name> for a certificate and verifies it against cacertfile; verify_none does not ask."},
		{Name: p + "fail_if_no_peer_cert", Kind: Bool, Default: "false",
			Doc: "With verify = verify_peer, refuse clients of the " + what + " <name> that send no certificate."},
		{Name: p + "tls_versions", Kind: String, Default: "tlsv1.3,tlsv1.2",
			Doc: "Comma-separated TLS versions the " + what + " <name> accepts: tlsv1.3, tlsv1.2, tlsv1.1, tlsv1."},
		{Name: p + "ciphers", Kind: String, Default: "",
			Doc: "Comma-separated TLS 1.2 cipher suites of the " + what + " <name>, by OpenSSL name as in EMQX 4 (e.g. ECDHE-ECDSA-AES256-GCM-SHA384) or IANA name (e.g. TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384); an unknown, unsupported (DHE, ECDH, CCM, ...) or insecure suite is a start-up error; empty = secure defaults. TLS 1.3 suites (TLS_AES_128_GCM_SHA256, ...) are accepted and ignored: TLS 1.3 always offers its own secure suites."},
		{Name: p + "peer_cert_as_username", Kind: Enum, Default: "off", Enum: []string{"off", "cn", "dn", "crt", "pem", "md5"},
			Doc: "Replace the username of clients of the " + what + " <name> with the common name (cn), subject (dn), DER encoding as it is (crt), base64 of the DER (pem) or hex MD5 of the DER (md5) of their verified certificate, as EMQX 4 does."},
		{Name: p + "peer_cert_as_clientid", Kind: Enum, Default: "off", Enum: []string{"off", "cn", "dn", "crt", "pem", "md5"},
			Doc: "Replace the client identifier of clients of the " + what + " <name> with the common name (cn), subject (dn), DER encoding as it is (crt), base64 of the DER (pem) or hex MD5 of the DER (md5) of their verified certificate, as EMQX 4 does."},
	}
}

// wsKeys are the WebSocket settings of the listeners of kind kind.
func wsKeys(kind, what string) []Key {
	p := "listener." + kind + ".<name>."
	return []Key{
		{Name: p + "mqtt_path", Kind: String, Default: "/mqtt",
			Doc: "HTTP path MQTT is served on by the " + what + " <name>; other paths get 404."},
		{Name: p + "proxy_address_header", Kind: String, Default: "X-Forwarded-For",
			Doc: "HTTP header a trusted proxy puts the client's address in, for the " + what + " <name>; read only from trusted_proxies."},
		{Name: p + "proxy_port_header", Kind: String, Default: "X-Forwarded-Port",
			Doc: "HTTP header a trusted proxy puts the client's port in, for the " + what + " <name>; read only from trusted_proxies."},
		{Name: p + "trusted_proxies", Kind: String, Default: "",
			Doc: "Comma-separated addresses or CIDR prefixes of the HTTP proxies in front of the " + what + " <name> whose proxy_address_header is believed; empty = the header is ignored."},
	}
}

// commonKeys are the settings every kind of listener has: the rate of new
// connections, anonymous access and the PROXY protocol.
func commonKeys(kind, what string) []Key {
	p := "listener." + kind + ".<name>."
	return []Key{
		{Name: p + "max_conn_rate", Kind: Int, Default: "0", Min: 0,
			Doc: "New connections per second the " + what + " <name> accepts (with a burst of as many); the excess is closed at once and counted in connections.rate_limited. 0 = unlimited (EMQX ships 1000, 500 for TLS)."},
		{Name: p + "allow_anonymous", Kind: Enum, Default: "inherit", Enum: []string{"inherit", "true", "false"},
			Doc: "allow_anonymous for the clients of the " + what + " <name> (e.g. true on an internal listener only); inherit = the global allow_anonymous."},
		{Name: p + "proxy_protocol", Kind: Bool, Default: "off",
			Doc: "Expect a PROXY protocol v1 or v2 header (from a load balancer) on every connection to the " + what + " <name>, and take the client's address from it; connections without one are refused."},
		{Name: p + "proxy_protocol_timeout", Kind: Duration, Default: "3s",
			Doc: "Time a connection to the " + what + " <name> has to send its PROXY protocol header."},
	}
}
