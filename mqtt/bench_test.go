package mqtt

import (
	"fmt"
	"testing"
)

const benchTopic = "sensors/building-1/floor-3/room-42/temperature"

func benchPublish(qos byte, size int, v Version) *Publish {
	p := &Publish{QoS: qos, Topic: benchTopic, Payload: make([]byte, size)}
	if qos > 0 {
		p.PacketID = 1
	}
	if v == V5 {
		p.Props = withProps(Properties{MessageExpiry: 60, User: []UserProperty{{"trace", "abc123"}}}, PropMessageExpiry)
	}
	return p
}

func BenchmarkDecodePublish(b *testing.B) {
	for _, v := range []Version{V311, V5} {
		for _, qos := range []byte{0, 1} {
			for _, size := range []int{16, 1024} {
				raw, err := benchPublish(qos, size, v).Encode(nil, v)
				if err != nil {
					b.Fatal(err)
				}
				b.Run(fmt.Sprintf("v%d/qos%d/%dB", v, qos, size), func(b *testing.B) {
					b.ReportAllocs()
					b.SetBytes(int64(len(raw)))
					for b.Loop() {
						h, n, err := ParseFixedHeader(raw)
						if err != nil {
							b.Fatal(err)
						}
						if _, err := Decode(h, raw[n:], v); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

func BenchmarkEncodePublish(b *testing.B) {
	for _, v := range []Version{V311, V5} {
		for _, size := range []int{16, 1024} {
			p := benchPublish(1, size, v)
			buf := make([]byte, 0, 2048)
			b.Run(fmt.Sprintf("v%d/qos1/%dB", v, size), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					out, _, err := EncodePublish(buf[:0], p, v)
					if err != nil {
						b.Fatal(err)
					}
					b.SetBytes(int64(len(out)))
				}
			})
		}
	}
}

func BenchmarkDecodeSubscribe(b *testing.B) {
	p := &Subscribe{PacketID: 7, Subscriptions: []Subscription{{Filter: "sensors/+/floor-3/#", QoS: 1}, {Filter: "$share/g/jobs/#", QoS: 2}}}
	raw, err := p.Encode(nil, V5)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		h, n, _ := ParseFixedHeader(raw)
		if _, err := Decode(h, raw[n:], V5); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	cases := []struct{ name, filter, topic string }{
		{"exact", benchTopic, benchTopic},
		{"plus", "sensors/+/floor-3/+/temperature", benchTopic},
		{"hash", "sensors/building-1/#", benchTopic},
		{"miss early", "actuators/#", benchTopic},
		{"dollar", "#", "$SYS/broker/clients/connected"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Match(c.filter, c.topic)
			}
		})
	}
}

func BenchmarkValidTopicFilter(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidTopicFilter("$share/group/sensors/+/floor-3/#"); err != nil {
			b.Fatal(err)
		}
	}
}
