package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/mqgate/mqgate/internal/wsclient"
)

// transport is how the load connections reach the broker: plain TCP, TLS
// (-tls), or MQTT over WebSocket when -addr is a ws:// or wss:// URL.
type transport struct {
	tls *tls.Config // TLS and wss; nil for tcp and ws
}

// newTransport builds the transport of the command line: the CA file to
// trust (-cafile) or no verification at all (-insecure, for self-signed
// test certificates).
func newTransport(useTLS bool, caFile string, insecure bool) (*transport, error) {
	if !useTLS && caFile == "" && !insecure {
		return &transport{}, nil
	}
	cfg := &tls.Config{InsecureSkipVerify: insecure}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("-cafile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-cafile %s: no PEM certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	return &transport{tls: cfg}, nil
}

// dial opens a connection to addr that carries the MQTT byte stream.
func (t *transport) dial(addr string) (net.Conn, error) {
	if strings.HasPrefix(addr, "ws://") || strings.HasPrefix(addr, "wss://") {
		return t.dialWS(addr)
	}
	d := &net.Dialer{Timeout: handshakeTimeout}
	if t.tls == nil {
		return d.Dial("tcp", addr)
	}
	cfg := t.tls.Clone()
	if host, _, err := net.SplitHostPort(addr); err == nil && cfg.ServerName == "" {
		cfg.ServerName = host
	}
	return tls.DialWithDialer(d, "tcp", addr, cfg)
}

// dialWS opens an MQTT over WebSocket connection (subprotocol mqtt); each
// write is one masked binary frame.
func (t *transport) dialWS(url string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	return wsclient.Dial(ctx, url, wsclient.Options{Protocols: []string{"mqtt"}, TLS: t.tls})
}
