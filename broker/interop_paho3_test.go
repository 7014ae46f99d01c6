package broker_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	paho3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqgate/mqgate/internal/testutil"
)

// These tests talk to the broker with github.com/eclipse/paho.mqtt.golang,
// an independent MQTT 3.1 / 3.1.1 client.

// v3Versions are the protocol levels paho.mqtt.golang speaks: 3 is MQTT 3.1
// ("MQIsdp"), 4 is MQTT 3.1.1.
var v3Versions = []uint{3, 4}

// TestPaho3QoSRoundTrip publishes at every QoS to subscriptions of every QoS
// and checks that the payload arrives intact, at the minimum of the
// published QoS and the granted QoS [MQTT-3.8.4-6], with RETAIN clear
// [MQTT-3.3.1-9].
func TestPaho3QoSRoundTrip(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 200<<10)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	payloads := [][]byte{{}, {0}, []byte("hello"), big}
	for _, pv := range v3Versions {
		for subQoS := byte(0); subQoS <= 2; subQoS++ {
			for pubQoS := byte(0); pubQoS <= 2; pubQoS++ {
				t.Run(fmt.Sprintf("v%d/sub%d/pub%d", pv, subQoS, pubQoS), func(t *testing.T) {
					version := func(o *paho3.ClientOptions) { o.SetProtocolVersion(pv) }
					sub := dialV3(t, addr, fmt.Sprintf("s%d%d%d", pv, subQoS, pubQoS), version)
					pub := dialV3(t, addr, fmt.Sprintf("p%d%d%d", pv, subQoS, pubQoS), version)
					topic := fmt.Sprintf("rt/%d/%d/%d", pv, subQoS, pubQoS)
					sub.subscribe(t, topic, subQoS)
					for _, p := range payloads {
						pub.publish(t, topic, pubQoS, false, p)
					}
					want := min(subQoS, pubQoS)
					for i, p := range payloads {
						m := sub.next(t)
						if m.Topic() != topic || !bytes.Equal(m.Payload(), p) {
							t.Fatalf("message %d: got %q with %d bytes, want %q with %d bytes", i, m.Topic(), len(m.Payload()), topic, len(p))
						}
						if m.Qos() != want {
							t.Fatalf("message %d: QoS %d, want %d", i, m.Qos(), want)
						}
						if m.Retained() {
							t.Fatalf("message %d: RETAIN set on a live delivery", i) // [MQTT-3.3.1-9]
						}
					}
				})
			}
		}
	}
}

// TestPaho3Wildcards checks topic filter matching with one subscriber per
// filter: '+' matches exactly one level [MQTT-4.7.1-3], '#' any number of
// levels including the parent, so that "a/#" matches "a" [MQTT-4.7.1-2].
func TestPaho3Wildcards(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	topics := []string{"a", "a/b", "a/b/c", "a/c", "b/b", "a//c", "/a", "x/b/c"}
	tests := []struct {
		filter string
		want   []string
	}{
		{"a/#", []string{"a", "a/b", "a/b/c", "a/c", "a//c"}},
		{"a/+", []string{"a/b", "a/c"}},
		{"+/b", []string{"a/b", "b/b"}},
		{"a/+/c", []string{"a/b/c", "a//c"}},
		{"+/+/c", []string{"a/b/c", "a//c", "x/b/c"}},
		{"+", []string{"a"}},
		{"+/#", topics},
		{"#", topics},
		{"/+", []string{"/a"}},
		{"a", []string{"a"}},
	}
	subs := make([]*v3Client, len(tests))
	for i, tt := range tests {
		subs[i] = dialV3(t, addr, fmt.Sprintf("wild%d", i), nil)
		subs[i].subscribe(t, tt.filter, 1)
		subs[i].subscribe(t, "end", 1)
	}
	pub := dialV3(t, addr, "wildpub", nil)
	for _, topic := range topics {
		pub.publish(t, topic, 1, false, []byte(topic))
	}
	pub.publish(t, "end", 1, false, nil)
	for i, tt := range tests {
		var got []string
		for {
			m := subs[i].next(t)
			if m.Topic() == "end" {
				break
			}
			got = append(got, m.Topic())
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("filter %q: got %q, want %q", tt.filter, got, tt.want)
		}
	}
}

// TestPaho3PersistentSession subscribes with clean session 0, goes offline,
// and checks that QoS 1 and 2 messages published meanwhile are delivered on
// reconnect, the QoS 2 ones exactly once, with session present set
// [MQTT-3.1.2-4] [MQTT-3.1.2-5] [MQTT-3.2.2-2] [MQTT-4.3.3-2].
func TestPaho3PersistentSession(t *testing.T) {
	for _, pv := range v3Versions {
		t.Run(fmt.Sprintf("v%d", pv), func(t *testing.T) {
			b, addr := testutil.RunBroker(t, nil)
			persistent := func(o *paho3.ClientOptions) {
				o.SetProtocolVersion(pv)
				o.SetCleanSession(false)
			}
			sub := dialV3(t, addr, "offline", persistent)
			sub.subscribe(t, "off/#", 2)
			if sub.present {
				t.Fatal("session present on the first connection")
			}
			sub.Disconnect(250)
			awaitDetached(t, b, "offline")

			pub := dialV3(t, addr, "offpub", nil)
			var want []string
			for i := range 6 {
				qos := byte(1 + i%2)
				p := fmt.Sprintf("m%d-q%d", i, qos)
				pub.publish(t, "off/t", qos, false, []byte(p))
				want = append(want, p)
			}

			sub = dialV3(t, addr, "offline", persistent)
			// MQTT 3.1 has no session present flag; 3.1.1 sets it
			// [MQTT-3.2.2-2].
			if want := pv == 4; sub.present != want {
				t.Fatalf("session present %v on reconnect, want %v", sub.present, want)
			}
			// A message published after the reconnect marks the end:
			// redeliveries of the queued ones could only come before it.
			pub.publish(t, "off/t", 2, false, []byte("end"))
			var got []string
			for {
				m := sub.next(t)
				if string(m.Payload()) == "end" {
					break
				}
				got = append(got, string(m.Payload()))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("queued messages: got %q, want %q (each exactly once, in order)", got, want)
			}
		})
	}
}

// TestPaho3Retained sets a retained message, checks that a new subscriber
// gets it with RETAIN set [MQTT-3.3.1-8] while live deliveries have RETAIN
// clear [MQTT-3.3.1-9], and that an empty retained payload clears it
// [MQTT-3.3.1-10] [MQTT-3.3.1-11].
func TestPaho3Retained(t *testing.T) {
	for _, pv := range v3Versions {
		t.Run(fmt.Sprintf("v%d", pv), func(t *testing.T) {
			_, addr := testutil.RunBroker(t, nil)
			version := func(o *paho3.ClientOptions) { o.SetProtocolVersion(pv) }
			pub := dialV3(t, addr, "retpub", version)
			live := dialV3(t, addr, "retlive", version)
			live.subscribe(t, "ret/#", 1)

			pub.publish(t, "ret/a", 1, true, []byte("kept"))
			if m := live.next(t); m.Retained() || string(m.Payload()) != "kept" {
				t.Fatalf("live delivery: retain %v payload %q", m.Retained(), m.Payload())
			}

			late := dialV3(t, addr, "retlate", version)
			late.subscribe(t, "ret/+", 2)
			m := late.next(t)
			if !m.Retained() || m.Topic() != "ret/a" || string(m.Payload()) != "kept" || m.Qos() != 1 {
				t.Fatalf("retained replay: topic %q retain %v qos %d payload %q", m.Topic(), m.Retained(), m.Qos(), m.Payload())
			}

			// An empty retained payload clears the topic; it reaches the
			// current subscribers as a normal message.
			pub.publish(t, "ret/a", 1, true, nil)
			if m := live.next(t); len(m.Payload()) != 0 || m.Retained() {
				t.Fatalf("clear to live subscriber: retain %v payload %q", m.Retained(), m.Payload())
			}
			after := dialV3(t, addr, "retafter", version)
			after.subscribe(t, "ret/#", 1)
			// The subscriber's own publication is handled after its
			// SUBACK and any retained replay: it marks the end.
			after.publish(t, "ret/b", 1, false, []byte("end"))
			if m := after.next(t); m.Topic() != "ret/b" {
				t.Fatalf("cleared retained message replayed: %q %q", m.Topic(), m.Payload())
			}
		})
	}
}

// TestPaho3Will checks that the will is published when the client's network
// connection fails [MQTT-3.1.2-8] and is discarded on a normal DISCONNECT
// [MQTT-3.1.2-10] [MQTT-3.14.4-3].
func TestPaho3Will(t *testing.T) {
	for _, pv := range v3Versions {
		t.Run(fmt.Sprintf("v%d", pv), func(t *testing.T) {
			b, addr := testutil.RunBroker(t, nil)
			watcher := dialV3(t, addr, "watcher", nil)
			watcher.subscribe(t, "will/#", 2)

			withWill := func(topic string) func(*paho3.ClientOptions) {
				return func(o *paho3.ClientOptions) {
					o.SetProtocolVersion(pv)
					o.SetBinaryWill(topic, []byte("gone:"+topic), 1, false)
				}
			}
			cut := dialV3(t, addr, "cut", withWill("will/cut"))
			polite := dialV3(t, addr, "polite", withWill("will/polite"))

			cut.cut()
			m := watcher.next(t)
			if m.Topic() != "will/cut" || string(m.Payload()) != "gone:will/cut" || m.Qos() != 1 {
				t.Fatalf("will: topic %q payload %q qos %d", m.Topic(), m.Payload(), m.Qos())
			}

			polite.Disconnect(250)
			awaitDetached(t, b, "polite")
			// The broker is done with "polite": a will would come before
			// this later publication.
			other := dialV3(t, addr, "other", nil)
			other.publish(t, "will/end", 1, false, []byte("end"))
			if m := watcher.next(t); m.Topic() != "will/end" {
				t.Fatalf("will published after a normal DISCONNECT: %q %q", m.Topic(), m.Payload())
			}
		})
	}
}

// TestPaho3Redelivery receives a QoS 1 and a QoS 2 message without
// acknowledging them, reconnects with clean session 0, and checks that the
// broker sends both again with their DUP flag set [MQTT-4.4.0-1]
// [MQTT-3.3.1-1], once each. A later clean session 1 connection finds no
// session [MQTT-3.1.2-6] [MQTT-3.2.2-1].
func TestPaho3Redelivery(t *testing.T) {
	for _, pv := range v3Versions {
		t.Run(fmt.Sprintf("v%d", pv), func(t *testing.T) {
			b, addr := testutil.RunBroker(t, nil)
			persistent := func(o *paho3.ClientOptions) {
				o.SetProtocolVersion(pv)
				o.SetCleanSession(false)
			}
			sub := dialV3(t, addr, "unacked", func(o *paho3.ClientOptions) {
				persistent(o)
				o.SetAutoAckDisabled(true)
			})
			sub.subscribe(t, "unack/#", 2)
			pub := dialV3(t, addr, "unackpub", nil)
			pub.publish(t, "unack/1", 1, false, []byte("one"))
			pub.publish(t, "unack/2", 2, false, []byte("two"))
			for _, want := range []string{"unack/1", "unack/2"} {
				if m := sub.next(t); m.Topic() != want || m.Duplicate() {
					t.Fatalf("first delivery: %q dup %v, want %q without DUP", m.Topic(), m.Duplicate(), want)
				}
			}
			sub.Disconnect(250)
			awaitDetached(t, b, "unacked")

			sub = dialV3(t, addr, "unacked", persistent)
			for _, want := range []struct {
				topic string
				qos   byte
			}{{"unack/1", 1}, {"unack/2", 2}} {
				m := sub.next(t)
				if m.Topic() != want.topic || m.Qos() != want.qos || !m.Duplicate() {
					t.Fatalf("redelivery: %q qos %d dup %v, want %q qos %d with DUP", m.Topic(), m.Qos(), m.Duplicate(), want.topic, want.qos)
				}
			}
			pub.publish(t, "unack/mark", 1, false, []byte("mark"))
			if m := sub.next(t); m.Topic() != "unack/mark" {
				t.Fatalf("got %q %q, want the mark", m.Topic(), m.Payload())
			}
			sub.Disconnect(250)
			awaitDetached(t, b, "unacked")

			// Clean session 1 discards the session; the next clean
			// session 0 connection starts a new one.
			for _, clean := range []bool{true, false} {
				c := dialV3(t, addr, "unacked", func(o *paho3.ClientOptions) {
					persistent(o)
					o.SetCleanSession(clean)
				})
				if c.present {
					t.Fatalf("clean session %v: session present", clean)
				}
				c.Disconnect(250)
				awaitDetached(t, b, "unacked")
			}
		})
	}
}
