package broker_test

import (
	"slices"
	"testing"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// TestEventsLifecycle checks the events the broker publishes for connect
// → subscribe → publish → acknowledge → unsubscribe → disconnect, per
// client and in order, and the fields webhook bodies are built from.
func TestEventsLifecycle(t *testing.T) {
	bus := events.NewBus()
	_, addr := testutil.RunBroker(t, func(o *broker.Options) { o.Events = bus })
	log := newEventLog(t, bus)

	sub, _ := dialConnect(t, addr, mqtt.V5, &mqtt.Connect{ClientID: "sub", CleanStart: true, KeepAlive: 30,
		UsernameSet: true, Username: "alice"})
	mustSubscribe(t, sub, "ev/#", 1)
	pub := connectClean(t, addr, mqtt.V311, "pub")
	publishAcked(t, pub, 5, "ev/a", 1, "hello")
	p := readPublish(t, sub)
	sub.Send(&mqtt.Ack{PacketType: mqtt.PUBACK, PacketID: p.PacketID})
	sub.Send(&mqtt.Unsubscribe{PacketID: 2, Filters: []string{"ev/#"}})
	if _, ok := sub.Read().(*mqtt.Unsuback); !ok {
		t.Fatal("want UNSUBACK")
	}
	pub.Send(&mqtt.Disconnect{})
	pub.ExpectClosed()
	sub.Send(&mqtt.Disconnect{})
	sub.ExpectClosed()
	log.waitKind(t, events.SessionTerminated, "pub")
	log.waitKind(t, events.SessionTerminated, "sub")

	want := map[string][]string{
		"sub": {"client.connect", "session.created", "client.connack", "client.connected",
			"client.subscribe", "session.subscribed", "message.delivered", "message.acked",
			"client.unsubscribe", "session.unsubscribed", "client.disconnected", "session.terminated"},
		"pub": {"client.connect", "session.created", "client.connack", "client.connected",
			"message.publish", "client.disconnected", "session.terminated"},
	}
	for id, kinds := range want {
		if got := log.kindsOf(id); !slices.Equal(got, kinds) {
			t.Errorf("events of %s:\n got %v\nwant %v", id, got, kinds)
		}
	}
	// The message events follow the message: published, then delivered,
	// then acknowledged, all with one message id.
	var msgID uint64
	var order []events.Kind
	for _, e := range log.got {
		switch e.Kind {
		case events.MessagePublish, events.MessageDelivered, events.MessageAcked:
			if msgID == 0 {
				msgID = e.MessageID
			}
			if e.MessageID != msgID || e.Topic != "ev/a" || string(e.Payload) != "hello" || e.QoS != 1 || e.FromClientID != "pub" {
				t.Errorf("%s: %+v", e.Kind, e)
			}
			order = append(order, e.Kind)
		case events.ClientConnected:
			if e.ClientID == "sub" && (e.Username != "alice" || !e.UsernameSet || e.ProtoVer != 5 || e.KeepAlive != 30 ||
				e.Listener != "tcp:external" || !e.Peer.IsValid() || e.ConnectedAt.IsZero()) {
				t.Errorf("client.connected: %+v", e)
			}
		case events.ClientConnack:
			if e.ConnAck != 0 {
				t.Errorf("client.connack: %+v", e)
			}
		case events.SessionSubscribed:
			if e.Topic != "ev/#" || e.Opts.QoS != 1 {
				t.Errorf("session.subscribed: %+v", e)
			}
		case events.ClientDisconnected, events.SessionTerminated:
			if e.Reason != "normal" {
				t.Errorf("%s: reason %q, want normal", e.Kind, e.Reason)
			}
		}
	}
	if !slices.Equal(order, []events.Kind{events.MessagePublish, events.MessageDelivered, events.MessageAcked}) {
		t.Errorf("message events %v", order)
	}
	if n := log.sub.Dropped(); n != 0 {
		t.Errorf("%d events dropped", n)
	}
}

// TestEventsSessions checks the session events of a resumed, taken over
// and discarded session, and the client.connack of a refused connection.
func TestEventsSessions(t *testing.T) {
	bus := events.NewBus()
	_, addr := testutil.RunBroker(t, func(o *broker.Options) {
		o.Events = bus
		o.MaxClientIDLen = 10
	})
	log := newEventLog(t, bus)
	persistent := func(clean bool) *mqtt.Connect {
		c := &mqtt.Connect{ClientID: "s", CleanStart: clean}
		c.Props.SessionExpiry = 60
		c.Props.Set(mqtt.PropSessionExpiry)
		return c
	}
	first, _ := dialConnect(t, addr, mqtt.V5, persistent(true))
	log.waitKind(t, events.ClientConnected, "s")
	// Taken over and resumed.
	second, _ := dialConnect(t, addr, mqtt.V5, persistent(false))
	expectClosedWith(t, first, mqtt.SessionTakenOver)
	log.waitKind(t, events.ClientConnected, "s")
	// Taken over and discarded: clean start.
	dialConnect(t, addr, mqtt.V5, persistent(true))
	expectClosedWith(t, second, mqtt.SessionTakenOver)
	log.waitKind(t, events.ClientConnected, "s")

	// The old connections' client.disconnected events come from their own
	// goroutines; leave them out and check the rest in order.
	var got []string
	for _, k := range log.kindsOf("s") {
		if k != "client.disconnected" {
			got = append(got, k)
		}
	}
	want := []string{
		"client.connect", "session.created", "client.connack", "client.connected",
		"client.connect", "session.takenover", "session.resumed", "client.connack", "client.connected",
		"client.connect", "session.discarded", "session.takenover", "session.created", "client.connack", "client.connected",
	}
	if !slices.Equal(got, want) {
		t.Errorf("session events:\n got %v\nwant %v", got, want)
	}

	// A refused CONNECT reports its CONNACK code.
	r := testutil.Dial(t, addr, mqtt.V5)
	r.Connect(&mqtt.Connect{ClientID: "much-too-long", CleanStart: true})
	if e := log.waitKind(t, events.ClientConnack, "much-too-long"); e.ConnAck != byte(mqtt.ClientIDNotValid) || e.Reason == "" {
		t.Errorf("refused client.connack: code 0x%02X reason %q", e.ConnAck, e.Reason)
	}
}
