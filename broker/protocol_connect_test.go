package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// TestConnectEmptyClientID checks the client identifier rules: 3.1.1
// accepts an empty id only with clean session 1 [MQTT-3.1.3-7]
// [MQTT-3.1.3-8], 3.1 never, and 5.0 assigns a unique one and returns it
// in CONNACK [MQTT-3.1.3-6] [MQTT-3.2.2-16].
func TestConnectEmptyClientID(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	tests := []struct {
		name  string
		v     mqtt.Version
		clean bool
		want  mqtt.ReasonCode
	}{
		{"v3.1.1 clean session 0", mqtt.V311, false, mqtt.V3IdentifierRejected},
		{"v3.1.1 clean session 1", mqtt.V311, true, mqtt.V3Accepted},
		{"v3.1 clean session 1", mqtt.V31, true, mqtt.V3IdentifierRejected},
		{"v5 clean start 1", mqtt.V5, true, mqtt.Success},
		{"v5 clean start 0", mqtt.V5, false, mqtt.Success},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := testutil.Dial(t, addr, tc.v)
			a := r.Connect(&mqtt.Connect{CleanStart: tc.clean})
			if a.ReasonCode != tc.want {
				t.Fatalf("CONNACK %d, want %d", a.ReasonCode, tc.want)
			}
			if a.ReasonCode != 0 {
				expectClosedWith(t, r, 0)
				return
			}
			if tc.v != mqtt.V5 {
				expectNothing(t, r, "accepted")
				return
			}
			id := a.Props.AssignedClientID
			if !a.Props.Has(mqtt.PropAssignedClientID) || id == "" || a.SessionPresent {
				t.Fatalf("CONNACK without an assigned client id: %+v", a)
			}
			// Another empty id gets another identifier.
			r2 := testutil.Dial(t, addr, tc.v)
			if b := r2.Connect(&mqtt.Connect{CleanStart: tc.clean}); b.Props.AssignedClientID == id {
				t.Fatalf("two clients assigned %q", id)
			}
			expectNothing(t, r, "the first client after the second connected")
		})
	}
}

// TestTakeover checks [MQTT-3.1.4-3]: a second connection with a client
// id in use takes the session over. The old connection gets DISCONNECT
// 0x8E (v5) and is closed, its will is published at once (it has no
// delay), and the new one gets session present 1 with clean start 0
// [MQTT-3.2.2-3], 0 with clean start 1 [MQTT-3.2.2-2], with the
// subscriptions kept or not accordingly.
func TestTakeover(t *testing.T) {
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		for _, clean := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/clean %v", versionNames[v], clean), func(t *testing.T) {
				_, addr := testutil.RunBroker(t, nil)
				watcher := connectClean(t, addr, mqtt.V5, "watcher")
				mustSubscribe(t, watcher, "will/#", 0)
				old, _ := dialConnect(t, addr, v, &mqtt.Connect{ClientID: "dup", CleanStart: true, KeepAlive: 60,
					Will: &mqtt.Will{Topic: "will/dup", Payload: []byte("taken")}})
				mustSubscribe(t, old, "kept", 1)

				c := &mqtt.Connect{ClientID: "dup", CleanStart: clean}
				if !clean && v == mqtt.V5 {
					c.Props.SessionExpiry = 60
					c.Props.Set(mqtt.PropSessionExpiry)
				}
				again, ack := dialConnect(t, addr, v, c)
				if ack.SessionPresent == clean {
					t.Fatalf("session present %v with clean start %v", ack.SessionPresent, clean)
				}
				expectClosedWith(t, old, mqtt.SessionTakenOver)
				if w := readPublish(t, watcher); w.Topic != "will/dup" || string(w.Payload) != "taken" {
					t.Fatalf("want the will of the old connection, got %s", describe([]mqtt.Packet{w}))
				}
				publishAcked(t, watcher, 1, "kept", 1, "still")
				got := barrier(t, again)
				if clean && len(got) != 0 {
					t.Fatalf("clean start kept the old subscription: %s", describe(got))
				}
				if !clean && (len(got) != 1 || payloads(t, got)[0] != "still") {
					t.Fatalf("resumed session: got %s, want the message on the kept subscription", describe(got))
				}
			})
		}
	}
}

// TestTakeoverEndsDelayedWill checks [MQTT-3.1.3-9]: a will with a delay
// is published when the session ends, whichever comes first; a takeover
// with clean start 1 ends the old session, so the will goes out at once.
func TestTakeoverEndsDelayedWill(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	watcher := connectClean(t, addr, mqtt.V5, "watcher")
	mustSubscribe(t, watcher, "will/#", 0)
	c := &mqtt.Connect{ClientID: "dw", CleanStart: true, Will: &mqtt.Will{Topic: "will/dw", Payload: []byte("late")}}
	c.Will.Props.WillDelay = 600
	c.Will.Props.Set(mqtt.PropWillDelay)
	c.Props.SessionExpiry = 600
	c.Props.Set(mqtt.PropSessionExpiry)
	old, _ := dialConnect(t, addr, mqtt.V5, c)
	dialConnect(t, addr, mqtt.V5, &mqtt.Connect{ClientID: "dw", CleanStart: true})
	expectClosedWith(t, old, mqtt.SessionTakenOver)
	if w := readPublish(t, watcher); w.Topic != "will/dw" {
		t.Fatalf("want the will, got %s", describe([]mqtt.Packet{w}))
	}
}

// TestCleanSessionEndsWithConnection checks [MQTT-3.1.2-6] (3.1.1) and
// Session Expiry 0 (MQTT 5.0 §3.1.2.11.2): such a session is gone as soon
// as its connection is, so a client that reconnects the moment it sees
// the socket close, with clean start 0, finds no session.
func TestCleanSessionEndsWithConnection(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		t.Run(versionNames[v], func(t *testing.T) {
			for i := range 30 {
				r := connectClean(t, addr, v, "brief")
				mustSubscribe(t, r, "x", 1)
				r.Send(&mqtt.Disconnect{})
				r.ExpectClosed()
				probe, a := dialConnect(t, addr, v, &mqtt.Connect{ClientID: "brief"})
				if a.SessionPresent {
					t.Fatalf("round %d: reconnect right after DISCONNECT found the ended session", i)
				}
				probe.Send(&mqtt.Disconnect{})
				probe.ExpectClosed()
			}
		})
	}
}

// TestKeepAliveTimeout checks [MQTT-3.1.2-24]: a client silent for 1.5
// times its keep alive is disconnected (v5: DISCONNECT 0x8D) and its will
// is published, while a client that sends PINGREQ in time stays.
func TestKeepAliveTimeout(t *testing.T) {
	t.Parallel()
	b, addr := testutil.RunBroker(t, nil)
	watcher := connectClean(t, addr, mqtt.V5, "watcher")
	mustSubscribe(t, watcher, "will/#", 0)
	silent := map[mqtt.Version]*testutil.Raw{}
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		id := "silent-" + versionNames[v]
		silent[v], _ = dialConnect(t, addr, v, &mqtt.Connect{ClientID: id, CleanStart: true, KeepAlive: 1,
			Will: &mqtt.Will{Topic: "will/" + id, Payload: []byte("timeout")}})
	}
	alive, _ := dialConnect(t, addr, mqtt.V5, &mqtt.Connect{ClientID: "alive", CleanStart: true, KeepAlive: 1,
		Will: &mqtt.Will{Topic: "will/alive", Payload: []byte("wrong")}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Pace the pings well inside the keep alive; the answers are
		// read after the silent clients were cut.
		for range 6 {
			time.Sleep(300 * time.Millisecond)
			if _, err := alive.Conn.Write([]byte{0xC0, 0x00}); err != nil {
				return
			}
		}
	}()
	expectClosedWith(t, silent[mqtt.V5], mqtt.KeepAliveTimeout)
	expectClosedWith(t, silent[mqtt.V311], 0)
	wills := map[string]bool{}
	for range 2 {
		wills[readPublish(t, watcher).Topic] = true
	}
	if !wills["will/silent-v5"] || !wills["will/silent-v3.1.1"] {
		t.Fatalf("wills published: %v", wills)
	}
	<-done
	for range 6 {
		if p := alive.Read(); p.Type() != mqtt.PINGRESP {
			t.Fatalf("pinging client got %s", describe([]mqtt.Packet{p}))
		}
	}
	expectNothing(t, alive, "pinging client")
	expectNothing(t, watcher, "no will from the pinging client")
	if n := b.Metrics()["connections.keepalive_timeout"]; n != 2 {
		t.Fatalf("connections.keepalive_timeout = %d, want 2", n)
	}
}

// TestIdleBeforeConnect checks that a socket that sends no CONNECT (or
// only part of one) within the idle timeout is closed (MQTT 5.0 §3.1.4:
// the server should not wait for a CONNECT for long).
func TestIdleBeforeConnect(t *testing.T) {
	_, addr := testutil.RunBroker(t, func(o *broker.Options) { o.IdleTimeout = 100 * time.Millisecond })
	quiet := testutil.Dial(t, addr, mqtt.V5)
	partial := testutil.Dial(t, addr, mqtt.V5)
	full := mustEncode(t, &mqtt.Connect{ClientID: "slow", CleanStart: true}, mqtt.V5)
	partial.SendBytes(full[:5])
	if got := quiet.ExpectClosed(); len(got) != 0 {
		t.Fatalf("idle socket got %s", describe(got))
	}
	if got := partial.ExpectClosed(); len(got) != 0 {
		t.Fatalf("partial CONNECT got %s", describe(got))
	}
	// A client that connects in time is not subject to the idle timeout
	// any more: it uses its keep alive (here none).
	r := connectClean(t, addr, mqtt.V311, "prompt")
	time.Sleep(300 * time.Millisecond)
	expectNothing(t, r, "connected client after the idle timeout")
}

// TestSessionExpiry checks the v5 Session Expiry Interval [MQTT-4.1.0-2]:
// a session with expiry 1 s is gone after 1.5 s (session present 0), one
// with a longer expiry is still there.
func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	b, addr := testutil.RunBroker(t, nil)
	for id, secs := range map[string]uint32{"short": 1, "long": 60} {
		c := &mqtt.Connect{ClientID: id, CleanStart: true}
		c.Props.SessionExpiry = secs
		c.Props.Set(mqtt.PropSessionExpiry)
		r, _ := dialConnect(t, addr, mqtt.V5, c)
		mustSubscribe(t, r, "e", 1)
		r.Send(&mqtt.Disconnect{})
		r.ExpectClosed()
		waitOffline(t, b, id)
	}
	time.Sleep(1500 * time.Millisecond)
	for id, want := range map[string]bool{"short": false, "long": true} {
		_, a := dialConnect(t, addr, mqtt.V5, &mqtt.Connect{ClientID: id})
		if a.SessionPresent != want {
			t.Errorf("%s: session present %v, want %v", id, a.SessionPresent, want)
		}
	}
}

// TestDisconnectSessionExpiry checks DISCONNECT's Session Expiry
// Interval: from 0 to non-zero is a protocol error (DISCONNECT 0x82, and
// the will is published since the client did not disconnect normally)
// [MQTT-3.14.2-2]; otherwise it replaces the CONNECT's value.
func TestDisconnectSessionExpiry(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	watcher := connectClean(t, addr, mqtt.V5, "watcher")
	mustSubscribe(t, watcher, "will/#", 0)
	tests := []struct {
		name        string
		connect     uint32 // 0 = property absent
		disconnect  uint32
		wantPresent bool
	}{
		{"0 to 30 is a protocol error", 0, 30, false},
		{"30 to 0 ends the session", 30, 0, false},
		{"30 to 60 keeps it", 30, 60, true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("dse%d", i)
			c := &mqtt.Connect{ClientID: id, CleanStart: true, Will: &mqtt.Will{Topic: "will/" + id}}
			if tc.connect > 0 {
				c.Props.SessionExpiry = tc.connect
				c.Props.Set(mqtt.PropSessionExpiry)
			}
			r, _ := dialConnect(t, addr, mqtt.V5, c)
			d := &mqtt.Disconnect{}
			d.Props.SessionExpiry = tc.disconnect
			d.Props.Set(mqtt.PropSessionExpiry)
			r.Send(d)
			if tc.connect == 0 {
				expectClosedWith(t, r, mqtt.ProtocolError)
				if w := readPublish(t, watcher); w.Topic != "will/"+id {
					t.Fatalf("want the will, got %s", describe([]mqtt.Packet{w}))
				}
			} else {
				expectClosedWith(t, r, 0)
			}
			_, a := dialConnect(t, addr, mqtt.V5, &mqtt.Connect{ClientID: id})
			if a.SessionPresent != tc.wantPresent {
				t.Fatalf("session present %v, want %v", a.SessionPresent, tc.wantPresent)
			}
		})
	}
	expectNothing(t, watcher, "wills of normal disconnects")
}

// TestWillDelay checks the v5 Will Delay Interval [MQTT-3.1.3-9]: the
// will is not sent if the client comes back within the delay, is sent
// once the delay passes otherwise, and is sent when the session ends if
// that comes first.
func TestWillDelay(t *testing.T) {
	t.Parallel()
	b, addr := testutil.RunBroker(t, nil)
	watcher := connectClean(t, addr, mqtt.V5, "watcher")
	mustSubscribe(t, watcher, "will/#", 0)
	connect := func(id string, delay, expiry uint32) *mqtt.Connect {
		c := &mqtt.Connect{ClientID: id, Will: &mqtt.Will{Topic: "will/" + id, Payload: []byte(id)}}
		c.Will.Props.WillDelay = delay
		c.Will.Props.Set(mqtt.PropWillDelay)
		c.Props.SessionExpiry = expiry
		c.Props.Set(mqtt.PropSessionExpiry)
		return c
	}
	// back drops its connection and returns within the delay.
	back, _ := dialConnect(t, addr, mqtt.V5, connect("back", 1, 60))
	goOffline(t, b, back, "back")
	back, _ = dialConnect(t, addr, mqtt.V5, connect("back", 1, 60))
	// away does not come back; ends has a session shorter than the delay.
	away, _ := dialConnect(t, addr, mqtt.V5, connect("away", 1, 60))
	ends, _ := dialConnect(t, addr, mqtt.V5, connect("ends", 600, 1))
	goOffline(t, b, away, "away")
	goOffline(t, b, ends, "ends")
	got := map[string]bool{}
	for range 2 {
		got[readPublish(t, watcher).Topic] = true
	}
	if !got["will/away"] || !got["will/ends"] {
		t.Fatalf("wills published: %v, want will/away and will/ends", got)
	}
	expectNothing(t, watcher, "the will of the client that came back")
	expectNothing(t, back, "the client that came back")
}

// TestDisconnectWill checks [MQTT-3.1.2-10] and [MQTT-3.14.4-3]: a normal
// DISCONNECT discards the will, v5 DISCONNECT 0x04 publishes it.
func TestDisconnectWill(t *testing.T) {
	bus := events.NewBus()
	_, addr := testutil.RunBroker(t, func(o *broker.Options) { o.Events = bus })
	log := newEventLog(t, bus)
	watcher := connectClean(t, addr, mqtt.V5, "watcher")
	mustSubscribe(t, watcher, "will/#", 0)
	tests := []struct {
		v    mqtt.Version
		code mqtt.ReasonCode
		want bool
	}{
		{mqtt.V311, 0, false},
		{mqtt.V5, mqtt.NormalDisconnection, false},
		{mqtt.V5, mqtt.DisconnectWithWill, true},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s", versionNames[tc.v], tc.code), func(t *testing.T) {
			id := fmt.Sprintf("dw%d", i)
			r, _ := dialConnect(t, addr, tc.v, &mqtt.Connect{ClientID: id, CleanStart: true,
				Will: &mqtt.Will{Topic: "will/" + id, Payload: []byte("w")}})
			r.Send(&mqtt.Disconnect{ReasonCode: tc.code})
			expectClosedWith(t, r, 0)
			// The session ends after the will went out (or not).
			log.waitKind(t, events.SessionTerminated, id)
			got := barrier(t, watcher)
			if tc.want && (len(got) != 1 || got[0].(*mqtt.Publish).Topic != "will/"+id) {
				t.Fatalf("want the will, got %s", describe(got))
			}
			if !tc.want && len(got) != 0 {
				t.Fatalf("want no will, got %s", describe(got))
			}
		})
	}
}

// TestConnackAfterCounted checks that a client holding its CONNACK is
// already in the stats: a dashboard or test that connects and then asks
// for connections.count must see itself, also when resuming a session.
func TestConnackAfterCounted(t *testing.T) {
	b, addr := testutil.RunBroker(t, nil)
	for i := range 100 {
		id := fmt.Sprintf("counted-%d", i%2)
		r := testutil.Dial(t, addr, mqtt.V311)
		a := r.Connect(&mqtt.Connect{ClientID: id, KeepAlive: 30})
		if a.ReasonCode != mqtt.V3Accepted {
			t.Fatalf("CONNACK %d", a.ReasonCode)
		}
		if n := b.Stats()["connections.count"]; n != 1 {
			t.Fatalf("connect %d: connections.count = %d right after CONNACK, want 1", i, n)
		}
		m := b.Metrics()
		if m["packets.connack.sent"] != uint64(i+1) || m["client.connected"] != uint64(i+1) {
			t.Fatalf("connect %d: connack.sent %d, client.connected %d", i, m["packets.connack.sent"], m["client.connected"])
		}
		if want := uint64(max(i-1, 0)); m["session.resumed"] != want {
			t.Fatalf("connect %d: session.resumed = %d, want %d", i, m["session.resumed"], want)
		}
		_ = r.Conn.Close()
		waitFor(t, "the connection to be closed", func() bool { return b.Stats()["connections.count"] == 0 })
	}
}
