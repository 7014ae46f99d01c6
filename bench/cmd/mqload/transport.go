package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
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

// dialWS opens an MQTT over WebSocket connection (subprotocol mqtt).
func (t *transport) dialWS(url string) (net.Conn, error) {
	d := ws.Dialer{Protocols: []string{"mqtt"}, TLSConfig: t.tls, Timeout: handshakeTimeout}
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	nc, br, _, err := d.Dial(ctx, url)
	if err != nil {
		return nil, err
	}
	var src io.Reader = nc
	if br != nil {
		// Bytes the server sent right after its upgrade response.
		if n := br.Buffered(); n > 0 {
			b, _ := br.Peek(n)
			src = io.MultiReader(bytes.NewReader(bytes.Clone(b)), nc)
		}
		ws.PutReader(br)
	}
	return &wsConn{Conn: nc, r: &wsutil.Reader{Source: src, State: ws.StateClientSide}}, nil
}

// wsConn is the client side of MQTT over WebSocket as a byte stream: each
// Write is one masked binary frame; Read returns the payloads of the
// server's data frames, answers pings and ends at a close.
type wsConn struct {
	net.Conn
	r  *wsutil.Reader
	in bool // inside a data frame

	wmu sync.Mutex // a pong may be written while the owner writes
}

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if !c.in {
			h, err := c.r.NextFrame()
			if err != nil {
				return 0, err
			}
			if h.OpCode.IsControl() {
				payload := make([]byte, h.Length)
				if _, err := io.ReadFull(c.r, payload); err != nil && err != io.EOF {
					return 0, err
				}
				switch h.OpCode {
				case ws.OpPing:
					if err := c.writeFrame(ws.NewPongFrame(payload)); err != nil {
						return 0, err
					}
				case ws.OpClose:
					return 0, io.EOF
				}
				continue
			}
			c.in = true
		}
		n, err := c.r.Read(p)
		if err == io.EOF {
			c.in = false
			if n > 0 {
				return n, nil
			}
			continue
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	if err := c.writeFrame(ws.NewBinaryFrame(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeFrame masks f (as a client must) and writes it with one call.
func (c *wsConn) writeFrame(f ws.Frame) error {
	b, err := ws.CompileFrame(ws.MaskFrame(f))
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err = c.Conn.Write(b)
	return err
}
