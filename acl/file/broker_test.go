package file

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/acl"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// TestBrokerRetainedAndWill runs an acl.conf in a real broker: retained
// messages are replayed only for topics the subscriber may read, a will is
// authorized at connect (a denied one is discarded, the client accepted),
// and a 3.1.1
// subscription the rules refuse gets 0x80.
func TestBrokerRetainedAndWill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acl.conf")
	rules := `{deny, {user, "bob"}, subscribe, [{eq, "r/secret"}]}.
{deny, {user, "bob"}, subscribe, ["private/#"]}.
{deny, {user, "bob"}, publish, ["will/#"]}.
{allow, all}.
`
	if err := os.WriteFile(path, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	chain, err := acl.New(acl.Options{Links: []acl.Link{{Name: "file", Authorizer: b}}, Cache: true, CacheMaxSize: 32, CacheTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chain.Close)
	// asked records the questions the broker puts to the chain.
	var mu sync.Mutex
	var asked []string
	_, addr := testutil.RunBroker(t, func(o *broker.Options) {
		o.Authorizer = access.AuthorizerFunc(func(ctx context.Context, req access.Request) access.Decision {
			mu.Lock()
			asked = append(asked, req.Action.String()+" "+req.Topic)
			mu.Unlock()
			return chain.Authorize(ctx, req)
		})
	})

	pub := testutil.Dial(t, addr, mqtt.V311)
	if ack := pub.Connect(&mqtt.Connect{ClientID: "pub", CleanStart: true}); ack.ReasonCode != 0 {
		t.Fatalf("CONNACK %v", ack.ReasonCode)
	}
	for i, topic := range []string{"r/open", "r/secret"} {
		pub.Send(&mqtt.Publish{Topic: topic, QoS: 1, PacketID: uint16(i + 1), Retain: true, Payload: []byte(topic)})
		if a, ok := pub.Read().(*mqtt.Ack); !ok || a.PacketType != mqtt.PUBACK {
			t.Fatal("want PUBACK")
		}
	}

	bob := testutil.Dial(t, addr, mqtt.V311)
	if ack := bob.Connect(&mqtt.Connect{ClientID: "bob", CleanStart: true, Username: "bob", UsernameSet: true,
		Will: &mqtt.Will{Topic: "will/bob", Payload: []byte("gone")}}); ack.ReasonCode != 0 {
		t.Fatalf("bob CONNACK %v: a denied will is discarded, the client accepted", ack.ReasonCode)
	}
	mu.Lock()
	willAsked := slices.Contains(asked, "publish will/bob")
	mu.Unlock()
	if !willAsked {
		t.Fatalf("the will was not authorized at connect: asked %v", asked)
	}
	bob.Send(&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "r/#", QoS: 0}, {Filter: "private/x", QoS: 0}}})
	var got []string
	for len(got) < 2 {
		switch p := bob.Read().(type) {
		case *mqtt.Suback:
			// [MQTT-3.9.3-1] one return code per filter; 0x80 is failure in 3.1.1.
			if len(p.ReasonCodes) != 2 || p.ReasonCodes[0] != 0 || p.ReasonCodes[1] != 0x80 {
				t.Fatalf("SUBACK %v, want [0 0x80]", p.ReasonCodes)
			}
			got = append(got, "suback")
		case *mqtt.Publish:
			// [MQTT-3.3.1-8] retained messages arrive with RETAIN set.
			got = append(got, p.Topic)
		default:
			t.Fatalf("unexpected %T", p)
		}
	}
	if got[0] != "suback" || got[1] != "r/open" {
		t.Fatalf("got %v, want the SUBACK then r/open only", got)
	}
	// Nothing else: r/secret was not replayed. A PINGREQ round trip shows
	// that no PUBLISH was waiting before the PINGRESP.
	bob.Send(&mqtt.Pingreq{})
	if p, ok := bob.Read().(*mqtt.Pingresp); !ok {
		t.Fatalf("got %T, want PINGRESP", p)
	}

}
