package broker_test

import (
	"fmt"
	"testing"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// TestFlowReceiveMaximumExceeded checks our Receive Maximum: CONNACK
// announces it, and a v5 client that has more unacknowledged QoS 2
// PUBLISHes in flight gets DISCONNECT 0x93 [MQTT-3.3.4-9]. A released
// packet id frees its slot, and a resent duplicate does not take one.
func TestFlowReceiveMaximumExceeded(t *testing.T) {
	_, addr := testutil.RunBroker(t, func(o *broker.Options) { o.ReceiveMaximum = 2 })
	r, ack := dialConnect(t, addr, mqtt.V5, &mqtt.Connect{ClientID: "greedy", CleanStart: true})
	if !ack.Props.Has(mqtt.PropReceiveMaximum) || ack.Props.ReceiveMaximum != 2 {
		t.Fatalf("CONNACK Receive Maximum %d (present %v), want 2", ack.Props.ReceiveMaximum, ack.Props.Has(mqtt.PropReceiveMaximum))
	}
	send := func(pid uint16, dup bool) {
		r.Send(&mqtt.Publish{Topic: "t", QoS: 2, PacketID: pid, Dup: dup, Payload: []byte("x")})
	}
	send(1, false)
	expectAck(t, r.Read(), mqtt.PUBREC, 1)
	send(2, false)
	expectAck(t, r.Read(), mqtt.PUBREC, 2)
	// A duplicate of an id in flight is not a new message.
	send(2, true)
	expectAck(t, r.Read(), mqtt.PUBREC, 2)
	// Releasing id 1 frees a slot.
	r.Send(&mqtt.Ack{PacketType: mqtt.PUBREL, PacketID: 1})
	expectAck(t, r.Read(), mqtt.PUBCOMP, 1)
	send(3, false)
	expectAck(t, r.Read(), mqtt.PUBREC, 3)
	// Ids 2 and 3 await PUBREL: a third one is too many.
	send(4, false)
	expectClosedWith(t, r, mqtt.ReceiveMaximumExceeded)
}

// flowWindow publishes n QoS qos messages to a subscriber whose window
// (its v5 Receive Maximum, or max_inflight) is window, then acknowledges
// them one at a time. After each step a barrier shows what the broker has
// sent: it must always have exactly min(window, not yet acknowledged)
// messages unacknowledged, in publish order.
func flowWindow(t *testing.T, sub, pub *testutil.Raw, window, n int, qos byte) {
	t.Helper()
	for i := range n {
		publishAcked(t, pub, uint16(i+1), "w", qos, fmt.Sprintf("m%d", i))
	}
	var inflight []*mqtt.Publish
	received := 0
	for acked := 0; acked < n; acked++ {
		for _, p := range barrier(t, sub) {
			got, ok := p.(*mqtt.Publish)
			if !ok || string(got.Payload) != fmt.Sprintf("m%d", received) || got.QoS != qos {
				t.Fatalf("want m%d at QoS %d, got %s", received, qos, describe([]mqtt.Packet{p}))
			}
			inflight = append(inflight, got)
			received++
		}
		if want := min(window, n-acked); len(inflight) != want {
			t.Fatalf("after %d acknowledged: %d unacknowledged, want %d", acked, len(inflight), want)
		}
		first := inflight[0]
		inflight = inflight[1:]
		if qos == 1 {
			sub.Send(&mqtt.Ack{PacketType: mqtt.PUBACK, PacketID: first.PacketID})
			continue
		}
		// PUBREC does not free the slot, PUBCOMP does (MQTT 5.0 §4.9).
		sub.Send(&mqtt.Ack{PacketType: mqtt.PUBREC, PacketID: first.PacketID})
		rel := barrier(t, sub)
		if len(rel) != 1 {
			t.Fatalf("after PUBREC want only PUBREL, got %s", describe(rel))
		}
		expectAck(t, rel[0], mqtt.PUBREL, first.PacketID)
		sub.Send(&mqtt.Ack{PacketType: mqtt.PUBCOMP, PacketID: first.PacketID})
	}
	expectNothing(t, sub, "after the last message")
}

// TestFlowClientReceiveMaximum checks [MQTT-3.3.4-7]: the broker never
// has more QoS 1 and 2 PUBLISHes unacknowledged than the client's Receive
// Maximum.
func TestFlowClientReceiveMaximum(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	for _, qos := range []byte{1, 2} {
		t.Run(fmt.Sprintf("QoS %d", qos), func(t *testing.T) {
			c := &mqtt.Connect{ClientID: "small", CleanStart: true}
			c.Props.ReceiveMaximum = 2
			c.Props.Set(mqtt.PropReceiveMaximum)
			sub, _ := dialConnect(t, addr, mqtt.V5, c)
			mustSubscribe(t, sub, "w", 2)
			pub := connectClean(t, addr, mqtt.V5, "pub")
			flowWindow(t, sub, pub, 2, 5, qos)
		})
	}
}

// TestFlowMaxInflightV311 checks max_inflight for a 3.1.1 subscriber,
// which has no Receive Maximum of its own: at most max_inflight QoS 1 and
// 2 messages are unacknowledged.
func TestFlowMaxInflightV311(t *testing.T) {
	_, addr := testutil.RunBroker(t, func(o *broker.Options) { o.MaxInflight = 3 })
	for _, qos := range []byte{1, 2} {
		t.Run(fmt.Sprintf("QoS %d", qos), func(t *testing.T) {
			sub := connectClean(t, addr, mqtt.V311, "inflight")
			mustSubscribe(t, sub, "w", 2)
			pub := connectClean(t, addr, mqtt.V311, "pub")
			flowWindow(t, sub, pub, 3, 7, qos)
		})
	}
}

// TestFlowReceiveMaximumBelowMaxInflight checks that the smaller of the
// client's Receive Maximum and max_inflight wins.
func TestFlowReceiveMaximumBelowMaxInflight(t *testing.T) {
	_, addr := testutil.RunBroker(t, func(o *broker.Options) { o.MaxInflight = 2 })
	c := &mqtt.Connect{ClientID: "big", CleanStart: true}
	c.Props.ReceiveMaximum = 100
	c.Props.Set(mqtt.PropReceiveMaximum)
	sub, _ := dialConnect(t, addr, mqtt.V5, c)
	mustSubscribe(t, sub, "w", 1)
	pub := connectClean(t, addr, mqtt.V5, "pub")
	flowWindow(t, sub, pub, 2, 4, 1)
}
