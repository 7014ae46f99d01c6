package listener_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/broker/listener"
)

// TestShutdownDuringHandshake stops a broker while clients sit in the TLS
// handshake and the WebSocket upgrade: Shutdown cuts them instead of
// waiting for the handshake timeout, and no goroutine is left (TestMain
// checks).
func TestShutdownDuringHandshake(t *testing.T) {
	p := newPKI(t, "test CA")
	ssl := sslListener(t, p, nil)
	ssl.Name, ssl.Addr, ssl.HandshakeTimeout = "s", "127.0.0.1:0", time.Hour
	o := broker.DefaultOptions()
	o.SysInterval = 0
	o.ShutdownTimeout = time.Second
	o.Listeners = []broker.Listener{ssl, {Name: "w", Addr: "127.0.0.1:0", Kind: listener.WS, HandshakeTimeout: time.Hour}}
	b, err := broker.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"ssl:s", "ws:w"} {
		nc, err := net.Dial("tcp", b.Addr(id).String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		// Half a handshake: the server waits for the rest.
		if _, err := nc.Write([]byte{0x16, 0x03, 0x01}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Shutdown waited for the handshake timeout")
	}
}
