package main

import (
	"bufio"
	"fmt"
	"net"
	"time"

	"github.com/mqgate/mqgate/bench/wire"
)

// bufSize is the read and write buffer of every load connection: large, so
// that a burst of small packets is one system call each way.
const bufSize = 64 << 10

// handshakeTimeout bounds CONNECT→CONNACK and SUBSCRIBE→SUBACK.
const handshakeTimeout = 10 * time.Second

// client is one MQTT connection of the load generator. After the handshake,
// exactly one goroutine owns w and exactly one owns rd.
type client struct {
	nc net.Conn
	w  *bufio.Writer
	rd *wire.Reader
}

// dial connects, sends CONNECT with a clean session and waits for a CONNACK
// that accepts it.
func dial(tr *transport, addr, clientID string, keepAlive uint16) (*client, error) {
	return dialSession(tr, addr, clientID, keepAlive, true)
}

// dialSession is dial; clean false asks for a persistent session.
func dialSession(tr *transport, addr, clientID string, keepAlive uint16, clean bool) (*client, error) {
	nc, err := tr.dial(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	c := &client{nc: nc, w: bufio.NewWriterSize(nc, bufSize), rd: wire.NewReader(nc, bufSize, 0)}
	if err := c.connect(clientID, keepAlive, clean); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *client) connect(clientID string, keepAlive uint16, clean bool) error {
	if err := c.nc.SetDeadline(time.Now().Add(handshakeTimeout)); err != nil {
		return fmt.Errorf("connect %s: %w", clientID, err)
	}
	c.w.Write(wire.AppendConnect(c.w.AvailableBuffer(), clientID, keepAlive, clean))
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("connect %s: %w", clientID, err)
	}
	p, err := c.rd.Next()
	if err != nil {
		return fmt.Errorf("connect %s: waiting for connack: %w", clientID, err)
	}
	if p.Type != wire.TypeConnack {
		// The first packet from the server must be CONNACK [MQTT-3.2.0-1].
		return fmt.Errorf("connect %s: first packet has type %d, not connack", clientID, p.Type)
	}
	ack, err := wire.ParseConnack(p.Body)
	if err != nil {
		return fmt.Errorf("connect %s: %w", clientID, err)
	}
	if ack.Code != 0 {
		return fmt.Errorf("connect %s: refused with return code %d", clientID, ack.Code)
	}
	if err := c.nc.SetDeadline(time.Time{}); err != nil {
		return fmt.Errorf("connect %s: %w", clientID, err)
	}
	return nil
}

// subscribe subscribes to one filter and waits for its SUBACK.
func (c *client) subscribe(filter string, qos byte) error {
	if err := c.nc.SetDeadline(time.Now().Add(handshakeTimeout)); err != nil {
		return fmt.Errorf("subscribe %s: %w", filter, err)
	}
	const id = 1
	c.w.Write(wire.AppendSubscribe(c.w.AvailableBuffer(), id, filter, qos))
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("subscribe %s: %w", filter, err)
	}
	p, err := c.rd.Next()
	if err != nil {
		return fmt.Errorf("subscribe %s: waiting for suback: %w", filter, err)
	}
	if p.Type != wire.TypeSuback {
		return fmt.Errorf("subscribe %s: got packet type %d, not suback", filter, p.Type)
	}
	got, codes, err := wire.ParseSuback(p.Body)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", filter, err)
	}
	// The SUBACK carries the SUBSCRIBE's packet identifier [MQTT-3.8.4-2] and
	// one return code per filter [MQTT-3.9.3-1].
	if got != id || len(codes) != 1 {
		return fmt.Errorf("subscribe %s: suback id %d with %d codes", filter, got, len(codes))
	}
	if codes[0] == wire.SubackFailure || codes[0] != qos {
		return fmt.Errorf("subscribe %s: granted %#x, asked QoS %d", filter, codes[0], qos)
	}
	if err := c.nc.SetDeadline(time.Time{}); err != nil {
		return fmt.Errorf("subscribe %s: %w", filter, err)
	}
	return nil
}

// disconnect sends DISCONNECT and closes the connection. It writes straight to
// the socket, bypassing w, so it is safe while another goroutine owns w: a
// socket write is atomic with respect to other writes, and w only ever holds
// whole packets of a few bytes.
func (c *client) disconnect() {
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.nc.Write(wire.AppendDisconnect(nil))
	_ = c.nc.Close()
}
