package broker_test

import (
	"testing"
	"time"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// TestRetryIntervalV311 checks that an unacknowledged QoS 1 message is sent
// again with DUP set to a 3.1.1 client after retry_interval, and that a v5
// client gets no resend on the same connection [MQTT-4.4.0-1].
func TestRetryIntervalV311(t *testing.T) {
	_, addr := testutil.RunBroker(t, func(o *broker.Options) { o.RetryInterval = 50 * time.Millisecond })
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		sub := testutil.Dial(t, addr, v)
		sub.Connect(&mqtt.Connect{ClientID: "retry", CleanStart: true})
		sub.Send(&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "r", QoS: 1}}})
		sub.Read()
		pub := testutil.Dial(t, addr, mqtt.V311)
		pub.Connect(&mqtt.Connect{ClientID: "pub", CleanStart: true})
		pub.Send(&mqtt.Publish{Topic: "r", QoS: 1, PacketID: 7, Payload: []byte("p")})
		pub.Read()
		first := sub.Read().(*mqtt.Publish)
		if first.Dup {
			t.Fatalf("v%d: first delivery has DUP", v)
		}
		p, err := sub.ReadTimeout(500 * time.Millisecond)
		if v == mqtt.V5 {
			if err == nil {
				t.Fatalf("v5: resent on the same connection: %#v", p)
			}
			continue
		}
		if err != nil {
			t.Fatalf("v3.1.1: no resend: %v", err)
		}
		again, ok := p.(*mqtt.Publish)
		if !ok || !again.Dup || again.PacketID != first.PacketID {
			t.Fatalf("v3.1.1: want DUP resend of id %d, got %#v", first.PacketID, p)
		}
		sub.Send(&mqtt.Ack{PacketType: mqtt.PUBACK, PacketID: first.PacketID})
		if p, err := sub.ReadTimeout(300 * time.Millisecond); err == nil {
			t.Fatalf("resent after PUBACK: %#v", p)
		}
	}
}
