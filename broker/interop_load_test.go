package broker_test

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/internal/testutil"
)

// TestPaho3ZeroLoss has 4 paho.mqtt.golang publishers send 500 QoS 1 and
// 500 QoS 2 messages each, interleaved and without waiting for each
// acknowledgement, to one QoS 2 subscriber. Every message reaches the
// subscriber's session; from there each arrives once, the QoS 2 ones exactly
// once [MQTT-4.3.3-2], and each publisher's messages in the order it sent
// them [MQTT-4.6.0-5] [MQTT-4.6.0-6].
//
// paho.mqtt.golang puts no bound on the messages a publisher has in flight,
// so the subscriber's queue can grow past max_mqueue_len, which drops the
// oldest: with a queue that holds every message, all 4,000 arrive; with the
// default bound, every message either arrives or is counted as dropped.
func TestPaho3ZeroLoss(t *testing.T) {
	const (
		publishers = 4
		perQoS     = 500
		total      = publishers * perQoS * 2
	)
	tests := []struct {
		name     string
		maxQueue int
		lossless bool
	}{
		{"queue_holds_all", total, true},
		{"default_queue", broker.DefaultOptions().MaxMqueueLen, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, addr := testutil.RunBroker(t, func(o *broker.Options) { o.MaxMqueueLen = tt.maxQueue })
			sub := dialV3(t, addr, "sink", nil)
			sub.subscribe(t, "load/#", 2)

			errs := make(chan error, publishers)
			for p := range publishers {
				pub := dialV3(t, addr, fmt.Sprintf("load%d", p), nil)
				go func() { errs <- flood(pub, uint32(p), 2*perQoS) }()
			}
			// Once every publisher has its acknowledgements, every message
			// is in the subscriber's session or counted as dropped.
			for range publishers {
				select {
				case err := <-errs:
					if err != nil {
						t.Fatal(err)
					}
				case <-time.After(30 * time.Second):
					t.Fatal("publishers did not finish")
				}
			}
			dropped := int(b.Metrics()["delivery.dropped.queue_full"])
			if tt.lossless && dropped != 0 {
				t.Fatalf("%d messages dropped with a queue of %d", dropped, tt.maxQueue)
			}
			var next [publishers]uint32 // lowest sequence number acceptable next
			for n := 0; n < total-dropped; n++ {
				m := sub.next(t)
				payload := m.Payload()
				if len(payload) != 8 {
					t.Fatalf("payload of %d bytes", len(payload))
				}
				p, seq := binary.BigEndian.Uint32(payload[:4]), binary.BigEndian.Uint32(payload[4:])
				switch {
				case p >= publishers:
					t.Fatalf("message from unknown publisher %d", p)
				case tt.lossless && seq != next[p]:
					t.Fatalf("publisher %d: got message %d, want %d (lost, duplicated or reordered)", p, seq, next[p])
				case seq < next[p]:
					t.Fatalf("publisher %d: got message %d after %d (duplicated or reordered)", p, seq, next[p]-1)
				}
				if want := byte(1 + seq%2); m.Qos() != want {
					t.Fatalf("publisher %d message %d: qos %d, want %d", p, seq, m.Qos(), want)
				}
				next[p] = seq + 1
			}
			// A mark behind every message: nothing else may come first.
			mark := dialV3(t, addr, "loadmark", nil)
			mark.publish(t, "load/mark", 2, false, []byte("mark"))
			if m := sub.next(t); m.Topic() != "load/mark" {
				t.Fatalf("more than %d messages: %q %x", total-dropped, m.Topic(), m.Payload())
			}
		})
	}
}

// flood publishes n messages from publisher p, QoS 1 and 2 in turn, with
// the payload (p, sequence number), then waits for every acknowledgement.
func flood(pub *v3Client, p uint32, n int) error {
	tokens := make([]paho3.Token, 0, n)
	for i := range n {
		var payload [8]byte
		binary.BigEndian.PutUint32(payload[:4], p)
		binary.BigEndian.PutUint32(payload[4:], uint32(i))
		tokens = append(tokens, pub.Publish("load/t", byte(1+i%2), false, payload[:]))
	}
	for i, tok := range tokens {
		if !tok.WaitTimeout(20 * time.Second) {
			return fmt.Errorf("publisher %d: message %d not acknowledged", p, i)
		}
		if err := tok.Error(); err != nil {
			return fmt.Errorf("publisher %d: message %d: %w", p, i, err)
		}
	}
	return nil
}
