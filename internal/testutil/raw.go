package testutil

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mqgate/mqgate/mqtt"
)

// Raw is a byte-level MQTT client for tests: it sends exactly what it is
// given, so tests can produce what real clients never would.
type Raw struct {
	t       testing.TB
	Conn    net.Conn
	Version mqtt.Version
}

// Dial connects to addr; the connection is closed when the test ends.
func Dial(t testing.TB, addr string, v mqtt.Version) *Raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &Raw{t: t, Conn: c, Version: v}
}

// Send encodes and writes p.
func (r *Raw) Send(p mqtt.Packet) {
	r.t.Helper()
	b, err := p.Encode(nil, r.Version)
	if err != nil {
		r.t.Fatalf("encode %T: %v", p, err)
	}
	r.SendBytes(b)
}

// SendBytes writes b as is.
func (r *Raw) SendBytes(b []byte) {
	r.t.Helper()
	_ = r.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.Conn.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// ReadTimeout reads one packet, waiting at most d.
func (r *Raw) ReadTimeout(d time.Duration) (mqtt.Packet, error) {
	_ = r.Conn.SetReadDeadline(time.Now().Add(d))
	return mqtt.ReadPacket(r.Conn, r.Version, 0)
}

// Read reads one packet, failing the test after 5 s.
func (r *Raw) Read() mqtt.Packet {
	r.t.Helper()
	p, err := r.ReadTimeout(5 * time.Second)
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	return p
}

// Connect sends c (with r's version unless c sets one) and returns the
// CONNACK.
func (r *Raw) Connect(c *mqtt.Connect) *mqtt.Connack {
	r.t.Helper()
	if c.Version == 0 {
		c.Version = r.Version
	}
	if c.ProtocolName == "" {
		c.ProtocolName = "MQTT"
		if c.Version == mqtt.V31 {
			c.ProtocolName = "MQIsdp"
		}
	}
	r.Send(c)
	p := r.Read()
	ack, ok := p.(*mqtt.Connack)
	if !ok {
		r.t.Fatalf("want CONNACK, got %T", p)
	}
	return ack
}

// ExpectClosed waits for the server to close the connection, returning the
// packets that arrived before (for example a v5 DISCONNECT).
func (r *Raw) ExpectClosed() []mqtt.Packet {
	r.t.Helper()
	var got []mqtt.Packet
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, err := r.ReadTimeout(time.Until(deadline))
		if err == nil {
			got = append(got, p)
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			r.t.Fatalf("connection still open after 5s (got %d packets)", len(got))
		}
		var oe *net.OpError
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &oe) {
			return got // closed, or reset by the peer
		}
		r.t.Fatalf("reading before the close: %v (after %d packets)", err, len(got))
	}
}
