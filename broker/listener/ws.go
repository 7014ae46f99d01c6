package listener

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// ErrTextFrame is returned by a WebSocket connection's Read when the client
// sends a text frame: MQTT travels in binary frames only [MQTT-6.0.0-1].
var ErrTextFrame = errors.New("listener: websocket text frame")

// closeTimeout bounds the write of the close frame when a WebSocket
// connection is closed.
const closeTimeout = time.Second

// subprotocol reports whether p is a WebSocket subprotocol MQTT is served
// on: "mqtt" [MQTT-6.0.0-3], and "mqttv3.1" for MQTT 3.1 clients.
func subprotocol(p []byte) bool {
	return string(p) == "mqtt" || string(p) == "mqttv3.1"
}

// upgrade reads the HTTP upgrade request from nc and answers it. A request
// for another path gets 404; one that offers no MQTT subprotocol gets 400.
func (t *Transport) upgrade(nc net.Conn, path string) (net.Conn, error) {
	var chosen bool
	var fwdAddr, fwdPort string
	trusted := t.trusted(nc.RemoteAddr())
	u := ws.Upgrader{
		OnHeader: func(key, value []byte) error {
			if !trusted {
				return nil
			}
			switch {
			case t.AddressHeader != "" && strings.EqualFold(string(key), t.AddressHeader):
				fwdAddr = string(value)
			case t.PortHeader != "" && strings.EqualFold(string(key), t.PortHeader):
				fwdPort = string(value)
			}
			return nil
		},
		ReadBufferSize:  1024,
		WriteBufferSize: 512,
		Protocol: func(p []byte) bool {
			if subprotocol(p) {
				chosen = true
				return true
			}
			return false
		},
		OnRequest: func(uri []byte) error {
			p := string(uri)
			if i := indexQuery(p); i >= 0 {
				p = p[:i]
			}
			if p != path {
				return ws.RejectConnectionError(ws.RejectionStatus(http.StatusNotFound),
					ws.RejectionReason("unknown path"))
			}
			return nil
		},
		OnBeforeUpgrade: func() (ws.HandshakeHeader, error) {
			// [MQTT-6.0.0-3] the subprotocol must be mqtt.
			if !chosen {
				return nil, ws.RejectConnectionError(ws.RejectionStatus(http.StatusBadRequest),
					ws.RejectionReason("subprotocol mqtt required"))
			}
			return nil, nil
		},
	}
	if _, err := u.Upgrade(nc); err != nil {
		return nil, fmt.Errorf("listener: websocket upgrade: %w", err)
	}
	c := newWSConn(nc)
	if fwdAddr != "" {
		if a := t.forwardedFor(fwdAddr, fwdPort); a != nil {
			c.remote = a
		}
	}
	return c, nil
}

// trusted reports whether a is the address of a trusted proxy.
func (t *Transport) trusted(a net.Addr) bool {
	if len(t.TrustedProxies) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return false
	}
	return t.trustedIP(ap.Addr())
}

func (t *Transport) trustedIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range t.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// forwardedFor returns the client's address from the values of the
// address and port headers: the rightmost address of the list that is not
// a trusted proxy (each proxy appends the address it received from), or
// nil when the header holds no address.
func (t *Transport) forwardedFor(addrs, port string) net.Addr {
	list := strings.Split(addrs, ",")
	var ip netip.Addr
	for i := len(list) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(list[i]))
		if err != nil {
			return nil
		}
		ip = a.Unmap()
		if !t.trustedIP(ip) {
			break
		}
	}
	if !ip.IsValid() {
		return nil
	}
	p, _ := strconv.ParseUint(strings.TrimSpace(port), 10, 16)
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(p)))
}

// indexQuery returns the index of the query of a request URI, or -1.
func indexQuery(uri string) int {
	for i := 0; i < len(uri); i++ {
		if uri[i] == '?' {
			return i
		}
	}
	return -1
}

// wsConn is the MQTT byte stream carried by a server-side WebSocket
// connection. Reads return the payload of binary messages back to back, so
// a packet may span frames and a frame may hold several packets
// [MQTT-6.0.0-2]. Writes send one binary frame each. Deadlines, addresses
// and Close act on the underlying connection.
type wsConn struct {
	net.Conn
	remote net.Addr // from a trusted proxy's header; nil = the socket's
	r      wsutil.Reader
	in     bool // r is within a message

	// wmu serialises frames: the reader answers pings and closes while
	// the flusher writes data.
	wmu    sync.Mutex
	closed bool
}

func newWSConn(nc net.Conn) *wsConn {
	c := &wsConn{Conn: nc}
	c.r = wsutil.Reader{
		Source: nc,
		State:  ws.StateServerSide,
		// Control frames between the fragments of a message.
		OnIntermediate: func(h ws.Header, r io.Reader) error { return c.control(h, r) },
	}
	return c
}

// RemoteAddr returns the client's address: the one a trusted proxy
// forwarded, or the socket's.
func (c *wsConn) RemoteAddr() net.Addr {
	if c.remote != nil {
		return c.remote
	}
	return c.Conn.RemoteAddr()
}

// Read reads MQTT bytes from the payloads of binary messages.
func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if !c.in {
			h, err := c.r.NextFrame()
			if err != nil {
				return 0, err
			}
			if h.OpCode.IsControl() {
				if err := c.control(h, &c.r); err != nil {
					return 0, err
				}
				continue
			}
			if h.OpCode == ws.OpText {
				c.writeClose(ws.StatusUnsupportedData, "binary frames only")
				return 0, ErrTextFrame
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

// control handles a ping, pong or close frame whose payload, already
// unmasked, is in r.
func (c *wsConn) control(h ws.Header, r io.Reader) error {
	payload := make([]byte, h.Length) // control frames carry at most 125 bytes
	if _, err := io.ReadFull(r, payload); err != nil {
		return err
	}
	switch h.OpCode {
	case ws.OpPing:
		return c.writeFrame(ws.OpPong, payload)
	case ws.OpPong:
		return nil
	case ws.OpClose:
		code, _ := ws.ParseCloseFrameData(payload)
		if code == 0 {
			code = ws.StatusNoStatusRcvd
		}
		c.writeClose(ws.StatusNormalClosure, "")
		return wsutil.ClosedError{Code: code}
	}
	return nil
}

// Write sends p as one binary frame.
func (c *wsConn) Write(p []byte) (int, error) {
	if err := c.writeFrame(ws.OpBinary, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeFrame writes one unfragmented frame with a single system call.
func (c *wsConn) writeFrame(op ws.OpCode, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	return c.writeFrameLocked(op, p)
}

func (c *wsConn) writeFrameLocked(op ws.OpCode, p []byte) error {
	var hb [ws.MaxHeaderSize]byte
	w := sliceWriter{b: hb[:0]}
	if err := ws.WriteHeader(&w, ws.Header{Fin: true, OpCode: op, Length: int64(len(p))}); err != nil {
		return err
	}
	bufs := net.Buffers{w.b, p}
	_, err := bufs.WriteTo(c.Conn)
	return err
}

// writeClose sends a close frame once; later writes fail.
func (c *wsConn) writeClose(code ws.StatusCode, reason string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	_ = c.writeFrameLocked(ws.OpClose, ws.NewCloseFrameBody(code, reason))
}

// Close sends a close frame, if none was sent, and closes the connection.
func (c *wsConn) Close() error {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(closeTimeout))
	c.writeClose(ws.StatusNormalClosure, "")
	return c.Conn.Close()
}

// sliceWriter appends what is written to b.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}
