package listener_test

import (
	"net"
	"testing"

	"github.com/mqgate/mqgate/broker"
)

// TestMaxConnRate opens connections faster than max_conn_rate = 1 allows:
// the first is served, later ones within the same second are closed at
// once and counted.
func TestMaxConnRate(t *testing.T) {
	b, addr := runBroker(t, broker.Listener{Name: "external", MaxConnRate: 1}, nil)
	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if ack, err := connect(t, first, "first"); err != nil || ack.ReasonCode != 0 {
		t.Fatalf("first connection: %v %v", ack, err)
	}
	second, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if _, err := connect(t, second, "second"); err == nil {
		// The bucket refilled: the machine took over a second between
		// the two dials. Nothing to check then.
		t.Skip("over a second between two connections")
	}
	if got := b.Metrics()["connections.rate_limited"]; got < 1 {
		t.Errorf("connections.rate_limited = %d, want at least 1", got)
	}
}
