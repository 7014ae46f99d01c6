package broker_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// persistentConnect is a CONNECT that resumes (or creates) a session that
// outlives the connection, for v.
func persistentConnect(v mqtt.Version, id string) *mqtt.Connect {
	c := &mqtt.Connect{ClientID: id}
	if v == mqtt.V5 {
		c.Props.SessionExpiry = 300
		c.Props.Set(mqtt.PropSessionExpiry)
	}
	return c
}

// TestRedeliveryOnReconnect checks [MQTT-4.4.0-1]: when a client resumes
// its session, the broker resends every unacknowledged PUBLISH with DUP
// set and the same packet id, in the original order, and for a QoS 2
// message whose PUBREC it got, the PUBREL instead of the PUBLISH. With
// clean start nothing is resent.
func TestRedeliveryOnReconnect(t *testing.T) {
	type stage int
	const (
		unacked   stage = iota // PUBLISH received, nothing answered
		afterRec               // QoS 2: PUBREC sent, PUBREL received
		cleanOver              // reconnect with clean start instead
	)
	tests := []struct {
		name  string
		qos   byte
		stage stage
	}{
		{"QoS 1 unacknowledged", 1, unacked},
		{"QoS 2 before PUBREC", 2, unacked},
		{"QoS 2 after PUBREC", 2, afterRec},
		{"clean start discards", 1, cleanOver},
	}
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		for _, tc := range tests {
			t.Run(versionNames[v]+"/"+tc.name, func(t *testing.T) {
				b, addr := testutil.RunBroker(t, nil)
				sub, _ := dialConnect(t, addr, v, persistentConnect(v, "re"))
				mustSubscribe(t, sub, "r", 2)
				pub := connectClean(t, addr, mqtt.V5, "pub")
				for i := range 3 {
					publishAcked(t, pub, uint16(i+1), "r", tc.qos, fmt.Sprintf("m%d", i))
				}
				var first []*mqtt.Publish
				for range 3 {
					p := readPublish(t, sub)
					if p.Dup {
						t.Fatalf("first delivery with DUP: %s", describe([]mqtt.Packet{p}))
					}
					first = append(first, p)
				}
				if tc.stage == afterRec {
					for _, p := range first {
						sub.Send(&mqtt.Ack{PacketType: mqtt.PUBREC, PacketID: p.PacketID})
						expectAck(t, sub.Read(), mqtt.PUBREL, p.PacketID)
					}
				}
				goOffline(t, b, sub, "re")

				c := persistentConnect(v, "re")
				c.CleanStart = tc.stage == cleanOver
				again, ack := dialConnect(t, addr, v, c)
				if ack.SessionPresent != (tc.stage != cleanOver) {
					t.Fatalf("session present %v", ack.SessionPresent)
				}
				got := barrier(t, again)
				if tc.stage == cleanOver {
					if len(got) != 0 {
						t.Fatalf("clean start: resent %s", describe(got))
					}
					return
				}
				if len(got) != len(first) {
					t.Fatalf("resent %s, want %d packets", describe(got), len(first))
				}
				for i, p := range got {
					if tc.stage == afterRec {
						// The PUBREL, not the PUBLISH, with the same id.
						expectAck(t, p, mqtt.PUBREL, first[i].PacketID)
						again.Send(&mqtt.Ack{PacketType: mqtt.PUBCOMP, PacketID: first[i].PacketID})
						continue
					}
					r, ok := p.(*mqtt.Publish)
					if !ok || !r.Dup || r.PacketID != first[i].PacketID || r.QoS != tc.qos || string(r.Payload) != string(first[i].Payload) {
						t.Fatalf("resent %s, want %s again with DUP", describe([]mqtt.Packet{p}), describe([]mqtt.Packet{first[i]}))
					}
					if tc.qos == 1 {
						again.Send(&mqtt.Ack{PacketType: mqtt.PUBACK, PacketID: r.PacketID})
					} else {
						again.Send(&mqtt.Ack{PacketType: mqtt.PUBREC, PacketID: r.PacketID})
						expectAck(t, again.Read(), mqtt.PUBREL, r.PacketID)
						again.Send(&mqtt.Ack{PacketType: mqtt.PUBCOMP, PacketID: r.PacketID})
					}
				}
				// Completed: nothing is resent on the next reconnect.
				goOffline(t, b, again, "re")
				last, _ := dialConnect(t, addr, v, persistentConnect(v, "re"))
				expectNothing(t, last, "after completing every exchange")
			})
		}
	}
}

// TestQoS2InboundDuplicate checks [MQTT-4.3.3-9]: a QoS 2 PUBLISH sent
// again with the same packet id before PUBREL is acknowledged but not
// delivered twice; after PUBCOMP the id starts a new message.
func TestQoS2InboundDuplicate(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		t.Run(versionNames[v], func(t *testing.T) {
			sub := connectClean(t, addr, mqtt.V5, "dupsub")
			mustSubscribe(t, sub, "d", 2)
			pub := connectClean(t, addr, v, "duppub")
			pub.Send(&mqtt.Publish{Topic: "d", QoS: 2, PacketID: 7, Payload: []byte("once")})
			expectAck(t, pub.Read(), mqtt.PUBREC, 7)
			pub.Send(&mqtt.Publish{Topic: "d", QoS: 2, PacketID: 7, Dup: true, Payload: []byte("once")})
			expectAck(t, pub.Read(), mqtt.PUBREC, 7)
			pub.Send(&mqtt.Ack{PacketType: mqtt.PUBREL, PacketID: 7})
			expectAck(t, pub.Read(), mqtt.PUBCOMP, 7)
			// The id is free again: this is a new message [MQTT-4.3.3-10].
			publishAcked(t, pub, 7, "d", 2, "twice")
			got := barrier(t, sub)
			if p := payloads(t, got); fmt.Sprint(p) != "[once twice]" {
				t.Fatalf("subscriber got %v, want [once twice]", p)
			}
		})
	}
}

// TestUnknownPacketIDs checks acknowledgements for packet ids that are
// not in flight: PUBREL gets PUBCOMP (v5: 0x92 packet identifier not
// found), PUBREC gets PUBREL (v5: 0x92), PUBACK and PUBCOMP are ignored;
// the connection stays up.
func TestUnknownPacketIDs(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		t.Run(versionNames[v], func(t *testing.T) {
			r := connectClean(t, addr, v, "unknown")
			want := mqtt.Success
			if v == mqtt.V5 {
				want = mqtt.PacketIDNotFound
			}
			r.Send(&mqtt.Ack{PacketType: mqtt.PUBREL, PacketID: 99})
			if a, ok := r.Read().(*mqtt.Ack); !ok || a.PacketType != mqtt.PUBCOMP || a.PacketID != 99 || a.ReasonCode != want {
				t.Fatalf("PUBREL 99 answered with %+v, want PUBCOMP %s", a, want)
			}
			r.Send(&mqtt.Ack{PacketType: mqtt.PUBREC, PacketID: 98})
			if a, ok := r.Read().(*mqtt.Ack); !ok || a.PacketType != mqtt.PUBREL || a.PacketID != 98 || a.ReasonCode != want {
				t.Fatalf("PUBREC 98 answered with %+v, want PUBREL %s", a, want)
			}
			r.Send(&mqtt.Ack{PacketType: mqtt.PUBACK, PacketID: 97})
			r.Send(&mqtt.Ack{PacketType: mqtt.PUBCOMP, PacketID: 96})
			expectNothing(t, r, "PUBACK and PUBCOMP of unknown ids")
		})
	}
}

// TestPacketIDsUnique drives many QoS 1 and 2 messages through a window
// while the subscriber acknowledges them out of order, and checks that
// the broker never uses a packet id that is still in flight
// [MQTT-2.2.1-3] and follows each QoS 2 exchange (PUBREC → PUBREL → PUBCOMP).
func TestPacketIDsUnique(t *testing.T) {
	_, addr := testutil.RunBroker(t, func(o *broker.Options) { o.MaxInflight = 8 })
	sub := connectClean(t, addr, mqtt.V5, "ids")
	mustSubscribe(t, sub, "u", 2)
	pub := connectClean(t, addr, mqtt.V5, "pub")
	const n = 120
	for i := range n {
		publishAcked(t, pub, uint16(i%500+1), "u", byte(1+i%2), fmt.Sprintf("%d", i))
	}
	type entry struct {
		qos   byte
		state string // "publish", "pubrel"
	}
	inflight := map[uint16]*entry{}
	var order []uint16 // ids in the order they arrived, for acknowledging
	received, round := 0, 0
	for received < n || len(inflight) > 0 {
		round++
		if round > 10*n {
			t.Fatalf("no progress: %d received, %d in flight", received, len(inflight))
		}
		for _, p := range barrier(t, sub) {
			switch p := p.(type) {
			case *mqtt.Publish:
				if p.PacketID == 0 {
					t.Fatal("QoS > 0 PUBLISH with packet id 0")
				}
				if _, busy := inflight[p.PacketID]; busy {
					t.Fatalf("packet id %d reused while in flight", p.PacketID)
				}
				inflight[p.PacketID] = &entry{qos: p.QoS, state: "publish"}
				order = append(order, p.PacketID)
				received++
			case *mqtt.Ack:
				e := inflight[p.PacketID]
				if p.PacketType != mqtt.PUBREL || e == nil || e.state != "pubrec" {
					t.Fatalf("unexpected %s", describe([]mqtt.Packet{p}))
				}
				e.state = "pubrel"
			default:
				t.Fatalf("unexpected %s", describe([]mqtt.Packet{p}))
			}
		}
		if len(inflight) > 8 {
			t.Fatalf("%d messages in flight, window is 8", len(inflight))
		}
		// Answer every other entry, newest first, so that ids are freed
		// out of order.
		var keep []uint16
		for i := len(order) - 1; i >= 0; i-- {
			id := order[i]
			e := inflight[id]
			if (i+round)%2 == 0 {
				keep = append([]uint16{id}, keep...)
				continue
			}
			switch {
			case e.qos == 1:
				sub.Send(&mqtt.Ack{PacketType: mqtt.PUBACK, PacketID: id})
				delete(inflight, id)
			case e.state == "publish":
				sub.Send(&mqtt.Ack{PacketType: mqtt.PUBREC, PacketID: id})
				e.state = "pubrec"
				keep = append([]uint16{id}, keep...)
			case e.state == "pubrel":
				sub.Send(&mqtt.Ack{PacketType: mqtt.PUBCOMP, PacketID: id})
				delete(inflight, id)
			default: // waiting for PUBREL
				keep = append([]uint16{id}, keep...)
			}
		}
		order = keep
	}
}

// TestQoS1NoLossWhileClosing checks that a QoS 1 message routed to a
// persistent session while its connection is being closed is not lost:
// the broker has queued its DISCONNECT and waits for the output to drain
// (the client is not reading), a message arrives meanwhile, and after the
// client reconnects it has received every message, on one connection or
// the other [MQTT-4.4.0-1].
func TestQoS1NoLossWhileClosing(t *testing.T) {
	b, addr := testutil.RunBroker(t, func(o *broker.Options) {
		o.MaxInflight = 1000
		o.MaxQueuedBytes = 256 << 20
	})
	sub, _ := dialConnect(t, addr, mqtt.V5, persistentConnect(mqtt.V5, "keep"))
	mustSubscribe(t, sub, "big", 1)
	pub := connectClean(t, addr, mqtt.V5, "pub")
	// More than the kernel holds for a client that does not read.
	const n = 100
	pad := bytes.Repeat([]byte("p"), 64<<10)
	for i := range n {
		pub.Send(&mqtt.Publish{Topic: "big", QoS: 1, PacketID: uint16(i + 1), Payload: append([]byte(fmt.Sprintf("%04d", i)), pad...)})
		expectAck(t, pub.Read(), mqtt.PUBACK, uint16(i+1))
	}
	sent := b.Metrics()["packets.disconnect.sent"]
	// A malformed packet: the broker queues DISCONNECT 0x81 behind the
	// unread output and waits for it to drain.
	sub.SendBytes([]byte{0xC1, 0x00})
	waitFor(t, "the broker queued its DISCONNECT", func() bool { return b.Metrics()["packets.disconnect.sent"] > sent })
	publishAcked(t, pub, 1000, "big", 1, fmt.Sprintf("%04d", n))

	seen := map[string]bool{}
	for _, p := range sub.ExpectClosed() {
		if p, ok := p.(*mqtt.Publish); ok {
			seen[string(p.Payload[:4])] = true
		}
	}
	again, _ := dialConnect(t, addr, mqtt.V5, persistentConnect(mqtt.V5, "keep"))
	for {
		got := barrier(t, again)
		if len(got) == 0 {
			break
		}
		for _, p := range got {
			p := p.(*mqtt.Publish)
			seen[string(p.Payload[:4])] = true
			again.Send(&mqtt.Ack{PacketType: mqtt.PUBACK, PacketID: p.PacketID})
		}
	}
	for i := range n + 1 {
		if !seen[fmt.Sprintf("%04d", i)] {
			t.Errorf("message %04d lost", i)
		}
	}
}

// TestRetainedAfterSubackArrivesOnce checks that a message retained right
// after the subscriber got its SUBACK reaches it once, live (RETAIN clear,
// no Retain As Published), and is not replayed as well: the replay of
// retained messages is chosen before the SUBACK goes out. Older retained
// messages under the filter make the replay long enough for the publish
// to land in it. The subscription is QoS 0, so that no replay waits for a
// window of unacknowledged messages.
func TestRetainedAfterSubackArrivesOnce(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	pub := connectClean(t, addr, mqtt.V5, "ra-pub")
	for i := range 200 {
		pub.Send(&mqtt.Publish{Topic: fmt.Sprintf("ra/old/%d", i), Retain: true, Payload: []byte("old")})
	}
	// All stored before the first subscriber comes: none of them reaches it
	// live, before its SUBACK.
	expectNothing(t, pub, "the retained messages stored")
	for round := range 40 {
		sub := connectClean(t, addr, mqtt.V5, fmt.Sprintf("ra-sub-%d", round))
		mustSubscribe(t, sub, "ra/#", 0)
		topic := fmt.Sprintf("ra/new/%d", round)
		pid := uint16(round + 1)
		pub.Send(&mqtt.Publish{Topic: topic, QoS: 1, PacketID: pid, Retain: true, Payload: []byte("new")})
		expectAck(t, pub.Read(), mqtt.PUBACK, pid) // routed: the live copy is queued to sub
		got := 0
		for _, p := range barrier(t, sub) {
			if m, ok := p.(*mqtt.Publish); ok && m.Topic == topic {
				got++
				if m.Retain {
					t.Fatalf("round %d: %s came with RETAIN set: replayed, not live", round, topic)
				}
			}
		}
		if got != 1 {
			t.Fatalf("round %d: %s arrived %d times, want once", round, topic, got)
		}
		_ = sub.Conn.Close()
	}
}

// TestOneByOneWritesKeepOrder publishes one message per read, each after
// the last was acknowledged, to a subscriber that reads nothing until the
// end: 30 MB, more than the loopback socket buffers hold, so the broker's
// writes to it stop half-way and go on from where the socket stopped while
// more is queued behind them. Every message must arrive, once, in order.
func TestOneByOneWritesKeepOrder(t *testing.T) {
	_, addr := testutil.RunBroker(t, func(o *broker.Options) { o.MaxQueuedBytes = 64 << 20 })
	sub := connectClean(t, addr, mqtt.V311, "obo-sub")
	mustSubscribe(t, sub, "obo/#", 0)
	pub := connectClean(t, addr, mqtt.V311, "obo-pub")
	const n = 3000
	payload := bytes.Repeat([]byte("x"), 10_000) // 30 MB: more than loopback socket buffers hold
	for i := range n {
		pid := uint16(i%60000 + 1)
		pub.Send(&mqtt.Publish{Topic: fmt.Sprintf("obo/%d", i), QoS: 1, PacketID: pid, Payload: payload})
		expectAck(t, pub.Read(), mqtt.PUBACK, pid)
	}
	for i := range n {
		p := readPublish(t, sub)
		if want := fmt.Sprintf("obo/%d", i); p.Topic != want || !bytes.Equal(p.Payload, payload) {
			t.Fatalf("message %d: got %s with %d bytes (same payload: %v), want %s", i, p.Topic, len(p.Payload), bytes.Equal(p.Payload, payload), want)
		}
	}
	expectNothing(t, sub, "after the last message")
}
