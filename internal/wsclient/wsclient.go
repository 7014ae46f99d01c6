// Package wsclient is the client side of MQTT over WebSocket as a byte
// stream, for the load generator and the listener tests: each Write is one
// masked binary frame, and Read returns the payloads of the server's data
// frames, whatever their framing, answering pings on the way.
package wsclient

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// Options configure Dial.
type Options struct {
	Protocols []string    // subprotocols offered, e.g. "mqtt"
	TLS       *tls.Config // for wss:// URLs
	Header    http.Header // extra request headers; may be nil
}

// Conn is an upgraded WebSocket connection read and written as a stream.
type Conn struct {
	net.Conn
	r  *wsutil.Reader
	in bool // inside a data frame

	wmu sync.Mutex // a pong may be written while the owner writes
}

// Dial opens a WebSocket connection to url (ws:// or wss://) and returns
// it as a stream; ctx bounds the connection and the upgrade.
func Dial(ctx context.Context, url string, o Options) (*Conn, error) {
	d := ws.Dialer{Protocols: o.Protocols, TLSConfig: o.TLS}
	if deadline, ok := ctx.Deadline(); ok {
		d.Timeout = time.Until(deadline)
	}
	if o.Header != nil {
		d.Header = ws.HandshakeHeaderHTTP(o.Header)
	}
	nc, br, _, err := d.Dial(ctx, url)
	if err != nil {
		return nil, err
	}
	return New(nc, br), nil
}

// New wraps nc, already upgraded; br, if not nil, holds bytes the server
// sent right after its upgrade response (ws.Dialer returns it), and is
// released.
func New(nc net.Conn, br *bufio.Reader) *Conn {
	var src io.Reader = nc
	if br != nil {
		if n := br.Buffered(); n > 0 {
			b, _ := br.Peek(n)
			src = io.MultiReader(bytes.NewReader(bytes.Clone(b)), nc)
		}
		ws.PutReader(br)
	}
	return &Conn{Conn: nc, r: &wsutil.Reader{Source: src, State: ws.StateClientSide}}
}

// Read reads the payload of the server's data frames. A close frame ends
// it with a wsutil.ClosedError that carries the server's code and reason.
func (c *Conn) Read(p []byte) (int, error) {
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
					if err := c.WriteFrame(ws.NewPongFrame(payload)); err != nil {
						return 0, err
					}
				case ws.OpClose:
					code, reason := ws.ParseCloseFrameData(payload)
					return 0, wsutil.ClosedError{Code: code, Reason: reason}
				}
				continue
			}
			c.in = true
		}
		n, err := c.r.Read(p)
		if err == io.EOF {
			// End of a message; an empty one is allowed.
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

// Write sends p as one binary frame.
func (c *Conn) Write(p []byte) (int, error) {
	if err := c.WriteFrame(ws.NewBinaryFrame(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteFrame masks f, as a client must, and writes it with one call, so
// that frames written from several goroutines do not interleave.
func (c *Conn) WriteFrame(f ws.Frame) error {
	b, err := ws.CompileFrame(ws.MaskFrame(f))
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err = c.Conn.Write(b)
	return err
}
