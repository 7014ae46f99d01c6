package broker_test

import (
	"testing"

	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// TestSmokePubSub connects a v3.1.1 subscriber and a v5 publisher over raw
// sockets and checks QoS 0, 1 and 2 delivery.
func TestSmokePubSub(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)

	sub := testutil.Dial(t, addr, mqtt.V311)
	if ack := sub.Connect(&mqtt.Connect{ClientID: "sub", CleanStart: true, KeepAlive: 30}); ack.ReasonCode != 0 {
		t.Fatalf("connack %v", ack.ReasonCode)
	}
	sub.Send(&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "a/+", QoS: 2}}})
	sa, ok := sub.Read().(*mqtt.Suback)
	if !ok || len(sa.ReasonCodes) != 1 || sa.ReasonCodes[0] != mqtt.GrantedQoS2 {
		t.Fatalf("suback %+v", sa)
	}

	pub := testutil.Dial(t, addr, mqtt.V5)
	if ack := pub.Connect(&mqtt.Connect{ClientID: "pub", CleanStart: true}); ack.ReasonCode != 0 {
		t.Fatalf("connack %v", ack.ReasonCode)
	}
	for qos := byte(0); qos <= 2; qos++ {
		p := &mqtt.Publish{Topic: "a/b", QoS: qos, Payload: []byte{'x', '0' + qos}}
		if qos > 0 {
			p.PacketID = uint16(10 + qos)
		}
		pub.Send(p)
		switch qos {
		case 1:
			if a := pub.Read().(*mqtt.Ack); a.PacketType != mqtt.PUBACK || a.PacketID != 11 {
				t.Fatalf("puback %+v", a)
			}
		case 2:
			if a := pub.Read().(*mqtt.Ack); a.PacketType != mqtt.PUBREC || a.PacketID != 12 {
				t.Fatalf("pubrec %+v", a)
			}
			pub.Send(&mqtt.Ack{PacketType: mqtt.PUBREL, PacketID: 12})
			if a := pub.Read().(*mqtt.Ack); a.PacketType != mqtt.PUBCOMP {
				t.Fatalf("pubcomp %+v", a)
			}
		}
		got, ok := sub.Read().(*mqtt.Publish)
		if !ok || got.Topic != "a/b" || got.QoS != qos || string(got.Payload) != string(p.Payload) {
			t.Fatalf("qos %d: got %+v", qos, got)
		}
		switch qos {
		case 1:
			sub.Send(&mqtt.Ack{PacketType: mqtt.PUBACK, PacketID: got.PacketID})
		case 2:
			sub.Send(&mqtt.Ack{PacketType: mqtt.PUBREC, PacketID: got.PacketID})
			if a := sub.Read().(*mqtt.Ack); a.PacketType != mqtt.PUBREL || a.PacketID != got.PacketID {
				t.Fatalf("pubrel %+v", a)
			}
			sub.Send(&mqtt.Ack{PacketType: mqtt.PUBCOMP, PacketID: got.PacketID})
		}
	}
}
