package casbin

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/acl"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/internal/testutil"
)

const wait = 5 * time.Second

// lockedConn is a net.Conn that paho.golang locks around each packet it
// writes, so that its pinger never splits a packet.
type lockedConn struct {
	net.Conn
	sync.Mutex
}

// dial connects an MQTT 5 paho.golang client; received messages go to msgs.
func dial(t *testing.T, addr, clientID, user string, msgs chan *paho.Publish) *paho.Client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{
		Conn: &lockedConn{Conn: nc},
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			if msgs != nil {
				msgs <- pr.Packet
			}
			return true, nil
		}},
		PacketTimeout: wait,
	})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ack, err := c.Connect(ctx, &paho.Connect{ClientID: clientID, Username: user, UsernameFlag: true, CleanStart: true, KeepAlive: 30})
	if err != nil || ack.ReasonCode != 0 {
		t.Fatalf("connect %s: %v %+v", clientID, err, ack)
	}
	t.Cleanup(func() {
		select {
		case <-c.Done():
		default:
			_ = c.Disconnect(&paho.Disconnect{})
		}
	})
	return c
}

// publish publishes at QoS 1 and returns the PUBACK reason code.
func publish(t *testing.T, c *paho.Client, topic string) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	r, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte("x")})
	if r != nil {
		return r.ReasonCode
	}
	t.Fatalf("publish %s: %v", topic, err)
	return 0
}

// mvPolicy writes data to a temporary file and moves it over the policy
// file with mv, as an operator or a deployment tool does.
func mvPolicy(t *testing.T, dir, data string) {
	t.Helper()
	tmp := filepath.Join(dir, "policy.csv.new")
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mv", tmp, filepath.Join(dir, "policy.csv")).CombinedOutput(); err != nil {
		t.Fatalf("mv: %v: %s", err, out)
	}
}

// TestBrokerHotReload runs the chain with the Casbin backend in a real
// broker: a client keeps publishing while the policy file is replaced with
// mv, and sees the new verdicts without reconnecting; a broken file leaves
// the old policy in force.
func TestBrokerHotReload(t *testing.T) {
	dir := t.TempDir()
	model, err := os.ReadFile("../../policies/model.conf")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.conf"), model, 0o600); err != nil {
		t.Fatal(err)
	}
	allow := "p, writer, t/#, publish, allow\np, reader, t/#, subscribe, allow\ng, alice, writer\ng, bob, reader\n"
	mvPolicy(t, dir, allow)
	gen := new(acl.Generation)
	cb, err := New(Options{
		ModelPath: filepath.Join(dir, "model.conf"), PolicyPath: filepath.Join(dir, "policy.csv"),
		Watch: true, Debounce: 20 * time.Millisecond, OnReload: gen.Bump,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cb.Close() })
	chain, err := acl.New(acl.Options{
		Links: []acl.Link{{Name: "casbin", Authorizer: cb}}, NoMatch: access.Deny,
		Cache: true, CacheMaxSize: 32, CacheTTL: time.Hour, Generation: gen,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chain.Close)
	_, addr := testutil.RunBroker(t, func(o *broker.Options) {
		o.Authorizer = chain
		o.ACLNoMatch = access.Deny
	})

	msgs := make(chan *paho.Publish, 64)
	bob := dial(t, addr, "bob-1", "bob", msgs)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	sa, err := bob.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "t/#", QoS: 1}, {Topic: "#", QoS: 1}}})
	if sa == nil {
		t.Fatal(err) // paho also reports a refused filter as an error
	}
	// [MQTT-3.9.3-1] one reason code per filter; "#" is not covered by t/#.
	if sa.Reasons[0] != 1 || sa.Reasons[1] != 0x87 {
		t.Fatalf("SUBACK reasons %#x, want [0x01 0x87]", sa.Reasons)
	}

	alice := dial(t, addr, "alice-1", "alice", nil)
	if rc := publish(t, alice, "t/1"); rc != 0 {
		t.Fatalf("publish before reload: reason %#x", rc)
	}
	if m := <-msgs; m.Topic != "t/1" {
		t.Fatalf("got %q", m.Topic)
	}
	// A cached allow is reused until the policy changes.
	if rc := publish(t, alice, "t/1"); rc != 0 {
		t.Fatalf("second publish: reason %#x", rc)
	}
	<-msgs

	// Deny t/1: alice, still connected, must get 0x87 (Not
	// authorized) on the cached topic once the reload is in.
	mvPolicy(t, dir, allow+"p, writer, t/1, publish, deny\n")
	waitDenied := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			rc := publish(t, alice, "t/1")
			if rc == 0x87 {
				return
			}
			<-msgs
			if time.Now().After(deadline) {
				t.Fatalf("%s: the new policy never took effect", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitDenied("deny")
	if rc := publish(t, alice, "t/2"); rc != 0 {
		t.Fatalf("t/2 after reload: %#x", rc)
	}
	if m := <-msgs; m.Topic != "t/2" {
		t.Fatalf("got %q", m.Topic)
	}

	// A broken file keeps the old policy (t/1 still denied, t/2 allowed).
	mvPolicy(t, dir, "p, writer, t/#, publish\n")
	deadline := time.Now().Add(10 * time.Second)
	for cb.Health() == nil {
		if time.Now().After(deadline) {
			t.Fatal("broken file not reported")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if rc := publish(t, alice, "t/1"); rc != 0x87 {
		t.Fatalf("t/1 with a broken file: %#x, want 0x87", rc)
	}
	if err := chain.Health(); err == nil || !strings.Contains(err.Error(), "acl casbin") {
		t.Errorf("chain Health = %v", err)
	}
	if m := chain.Metrics(); m["acl.casbin.policy_ok"] != 0 || m["acl.casbin.reloads"] != 1 || m["acl.cache.hits"] == 0 || m["acl.generation"] != 1 {
		t.Errorf("chain Metrics = %v", m)
	}
	if rc := publish(t, alice, "t/2"); rc != 0 {
		t.Fatalf("t/2 with a broken file: %#x", rc)
	}
	<-msgs
	select {
	case <-bob.Done():
		t.Fatal("subscriber was disconnected")
	case <-alice.Done():
		t.Fatal("publisher was disconnected")
	default:
	}
}
