package broker_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// TestShutdown checks a graceful shutdown: a v5 client gets DISCONNECT
// 0x8B (server shutting down) [MQTT-4.13.2-1], a 3.1.1 client sees the
// socket close, every QoS 0 message routed before Shutdown reaches the
// subscribers first (the queued output is flushed), and the listener no
// longer accepts.
func TestShutdown(t *testing.T) {
	b, addr := testutil.RunBroker(t, func(o *broker.Options) { o.MaxQueuedBytes = 64 << 20 })
	subs := map[mqtt.Version]*testutil.Raw{}
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		subs[v] = connectClean(t, addr, v, "sub-"+versionNames[v])
		mustSubscribe(t, subs[v], "s", 0)
	}
	pub := connectClean(t, addr, mqtt.V5, "pub")
	// More than the kernel buffers of a loopback connection hold, so that
	// part of it is still queued in the broker when Shutdown starts.
	const n = 3000
	pad := bytes.Repeat([]byte("p"), 2<<10)
	for i := range n {
		pub.Send(&mqtt.Publish{Topic: "s", Payload: append([]byte(fmt.Sprintf("%05d", i)), pad...)})
	}
	barrier(t, pub) // every message is routed

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- b.Shutdown(ctx)
	}()
	for v, r := range subs {
		got := r.ExpectClosed()
		var count int
		for _, p := range got {
			if p, ok := p.(*mqtt.Publish); ok {
				if want := fmt.Sprintf("%05d", count); string(p.Payload[:5]) != want {
					t.Fatalf("%s: message %q out of order, want %s", versionNames[v], p.Payload[:5], want)
				}
				count++
			}
		}
		if count != n {
			t.Fatalf("%s: %d of %d messages arrived before the close", versionNames[v], count, n)
		}
		rest := got[n:]
		if v == mqtt.V5 {
			if len(rest) != 1 || rest[0].(*mqtt.Disconnect).ReasonCode != mqtt.ServerShuttingDown {
				t.Fatalf("v5: after the messages got %s, want DISCONNECT %s", describe(rest), mqtt.ServerShuttingDown)
			}
		} else if len(rest) != 0 {
			t.Fatalf("v3.1.1: after the messages got %s", describe(rest))
		}
	}
	expectClosedWith(t, pub, mqtt.ServerShuttingDown)
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		_ = c.Close()
		t.Fatal("the listener still accepts after Shutdown")
	}
	if err := b.Start(); err == nil {
		t.Fatal("Start after Shutdown succeeded")
	}
}
