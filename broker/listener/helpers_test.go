package listener_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// wait bounds every wait of these tests.
const wait = 5 * time.Second

// runBroker starts a broker whose only listener is l (on 127.0.0.1:0) and
// returns it with the listener's address. Every CONNECT's identity is
// sent to ids, if not nil, and allowed.
func runBroker(t *testing.T, l broker.Listener, ids chan<- access.Identity) (*broker.Broker, string) {
	t.Helper()
	l.Addr = "127.0.0.1:0"
	return testutil.RunBroker(t, func(o *broker.Options) {
		o.Listeners = []broker.Listener{l}
		if ids != nil {
			o.Authenticator = access.AuthenticatorFunc(func(_ context.Context, id access.Identity) access.Decision {
				ids <- id
				return access.Decision{Verdict: access.Allow}
			})
		}
	})
}

// nextIdentity returns the identity the broker authenticated next.
func nextIdentity(t *testing.T, ids <-chan access.Identity) access.Identity {
	t.Helper()
	select {
	case id := <-ids:
		return id
	case <-time.After(wait):
		t.Fatal("no authentication within the wait")
		return access.Identity{}
	}
}

// send encodes p as v and writes it to c.
func send(t *testing.T, c net.Conn, p mqtt.Packet, v mqtt.Version) {
	t.Helper()
	b, err := p.Encode(nil, v)
	if err != nil {
		t.Fatalf("encode %T: %v", p, err)
	}
	_ = c.SetWriteDeadline(time.Now().Add(wait))
	if _, err := c.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// read reads one packet from c.
func read(c net.Conn, v mqtt.Version) (mqtt.Packet, error) {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	return mqtt.ReadPacket(c, v, 0)
}

// connect sends a CONNECT with client id id (MQTT 3.1.1) and returns the
// answer, or the error that ended the connection instead.
func connect(t *testing.T, c net.Conn, id string) (*mqtt.Connack, error) {
	t.Helper()
	send(t, c, &mqtt.Connect{ProtocolName: "MQTT", Version: mqtt.V311, CleanStart: true, KeepAlive: 30, ClientID: id}, mqtt.V311)
	p, err := read(c, mqtt.V311)
	if err != nil {
		return nil, err
	}
	ack, ok := p.(*mqtt.Connack)
	if !ok {
		t.Fatalf("got %T, want CONNACK", p)
	}
	return ack, nil
}

// dialTLS opens a TLS connection to addr; the handshake error, if any, is
// returned, not fatal.
func dialTLS(t *testing.T, addr string, cfg *tls.Config) (net.Conn, error) {
	t.Helper()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: wait}, Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, nil
}

// wsClient is the client side of an MQTT-over-WebSocket connection as a
// byte stream: each Write is one masked binary frame; Read returns the
// payloads of the server's data frames and answers its pings.
type wsClient struct {
	net.Conn
	r  *wsutil.Reader
	in bool

	wmu sync.Mutex // clients write from several goroutines
}

// dialWS opens a WebSocket connection to url offering the subprotocols
// protos.
func dialWS(t testing.TB, url string, tlsCfg *tls.Config, protos ...string) (*wsClient, error) {
	t.Helper()
	d := ws.Dialer{Protocols: protos, TLSConfig: tlsCfg, Timeout: wait}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	nc, br, _, err := d.Dial(ctx, url)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = nc.Close() })
	var src io.Reader = nc
	if br != nil {
		src = readerWithBuffered(br, nc)
		ws.PutReader(br)
	}
	c := &wsClient{Conn: nc}
	c.r = newClientReader(src)
	return c, nil
}

// newClientReader reads the frames a server sends.
func newClientReader(src io.Reader) *wsutil.Reader {
	return &wsutil.Reader{Source: src, State: ws.StateClientSide}
}

// readerWithBuffered reads what br holds before reading nc.
func readerWithBuffered(br *bufio.Reader, nc net.Conn) io.Reader {
	n := br.Buffered()
	if n == 0 {
		return nc
	}
	b, _ := br.Peek(n)
	return io.MultiReader(bytes.NewReader(append([]byte(nil), b...)), nc)
}

func (c *wsClient) Read(p []byte) (int, error) {
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
					_ = c.writeFrame(ws.MaskFrame(ws.NewPongFrame(payload)))
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

func (c *wsClient) Write(p []byte) (int, error) {
	if err := c.writeFrame(ws.MaskFrame(ws.NewBinaryFrame(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeFrame writes f with one call, so that frames do not interleave.
func (c *wsClient) writeFrame(f ws.Frame) error {
	b, err := ws.CompileFrame(f)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err = c.Conn.Write(b)
	return err
}

// frame writes one masked frame.
func (c *wsClient) frame(t *testing.T, op ws.OpCode, fin bool, p []byte) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(wait))
	if err := c.writeFrame(ws.MaskFrame(ws.NewFrame(op, fin, p))); err != nil {
		t.Fatalf("write frame: %v", err)
	}
}
