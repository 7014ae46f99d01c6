package broker_test

import (
	"encoding/json"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	paho3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/internal/testutil"
)

// nextOn returns the first message c receives on topic, skipping others.
func (c *v3Client) nextOn(t *testing.T, topic string) paho3.Message {
	t.Helper()
	deadline := time.After(interopWait)
	for {
		select {
		case m := <-c.msgs:
			if m.Topic() == topic {
				return m
			}
		case <-deadline:
			t.Fatalf("nothing on %q within %v", topic, interopWait)
			return nil
		}
	}
}

// TestSysTopics subscribes to $SYS/# with paho.mqtt.golang and checks the
// EMQX 4 system topics: the retained node list and version, the periodic
// uptime, stats and metrics, and the presence JSON of clients connecting
// and disconnecting. A subscription to "#" receives none of them
// [MQTT-4.7.2-1].
func TestSysTopics(t *testing.T) {
	const node = "mqgate-sys@127.0.0.1"
	_, addr := testutil.RunBroker(t, func(o *broker.Options) {
		o.NodeName = node
		o.Version = "1.2.3-test"
		o.SysInterval = 100 * time.Millisecond
		o.SysHeartbeat = 100 * time.Millisecond
	})
	prefix := "$SYS/brokers/" + node + "/"
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.ParseFloat(portText, 64)

	// Subscribed first, so that every $SYS message below is published
	// while this subscription exists.
	root := dialV3(t, addr, "root", nil)
	root.subscribe(t, "#", 1)
	root.subscribe(t, "+/brokers/#", 1)

	sys := dialV3(t, addr, "sysmon", nil)
	sys.subscribe(t, "$SYS/#", 1)
	if m := sys.nextOn(t, "$SYS/brokers"); !m.Retained() || string(m.Payload()) != node {
		t.Fatalf("$SYS/brokers: retain %v payload %q, want the retained node name", m.Retained(), m.Payload())
	}
	if m := sys.nextOn(t, prefix+"version"); string(m.Payload()) != "1.2.3-test" {
		t.Fatalf("version %q", m.Payload())
	}
	if m := sys.nextOn(t, prefix+"uptime"); len(m.Payload()) == 0 {
		t.Fatal("empty uptime")
	}
	counters := []struct {
		topic string
		min   int64
	}{
		{prefix + "stats/connections.count", 2},
		{prefix + "metrics/packets/connect/received", 2},
	}
	for _, c := range counters {
		m := sys.nextOn(t, c.topic)
		if n, err := strconv.ParseInt(string(m.Payload()), 10, 64); err != nil || n < c.min {
			t.Fatalf("%s: %q, want a number >= %d", c.topic, m.Payload(), c.min)
		}
	}

	// Presence: a 3.1.1 client with a user name, a 5.0 client without.
	// The second connects once the first one's message has come: the
	// broker publishes presence after the CONNACK, so two clients'
	// messages may come in either order.
	before := time.Now().UnixMilli()
	presence := map[string]paho3.Message{}
	named := dialV3(t, addr, "named", func(o *paho3.ClientOptions) {
		o.SetUsername("alice")
		o.SetKeepAlive(42 * time.Second)
	})
	presence["named"] = sys.nextOn(t, prefix+"clients/named/connected")
	anon := dialV5(t, addr, &paho.Connect{ClientID: "anon", CleanStart: true, KeepAlive: 17})
	presence["anon"] = sys.nextOn(t, prefix+"clients/anon/connected")
	tests := []struct {
		id       string
		username any
		protoVer float64
		keep     float64
	}{
		{"named", "alice", 4, 42},
		{"anon", nil, 5, 17},
	}
	for _, tt := range tests {
		m := presence[tt.id]
		var body map[string]any
		if err := json.Unmarshal(m.Payload(), &body); err != nil {
			t.Fatalf("%s connected: %v: %s", tt.id, err, m.Payload())
		}
		for k, want := range map[string]any{
			"clientid":        tt.id,
			"username":        tt.username,
			"ipaddress":       "127.0.0.1",
			"sockport":        port,
			"proto_name":      "MQTT",
			"proto_ver":       tt.protoVer,
			"keepalive":       tt.keep,
			"clean_start":     true,
			"expiry_interval": float64(0),
			"connack":         float64(0),
		} {
			if v, ok := body[k]; !ok || v != want {
				t.Errorf("%s connected: %s = %#v, want %#v (body %s)", tt.id, k, v, want, m.Payload())
			}
		}
		at, _ := body["connected_at"].(float64)
		ts, _ := body["ts"].(float64)
		if int64(at) < before || ts < at {
			t.Errorf("%s connected: connected_at %v ts %v, want milliseconds since %d", tt.id, body["connected_at"], body["ts"], before)
		}
	}

	named.Disconnect(250)
	m := sys.nextOn(t, prefix+"clients/named/disconnected")
	var body map[string]any
	if err := json.Unmarshal(m.Payload(), &body); err != nil {
		t.Fatalf("disconnected: %v: %s", err, m.Payload())
	}
	if body["clientid"] != "named" || body["username"] != "alice" || body["reason"] == nil {
		t.Errorf("disconnected body %s", m.Payload())
	}
	anon.disconnect(t, nil)

	// Every $SYS message above was published while "root" was subscribed
	// to "#": it must not have received any, so this one comes first.
	end := dialV3(t, addr, "end", nil)
	end.publish(t, "n/brokers/end", 1, false, []byte("end"))
	if m := root.next(t); m.Topic() != "n/brokers/end" {
		t.Fatalf("a '#' subscription received %q", m.Topic())
	}
}
