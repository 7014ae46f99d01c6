package broker_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	paho3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/mqtt"
)

// interopWait bounds every wait of the interoperability tests: a CONNACK, an
// acknowledgement or a message that does not come within it fails the test.
const interopWait = 5 * time.Second

// v3Client is a github.com/eclipse/paho.mqtt.golang client (MQTT 3.1 or
// 3.1.1). Every message it receives on any subscription goes to msgs, in
// arrival order.
type v3Client struct {
	paho3.Client
	msgs    chan paho3.Message
	present bool // the CONNACK's session present flag

	mu  sync.Mutex
	raw net.Conn // the socket of the current connection
}

// dialV3 connects a paho.mqtt.golang client to addr with client id id, MQTT
// 3.1.1, clean session and no automatic reconnection, after edit (if any) has
// adjusted the options. The client is disconnected when the test ends.
func dialV3(t *testing.T, addr, id string, edit func(*paho3.ClientOptions)) *v3Client {
	t.Helper()
	c := &v3Client{msgs: make(chan paho3.Message, 8192)}
	o := paho3.NewClientOptions().
		AddBroker("tcp://" + addr).
		SetClientID(id).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectTimeout(interopWait).
		SetKeepAlive(30 * time.Second).
		SetDefaultPublishHandler(func(_ paho3.Client, m paho3.Message) { c.msgs <- m }).
		SetCustomOpenConnectionFn(func(u *url.URL, _ paho3.ClientOptions) (net.Conn, error) {
			nc, err := net.DialTimeout("tcp", u.Host, interopWait)
			if err != nil {
				return nil, err
			}
			c.mu.Lock()
			c.raw = nc
			c.mu.Unlock()
			return nc, nil
		})
	if edit != nil {
		edit(o)
	}
	c.Client = paho3.NewClient(o)
	tok := c.Connect()
	waitToken(t, tok, "connect "+id)
	c.present = tok.(*paho3.ConnectToken).SessionPresent()
	t.Cleanup(func() {
		if c.IsConnectionOpen() {
			c.Disconnect(250)
		}
	})
	return c
}

// cut closes the client's socket abruptly, without DISCONNECT: to the broker
// it is a network failure.
func (c *v3Client) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.raw.Close()
}

// subscribe subscribes to filter at qos and checks the granted QoS.
func (c *v3Client) subscribe(t *testing.T, filter string, qos byte) {
	t.Helper()
	tok := c.Subscribe(filter, qos, nil)
	waitToken(t, tok, "subscribe "+filter)
	if got := tok.(*paho3.SubscribeToken).Result()[filter]; got != qos {
		t.Fatalf("subscribe %q: granted %#x, want %d", filter, got, qos)
	}
}

// publish publishes and waits for the acknowledgement of QoS 1 and 2.
func (c *v3Client) publish(t *testing.T, topic string, qos byte, retain bool, payload []byte) {
	t.Helper()
	waitToken(t, c.Publish(topic, qos, retain, payload), "publish "+topic)
}

// next returns the next message the client received.
func (c *v3Client) next(t *testing.T) paho3.Message {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(interopWait):
		t.Fatalf("no message within %v", interopWait)
		return nil
	}
}

// awaitDetached waits until the broker has finished with the connection of
// client id: its session is offline or gone. No packet tells a third party
// so, hence the polling.
func awaitDetached(t *testing.T, b *broker.Broker, id string) {
	t.Helper()
	deadline := time.Now().Add(interopWait)
	for {
		if _, online := b.SessionState(id); !online {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("client %q still attached after %v", id, interopWait)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitToken waits for a paho.mqtt.golang operation to complete without
// error.
func waitToken(t *testing.T, tok paho3.Token, what string) {
	t.Helper()
	if !tok.WaitTimeout(interopWait) {
		t.Fatalf("%s: no answer within %v", what, interopWait)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// v5Client is a github.com/eclipse/paho.golang client (MQTT 5.0). Messages go
// to msgs in arrival order, a DISCONNECT from the broker to disc; tap keeps
// every byte the client read, so that tests can check the packets on the
// wire where paho reduces them (it keeps one subscription identifier only).
type v5Client struct {
	*paho.Client
	ack  *paho.Connack
	msgs chan *paho.Publish
	disc chan *paho.Disconnect
	tap  *tapConn
}

// dialV5 connects a paho.golang client to addr with the CONNECT cp, failing
// the test unless the broker accepts it. The client is disconnected when the
// test ends.
func dialV5(t *testing.T, addr string, cp *paho.Connect) *v5Client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, interopWait)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := &v5Client{
		msgs: make(chan *paho.Publish, 8192),
		disc: make(chan *paho.Disconnect, 1),
		tap:  &tapConn{Conn: nc},
	}
	c.Client = paho.NewClient(paho.ClientConfig{
		Conn: c.tap,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				c.msgs <- pr.Packet
				return true, nil
			},
		},
		OnServerDisconnect: func(d *paho.Disconnect) { c.disc <- d },
		PacketTimeout:      interopWait,
	})
	ctx, cancel := context.WithTimeout(context.Background(), interopWait)
	defer cancel()
	c.ack, err = c.Connect(ctx, cp)
	if err != nil {
		t.Fatalf("connect %q: %v", cp.ClientID, err)
	}
	t.Cleanup(func() {
		select {
		case <-c.Done():
		default:
			_ = c.Disconnect(&paho.Disconnect{ReasonCode: 0})
		}
	})
	return c
}

// subscribe sends one SUBSCRIBE with the given options and subscription
// identifier (0 for none) and checks that every filter is granted the QoS
// it asked for.
func (c *v5Client) subscribe(t *testing.T, subID int, opts ...paho.SubscribeOptions) {
	t.Helper()
	s := &paho.Subscribe{Subscriptions: opts}
	if subID != 0 {
		s.Properties = &paho.SubscribeProperties{SubscriptionIdentifier: &subID}
	}
	ctx, cancel := context.WithTimeout(context.Background(), interopWait)
	defer cancel()
	sa, err := c.Subscribe(ctx, s)
	if err != nil {
		t.Fatalf("subscribe %+v: %v", opts, err)
	}
	for i, o := range opts {
		if sa.Reasons[i] != o.QoS {
			t.Fatalf("subscribe %q: reason %#x, want granted QoS %d", o.Topic, sa.Reasons[i], o.QoS)
		}
	}
}

// publish publishes p and waits for the acknowledgement of QoS 1 and 2.
func (c *v5Client) publish(t *testing.T, p *paho.Publish) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), interopWait)
	defer cancel()
	if _, err := c.Publish(ctx, p); err != nil {
		t.Fatalf("publish %q: %v", p.Topic, err)
	}
}

// next returns the next message the client received.
func (c *v5Client) next(t *testing.T) *paho.Publish {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(interopWait):
		t.Fatalf("no message within %v", interopWait)
		return nil
	}
}

// disconnect sends d (reason 0 and no properties when nil) and waits for
// the client to stop.
func (c *v5Client) disconnect(t *testing.T, d *paho.Disconnect) {
	t.Helper()
	if d == nil {
		d = &paho.Disconnect{}
	}
	if err := c.Disconnect(d); err != nil {
		t.Fatalf("disconnect: %v", err)
	}
}

// tapConn is a net.Conn that keeps a copy of every byte read from it. It
// is also a sync.Locker, which paho.golang takes around each packet it
// writes: without it, paho writes a packet in several pieces and its pinger
// can slip a PINGREQ in between them.
type tapConn struct {
	net.Conn
	sync.Mutex // held by paho.golang while it writes one packet

	mu sync.Mutex // guards in
	in bytes.Buffer
}

// Read implements net.Conn.
func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.in.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// publishes decodes, with the project's own codec, every PUBLISH read so
// far.
func (c *tapConn) publishes(t *testing.T) []*mqtt.Publish {
	t.Helper()
	c.mu.Lock()
	r := bytes.NewReader(bytes.Clone(c.in.Bytes()))
	c.mu.Unlock()
	var out []*mqtt.Publish
	for {
		p, err := mqtt.ReadPacket(r, mqtt.V5, 0)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return out
		}
		if err != nil {
			t.Fatalf("decode the bytes the client read: %v", err)
		}
		if pp, ok := p.(*mqtt.Publish); ok {
			out = append(out, pp)
		}
	}
}

// refOf returns a pointer to v, for the optional fields of paho.golang.
func refOf[T any](v T) *T { return &v }
