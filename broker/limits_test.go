package broker_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// TestLimitMaxPacketSize checks mqtt.max_packet_size: v5 clients learn it
// from CONNACK [MQTT-3.2.2-15] and a larger packet ends the connection
// (v5: DISCONNECT 0x95).
func TestLimitMaxPacketSize(t *testing.T) {
	const max = 128
	_, addr := testutil.RunBroker(t, func(o *broker.Options) { o.MaxPacketSize = max })
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		t.Run(versionNames[v], func(t *testing.T) {
			r, ack := dialConnect(t, addr, v, &mqtt.Connect{ClientID: "big", CleanStart: true})
			if v == mqtt.V5 && (!ack.Props.Has(mqtt.PropMaximumPacketSize) || ack.Props.MaximumPacketSize != max) {
				t.Fatalf("CONNACK Maximum Packet Size %d (present %v), want %d",
					ack.Props.MaximumPacketSize, ack.Props.Has(mqtt.PropMaximumPacketSize), max)
			}
			// A packet of exactly the maximum is accepted.
			fit := &mqtt.Publish{Topic: "t", QoS: 1, PacketID: 1}
			fit.Payload = bytes.Repeat([]byte("x"), max-len(mustEncode(t, fit, v)))
			if n := len(mustEncode(t, fit, v)); n != max {
				t.Fatalf("test packet is %d bytes, want %d", n, max)
			}
			r.Send(fit)
			expectAck(t, r.Read(), mqtt.PUBACK, 1)
			// One byte more is not.
			fit.Payload = append(fit.Payload, 'x')
			fit.PacketID = 2
			r.Send(fit)
			expectClosedWith(t, r, mqtt.PacketTooLarge)
		})
	}
}

// TestLimitMaxClientIDLen checks max_clientid_len (the server may allow
// fewer characters than 65,535 [MQTT-3.1.3-5]): a longer client id is
// refused with CONNACK 0x85 (v5) or return code 2 (3.x).
func TestLimitMaxClientIDLen(t *testing.T) {
	_, addr := testutil.RunBroker(t, func(o *broker.Options) { o.MaxClientIDLen = 8 })
	for _, v := range []mqtt.Version{mqtt.V31, mqtt.V311, mqtt.V5} {
		t.Run(versionNames[v], func(t *testing.T) {
			connectClean(t, addr, v, "12345678")
			r := testutil.Dial(t, addr, v)
			want := mqtt.ClientIDNotValid
			if v != mqtt.V5 {
				want = mqtt.V3IdentifierRejected
			}
			if a := r.Connect(&mqtt.Connect{ClientID: "123456789", CleanStart: true}); a.ReasonCode != want {
				t.Fatalf("CONNACK %d, want %d", a.ReasonCode, want)
			}
			expectClosedWith(t, r, 0)
		})
	}
}

// TestLimitMaxTopicLevels checks max_topic_levels: a deeper PUBLISH topic
// ends the connection (v5 DISCONNECT 0x90), a deeper filter is refused in
// SUBACK (0x8F, 3.x 0x80).
func TestLimitMaxTopicLevels(t *testing.T) {
	_, addr := testutil.RunBroker(t, func(o *broker.Options) { o.MaxTopicLevels = 3 })
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		t.Run(versionNames[v], func(t *testing.T) {
			r := connectClean(t, addr, v, "levels")
			refused := mqtt.TopicFilterInvalid
			if v != mqtt.V5 {
				refused = mqtt.V3SubackFailure
			}
			for i, tc := range []struct {
				filter string
				want   mqtt.ReasonCode
			}{
				{"a/b/c", mqtt.GrantedQoS1},
				{"a/+/#", mqtt.GrantedQoS1},
				{"a/b/c/d", refused},
				{"a/b/c/#", refused},
				{"$share/g/a/b/c/d", refused},
			} {
				if got := subscribeOne(t, r, uint16(i+1), tc.filter, 1); got != tc.want {
					t.Errorf("SUBACK for %q: %d, want %d", tc.filter, got, tc.want)
				}
			}
			pub := connectClean(t, addr, v, "levels-pub")
			publishAcked(t, pub, 10, "a/b/c", 1, "ok")
			if p := readPublish(t, r); p.Topic != "a/b/c" {
				t.Fatalf("got %q", p.Topic)
			}
			r.Send(&mqtt.Publish{Topic: "a/b/c/d", QoS: 1, PacketID: 11})
			expectClosedWith(t, r, mqtt.TopicNameInvalid)
		})
	}
}

// TestLimitMaxQoS checks max_qos_allowed = 1: v5 CONNACK carries Maximum
// QoS 1 [MQTT-3.2.2-9], a QoS 2 PUBLISH gets DISCONNECT 0x9B
// [MQTT-3.2.2-11], a QoS 2 subscription is granted QoS 1, and a will of
// QoS 2 is refused with CONNACK 0x9B [MQTT-3.2.2-12].
func TestLimitMaxQoS(t *testing.T) {
	_, addr := testutil.RunBroker(t, func(o *broker.Options) { o.MaxQoS = 1 })
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		t.Run(versionNames[v], func(t *testing.T) {
			r, ack := dialConnect(t, addr, v, &mqtt.Connect{ClientID: "qos", CleanStart: true})
			if v == mqtt.V5 && (!ack.Props.Has(mqtt.PropMaximumQoS) || ack.Props.MaximumQoS != 1) {
				t.Fatalf("CONNACK Maximum QoS %d (present %v), want 1", ack.Props.MaximumQoS, ack.Props.Has(mqtt.PropMaximumQoS))
			}
			if got := subscribeOne(t, r, 1, "q", 2); got != mqtt.GrantedQoS1 {
				t.Fatalf("SUBACK %d, want granted QoS 1", got)
			}
			pub := connectClean(t, addr, v, "qos-pub")
			publishAcked(t, pub, 2, "q", 1, "one")
			if p := readPublish(t, r); p.QoS != 1 {
				t.Fatalf("delivered at QoS %d, want 1", p.QoS)
			}
			r.Send(&mqtt.Publish{Topic: "q", QoS: 2, PacketID: 3})
			expectClosedWith(t, r, mqtt.QoSNotSupported)
		})
	}
	t.Run("will QoS 2", func(t *testing.T) {
		r := testutil.Dial(t, addr, mqtt.V5)
		a := r.Connect(&mqtt.Connect{ClientID: "wq", CleanStart: true, Will: &mqtt.Will{Topic: "w", QoS: 2}})
		if a.ReasonCode != mqtt.QoSNotSupported {
			t.Fatalf("CONNACK %s, want %s", a.ReasonCode, mqtt.QoSNotSupported)
		}
	})
}

// TestLimitMaxSubscriptions checks the per-client subscription limit:
// SUBACK 0x97 (3.x 0x80) past it, while replacing an existing
// subscription still works [MQTT-3.8.4-3].
func TestLimitMaxSubscriptions(t *testing.T) {
	_, addr := testutil.RunBroker(t, func(o *broker.Options) { o.MaxSubscriptions = 2 })
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		t.Run(versionNames[v], func(t *testing.T) {
			r := connectClean(t, addr, v, "subs")
			over := mqtt.QuotaExceeded
			if v != mqtt.V5 {
				over = mqtt.V3SubackFailure
			}
			r.Send(&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{
				{Filter: "a", QoS: 0}, {Filter: "b", QoS: 1}, {Filter: "c", QoS: 1}, {Filter: "a", QoS: 2},
			}})
			sa := r.Read().(*mqtt.Suback)
			want := []mqtt.ReasonCode{mqtt.GrantedQoS0, mqtt.GrantedQoS1, over, mqtt.GrantedQoS2}
			if fmt.Sprint(sa.ReasonCodes) != fmt.Sprint(want) {
				t.Fatalf("SUBACK %v, want %v", sa.ReasonCodes, want)
			}
			// After an unsubscribe there is room again.
			r.Send(&mqtt.Unsubscribe{PacketID: 2, Filters: []string{"b"}})
			r.Read()
			if got := subscribeOne(t, r, 3, "c", 1); got != mqtt.GrantedQoS1 {
				t.Fatalf("SUBACK after unsubscribe %d", got)
			}
		})
	}
}

// TestLimitMaxConnections checks a listener's max_connections: the extra
// connection is closed at once and counted in connections.refused, and a
// slot freed by a disconnect can be used again.
func TestLimitMaxConnections(t *testing.T) {
	bus := events.NewBus()
	b, addr := testutil.RunBroker(t, func(o *broker.Options) {
		o.Listeners[0].MaxConnections = 2
		o.Events = bus
	})
	log := newEventLog(t, bus)
	first := connectClean(t, addr, mqtt.V5, "c1")
	connectClean(t, addr, mqtt.V311, "c2")
	extra := testutil.Dial(t, addr, mqtt.V5)
	if got := extra.ExpectClosed(); len(got) != 0 {
		t.Fatalf("refused connection got %s", describe(got))
	}
	if n := b.Metrics()["connections.refused"]; n != 1 {
		t.Fatalf("connections.refused = %d, want 1", n)
	}
	first.Send(&mqtt.Disconnect{})
	first.ExpectClosed()
	log.waitKind(t, events.ClientDisconnected, "c1")
	connectClean(t, addr, mqtt.V5, "c3")
	if n := b.Metrics()["connections.refused"]; n != 1 {
		t.Fatalf("connections.refused = %d after a slot was freed, want 1", n)
	}
}

// TestLimitSlowConsumer checks max_queued_bytes: a subscriber that never
// reads while a publisher floods is disconnected as a slow consumer and
// counted in connections.slow_consumer, and the publisher is never held
// up: every one of its PUBLISHes is acknowledged.
func TestLimitSlowConsumer(t *testing.T) {
	bus := events.NewBus()
	b, addr := testutil.RunBroker(t, func(o *broker.Options) {
		o.MaxQueuedBytes = 64 << 10
		o.Events = bus
	})
	log := newEventLog(t, bus)
	slow := connectClean(t, addr, mqtt.V5, "slow")
	mustSubscribe(t, slow, "flood", 0)
	pub := connectClean(t, addr, mqtt.V5, "flooder")
	payload := bytes.Repeat([]byte("f"), 16<<10)
	// The kernel buffers of a loopback connection hold a few MiB; 64 MiB
	// is far more than they can, so the limit must trip well before.
	const most = 4096
	sent := 0
	for ; sent < most && b.Metrics()["connections.slow_consumer"] == 0; sent++ {
		pid := uint16(sent%65535 + 1)
		pub.Send(&mqtt.Publish{Topic: "flood", QoS: 1, PacketID: pid, Payload: payload})
		expectAck(t, pub.Read(), mqtt.PUBACK, pid)
	}
	if sent == most {
		t.Fatalf("no slow consumer cut after %d messages of %d bytes", most, len(payload))
	}
	// The publisher goes on unhindered.
	for i := range 20 {
		pid := uint16(60000 + i)
		pub.Send(&mqtt.Publish{Topic: "flood", QoS: 1, PacketID: pid, Payload: payload})
		expectAck(t, pub.Read(), mqtt.PUBACK, pid)
	}
	// Now the subscriber reads: what was already on its way, then
	// DISCONNECT 0x97, then the end of the stream.
	got := slow.ExpectClosed()
	if len(got) == 0 {
		t.Fatal("the slow consumer got nothing")
	}
	if d, ok := got[len(got)-1].(*mqtt.Disconnect); !ok || d.ReasonCode != mqtt.QuotaExceeded || d.Props.ReasonString != "slow_consumer" {
		t.Fatalf("last packet %s, want DISCONNECT %s with reason string slow_consumer", describe(got[len(got)-1:]), mqtt.QuotaExceeded)
	}
	if e := log.waitKind(t, events.ClientDisconnected, "slow"); e.Reason != "slow_consumer" {
		t.Fatalf("disconnected with reason %q, want slow_consumer", e.Reason)
	}
	if n := b.Metrics()["connections.slow_consumer"]; n != 1 {
		t.Fatalf("connections.slow_consumer = %d, want 1", n)
	}
	barrier(t, pub)
}

// mqueueSetup connects a persistent v5 subscriber "off" to topic q at QoS
// 1, takes it offline, and returns a publisher.
func mqueueSetup(t *testing.T, b *broker.Broker, addr string) *testutil.Raw {
	t.Helper()
	c := &mqtt.Connect{ClientID: "off", CleanStart: true}
	c.Props.SessionExpiry = 60
	c.Props.Set(mqtt.PropSessionExpiry)
	sub, _ := dialConnect(t, addr, mqtt.V5, c)
	mustSubscribe(t, sub, "q", 1)
	goOffline(t, b, sub, "off")
	return connectClean(t, addr, mqtt.V5, "pub")
}

// reconnectOff resumes the session of "off" and returns the payloads it
// receives before a barrier, acknowledging each.
func reconnectOff(t *testing.T, addr string) []string {
	t.Helper()
	r, ack := dialConnect(t, addr, mqtt.V5, &mqtt.Connect{ClientID: "off"})
	if !ack.SessionPresent {
		t.Fatal("session not present")
	}
	got := barrier(t, r)
	for _, p := range got {
		if p, ok := p.(*mqtt.Publish); ok && p.QoS > 0 {
			r.Send(&mqtt.Ack{PacketType: mqtt.PUBACK, PacketID: p.PacketID})
		}
	}
	return payloads(t, got)
}

// TestLimitMqueue checks the offline queue of a persistent session:
// max_mqueue_len bounds it, dropping the oldest message by default or the
// new one with mqueue_drop_new, and mqueue_store_qos0 = false keeps QoS 0
// messages out of it.
func TestLimitMqueue(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*broker.Options)
		publish []string // "payload/qos"
		want    []string
	}{
		{"drop oldest", func(o *broker.Options) { o.MaxMqueueLen = 3 },
			[]string{"m1/1", "m2/1", "m3/1", "m4/1", "m5/1"}, []string{"m3", "m4", "m5"}},
		{"drop new", func(o *broker.Options) { o.MaxMqueueLen = 3; o.MqueueDropNew = true },
			[]string{"m1/1", "m2/1", "m3/1", "m4/1", "m5/1"}, []string{"m1", "m2", "m3"}},
		{"store QoS 0", func(o *broker.Options) { o.MqueueStoreQoS0 = true },
			[]string{"a/0", "b/1", "c/0"}, []string{"a", "b", "c"}},
		{"no QoS 0", func(o *broker.Options) { o.MqueueStoreQoS0 = false },
			[]string{"a/0", "b/1", "c/0", "d/2"}, []string{"b", "d"}},
		{"no QoS 0, bounded", func(o *broker.Options) { o.MqueueStoreQoS0 = false; o.MaxMqueueLen = 1 },
			[]string{"a/1", "b/0", "c/1", "d/0"}, []string{"c"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, addr := testutil.RunBroker(t, tc.edit)
			pub := mqueueSetup(t, b, addr)
			for i, m := range tc.publish {
				payload, q, _ := strings.Cut(m, "/")
				publishAcked(t, pub, uint16(i+1), "q", q[0]-'0', payload)
			}
			if got := reconnectOff(t, addr); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("after reconnect got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestLimitMqueueDroppedEvent checks that a message pushed out of a full
// offline queue is reported as message.dropped with reason queue_full, and
// counted.
func TestLimitMqueueDroppedEvent(t *testing.T) {
	bus := events.NewBus()
	b, addr := testutil.RunBroker(t, func(o *broker.Options) {
		o.MaxMqueueLen = 1
		o.Events = bus
	})
	log := newEventLog(t, bus)
	pub := mqueueSetup(t, b, addr)
	publishAcked(t, pub, 1, "q", 1, "first")
	publishAcked(t, pub, 2, "q", 1, "second")
	e := log.waitKind(t, events.MessageDropped, "off")
	if e.Reason != "queue_full" || string(e.Payload) != "first" || e.Topic != "q" || e.FromClientID != "pub" {
		t.Fatalf("message.dropped %+v, want queue_full of the first message", e)
	}
	if n := b.Metrics()["delivery.dropped.queue_full"]; n != 1 {
		t.Fatalf("delivery.dropped.queue_full = %d, want 1", n)
	}
}
