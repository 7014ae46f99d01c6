package listener_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/internal/wsclient"
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
// byte stream (wsclient.Conn), with a helper to write raw frames.
type wsClient struct {
	*wsclient.Conn
}

// dialWS opens a WebSocket connection to url offering the subprotocols
// protos.
func dialWS(t testing.TB, url string, tlsCfg *tls.Config, protos ...string) (*wsClient, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := wsclient.Dial(ctx, url, wsclient.Options{Protocols: protos, TLS: tlsCfg})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	return &wsClient{c}, nil
}

// frame writes one masked frame.
func (c *wsClient) frame(t *testing.T, op ws.OpCode, fin bool, p []byte) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(wait))
	if err := c.WriteFrame(ws.NewFrame(op, fin, p)); err != nil {
		t.Fatalf("write frame: %v", err)
	}
}
