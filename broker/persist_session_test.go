package broker_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	paho3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
	"github.com/mqgate/mqgate/store/wal"
)

// persistentV3 makes a paho.mqtt.golang client keep its session.
func persistentV3(o *paho3.ClientOptions) { o.SetCleanSession(false) }

// persistentV5 is a v5 CONNECT that keeps the session for an hour.
func persistentV5(id string, clean bool) *paho.Connect {
	return &paho.Connect{ClientID: id, CleanStart: clean, KeepAlive: 30,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: refOf[uint32](3600)}}
}

// TestPersistentSessionSurvivesRestart: a persistent subscriber (3.1.1 with
// paho.mqtt.golang, 5.0 with paho.golang and a subscription identifier,
// which must survive too) goes offline, a publisher sends
// QoS 1 or 2 messages, the broker shuts down and a new one starts on the
// same directory: the subscriber resumes its session (session present) and
// receives every message once, in order, before a marker published after
// the restart.
func TestPersistentSessionSurvivesRestart(t *testing.T) {
	const n = 25
	for _, v := range []string{"v3.1.1", "v5"} {
		for _, qos := range []byte{1, 2} {
			t.Run(fmt.Sprintf("%s/qos%d", v, qos), func(t *testing.T) {
				dir := t.TempDir()
				b, addr := restartable(t, dir, wal.SyncBatch)
				id := "psub-" + v
				if v == "v3.1.1" {
					sub := dialV3(t, addr, id, persistentV3)
					sub.subscribe(t, "fleet/+/data", qos)
					sub.Disconnect(250)
				} else {
					sub := dialV5(t, addr, persistentV5(id, true))
					sub.subscribe(t, 42, paho.SubscribeOptions{Topic: "fleet/+/data", QoS: qos, NoLocal: true, RetainAsPublished: true})
					sub.disconnect(t, nil)
				}
				awaitDetached(t, b, id)
				pub := dialV3(t, addr, "pub", nil)
				for i := range n {
					pub.publish(t, fmt.Sprintf("fleet/%d/data", i), qos, false, []byte(fmt.Sprint(i)))
				}
				stopBroker(t, b)

				b, addr = restartable(t, dir, wal.SyncBatch)
				if exists, _ := b.SessionState(id); !exists {
					t.Fatal("the persistent session is gone after the restart")
				}
				var got []string
				if v == "v3.1.1" {
					sub := dialV3(t, addr, id, persistentV3)
					if !sub.present {
						t.Error("CONNACK session present = 0 after the restart")
					}
					dialV3(t, addr, "marker", nil).publish(t, "fleet/end/data", qos, false, []byte("end"))
					for {
						m := sub.next(t)
						if string(m.Payload()) == "end" {
							break
						}
						if m.Qos() != qos {
							t.Errorf("message %q at QoS %d, want %d", m.Payload(), m.Qos(), qos)
						}
						got = append(got, string(m.Payload()))
					}
				} else {
					sub := dialV5(t, addr, persistentV5(id, false))
					if !sub.ack.SessionPresent {
						t.Error("CONNACK session present = 0 after the restart")
					}
					dialV3(t, addr, "marker", nil).publish(t, "fleet/end/data", qos, false, []byte("end"))
					for {
						m := sub.next(t)
						if string(m.Payload) == "end" {
							break
						}
						if m.QoS != qos {
							t.Errorf("message %q at QoS %d, want %d", m.Payload, m.QoS, qos)
						}
						if m.Properties == nil || m.Properties.SubscriptionIdentifier == nil || *m.Properties.SubscriptionIdentifier != 42 {
							t.Errorf("message %q lost the subscription identifier 42: %+v", m.Payload, m.Properties)
						}
						got = append(got, string(m.Payload))
					}
				}
				want := make([]string, n)
				for i := range want {
					want[i] = fmt.Sprint(i)
				}
				if strings.Join(got, ",") != strings.Join(want, ",") {
					t.Fatalf("after the restart the subscriber got %v, want %v", got, want)
				}
			})
		}
	}
}

// TestInflightRedeliveredAfterRestart: messages sent to a persistent
// subscriber but not acknowledged when the broker stops are sent again
// after the restart, with DUP and their packet ids, in order; a QoS 2
// message the subscriber had PUBREC'd gets its PUBREL again. Once all are
// acknowledged, a further restart resends nothing.
func TestInflightRedeliveredAfterRestart(t *testing.T) {
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		t.Run(versionNames[v], func(t *testing.T) {
			dir := t.TempDir()
			b, addr := restartable(t, dir, wal.SyncAlways)
			// A 3.1.1 session is persistent without clean session, a v5
			// one with an expiry.
			cp := &mqtt.Connect{ClientID: "slow", CleanStart: v == mqtt.V5}
			if v == mqtt.V5 {
				cp.Props.SessionExpiry = 3600
				cp.Props.Set(mqtt.PropSessionExpiry)
			}
			sub, _ := dialConnect(t, addr, v, cp)
			mustSubscribe(t, sub, "in/#", 2)
			pub := connectClean(t, addr, v, "pub")
			publishAcked(t, pub, 1, "in/a", 1, "one")
			publishAcked(t, pub, 2, "in/b", 2, "two")
			publishAcked(t, pub, 3, "in/c", 2, "three")
			p1, p2, p3 := readPublish(t, sub), readPublish(t, sub), readPublish(t, sub)
			if p1.Dup || p2.Dup || p3.Dup {
				t.Fatal("DUP set on a first delivery")
			}
			sub.Send(&mqtt.Ack{PacketType: mqtt.PUBREC, PacketID: p3.PacketID})
			expectAck(t, sub.Read(), mqtt.PUBREL, p3.PacketID)
			stopBroker(t, b)

			b, addr = restartable(t, dir, wal.SyncAlways)
			cp.CleanStart = false
			sub, ack := dialConnect(t, addr, v, cp)
			if !ack.SessionPresent {
				t.Fatal("CONNACK session present = 0 after the restart")
			}
			for _, want := range []*mqtt.Publish{p1, p2} {
				got := readPublish(t, sub)
				if !got.Dup || got.PacketID != want.PacketID || string(got.Payload) != string(want.Payload) || got.QoS != want.QoS {
					t.Fatalf("redelivered %+v, want %q with DUP and packet id %d", got, want.Payload, want.PacketID)
				}
			}
			expectAck(t, sub.Read(), mqtt.PUBREL, p3.PacketID)
			sub.Send(&mqtt.Ack{PacketType: mqtt.PUBACK, PacketID: p1.PacketID})
			sub.Send(&mqtt.Ack{PacketType: mqtt.PUBREC, PacketID: p2.PacketID})
			expectAck(t, sub.Read(), mqtt.PUBREL, p2.PacketID)
			sub.Send(&mqtt.Ack{PacketType: mqtt.PUBCOMP, PacketID: p2.PacketID})
			sub.Send(&mqtt.Ack{PacketType: mqtt.PUBCOMP, PacketID: p3.PacketID})
			expectNothing(t, sub, "after the acknowledgements")
			stopBroker(t, b)

			_, addr = restartable(t, dir, wal.SyncAlways)
			sub, ack = dialConnect(t, addr, v, cp)
			if !ack.SessionPresent {
				t.Fatal("CONNACK session present = 0 after the second restart")
			}
			expectNothing(t, sub, "after the second restart")
		})
	}
}

// TestInboundQoS2SurvivesRestart: a persistent publisher's QoS 2 message
// whose PUBREC came before the restart is not routed again when the
// client resends the PUBLISH (DUP) after it, and its PUBREL gets PUBCOMP
// [MQTT-4.3.3-9]; the persistent subscriber receives it exactly once.
func TestInboundQoS2SurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b, addr := restartable(t, dir, wal.SyncBatch)
	subCP := &mqtt.Connect{ClientID: "q2sub"}
	sub, _ := dialConnect(t, addr, mqtt.V311, subCP)
	mustSubscribe(t, sub, "q2/#", 2)
	_ = sub.Conn.Close()
	waitOffline(t, b, "q2sub")
	pubCP := &mqtt.Connect{ClientID: "q2pub"}
	pub, _ := dialConnect(t, addr, mqtt.V311, pubCP)
	msg := &mqtt.Publish{Topic: "q2/x", QoS: 2, PacketID: 7, Payload: []byte("once")}
	pub.Send(msg)
	expectAck(t, pub.Read(), mqtt.PUBREC, 7)
	stopBroker(t, b)

	b, addr = restartable(t, dir, wal.SyncBatch)
	pub, ack := dialConnect(t, addr, mqtt.V311, pubCP)
	if !ack.SessionPresent {
		t.Fatal("publisher: session present = 0 after the restart")
	}
	msg.Dup = true
	pub.Send(msg)
	expectAck(t, pub.Read(), mqtt.PUBREC, 7)
	pub.Send(&mqtt.Ack{PacketType: mqtt.PUBREL, PacketID: 7})
	expectAck(t, pub.Read(), mqtt.PUBCOMP, 7)

	sub, _ = dialConnect(t, addr, mqtt.V311, subCP)
	got := readPublish(t, sub)
	if string(got.Payload) != "once" {
		t.Fatalf("subscriber got %q", got.Payload)
	}
	sub.Send(&mqtt.Ack{PacketType: mqtt.PUBREC, PacketID: got.PacketID})
	expectAck(t, sub.Read(), mqtt.PUBREL, got.PacketID)
	sub.Send(&mqtt.Ack{PacketType: mqtt.PUBCOMP, PacketID: got.PacketID})
	expectNothing(t, sub, "a second copy")
	_ = b
}

// logKeys returns the keys live in the broker's log under dir (the broker
// must be stopped).
func logKeys(t *testing.T, dir string) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	l, err := wal.Open(filepath.Join(dir, "broker"), wal.Options{}, func(op wal.Op) error {
		if op.Delete {
			delete(keys, op.Key)
		} else {
			keys[op.Key] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestSessionExpiryAcrossRestart: a v5 session whose expiry passes while
// the broker is down is not restored and its records (header,
// subscription, queued message, and the message itself) are deleted from
// the log; a session with a longer expiry is restored with its
// subscription and queue.
func TestSessionExpiryAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	b, addr := restartable(t, dir, wal.SyncBatch)
	for _, c := range []struct {
		id     string
		expiry uint32
	}{{"short", 1}, {"mid", 3}, {"long", 3600}} {
		cp := &mqtt.Connect{ClientID: c.id, CleanStart: true}
		cp.Props.SessionExpiry = c.expiry
		cp.Props.Set(mqtt.PropSessionExpiry)
		r, _ := dialConnect(t, addr, mqtt.V5, cp)
		mustSubscribe(t, r, "exp/"+c.id, 1)
		r.Send(&mqtt.Disconnect{})
		waitOffline(t, b, c.id)
	}
	pub := connectClean(t, addr, mqtt.V5, "pub")
	publishAcked(t, pub, 1, "exp/short", 1, "lost with the session")
	publishAcked(t, pub, 2, "exp/long", 1, "kept")
	stopBroker(t, b)
	has := func(keys map[string]bool, id string) int {
		n := 0
		for k := range keys {
			if strings.Contains(k, id) || k[0] == 'm' {
				n++
			}
		}
		return n
	}
	if n := has(logKeys(t, dir), "short"); n < 3 {
		t.Fatalf("the log holds %d records of the short session before its expiry, want at least 3", n)
	}

	time.Sleep(1100 * time.Millisecond) // let "short" expire while the broker is down
	b, addr = restartable(t, dir, wal.SyncBatch)
	if exists, _ := b.SessionState("short"); exists {
		t.Fatal("the expired session was restored")
	}
	if exists, _ := b.SessionState("long"); !exists {
		t.Fatal("the session with an hour's expiry was not restored")
	}
	// "mid" is restored with what is left of its expiry, then expires.
	waitFor(t, "the restored session mid expires", func() bool {
		exists, _ := b.SessionState("mid")
		return !exists
	})
	cp := &mqtt.Connect{ClientID: "long"}
	cp.Props.SessionExpiry = 3600
	cp.Props.Set(mqtt.PropSessionExpiry)
	r, ack := dialConnect(t, addr, mqtt.V5, cp)
	if !ack.SessionPresent {
		t.Fatal("session present = 0")
	}
	if got := readPublish(t, r); string(got.Payload) != "kept" {
		t.Fatalf("got %q, want the queued message", got.Payload)
	}
	stopBroker(t, b)
	keys := logKeys(t, dir)
	for k := range keys {
		if strings.Contains(k, "short") || strings.Contains(k, "mid") {
			t.Errorf("the expired session's record %q is still in the log", k)
		}
	}
}

// TestCleanSessionNeverTouchesDisk: with a store, clean sessions at every
// QoS, and QoS 0 messages to a persistent session (online and offline),
// write nothing to the log.
func TestCleanSessionNeverTouchesDisk(t *testing.T) {
	b, addr := restartable(t, t.TempDir(), wal.SyncBatch)
	durable, _ := dialConnect(t, addr, mqtt.V311, &mqtt.Connect{ClientID: "durable"})
	mustSubscribe(t, durable, "zero/#", 0)
	before := b.StoreRecords()
	if before == 0 {
		t.Fatal("a persistent session's subscription wrote nothing to the log")
	}
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		sub := connectClean(t, addr, v, "clean-sub-"+versionNames[v])
		mustSubscribe(t, sub, "c/#", 2)
		pub := connectClean(t, addr, v, "clean-pub-"+versionNames[v])
		for qos := byte(0); qos <= 2; qos++ {
			publishAcked(t, pub, 1, "c/x", qos, "m")
			if got := readPublish(t, sub); got.QoS == 2 {
				sub.Send(&mqtt.Ack{PacketType: mqtt.PUBREC, PacketID: got.PacketID})
				expectAck(t, sub.Read(), mqtt.PUBREL, got.PacketID)
				sub.Send(&mqtt.Ack{PacketType: mqtt.PUBCOMP, PacketID: got.PacketID})
			} else if got.QoS == 1 {
				sub.Send(&mqtt.Ack{PacketType: mqtt.PUBACK, PacketID: got.PacketID})
			}
			publishAcked(t, pub, 2, "zero/x", qos, "to the persistent session at QoS 0")
			readPublish(t, durable)
		}
		expectNothing(t, sub, "after the acknowledgements")
		sub.Send(&mqtt.Disconnect{})
		waitOffline(t, b, "clean-sub-"+versionNames[v])
	}
	if after := b.StoreRecords(); after != before {
		t.Fatalf("clean sessions and QoS 0 wrote %d records to the log", after-before)
	}
	_ = durable.Conn.Close()
	waitOffline(t, b, "durable")
	before = b.StoreRecords() // the session header, written when it went offline
	pub := connectClean(t, addr, mqtt.V311, "pub0")
	for i := range 5 {
		publishAcked(t, pub, uint16(i+1), "zero/y", 1, "queued in memory only")
	}
	if after := b.StoreRecords(); after != before {
		t.Fatalf("QoS 0 messages queued for an offline session wrote %d records", after-before)
	}
}

// TestDurableAcksKeepOrder: a QoS 1 PUBLISH that must be durable before
// its PUBACK (a persistent subscriber is offline) is followed by ones that
// need no write: the PUBACKs still come in the order of the PUBLISHes
// [MQTT-4.6.0-2], for every sync mode.
func TestDurableAcksKeepOrder(t *testing.T) {
	for _, mode := range []wal.Sync{wal.SyncBatch, wal.SyncAlways} {
		t.Run(mode.String(), func(t *testing.T) {
			b, addr := restartable(t, t.TempDir(), mode)
			sub, _ := dialConnect(t, addr, mqtt.V311, &mqtt.Connect{ClientID: "away"})
			mustSubscribe(t, sub, "kept/#", 1)
			_ = sub.Conn.Close()
			waitOffline(t, b, "away")
			pub := connectClean(t, addr, mqtt.V5, "pub")
			const n = 200
			for i := 1; i <= n; i++ {
				topic := "nobody"
				if i%3 == 1 {
					topic = "kept/x"
				}
				pub.Send(&mqtt.Publish{Topic: topic, QoS: 1, PacketID: uint16(i), Payload: []byte("x")})
			}
			for i := 1; i <= n; i++ {
				expectAck(t, pub.Read(), mqtt.PUBACK, uint16(i))
			}
		})
	}
}

// TestDelayedWillSurvivesRestart: a persistent v5 client's will with a
// delay is pending when the broker stops; after the restart it is still
// published, once, when it falls due.
func TestDelayedWillSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b, addr := restartable(t, dir, wal.SyncBatch)
	cp := &mqtt.Connect{ClientID: "dying", CleanStart: true, Will: &mqtt.Will{Topic: "wills/dying", QoS: 1, Payload: []byte("gone")}}
	cp.Props.SessionExpiry = 3600
	cp.Props.Set(mqtt.PropSessionExpiry)
	cp.Will.Props.WillDelay = 1
	cp.Will.Props.Set(mqtt.PropWillDelay)
	r, _ := dialConnect(t, addr, mqtt.V5, cp)
	_ = r.Conn.Close() // a network failure: the will is due after its delay
	waitOffline(t, b, "dying")
	stopBroker(t, b)

	_, addr = restartable(t, dir, wal.SyncBatch)
	sub := connectClean(t, addr, mqtt.V5, "watcher")
	mustSubscribe(t, sub, "wills/#", 1)
	got := readPublish(t, sub)
	if got.Topic != "wills/dying" || string(got.Payload) != "gone" {
		t.Fatalf("got %q on %q, want the will", got.Payload, got.Topic)
	}
	sub.Send(&mqtt.Ack{PacketType: mqtt.PUBACK, PacketID: got.PacketID})
	expectNothing(t, sub, "a second will")
}

// TestCorruptTailAfterRestart: garbage appended to the log (a write torn
// by a crash) is skipped with a log line at the next start; the sessions
// and retained messages before it are intact.
func TestCorruptTailAfterRestart(t *testing.T) {
	dir := t.TempDir()
	b, addr := restartable(t, dir, wal.SyncBatch)
	sub, _ := dialConnect(t, addr, mqtt.V311, &mqtt.Connect{ClientID: "torn"})
	mustSubscribe(t, sub, "t/#", 1)
	_ = sub.Conn.Close()
	waitOffline(t, b, "torn")
	pub := connectClean(t, addr, mqtt.V311, "pub")
	publishAcked(t, pub, 1, "t/r", 1, "queued")
	stopBroker(t, b)
	segs, err := filepath.Glob(filepath.Join(dir, "broker", "*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segment files: %v", err)
	}
	f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{40, 0, 0, 0, 1, 2, 3, 4, 's', 'x'}); err != nil {
		t.Fatal(err)
	}
	f.Close()

	_, addr = restartable(t, dir, wal.SyncBatch)
	sub, ack := dialConnect(t, addr, mqtt.V311, &mqtt.Connect{ClientID: "torn"})
	if !ack.SessionPresent {
		t.Fatal("session present = 0 after the torn tail")
	}
	if got := readPublish(t, sub); string(got.Payload) != "queued" {
		t.Fatalf("got %q", got.Payload)
	}
}

// TestDiscardedSessionStaysDiscarded: a persistent session replaced by a
// clean session, then by a new persistent one with another subscription,
// comes back after a restart as the newest one only.
func TestDiscardedSessionStaysDiscarded(t *testing.T) {
	dir := t.TempDir()
	b, addr := restartable(t, dir, wal.SyncBatch)
	r, _ := dialConnect(t, addr, mqtt.V311, &mqtt.Connect{ClientID: "again"})
	mustSubscribe(t, r, "old/#", 1)
	goOffline(t, b, r, "again")
	r, ack := dialConnect(t, addr, mqtt.V311, &mqtt.Connect{ClientID: "again", CleanStart: true})
	if ack.SessionPresent {
		t.Fatal("clean session: session present = 1")
	}
	goOffline(t, b, r, "again")
	r, _ = dialConnect(t, addr, mqtt.V311, &mqtt.Connect{ClientID: "again"})
	mustSubscribe(t, r, "new/#", 1)
	goOffline(t, b, r, "again")
	stopBroker(t, b)

	_, addr = restartable(t, dir, wal.SyncBatch)
	r, ack = dialConnect(t, addr, mqtt.V311, &mqtt.Connect{ClientID: "again"})
	if !ack.SessionPresent {
		t.Fatal("session present = 0 after the restart")
	}
	pub := connectClean(t, addr, mqtt.V311, "pub")
	publishAcked(t, pub, 1, "old/x", 1, "to the discarded subscription")
	publishAcked(t, pub, 2, "new/x", 1, "to the new one")
	if got := readPublish(t, r); string(got.Payload) != "to the new one" {
		t.Fatalf("got %q on %q", got.Payload, got.Topic)
	}
}

// TestAcksWaitForTheLog holds the log's writer back (a batch interval of
// an hour, so nothing becomes durable during the test) and checks what
// goes out meanwhile: a QoS 1 message to an online persistent subscriber
// is delivered at once but its PUBACK waits; a QoS 2 message to it waits
// altogether (PUBLISH and PUBREC), so that it cannot be delivered twice
// after a crash; a QoS 1 message that only a clean session receives is
// delivered at once, but its PUBACK does not overtake the waiting ones
// [MQTT-4.6.0-2].
func TestAcksWaitForTheLog(t *testing.T) {
	_, addr := testutil.RunBroker(t, func(o *broker.Options) {
		o.StoreDir = t.TempDir()
		o.StoreSync = wal.SyncBatch
		o.StoreBatchInterval = time.Hour
	})
	durable, _ := dialConnect(t, addr, mqtt.V311, &mqtt.Connect{ClientID: "durable"})
	mustSubscribe(t, durable, "d/#", 2)
	clean := connectClean(t, addr, mqtt.V311, "clean")
	mustSubscribe(t, clean, "c/#", 1)
	pub := connectClean(t, addr, mqtt.V311, "pub")

	pub.Send(&mqtt.Publish{Topic: "c/x", QoS: 1, PacketID: 1, Payload: []byte("clean")})
	expectAck(t, pub.Read(), mqtt.PUBACK, 1)
	if got := readPublish(t, clean); string(got.Payload) != "clean" {
		t.Fatalf("clean subscriber got %q", got.Payload)
	}

	pub.Send(&mqtt.Publish{Topic: "d/x", QoS: 1, PacketID: 2, Payload: []byte("one")})
	pub.Send(&mqtt.Publish{Topic: "d/x", QoS: 2, PacketID: 3, Payload: []byte("two")})
	pub.Send(&mqtt.Publish{Topic: "c/x", QoS: 1, PacketID: 4, Payload: []byte("after")})
	expectNothing(t, pub, "acknowledgements before the log is durable")
	got := barrier(t, durable)
	if len(got) != 1 {
		t.Fatalf("persistent subscriber got %s before the log is durable, want the QoS 1 PUBLISH only", describe(got))
	}
	if p, ok := got[0].(*mqtt.Publish); !ok || p.QoS != 1 || string(p.Payload) != "one" {
		t.Fatalf("persistent subscriber got %s, want the QoS 1 PUBLISH", describe(got))
	}
	if p := readPublish(t, clean); string(p.Payload) != "after" {
		t.Fatalf("clean subscriber got %q", p.Payload)
	}
}

// TestAdminSubscriptionsSurviveRestart: subscriptions added and removed
// through the management calls (SubscribeFor, UnsubscribeFor) for a
// persistent session are saved like the client's own: after a restart the
// one added still routes to the session, the one removed does not. The
// restored session also keeps its last connection's details.
func TestAdminSubscriptionsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	b, addr := restartable(t, dir, wal.SyncAlways)
	cp := &mqtt.Connect{ClientID: "dev", CleanStart: false}
	sub, _ := dialConnect(t, addr, mqtt.V311, cp)
	if err := b.SubscribeFor("dev", "cmd/kept", 1); err != nil {
		t.Fatal(err)
	}
	if err := b.SubscribeFor("dev", "cmd/removed", 1); err != nil {
		t.Fatal(err)
	}
	if had, err := b.UnsubscribeFor("dev", "cmd/removed"); err != nil || !had {
		t.Fatalf("UnsubscribeFor: %v, %v", had, err)
	}
	sub.Send(&mqtt.Disconnect{})
	sub.ExpectClosed()
	stopBroker(t, b)

	b, addr = restartable(t, dir, wal.SyncAlways)
	// The restored offline session still shows its last connection.
	ci, ok := b.Client("dev")
	if !ok || ci.Connected || !ci.Peer.IsValid() || !ci.Peer.Addr().IsLoopback() || ci.Listener != "tcp:external" ||
		ci.CleanStart || ci.ConnectedAt.IsZero() || ci.DisconnectedAt.Before(ci.ConnectedAt) {
		t.Fatalf("restored client info %+v (found %v)", ci, ok)
	}
	sub, ack := dialConnect(t, addr, mqtt.V311, cp)
	if !ack.SessionPresent {
		t.Fatal("CONNACK session present = 0 after the restart")
	}
	pub := connectClean(t, addr, mqtt.V311, "pub")
	publishAcked(t, pub, 1, "cmd/removed", 1, "not for dev")
	publishAcked(t, pub, 2, "cmd/kept", 1, "for dev")
	if got := readPublish(t, sub); got.Topic != "cmd/kept" || string(got.Payload) != "for dev" {
		t.Fatalf("got %q on %q, want \"for dev\" on cmd/kept", got.Payload, got.Topic)
	}
	expectNothing(t, sub, "after the kept subscription's message")
}

// TestStartAgainAfterListenFailure: a Start that restored the log and
// then could not bind its listener leaves nothing behind, so a second
// Start restores the sessions once (one session, one subscription in the
// index): the persistent subscriber gets every message once, and after
// another restart nothing more.
func TestStartAgainAfterListenFailure(t *testing.T) {
	dir := t.TempDir()
	b, addr := restartable(t, dir, wal.SyncAlways)
	cp := &mqtt.Connect{ClientID: "dev", CleanStart: false}
	sub, _ := dialConnect(t, addr, mqtt.V311, cp)
	mustSubscribe(t, sub, "t/#", 1)
	sub.Send(&mqtt.Disconnect{})
	sub.ExpectClosed()
	pub := connectClean(t, addr, mqtt.V311, "pub")
	for i := range 3 {
		publishAcked(t, pub, uint16(i+1), "t/x", 1, fmt.Sprint(i))
	}
	stopBroker(t, b)

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := broker.DefaultOptions()
	o.Listeners = []broker.Listener{{Name: "external", Addr: busy.Addr().String()}}
	o.SysInterval = 0
	o.StoreDir, o.StoreSync = dir, wal.SyncAlways
	b2, err := broker.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.Start(); err == nil {
		t.Fatal("Start succeeded on a port in use")
	}
	busy.Close()
	if err := b2.Start(); err != nil {
		t.Fatalf("second Start: %v", err)
	}
	// One session with one subscription, not the first Start's copy too.
	if st := b2.Stats(); st["sessions.count"] != 1 || st["subscriptions.count"] != 1 {
		t.Fatalf("after the second Start: %d sessions, %d subscriptions; want 1 and 1", st["sessions.count"], st["subscriptions.count"])
	}
	addr = b2.Addr("external").String()
	pub = connectClean(t, addr, mqtt.V311, "pub")
	for i := 3; i < 5; i++ {
		publishAcked(t, pub, uint16(i+1), "t/x", 1, fmt.Sprint(i))
	}
	sub, ack := dialConnect(t, addr, mqtt.V311, cp)
	if !ack.SessionPresent {
		t.Fatal("session not present after the second Start")
	}
	for i := range 5 {
		p := readPublish(t, sub)
		if string(p.Payload) != fmt.Sprint(i) {
			t.Fatalf("message %d: %q", i, p.Payload)
		}
		sub.Send(&mqtt.Ack{PacketType: mqtt.PUBACK, PacketID: p.PacketID})
	}
	expectNothing(t, sub, "after the five messages")
	stopBroker(t, b2)

	_, addr = restartable(t, dir, wal.SyncAlways)
	sub, _ = dialConnect(t, addr, mqtt.V311, cp)
	expectNothing(t, sub, "after the next restart")
}
