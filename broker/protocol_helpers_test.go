package broker_test

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// versionNames names the protocol levels, for sub-test names.
var versionNames = map[mqtt.Version]string{mqtt.V31: "v3.1", mqtt.V311: "v3.1.1", mqtt.V5: "v5"}

// dialConnect dials addr and connects with c, failing the test unless the
// broker accepts the connection.
func dialConnect(t *testing.T, addr string, v mqtt.Version, c *mqtt.Connect) (*testutil.Raw, *mqtt.Connack) {
	t.Helper()
	r := testutil.Dial(t, addr, v)
	ack := r.Connect(c)
	if ack.ReasonCode != mqtt.Success {
		t.Fatalf("%s CONNACK %s for %q, want success", versionNames[v], ack.ReasonCode, c.ClientID)
	}
	return r, ack
}

// connectClean connects a client with clean start and keep alive 0.
func connectClean(t *testing.T, addr string, v mqtt.Version, id string) *testutil.Raw {
	t.Helper()
	r, _ := dialConnect(t, addr, v, &mqtt.Connect{ClientID: id, CleanStart: true})
	return r
}

// mustEncode encodes p for v.
func mustEncode(t *testing.T, p mqtt.Packet, v mqtt.Version) []byte {
	t.Helper()
	b, err := p.Encode(nil, v)
	if err != nil {
		t.Fatalf("encode %T: %v", p, err)
	}
	return b
}

// subscribeOne subscribes r to filter at qos and returns the SUBACK code.
func subscribeOne(t *testing.T, r *testutil.Raw, pid uint16, filter string, qos byte) mqtt.ReasonCode {
	t.Helper()
	r.Send(&mqtt.Subscribe{PacketID: pid, Subscriptions: []mqtt.Subscription{{Filter: filter, QoS: qos}}})
	sa, ok := r.Read().(*mqtt.Suback)
	if !ok || sa.PacketID != pid || len(sa.ReasonCodes) != 1 {
		t.Fatalf("want SUBACK %d with one code, got %+v", pid, sa)
	}
	return sa.ReasonCodes[0]
}

// mustSubscribe subscribes and fails unless the broker grants qos.
func mustSubscribe(t *testing.T, r *testutil.Raw, filter string, qos byte) {
	t.Helper()
	if code := subscribeOne(t, r, 1, filter, qos); code != mqtt.ReasonCode(qos) {
		t.Fatalf("SUBACK for %q: %s, want granted QoS %d", filter, code, qos)
	}
}

// publishAcked publishes at QoS 0, 1 or 2 and completes the exchange, so
// that when it returns the broker has routed the message.
func publishAcked(t *testing.T, r *testutil.Raw, pid uint16, topic string, qos byte, payload string) {
	t.Helper()
	p := &mqtt.Publish{Topic: topic, QoS: qos, Payload: []byte(payload)}
	if qos > 0 {
		p.PacketID = pid
	}
	r.Send(p)
	switch qos {
	case 0:
		barrier(t, r) // routing happens before the PINGREQ is read
	case 1:
		expectAck(t, r.Read(), mqtt.PUBACK, pid)
	case 2:
		expectAck(t, r.Read(), mqtt.PUBREC, pid)
		r.Send(&mqtt.Ack{PacketType: mqtt.PUBREL, PacketID: pid})
		expectAck(t, r.Read(), mqtt.PUBCOMP, pid)
	}
}

// expectAck fails unless p is an ack of type typ for packet id pid with a
// success (or "no matching subscribers") reason code.
func expectAck(t *testing.T, p mqtt.Packet, typ mqtt.Type, pid uint16) *mqtt.Ack {
	t.Helper()
	a, ok := p.(*mqtt.Ack)
	if !ok || a.PacketType != typ || a.PacketID != pid {
		t.Fatalf("want %s %d, got %T %+v", typ, pid, p, p)
	}
	if a.ReasonCode >= 0x80 {
		t.Fatalf("%s %d with reason %s", typ, pid, a.ReasonCode)
	}
	return a
}

// barrier sends PINGREQ and returns every packet that arrives before the
// PINGRESP. The broker handles one connection's packets in order, so
// whatever it wrote to r before reading the PINGREQ comes back here: it is
// how a test proves that something was not sent, without waiting.
func barrier(t *testing.T, r *testutil.Raw) []mqtt.Packet {
	t.Helper()
	r.Send(&mqtt.Pingreq{})
	var got []mqtt.Packet
	for {
		p := r.Read()
		if _, ok := p.(*mqtt.Pingresp); ok {
			return got
		}
		got = append(got, p)
	}
}

// expectNothing fails if anything but PINGRESP answers a barrier.
func expectNothing(t *testing.T, r *testutil.Raw, what string) {
	t.Helper()
	if got := barrier(t, r); len(got) != 0 {
		t.Fatalf("%s: unexpected %s", what, describe(got))
	}
}

// readPublish reads one packet and fails unless it is a PUBLISH.
func readPublish(t *testing.T, r *testutil.Raw) *mqtt.Publish {
	t.Helper()
	p := r.Read()
	pub, ok := p.(*mqtt.Publish)
	if !ok {
		t.Fatalf("want PUBLISH, got %s", describe([]mqtt.Packet{p}))
	}
	return pub
}

// expectClosedWith waits for the broker to close r and checks what came
// before: a v5 connection gets exactly one DISCONNECT with code (0 means
// no DISCONNECT is expected), a 3.x connection gets nothing.
func expectClosedWith(t *testing.T, r *testutil.Raw, code mqtt.ReasonCode) {
	t.Helper()
	got := r.ExpectClosed()
	if r.Version != mqtt.V5 || code == 0 {
		if len(got) != 0 {
			t.Fatalf("%s: want the connection closed silently, got %s", versionNames[r.Version], describe(got))
		}
		return
	}
	if len(got) != 1 {
		t.Fatalf("want one DISCONNECT %s before close, got %s", code, describe(got))
	}
	d, ok := got[0].(*mqtt.Disconnect)
	if !ok || d.ReasonCode != code {
		t.Fatalf("want DISCONNECT %s, got %s", code, describe(got))
	}
}

// expectRefused waits for the broker to close a connection that was never
// accepted: nothing arrives, or (v5, when code is not 0) one CONNACK with
// code.
func expectRefused(t *testing.T, r *testutil.Raw, code mqtt.ReasonCode) {
	t.Helper()
	got := r.ExpectClosed()
	for _, p := range got {
		a, ok := p.(*mqtt.Connack)
		if !ok || a.ReasonCode != code || code == 0 {
			t.Fatalf("want the connection closed without CONNACK success, got %s", describe(got))
		}
	}
}

// describe prints packets for failure messages.
func describe(ps []mqtt.Packet) string {
	if len(ps) == 0 {
		return "nothing"
	}
	var b bytes.Buffer
	for i, p := range ps {
		if i > 0 {
			b.WriteString(", ")
		}
		switch p := p.(type) {
		case *mqtt.Publish:
			pl := p.Payload
			if len(pl) > 16 {
				pl = pl[:16]
			}
			fmt.Fprintf(&b, "PUBLISH(%s q%d id%d dup=%v %q)", p.Topic, p.QoS, p.PacketID, p.Dup, pl)
		case *mqtt.Disconnect:
			fmt.Fprintf(&b, "DISCONNECT(%s)", p.ReasonCode)
		case *mqtt.Connack:
			fmt.Fprintf(&b, "CONNACK(%s)", p.ReasonCode)
		case *mqtt.Ack:
			fmt.Fprintf(&b, "%s(%d %s)", p.PacketType, p.PacketID, p.ReasonCode)
		default:
			fmt.Fprintf(&b, "%s", p.Type())
		}
	}
	return b.String()
}

// payloads returns the payloads of ps, which must all be PUBLISH packets.
func payloads(t *testing.T, ps []mqtt.Packet) []string {
	t.Helper()
	out := make([]string, len(ps))
	for i, p := range ps {
		pub, ok := p.(*mqtt.Publish)
		if !ok {
			t.Fatalf("want only PUBLISH packets, got %s", describe(ps))
		}
		out[i] = string(pub.Payload)
	}
	return out
}

// waitFor polls cond until it holds, failing the test after 5 s. It is for
// broker state no packet reports to anyone (a session going offline).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitOffline waits until the broker has detached the session of id from
// its connection (or ended it).
func waitOffline(t *testing.T, b *broker.Broker, id string) {
	t.Helper()
	waitFor(t, id+" is offline", func() bool {
		_, online := b.SessionState(id)
		return !online
	})
}

// goOffline closes r's socket (as a network failure would) and waits until
// the broker has detached the session of id.
func goOffline(t *testing.T, b *broker.Broker, r *testutil.Raw, id string) {
	t.Helper()
	_ = r.Conn.Close()
	waitOffline(t, b, id)
}

// halfClose shuts down r's sending side, so the broker reads EOF.
func halfClose(t *testing.T, r *testutil.Raw) {
	t.Helper()
	if err := r.Conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatalf("close write: %v", err)
	}
}

// eventLog collects the events of a bus.
type eventLog struct {
	sub *events.Subscription
	got []*events.Event
}

// newEventLog subscribes to every kind on bus.
func newEventLog(t *testing.T, bus *events.Bus) *eventLog {
	t.Helper()
	l := &eventLog{sub: bus.Subscribe("test", 1000)}
	t.Cleanup(l.sub.Close)
	return l
}

// waitKind reads events until one of kind k for clientID arrives.
func (l *eventLog) waitKind(t *testing.T, k events.Kind, clientID string) *events.Event {
	t.Helper()
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case e, ok := <-l.sub.C():
			if !ok {
				t.Fatalf("event bus closed while waiting for %s of %q", k, clientID)
			}
			l.got = append(l.got, e)
			if e.Kind == k && e.ClientID == clientID {
				return e
			}
		case <-timeout.C:
			t.Fatalf("no %s event for %q", k, clientID)
		}
	}
}

// kindsOf returns the kinds of the collected events about clientID.
func (l *eventLog) kindsOf(clientID string) []string {
	var out []string
	for _, e := range l.got {
		if e.ClientID == clientID {
			out = append(out, e.Kind.String())
		}
	}
	return out
}
