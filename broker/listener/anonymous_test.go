package listener_test

import (
	"net"
	"testing"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/internal/testutil"
)

// TestListenerAllowAnonymous allows anonymous clients on an internal
// listener only: the listener's setting replaces the global one.
func TestListenerAllowAnonymous(t *testing.T) {
	yes := true
	b, _ := testutil.RunBroker(t, func(o *broker.Options) {
		o.AllowAnonymous = false
		o.Listeners = []broker.Listener{
			{Name: "internal", Addr: "127.0.0.1:0", AllowAnonymous: &yes},
			{Name: "external", Addr: "127.0.0.1:0"},
		}
	})
	tests := []struct {
		listener string
		wantCode byte // CONNACK return code [MQTT-3.2.2-3]
	}{
		{"tcp:internal", 0},
		{"tcp:external", 5}, // not authorized
	}
	for _, tt := range tests {
		t.Run(tt.listener, func(t *testing.T) {
			nc, err := net.Dial("tcp", b.Addr(tt.listener).String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			ack, err := connect(t, nc, "anon")
			if err != nil {
				t.Fatal(err)
			}
			if byte(ack.ReasonCode) != tt.wantCode {
				t.Errorf("CONNACK %#x, want %#x", byte(ack.ReasonCode), tt.wantCode)
			}
		})
	}
}
