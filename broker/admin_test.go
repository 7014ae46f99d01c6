package broker_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// connectClient connects a raw client with the given id and username.
func connectClient(t *testing.T, addr, id, user string, v mqtt.Version, clean bool, expiry uint32) *testutil.Raw {
	t.Helper()
	c := testutil.Dial(t, addr, v)
	p := &mqtt.Connect{ClientID: id, CleanStart: clean, KeepAlive: 30, Username: user, UsernameSet: user != ""}
	if expiry > 0 {
		p.Props.SessionExpiry = expiry
		p.Props.Set(mqtt.PropSessionExpiry)
	}
	if ack := c.Connect(p); ack.ReasonCode != mqtt.Success {
		t.Fatalf("connect %s: %v", id, ack.ReasonCode)
	}
	return c
}

func subscribe(t *testing.T, c *testutil.Raw, filter string, qos byte) {
	t.Helper()
	c.Send(&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: filter, QoS: qos}}})
	if _, ok := c.Read().(*mqtt.Suback); !ok {
		t.Fatal("want SUBACK")
	}
}

func TestAdminClientsAndSubscriptions(t *testing.T) {
	b, addr := testutil.RunBroker(t, nil)
	a := connectClient(t, addr, "a", "alice", mqtt.V5, true, 0)
	connectClient(t, addr, "b", "", mqtt.V311, true, 0)
	subscribe(t, a, "x/+", 1)
	subscribe(t, a, "$share/g/y/#", 0)

	cs := b.Clients()
	if len(cs) != 2 || cs[0].ClientID != "a" || cs[1].ClientID != "b" {
		t.Fatalf("Clients() = %+v, want a and b sorted", cs)
	}
	ca := cs[0]
	if !ca.Connected || ca.Username != "alice" || !ca.UsernameSet || ca.ProtoVer != 5 || ca.Subscriptions != 2 || ca.KeepAlive != 30 || !ca.CleanStart {
		t.Errorf("client a = %+v", ca)
	}
	if !ca.Peer.IsValid() || ca.Listener != "tcp:external" || ca.ConnectedAt.IsZero() || ca.CreatedAt.IsZero() {
		t.Errorf("client a connection fields = %+v", ca)
	}
	if cs[1].UsernameSet || cs[1].ProtoVer != 4 {
		t.Errorf("client b = %+v", cs[1])
	}
	if _, ok := b.Client("nobody"); ok {
		t.Error("Client(nobody) found")
	}
	subs := b.Subscriptions("a")
	want := []broker.Subscription{{ClientID: "a", Topic: "$share/g/y/#", QoS: 0, Share: "g"}, {ClientID: "a", Topic: "x/+", QoS: 1}}
	if len(subs) != len(want) {
		t.Fatalf("Subscriptions(a) = %+v", subs)
	}
	for i := range want {
		if subs[i] != want[i] {
			t.Errorf("sub %d = %+v, want %+v", i, subs[i], want[i])
		}
	}
	if got := b.Routes(); len(got) != 2 || got[0] != "x/+" || got[1] != "y/#" {
		t.Errorf("Routes() = %v", got)
	}
}

func TestAdminPublishReachesSubscriber(t *testing.T) {
	b, addr := testutil.RunBroker(t, nil)
	sub := connectClient(t, addr, "s", "", mqtt.V5, true, 0)
	subscribe(t, sub, "t/#", 1)
	props := &mqtt.Properties{ContentType: "text/plain"}
	props.Set(mqtt.PropContentType)
	_, n, err := b.Publish(broker.Message{Topic: "t/1", Payload: []byte("hi"), QoS: 1, Props: props})
	if err != nil || n != 1 {
		t.Fatalf("Publish = %d, %v; want 1 delivery", n, err)
	}
	p, ok := sub.Read().(*mqtt.Publish)
	if !ok || p.Topic != "t/1" || string(p.Payload) != "hi" || p.QoS != 1 || p.Props.ContentType != "text/plain" {
		t.Fatalf("got %+v", p)
	}
	tests := []struct {
		name string
		m    broker.Message
		want error
	}{
		// [MQTT-3.3.2-2] a topic name has no wildcards.
		{"wildcard", broker.Message{Topic: "t/+"}, broker.ErrBadTopic},
		{"empty", broker.Message{Topic: ""}, broker.ErrBadTopic},
		{"qos", broker.Message{Topic: "t", QoS: 3}, broker.ErrBadQoS},
	}
	for _, tt := range tests {
		if _, _, err := b.Publish(tt.m); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestAdminSubscribeForUnsubscribeFor(t *testing.T) {
	b, addr := testutil.RunBroker(t, nil)
	c := connectClient(t, addr, "c", "", mqtt.V311, true, 0)
	if err := b.SubscribeFor("c", "a/b", 2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Publish(broker.Message{Topic: "a/b", Payload: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	if p, ok := c.Read().(*mqtt.Publish); !ok || string(p.Payload) != "1" {
		t.Fatalf("got %+v", p)
	}
	if err := b.SubscribeFor("nobody", "a", 0); !errors.Is(err, broker.ErrNoClient) {
		t.Errorf("SubscribeFor(nobody) = %v", err)
	}
	if err := b.SubscribeFor("c", "a/#/b", 0); !errors.Is(err, broker.ErrBadTopic) {
		t.Errorf("SubscribeFor(bad filter) = %v", err)
	}
	if had, err := b.UnsubscribeFor("c", "a/b"); !had || err != nil {
		t.Fatalf("UnsubscribeFor = %v, %v", had, err)
	}
	if had, _ := b.UnsubscribeFor("c", "a/b"); had {
		t.Error("second UnsubscribeFor reported a subscription")
	}
	if n := len(b.Subscriptions("c")); n != 0 {
		t.Errorf("%d subscriptions left", n)
	}
}

func TestAdminKick(t *testing.T) {
	b, addr := testutil.RunBroker(t, nil)
	// A persistent session ends too: kick discards it whatever its expiry.
	c := connectClient(t, addr, "k", "", mqtt.V5, false, 3600)
	if !b.Kick("k") {
		t.Fatal("Kick(k) = false")
	}
	got := c.ExpectClosed()
	if len(got) != 1 {
		t.Fatalf("got %d packets before the close, want one DISCONNECT", len(got))
	}
	// A v5 client learns the reason: 0x98 administrative action.
	if d, ok := got[0].(*mqtt.Disconnect); !ok || d.ReasonCode != mqtt.AdministrativeAction {
		t.Fatalf("got %+v, want DISCONNECT 0x98", got[0])
	}
	if b.Kick("nobody") {
		t.Error("Kick(nobody) = true")
	}
	// The session is gone once the connection has been torn down: a new
	// connection without clean start finds no session [MQTT-3.2.2-3].
	c2 := testutil.Dial(t, addr, mqtt.V5)
	ack := c2.Connect(&mqtt.Connect{ClientID: "k", KeepAlive: 30})
	if ack.SessionPresent {
		t.Error("session present after kick")
	}

	// An offline persistent session is discarded.
	c3 := connectClient(t, addr, "off", "", mqtt.V5, false, 3600)
	c3.Send(&mqtt.Disconnect{})
	c3.ExpectClosed()
	if !b.Kick("off") {
		t.Fatal("Kick(off) = false")
	}
	if _, ok := b.Client("off"); ok {
		t.Error("offline session still listed after kick")
	}
}

func TestAdminReadyAndPending(t *testing.T) {
	o := broker.DefaultOptions()
	o.Listeners = []broker.Listener{{Name: "external", Addr: "127.0.0.1:0"}, {Name: "internal", Addr: "127.0.0.1:0"}}
	o.ShutdownTimeout = 5 * time.Second
	b, err := broker.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Ready(); err == nil {
		t.Error("ready before Start")
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	if err := b.Ready(); err != nil {
		t.Errorf("after Start: %v", err)
	}
	addr := b.Addr("external").String()
	// One QoS 1 message inflight to an online subscriber that does not
	// acknowledge it, two queued for an offline session.
	on := connectClient(t, addr, "on", "", mqtt.V5, true, 0)
	subscribe(t, on, "t", 1)
	off := connectClient(t, addr, "off", "", mqtt.V5, false, 300)
	subscribe(t, off, "t", 1)
	off.Send(&mqtt.Disconnect{})
	off.ExpectClosed()
	for range 500 {
		if ci, ok := b.Client("off"); ok && !ci.Connected {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range 2 {
		if _, _, err := b.Publish(broker.Message{Topic: "t", QoS: 1, Payload: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	on.Read()
	on.Read()
	if inflight, queued := b.Pending(); inflight != 2 || queued != 2 {
		t.Errorf("Pending = %d inflight, %d queued; want 2 and 2", inflight, queued)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Ready(); err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("after Shutdown: %v", err)
	}
}
