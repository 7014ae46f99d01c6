package broker_test

import (
	"slices"
	"sync"
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

// TestEventsByReference: an observer that takes the message kinds by
// reference gets the one message the broker routed, in each of its
// events (published, delivered, acknowledged), with the event's own
// fields beside it, and an event of every other kind; the publication's
// time is the message's.
func TestEventsByReference(t *testing.T) {
	bus := events.NewBus()
	var mu sync.Mutex
	var refs []events.MessageRef
	var kinds []string
	bus.ObserveWith("refs", events.Observer{
		Event: func(e *events.Event) bool {
			mu.Lock()
			defer mu.Unlock()
			kinds = append(kinds, e.Kind.String()+" "+e.ClientID)
			return true
		},
		Messages: func(r events.MessageRef) bool {
			mu.Lock()
			defer mu.Unlock()
			refs = append(refs, r)
			return true
		},
	}, events.ClientConnected, events.MessagePublish, events.MessageDelivered, events.MessageAcked)
	_, addr := testutil.RunBroker(t, func(o *broker.Options) { o.Events = bus })
	log := newEventLog(t, bus) // a subscription beside: gets events built from the references

	sub, _ := dialConnect(t, addr, mqtt.V5, &mqtt.Connect{ClientID: "sub", CleanStart: true, UsernameSet: true, Username: "alice"})
	mustSubscribe(t, sub, "ev/#", 1)
	pub := connectClean(t, addr, mqtt.V311, "pub")
	publishAcked(t, pub, 5, "ev/a", 1, "hello")
	p := readPublish(t, sub)
	sub.Send(&mqtt.Ack{PacketType: mqtt.PUBACK, PacketID: p.PacketID})
	acked := log.waitKind(t, events.MessageAcked, "sub")
	if string(acked.Payload) != "hello" || acked.Username != "alice" || acked.FromClientID != "pub" {
		t.Errorf("message.acked built from the reference: %+v", acked)
	}

	mu.Lock()
	defer mu.Unlock()
	slices.Sort(kinds)
	if want := []string{"client.connected pub", "client.connected sub"}; !slices.Equal(kinds, want) {
		t.Errorf("events %q, want %q", kinds, want)
	}
	if len(refs) != 3 {
		t.Fatalf("%d references, want 3: %+v", len(refs), refs)
	}
	want := []struct {
		kind   events.Kind
		client string
		user   string
	}{{events.MessagePublish, "pub", ""}, {events.MessageDelivered, "sub", "alice"}, {events.MessageAcked, "sub", "alice"}}
	for i, r := range refs {
		w := want[i]
		if r.Kind != w.kind || r.ClientID != w.client || r.Username != w.user || r.UsernameSet != (w.user != "") || r.Time.IsZero() {
			t.Errorf("reference %d: %+v, want %s of %s", i, r, w.kind, w.client)
		}
		if r.Msg != refs[0].Msg {
			t.Errorf("reference %d is to another message", i)
		}
	}
	e := refs[0].Msg.Fields()
	if e.Topic != "ev/a" || string(e.Payload) != "hello" || e.QoS != 1 || e.FromClientID != "pub" || e.MessageID == 0 ||
		!e.MessageTime.Equal(refs[0].Time) || refs[0].Msg.Topic() != "ev/a" || refs[0].Msg.Size() != len("ev/a")+len("hello") {
		t.Errorf("the message: %+v, topic %q, size %d", e, refs[0].Msg.Topic(), refs[0].Msg.Size())
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
