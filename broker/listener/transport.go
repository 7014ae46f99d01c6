// Package listener holds the transports of the broker's listeners: plain
// TCP, TLS with optional client certificates, MQTT over WebSocket and over
// secure WebSocket. The broker binds a TCP socket for every listener and
// hands each accepted connection to a Transport, which performs the TLS
// handshake and the WebSocket upgrade and returns a net.Conn that carries
// the MQTT byte stream.
package listener

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Kind is the transport of a listener, as named in the configuration
// (listener.<kind>.<name>).
type Kind string

// The kinds of listener.
const (
	TCP Kind = "tcp" // MQTT over TCP
	SSL Kind = "ssl" // MQTT over TLS
	WS  Kind = "ws"  // MQTT over WebSocket
	WSS Kind = "wss" // MQTT over WebSocket over TLS
)

// DefaultHandshakeTimeout bounds the TLS handshake and the WebSocket upgrade
// when a Transport does not set one.
const DefaultHandshakeTimeout = 15 * time.Second

// DefaultProxyTimeout bounds the wait for a PROXY protocol header when a
// Transport does not set one.
const DefaultProxyTimeout = 3 * time.Second

// DefaultPath is the HTTP path MQTT over WebSocket is served on.
const DefaultPath = "/mqtt"

// ErrNoTLS is returned by Transport.Validate when a TLS kind has no TLS
// configuration.
var ErrNoTLS = errors.New("listener: tls configuration missing")

// Transport turns an accepted TCP connection into the MQTT byte stream of
// its kind. The zero value (and Kind TCP) passes connections through.
type Transport struct {
	Kind             Kind
	TLS              *tls.Config   // ssl and wss
	HandshakeTimeout time.Duration // TLS handshake and WebSocket upgrade together
	Path             string        // ws and wss; DefaultPath when empty

	// ProxyProtocol expects a PROXY protocol (version 1 or 2) header before
	// anything else, and takes the client's address from it; a connection
	// without one is refused. ProxyTimeout bounds the wait for it; 0 =
	// DefaultProxyTimeout.
	ProxyProtocol bool
	ProxyTimeout  time.Duration

	// ws and wss behind an HTTP proxy: when the connection comes from an
	// address in TrustedProxies, the client's address is taken from the
	// header AddressHeader (e.g. X-Forwarded-For) and its port from
	// PortHeader (e.g. X-Forwarded-Port). With no trusted proxy the
	// headers are ignored.
	TrustedProxies []netip.Prefix
	AddressHeader  string
	PortHeader     string
}

// Peer is what the transport learned of the client while setting up the
// connection.
type Peer struct {
	CertCN string // common name of the verified client certificate, if any
	CertDN string // subject of the verified client certificate, if any
	// CertDER is the DER encoding of the verified client certificate, if
	// any.
	CertDER []byte
}

// CertAs returns the identity peer_cert_as_username and
// peer_cert_as_clientid take from the client's verified certificate: its
// common name (cn), its subject (dn), its DER encoding as it is (crt), the
// standard base64 of the DER (pem) or the lower-case hex MD5 of the DER
// (md5), as EMQX 4 does. It returns "" without a verified certificate or
// for any other what.
func (p Peer) CertAs(what string) string {
	if len(p.CertDER) == 0 {
		return ""
	}
	switch what {
	case "cn":
		return p.CertCN
	case "dn":
		return p.CertDN
	case "crt":
		return string(p.CertDER)
	case "pem":
		return base64.StdEncoding.EncodeToString(p.CertDER)
	case "md5":
		sum := md5.Sum(p.CertDER)
		return hex.EncodeToString(sum[:])
	}
	return ""
}

// Validate reports whether the transport can serve connections.
func (t *Transport) Validate() error {
	switch t.Kind {
	case "", TCP, WS:
		return nil
	case SSL, WSS:
		if t.TLS == nil {
			return ErrNoTLS
		}
		return nil
	}
	return fmt.Errorf("listener: unknown kind %q", t.Kind)
}

// Passthrough reports whether accepted connections are used as they are,
// with no handshake.
func (t *Transport) Passthrough() bool {
	return (t.Kind == "" || t.Kind == TCP) && !t.ProxyProtocol
}

// Accept performs the handshakes of the transport on nc and returns the
// connection that carries MQTT. It gives up when the handshake timeout
// passes or ctx is cancelled. On error the caller closes nc.
//
// Accept is meant to run on a short-lived goroutine: the stack the TLS
// handshake grows is then not kept for the life of the connection.
func (t *Transport) Accept(ctx context.Context, nc net.Conn) (net.Conn, Peer, error) {
	var peer Peer
	if t.Passthrough() {
		return nc, peer, nil
	}
	timeout := t.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	if t.Kind == "" || t.Kind == TCP {
		timeout = 0 // only the PROXY header to wait for
	}
	if t.ProxyProtocol {
		pt := t.ProxyTimeout
		if pt <= 0 {
			pt = DefaultProxyTimeout
		}
		timeout += pt
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The deadline also bounds the WebSocket upgrade, which takes no
	// context; cancelling ctx (broker shutdown) cuts it at once.
	_ = nc.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Now()) })
	defer stop()

	conn := nc
	if t.ProxyProtocol {
		pc, err := readProxyHeader(nc)
		if err != nil {
			return nil, peer, err
		}
		conn = pc
	}
	if t.Kind == SSL || t.Kind == WSS {
		tc := tls.Server(conn, t.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, peer, fmt.Errorf("listener: tls handshake: %w", err)
		}
		peer = peerOf(tc.ConnectionState())
		conn = tc
	}
	if t.Kind == WS || t.Kind == WSS {
		path := t.Path
		if path == "" {
			path = DefaultPath
		}
		wc, err := t.upgrade(conn, path)
		if err != nil {
			return nil, peer, err
		}
		conn = wc
	}
	if !stop() || ctx.Err() != nil {
		return nil, peer, fmt.Errorf("listener: handshake: %w", context.Cause(ctx))
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, peer, nil
}

// peerOf reads the identity of the client's verified certificate.
func peerOf(cs tls.ConnectionState) Peer {
	var p Peer
	// Only a certificate that verified against the CA counts: with
	// verify_none the client's certificate is not requested at all.
	if len(cs.VerifiedChains) > 0 && len(cs.PeerCertificates) > 0 {
		subj := cs.PeerCertificates[0].Subject
		p.CertCN = subj.CommonName
		p.CertDN = subj.String()
		p.CertDER = cs.PeerCertificates[0].Raw
	}
	return p
}
