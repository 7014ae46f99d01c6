package broker_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/broker/topics"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// These tests talk to the broker with github.com/eclipse/paho.golang, an
// independent MQTT 5.0 client.

// cleanV5 is a CONNECT with clean start and no session expiry.
func cleanV5(id string) *paho.Connect {
	return &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}
}

// TestPaho5QoSRoundTrip publishes at every QoS to subscriptions of every QoS
// and checks that the payload arrives intact at the minimum of the two
// [MQTT-3.8.4-8].
func TestPaho5QoSRoundTrip(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16)
	payloads := [][]byte{{}, {0xff}, []byte("hello"), big}
	for subQoS := byte(0); subQoS <= 2; subQoS++ {
		for pubQoS := byte(0); pubQoS <= 2; pubQoS++ {
			t.Run(fmt.Sprintf("sub%d/pub%d", subQoS, pubQoS), func(t *testing.T) {
				sub := dialV5(t, addr, cleanV5(fmt.Sprintf("s5%d%d", subQoS, pubQoS)))
				pub := dialV5(t, addr, cleanV5(fmt.Sprintf("p5%d%d", subQoS, pubQoS)))
				topic := fmt.Sprintf("rt5/%d/%d", subQoS, pubQoS)
				sub.subscribe(t, 0, paho.SubscribeOptions{Topic: topic, QoS: subQoS})
				for _, p := range payloads {
					pub.publish(t, &paho.Publish{Topic: topic, QoS: pubQoS, Payload: p})
				}
				want := min(subQoS, pubQoS)
				for i, p := range payloads {
					m := sub.next(t)
					if m.Topic != topic || !bytes.Equal(m.Payload, p) || m.QoS != want || m.Retain {
						t.Fatalf("message %d: topic %q qos %d retain %v, %d bytes; want %q qos %d, %d bytes",
							i, m.Topic, m.QoS, m.Retain, len(m.Payload), topic, want, len(p))
					}
				}
			})
		}
	}
}

// TestPaho5SubscriptionIdentifiers subscribes twice with overlapping filters
// and different identifiers: a message matching both arrives once, at the
// highest granted QoS, carrying both identifiers [MQTT-3.3.4-2]
// [MQTT-3.3.4-3] [MQTT-3.3.4-4] [MQTT-3.3.4-5].
func TestPaho5SubscriptionIdentifiers(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	pub := dialV5(t, addr, cleanV5("sidpub"))
	pub.publish(t, &paho.Publish{Topic: "sid/r", QoS: 1, Retain: true, Payload: []byte("r")})
	sub := dialV5(t, addr, cleanV5("sid"))
	// Each SUBSCRIBE replays the retained message with its own identifier.
	for _, id := range []int{1, 2} {
		filter := map[int]string{1: "sid/+", 2: "sid/#"}[id]
		sub.subscribe(t, id, paho.SubscribeOptions{Topic: filter, QoS: byte(id)})
		m := sub.next(t)
		if m.Topic != "sid/r" || !m.Retain || m.Properties == nil || m.Properties.SubscriptionIdentifier == nil || *m.Properties.SubscriptionIdentifier != id {
			t.Fatalf("retained replay for %q: %q retain %v properties %+v, want identifier %d", filter, m.Topic, m.Retain, m.Properties, id)
		}
	}
	replays := len(sub.tap.publishes(t))
	sends := []struct {
		topic   string
		qos     byte
		wantQoS byte
		wantIDs []uint32
	}{
		{"sid/x", 2, 2, []uint32{1, 2}},
		{"sid/x/y", 2, 2, []uint32{2}},
		{"sid/x", 1, 1, []uint32{1, 2}},
		{"sid/x", 0, 0, []uint32{1, 2}},
	}
	for i, s := range sends {
		pub.publish(t, &paho.Publish{Topic: s.topic, QoS: s.qos, Payload: []byte{byte(i)}})
	}
	// The last message came after every other: any second copy would
	// have arrived before it.
	for i, s := range sends {
		m := sub.next(t)
		if m.Topic != s.topic || !bytes.Equal(m.Payload, []byte{byte(i)}) || m.QoS != s.wantQoS {
			t.Fatalf("message %d: topic %q qos %d payload %v; want one copy of %q at qos %d", i, m.Topic, m.QoS, m.Payload, s.topic, s.wantQoS)
		}
	}
	got := sub.tap.publishes(t)[replays:]
	if len(got) != len(sends) {
		t.Fatalf("client read %d PUBLISH packets, want %d", len(got), len(sends))
	}
	for i, s := range sends {
		ids := slices.Sorted(slices.Values(got[i].Props.SubscriptionIDs))
		if !slices.Equal(ids, s.wantIDs) {
			t.Errorf("message %d on %q: subscription identifiers %v, want %v", i, s.topic, ids, s.wantIDs)
		}
	}
}

// TestPaho5RequestResponse runs the request/response pattern: the broker
// passes the response topic [MQTT-3.3.2-15], correlation data
// [MQTT-3.3.2-16], user properties in order [MQTT-3.3.2-17]
// [MQTT-3.3.2-18], content type [MQTT-3.3.2-20] and payload format indicator
// [MQTT-3.3.2-4] through unaltered.
func TestPaho5RequestResponse(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	server := dialV5(t, addr, cleanV5("responder"))
	server.subscribe(t, 0, paho.SubscribeOptions{Topic: "svc/+/req", QoS: 1})
	client := dialV5(t, addr, cleanV5("requester"))
	client.subscribe(t, 0, paho.SubscribeOptions{Topic: "reply/requester", QoS: 1})

	props := paho.PublishProperties{
		ResponseTopic:   "reply/requester",
		CorrelationData: []byte{0, 1, 2, 0xfe},
		ContentType:     "application/json; charset=utf-8",
		PayloadFormat:   refOf[byte](1),
		User:            paho.UserProperties{{Key: "k", Value: "1"}, {Key: "a", Value: "x"}, {Key: "k", Value: "2"}, {Key: "", Value: "ü"}},
	}
	client.publish(t, &paho.Publish{Topic: "svc/echo/req", QoS: 1, Payload: []byte(`{"n":1}`), Properties: &props})

	req := server.next(t)
	p := req.Properties
	switch {
	case p == nil:
		t.Fatal("request arrived without properties")
	case p.ResponseTopic != props.ResponseTopic:
		t.Errorf("response topic %q, want %q", p.ResponseTopic, props.ResponseTopic)
	case !bytes.Equal(p.CorrelationData, props.CorrelationData):
		t.Errorf("correlation data %v, want %v", p.CorrelationData, props.CorrelationData)
	case p.ContentType != props.ContentType:
		t.Errorf("content type %q, want %q", p.ContentType, props.ContentType)
	case p.PayloadFormat == nil || *p.PayloadFormat != 1:
		t.Errorf("payload format %v, want 1", p.PayloadFormat)
	case !slices.Equal(p.User, props.User):
		t.Errorf("user properties %q, want %q in that order", p.User, props.User)
	}

	server.publish(t, &paho.Publish{
		Topic:   p.ResponseTopic,
		QoS:     1,
		Payload: []byte(`{"ok":true}`),
		Properties: &paho.PublishProperties{
			CorrelationData: p.CorrelationData,
			User:            paho.UserProperties{{Key: "status", Value: "200"}},
		},
	})
	resp := client.next(t)
	if resp.Topic != "reply/requester" || string(resp.Payload) != `{"ok":true}` {
		t.Fatalf("response %q %q", resp.Topic, resp.Payload)
	}
	rp := resp.Properties
	if rp == nil || !bytes.Equal(rp.CorrelationData, props.CorrelationData) || len(rp.User) != 1 || rp.User.Get("status") != "200" {
		t.Fatalf("response properties %+v", rp)
	}
	// Properties the publisher did not set are not invented.
	if rp.ContentType != "" || rp.ResponseTopic != "" || rp.PayloadFormat != nil || rp.MessageExpiry != nil {
		t.Fatalf("response carries properties nobody set: %+v", rp)
	}
}

// TestPaho5NoLocal checks that a subscription with No Local does not receive
// its own client's publications [MQTT-3.8.3-3], while others do.
func TestPaho5NoLocal(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	a := dialV5(t, addr, cleanV5("nl-a"))
	a.subscribe(t, 0, paho.SubscribeOptions{Topic: "nl/t", QoS: 1, NoLocal: true})
	b := dialV5(t, addr, cleanV5("nl-b"))
	b.subscribe(t, 0, paho.SubscribeOptions{Topic: "nl/t", QoS: 1})

	a.publish(t, &paho.Publish{Topic: "nl/t", QoS: 1, Payload: []byte("from-a")})
	if m := b.next(t); string(m.Payload) != "from-a" {
		t.Fatalf("b got %q, want from-a", m.Payload)
	}
	// Routed after a's own message: had a received that, it would be first.
	b.publish(t, &paho.Publish{Topic: "nl/t", QoS: 1, Payload: []byte("from-b")})
	if m := a.next(t); string(m.Payload) != "from-b" {
		t.Fatalf("a got %q, want from-b: its own message came back", m.Payload)
	}
	if m := b.next(t); string(m.Payload) != "from-b" {
		t.Fatalf("b got %q, want its own from-b (no No Local)", m.Payload)
	}
}

// TestPaho5RetainAsPublished checks the RETAIN flag of live deliveries:
// kept with Retain As Published [MQTT-3.3.1-13], cleared without it
// [MQTT-3.3.1-12].
func TestPaho5RetainAsPublished(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	rap := dialV5(t, addr, cleanV5("rap"))
	rap.subscribe(t, 0, paho.SubscribeOptions{Topic: "rap/t", QoS: 1, RetainAsPublished: true})
	plain := dialV5(t, addr, cleanV5("norap"))
	plain.subscribe(t, 0, paho.SubscribeOptions{Topic: "rap/t", QoS: 1})
	pub := dialV5(t, addr, cleanV5("rappub"))

	for _, retain := range []bool{true, false} {
		pub.publish(t, &paho.Publish{Topic: "rap/t", QoS: 1, Retain: retain, Payload: []byte("m")})
		if m := rap.next(t); m.Retain != retain {
			t.Errorf("retain as published: RETAIN %v, want %v", m.Retain, retain)
		}
		if m := plain.next(t); m.Retain {
			t.Errorf("without retain as published: RETAIN set")
		}
	}
}

// TestPaho5RetainHandling subscribes twice to a filter with a retained
// message, with each Retain Handling option: 0 sends the retained message on
// every subscribe [MQTT-3.3.1-9], 1 only when the subscription is new
// [MQTT-3.3.1-10], 2 never [MQTT-3.3.1-11].
func TestPaho5RetainHandling(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	pub := dialV5(t, addr, cleanV5("rhpub"))
	pub.publish(t, &paho.Publish{Topic: "rh/t", QoS: 1, Retain: true, Payload: []byte("kept")})
	tests := []struct {
		rh          byte
		first, then bool // retained message sent on the first / second SUBSCRIBE
	}{
		{0, true, true},
		{1, true, false},
		{2, false, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("rh%d", tt.rh), func(t *testing.T) {
			c := dialV5(t, addr, cleanV5(fmt.Sprintf("rh%d", tt.rh)))
			for i, want := range []bool{tt.first, tt.then} {
				c.subscribe(t, 0, paho.SubscribeOptions{Topic: "rh/#", QoS: 1, RetainHandling: tt.rh})
				// The client's own publication is handled after the
				// SUBACK and its replay: it marks the end.
				mark := fmt.Sprintf("mark%d", i)
				c.publish(t, &paho.Publish{Topic: "rh/mark", QoS: 1, Payload: []byte(mark)})
				m := c.next(t)
				got := m.Topic == "rh/t"
				if got {
					if !m.Retain || string(m.Payload) != "kept" {
						t.Fatalf("subscribe %d: replay with RETAIN %v payload %q", i, m.Retain, m.Payload)
					}
					m = c.next(t)
				}
				if got != want {
					t.Fatalf("subscribe %d: retained message sent %v, want %v", i, got, want)
				}
				if string(m.Payload) != mark {
					t.Fatalf("subscribe %d: got %q %q, want the mark", i, m.Topic, m.Payload)
				}
			}
		})
	}
}

// TestPaho5MessageExpiry leaves a retained and a queued message of each
// kind, one expiring after 1 s and one after 60 s, waits past the first
// expiry, and checks that only the others are delivered [MQTT-3.3.2-5], with
// the expiry interval lowered by the time they waited [MQTT-3.3.2-6].
func TestPaho5MessageExpiry(t *testing.T) {
	t.Parallel()
	b, addr := testutil.RunBroker(t, nil)
	persistent := &paho.Connect{ClientID: "expsub", CleanStart: true, Properties: &paho.ConnectProperties{SessionExpiryInterval: refOf[uint32](60)}}
	sub := dialV5(t, addr, persistent)
	sub.subscribe(t, 0, paho.SubscribeOptions{Topic: "exp/q/#", QoS: 1})
	sub.disconnect(t, nil)
	awaitDetached(t, b, "expsub")

	pub := dialV5(t, addr, cleanV5("exppub"))
	for _, m := range []struct {
		topic  string
		retain bool
		expiry uint32
	}{
		{"exp/q/short", false, 1},
		{"exp/q/long", false, 60},
		{"exp/r/short", true, 1},
		{"exp/r/long", true, 60},
	} {
		pub.publish(t, &paho.Publish{Topic: m.topic, QoS: 1, Retain: m.retain, Payload: []byte(m.topic),
			Properties: &paho.PublishProperties{MessageExpiry: refOf(m.expiry)}})
	}
	// Real time has to pass for a message to expire.
	time.Sleep(1100 * time.Millisecond)

	check := func(m *paho.Publish, topic string, retain bool) {
		t.Helper()
		if m.Topic != topic || m.Retain != retain {
			t.Fatalf("got %q (retain %v), want %q (retain %v)", m.Topic, m.Retain, topic, retain)
		}
		if m.Properties == nil || m.Properties.MessageExpiry == nil {
			t.Fatalf("%s: no message expiry interval", topic)
		}
		if e := *m.Properties.MessageExpiry; e < 1 || e >= 60 {
			t.Fatalf("%s: message expiry interval %d, want 1..59 (60 less the time waited)", topic, e)
		}
	}
	persistent.CleanStart = false
	sub = dialV5(t, addr, persistent)
	if !sub.ack.SessionPresent {
		t.Fatal("session not present")
	}
	sub.subscribe(t, 0, paho.SubscribeOptions{Topic: "exp/r/#", QoS: 1})
	sub.publish(t, &paho.Publish{Topic: "exp/q/mark", QoS: 1, Payload: []byte("mark")})
	check(sub.next(t), "exp/q/long", false)
	check(sub.next(t), "exp/r/long", true)
	if m := sub.next(t); m.Topic != "exp/q/mark" {
		t.Fatalf("got %q, want the mark: an expired message was delivered", m.Topic)
	}
	sub.disconnect(t, &paho.Disconnect{Properties: &paho.DisconnectProperties{SessionExpiryInterval: refOf[uint32](0)}})
}

// TestPaho5SessionExpiry connects with a session expiry of 2 s, goes away,
// and checks that a reconnection within the interval finds the session and
// the messages queued meanwhile [MQTT-3.1.2-23] [MQTT-3.2.2-3]; then that an
// expiry lowered in DISCONNECT [MQTT-3.14.2-2] ends the session once it
// passed [MQTT-4.1.0-2].
func TestPaho5SessionExpiry(t *testing.T) {
	t.Parallel()
	b, addr := testutil.RunBroker(t, nil)
	cp := &paho.Connect{ClientID: "sess", CleanStart: true, Properties: &paho.ConnectProperties{SessionExpiryInterval: refOf[uint32](2)}}
	sub := dialV5(t, addr, cp)
	if sub.ack.SessionPresent {
		t.Fatal("session present with clean start") // [MQTT-3.2.2-2]
	}
	sub.subscribe(t, 0, paho.SubscribeOptions{Topic: "sess/t", QoS: 2})
	sub.disconnect(t, nil)
	awaitDetached(t, b, "sess")

	pub := dialV5(t, addr, cleanV5("sesspub"))
	for i, qos := range []byte{1, 2, 0} {
		pub.publish(t, &paho.Publish{Topic: "sess/t", QoS: qos, Payload: []byte{byte('0' + i)}})
	}

	cp.CleanStart = false
	sub = dialV5(t, addr, cp)
	if !sub.ack.SessionPresent {
		t.Fatal("session not present on reconnect within the expiry")
	}
	for i, qos := range []byte{1, 2, 0} {
		m := sub.next(t)
		if m.Topic != "sess/t" || !bytes.Equal(m.Payload, []byte{byte('0' + i)}) || m.QoS != qos {
			t.Fatalf("queued message %d: %q %q qos %d", i, m.Topic, m.Payload, m.QoS)
		}
	}
	sub.disconnect(t, &paho.Disconnect{Properties: &paho.DisconnectProperties{SessionExpiryInterval: refOf[uint32](1)}})
	awaitDetached(t, b, "sess")
	// Real time has to pass for the session to expire.
	time.Sleep(1300 * time.Millisecond)
	sub = dialV5(t, addr, cp)
	if sub.ack.SessionPresent {
		t.Fatal("session still present after its expiry")
	}
	sub.disconnect(t, &paho.Disconnect{Properties: &paho.DisconnectProperties{SessionExpiryInterval: refOf[uint32](0)}})
}

// TestPaho5SharedSubscriptions checks that each message published to a
// shared subscription goes to exactly one member of the group (MQTT 5
// §4.8.2), in turn with the round_robin strategy, for "$share/<group>/" and
// for EMQX's "$queue/"; a non-shared subscription to the same filter gets
// every message.
func TestPaho5SharedSubscriptions(t *testing.T) {
	_, addr := testutil.RunBroker(t, func(o *broker.Options) { o.SharedStrategy = topics.RoundRobin })
	for g, prefix := range []string{"$share/g/", "$queue/"} {
		t.Run(prefix, func(t *testing.T) {
			topic := fmt.Sprintf("sh/%d", g)
			id := func(s string) string { return fmt.Sprintf("sh%d-%s", g, s) }
			members := []*v5Client{
				dialV5(t, addr, cleanV5(id("m1"))),
				dialV5(t, addr, cleanV5(id("m2"))),
			}
			for _, m := range members {
				m.subscribe(t, 0, paho.SubscribeOptions{Topic: prefix + topic, QoS: 1})
			}
			all := dialV5(t, addr, cleanV5(id("all")))
			all.subscribe(t, 0, paho.SubscribeOptions{Topic: topic, QoS: 1})
			pub := dialV5(t, addr, cleanV5(id("pub")))
			const n = 10
			for i := range n {
				pub.publish(t, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte{byte(i)}})
			}
			for i := range n {
				if m := all.next(t); m.Payload[0] != byte(i) {
					t.Fatalf("non-shared subscriber: message %d is %d", i, m.Payload[0])
				}
			}
			var got [2][]byte
			seen := make(map[byte]bool)
			for k, m := range members {
				for range n / 2 {
					p := m.next(t).Payload[0]
					got[k] = append(got[k], p)
					if seen[p] {
						t.Fatalf("message %d delivered twice in the group", p)
					}
					seen[p] = true
				}
			}
			// Round robin: one member has the even messages, the other the
			// odd ones.
			for k := range got {
				for j, p := range got[k] {
					if p%2 != got[k][0]%2 || (j > 0 && p <= got[k][j-1]) {
						t.Fatalf("members got %v and %v, want alternation", got[0], got[1])
					}
				}
			}
		})
	}
}

// TestPaho5AssignedClientID connects with an empty client id: the broker
// assigns a unique one and returns it in CONNACK [MQTT-3.1.3-6]
// [MQTT-3.2.2-16].
func TestPaho5AssignedClientID(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	a := dialV5(t, addr, cleanV5(""))
	b := dialV5(t, addr, cleanV5(""))
	idA, idB := a.ack.Properties.AssignedClientID, b.ack.Properties.AssignedClientID
	if idA == "" || idB == "" || idA == idB {
		t.Fatalf("assigned client ids %q and %q, want two different ones", idA, idB)
	}
	if a.ClientID() != idA {
		t.Fatalf("client uses id %q, want %q", a.ClientID(), idA)
	}
	// The assigned id names a working session.
	a.subscribe(t, 0, paho.SubscribeOptions{Topic: "aid/" + idA, QoS: 1})
	b.publish(t, &paho.Publish{Topic: "aid/" + idA, QoS: 1, Payload: []byte("hi")})
	if m := a.next(t); string(m.Payload) != "hi" {
		t.Fatalf("got %q", m.Payload)
	}
}

// TestPaho5ServerKeepAlive checks the Server Keep Alive of CONNACK with
// max_keepalive set: sent when the client asks for no keep alive or more
// than the maximum, and then used by the client [MQTT-3.2.2-21]; absent when
// the client's keep alive is within it [MQTT-3.2.2-22].
func TestPaho5ServerKeepAlive(t *testing.T) {
	_, addr := testutil.RunBroker(t, func(o *broker.Options) { o.MaxKeepAlive = 10 })
	tests := []struct {
		ask  uint16
		want uint16 // 0: no Server Keep Alive
	}{
		{0, 10},
		{60, 10},
		{10, 0},
		{5, 0},
	}
	for _, tt := range tests {
		c := dialV5(t, addr, &paho.Connect{ClientID: fmt.Sprintf("ka%d", tt.ask), CleanStart: true, KeepAlive: tt.ask})
		var got uint16
		if p := c.ack.Properties; p != nil && p.ServerKeepAlive != nil {
			got = *p.ServerKeepAlive
		}
		if got != tt.want {
			t.Errorf("keep alive %d: server keep alive %d, want %d", tt.ask, got, tt.want)
		}
		c.disconnect(t, nil)
	}
}

// TestPaho5TopicAliasFromClient publishes with a topic alias: first with the
// topic, then with the alias alone, which the broker resolves
// [MQTT-3.3.2-12]. A subscriber that announced no Topic Alias Maximum gets
// the topic and no alias [MQTT-3.1.2-27].
func TestPaho5TopicAliasFromClient(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	sub := dialV5(t, addr, cleanV5("tasub"))
	sub.subscribe(t, 0, paho.SubscribeOptions{Topic: "ta/#", QoS: 1})
	pub := dialV5(t, addr, cleanV5("tapub"))
	alias := func(topic string, a uint16, payload string) *paho.Publish {
		return &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(payload), Properties: &paho.PublishProperties{TopicAlias: refOf(a)}}
	}
	pub.publish(t, alias("ta/one", 1, "set"))
	pub.publish(t, alias("", 1, "use"))
	pub.publish(t, alias("ta/two", 1, "reset"))
	pub.publish(t, alias("", 1, "use2"))
	for _, want := range []struct{ topic, payload string }{{"ta/one", "set"}, {"ta/one", "use"}, {"ta/two", "reset"}, {"ta/two", "use2"}} {
		if m := sub.next(t); m.Topic != want.topic || string(m.Payload) != want.payload {
			t.Fatalf("got %q %q, want %q %q", m.Topic, m.Payload, want.topic, want.payload)
		}
	}
	for _, p := range sub.tap.publishes(t) {
		if p.Props.Has(mqtt.PropTopicAlias) {
			t.Fatalf("topic alias %d sent to a client that allows none", p.Props.TopicAlias)
		}
	}
}

// TestPaho5TopicAliasToClient connects a subscriber that allows two topic
// aliases and checks the PUBLISH packets it reads: the first message of a
// topic carries the topic and a new alias, later ones the alias only, and
// no alias above the client's maximum is used [MQTT-3.1.2-26]
// [MQTT-3.3.2-7].
func TestPaho5TopicAliasToClient(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	sub := dialV5(t, addr, &paho.Connect{ClientID: "tbsub", CleanStart: true, Properties: &paho.ConnectProperties{TopicAliasMaximum: refOf[uint16](2)}})
	sub.subscribe(t, 0, paho.SubscribeOptions{Topic: "tb/#", QoS: 1})
	pub := dialV5(t, addr, cleanV5("tbpub"))
	sends := []string{"tb/a", "tb/a", "tb/b", "tb/c", "tb/c", "tb/b", "tb/a"}
	for i, topic := range sends {
		pub.publish(t, &paho.Publish{Topic: topic, QoS: byte(i % 2), Payload: []byte(topic)})
	}
	for range sends {
		sub.next(t)
	}
	got := sub.tap.publishes(t)
	if len(got) != len(sends) {
		t.Fatalf("client read %d PUBLISH packets, want %d", len(got), len(sends))
	}
	known := make(map[uint16]string) // alias → topic, as the client learns them
	aliased := 0
	for i, p := range got {
		if !p.Props.Has(mqtt.PropTopicAlias) {
			if p.Topic != sends[i] {
				t.Fatalf("message %d: topic %q, want %q", i, p.Topic, sends[i])
			}
			continue
		}
		a := p.Props.TopicAlias
		if a < 1 || a > 2 {
			t.Fatalf("message %d: topic alias %d outside 1..2", i, a)
		}
		if p.Topic != "" {
			known[a] = p.Topic
		} else {
			aliased++
		}
		if known[a] != sends[i] || string(p.Payload) != sends[i] {
			t.Fatalf("message %d: alias %d resolves to %q, want %q", i, a, known[a], sends[i])
		}
	}
	// tb/a and tb/b get the two aliases: their repeats are sent by alias.
	if aliased != 3 {
		t.Fatalf("%d messages sent by alias alone, want 3", aliased)
	}
}

// TestPaho5Takeover connects a second client with the same client id: the
// first gets DISCONNECT 0x8E (session taken over) and the session, with its
// subscription, continues on the second [MQTT-3.1.4-3].
func TestPaho5Takeover(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	cp := &paho.Connect{ClientID: "tk", CleanStart: true, Properties: &paho.ConnectProperties{SessionExpiryInterval: refOf[uint32](60)}}
	first := dialV5(t, addr, cp)
	first.subscribe(t, 0, paho.SubscribeOptions{Topic: "tk/t", QoS: 1})

	cp.CleanStart = false
	second := dialV5(t, addr, cp)
	if !second.ack.SessionPresent {
		t.Fatal("session not present for the new connection")
	}
	select {
	case d := <-first.disc:
		if d.ReasonCode != byte(mqtt.SessionTakenOver) {
			t.Fatalf("first connection: DISCONNECT %#x, want 0x8E", d.ReasonCode)
		}
	case <-time.After(interopWait):
		t.Fatal("first connection got no DISCONNECT")
	}
	<-first.Done()

	pub := dialV5(t, addr, cleanV5("tkpub"))
	pub.publish(t, &paho.Publish{Topic: "tk/t", QoS: 1, Payload: []byte("still here")})
	if m := second.next(t); string(m.Payload) != "still here" {
		t.Fatalf("got %q", m.Payload)
	}
	second.disconnect(t, &paho.Disconnect{Properties: &paho.DisconnectProperties{SessionExpiryInterval: refOf[uint32](0)}})
}

// TestPaho5Will checks when the broker publishes a v5 will: on a network
// failure, with its properties [MQTT-3.1.2-8]; on DISCONNECT with reason
// 0x04 but not 0x00 [MQTT-3.14.4-3]; on takeover [MQTT-3.1.4-3]; and after
// its Will Delay Interval unless the client reconnects first
// [MQTT-3.1.3-9].
func TestPaho5Will(t *testing.T) {
	t.Parallel()
	b, addr := testutil.RunBroker(t, nil)
	watcher := dialV5(t, addr, cleanV5("w5watch"))
	watcher.subscribe(t, 0, paho.SubscribeOptions{Topic: "w5/#", QoS: 2})
	expect := func(topic string) *paho.Publish {
		t.Helper()
		m := watcher.next(t)
		if m.Topic != topic {
			t.Fatalf("watcher got %q %q, want %q", m.Topic, m.Payload, topic)
		}
		return m
	}
	withWill := func(id string, delay uint32) *paho.Connect {
		cp := &paho.Connect{
			ClientID:    id,
			CleanStart:  true,
			WillMessage: &paho.WillMessage{Topic: "w5/" + id, QoS: 1, Payload: []byte("gone " + id)},
			// paho.golang encodes only the user properties and the will
			// delay of the will properties.
			WillProperties: &paho.WillProperties{User: paho.UserProperties{{Key: "who", Value: id}}},
		}
		if delay > 0 {
			cp.WillProperties.WillDelayInterval = refOf(delay)
			cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: refOf[uint32](60)}
		}
		return cp
	}

	cut := dialV5(t, addr, withWill("cut", 0))
	cut.TerminateConnectionForTest()
	m := expect("w5/cut")
	if string(m.Payload) != "gone cut" || m.QoS != 1 || m.Properties == nil || m.Properties.User.Get("who") != "cut" {
		t.Fatalf("will: payload %q qos %d properties %+v", m.Payload, m.QoS, m.Properties)
	}

	// paho.golang cannot send the other will properties: a raw client
	// does, and the will carries them as a PUBLISH would (MQTT 5 §3.1.3.2).
	owner := testutil.Dial(t, addr, mqtt.V5)
	w := &mqtt.Will{Topic: "w5/raw", QoS: 1, Payload: []byte("gone raw")}
	w.Props.ContentType, w.Props.ResponseTopic, w.Props.CorrelationData, w.Props.PayloadFormat = "text/plain", "w5/reply", []byte{1, 2}, 1
	for _, id := range []mqtt.PropID{mqtt.PropContentType, mqtt.PropResponseTopic, mqtt.PropCorrelationData, mqtt.PropPayloadFormat} {
		w.Props.Set(id)
	}
	if ack := owner.Connect(&mqtt.Connect{ClientID: "rawwill", CleanStart: true, Will: w}); ack.ReasonCode != 0 {
		t.Fatalf("raw will owner: CONNACK %#x", ack.ReasonCode)
	}
	_ = owner.Conn.Close()
	m = expect("w5/raw")
	if p := m.Properties; p == nil || p.ContentType != "text/plain" || p.ResponseTopic != "w5/reply" ||
		!bytes.Equal(p.CorrelationData, []byte{1, 2}) || p.PayloadFormat == nil || *p.PayloadFormat != 1 {
		t.Fatalf("raw will: properties %+v", m.Properties)
	}

	dialV5(t, addr, withWill("w04", 0)).disconnect(t, &paho.Disconnect{ReasonCode: 0x04})
	expect("w5/w04")

	dialV5(t, addr, withWill("w00", 0)).disconnect(t, &paho.Disconnect{ReasonCode: 0x00})
	awaitDetached(t, b, "w00")
	watcher.publish(t, &paho.Publish{Topic: "w5/mark", QoS: 1, Payload: []byte("mark")})
	expect("w5/mark")

	dialV5(t, addr, withWill("taken", 0))
	dialV5(t, addr, cleanV5("taken"))
	expect("w5/taken")

	// "back" returns within its will delay: its will is cancelled. "away"
	// does not, and its will comes after the delay; "back"'s, due first,
	// would come before it.
	back := dialV5(t, addr, withWill("back", 1))
	back.TerminateConnectionForTest()
	awaitDetached(t, b, "back")
	back = dialV5(t, addr, &paho.Connect{ClientID: "back", Properties: &paho.ConnectProperties{SessionExpiryInterval: refOf[uint32](60)}})
	if !back.ack.SessionPresent {
		t.Fatal("back: session not present")
	}
	away := dialV5(t, addr, withWill("away", 1))
	away.TerminateConnectionForTest()
	expect("w5/away")
	back.disconnect(t, &paho.Disconnect{Properties: &paho.DisconnectProperties{SessionExpiryInterval: refOf[uint32](0)}})
}

// TestPaho5MaximumPacketSize connects a subscriber whose Maximum Packet Size
// is 128 bytes: a larger message is not sent to it [MQTT-3.1.2-24], while
// smaller ones are, and other subscribers get every message.
func TestPaho5MaximumPacketSize(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	small := dialV5(t, addr, &paho.Connect{ClientID: "mps", CleanStart: true, Properties: &paho.ConnectProperties{MaximumPacketSize: refOf[uint32](128)}})
	small.subscribe(t, 0, paho.SubscribeOptions{Topic: "mps/#", QoS: 1})
	large := dialV5(t, addr, cleanV5("mpsall"))
	large.subscribe(t, 0, paho.SubscribeOptions{Topic: "mps/#", QoS: 1})
	pub := dialV5(t, addr, cleanV5("mpspub"))
	sizes := []int{10, 1000, 100, 129}
	for i, n := range sizes {
		pub.publish(t, &paho.Publish{Topic: "mps/t", QoS: byte(i % 2), Payload: bytes.Repeat([]byte{'x'}, n)})
	}
	pub.publish(t, &paho.Publish{Topic: "mps/t", QoS: 1, Payload: []byte("mark")})
	for _, n := range sizes {
		if m := large.next(t); len(m.Payload) != n {
			t.Fatalf("unlimited subscriber: %d bytes, want %d", len(m.Payload), n)
		}
	}
	for _, want := range []string{strings.Repeat("x", 10), strings.Repeat("x", 100), "mark"} {
		if m := small.next(t); string(m.Payload) != want {
			t.Fatalf("limited subscriber: %d bytes, want %d", len(m.Payload), len(want))
		}
	}
	for _, p := range small.tap.publishes(t) {
		if n, _ := p.Encode(nil, mqtt.V5); len(n) > 128 {
			t.Fatalf("a PUBLISH of %d bytes reached a client that allows 128", len(n))
		}
	}
}

// TestPaho5Unsubscribe checks UNSUBACK reason codes, one per filter in
// order [MQTT-3.11.3-1]: 0x00 for a subscription that existed, 0x11 for one
// that did not [MQTT-3.10.4-5]; and that no message arrives for the removed
// filter [MQTT-3.10.4-2].
func TestPaho5Unsubscribe(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	c := dialV5(t, addr, cleanV5("unsub"))
	c.subscribe(t, 0, paho.SubscribeOptions{Topic: "us/a", QoS: 1}, paho.SubscribeOptions{Topic: "us/b", QoS: 1})
	ctx, cancel := context.WithTimeout(context.Background(), interopWait)
	defer cancel()
	ua, err := c.Unsubscribe(ctx, &paho.Unsubscribe{Topics: []string{"us/a", "us/none"}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ua.Reasons, []byte{0x00, 0x11}) {
		t.Fatalf("UNSUBACK reasons %#x, want [0x00 0x11]", ua.Reasons)
	}
	c.publish(t, &paho.Publish{Topic: "us/a", QoS: 1, Payload: []byte("gone")})
	c.publish(t, &paho.Publish{Topic: "us/b", QoS: 1, Payload: []byte("kept")})
	if m := c.next(t); m.Topic != "us/b" {
		t.Fatalf("got %q after unsubscribing from it", m.Topic)
	}
}
