package listener_test

import (
	"context"
	"net/http"
	"net/netip"
	"testing"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/broker/listener"
	"github.com/mqgate/mqgate/internal/wsclient"
)

// TestWSForwardedFor checks that X-Forwarded-For and X-Forwarded-Port set
// the client's address only when the connection comes from a trusted
// proxy.
func TestWSForwardedFor(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		header  http.Header
		want    string // "" = the socket's address
	}{
		{"trusted proxy", loopback, http.Header{"X-Forwarded-For": {"203.0.113.5"}, "X-Forwarded-Port": {"4000"}}, "203.0.113.5:4000"},
		{"chain of proxies", loopback, http.Header{"X-Forwarded-For": {"198.51.100.1, 127.0.0.9"}}, "198.51.100.1:0"},
		{"client-supplied entry left of the real one", loopback, http.Header{"X-Forwarded-For": {"10.9.9.9, 198.51.100.2"}}, "198.51.100.2:0"},
		{"untrusted sender", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, http.Header{"X-Forwarded-For": {"203.0.113.5"}}, ""},
		{"no trusted proxies", nil, http.Header{"X-Forwarded-For": {"203.0.113.5"}}, ""},
		{"malformed header", loopback, http.Header{"X-Forwarded-For": {"not an address"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids := make(chan access.Identity, 1)
			_, addr := runBroker(t, broker.Listener{Name: "external", Kind: listener.WS, TrustedProxies: tt.trusted,
				ProxyAddressHeader: "X-Forwarded-For", ProxyPortHeader: "X-Forwarded-Port"}, ids)
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			c, err := wsclient.Dial(ctx, "ws://"+addr+"/mqtt", wsclient.Options{Protocols: []string{"mqtt"}, Header: tt.header})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			nc := c.Conn
			if ack, err := connect(t, c, "fwd"); err != nil || ack.ReasonCode != 0 {
				t.Fatalf("connect: %v %v", ack, err)
			}
			want := tt.want
			if want == "" {
				want = nc.LocalAddr().String()
			}
			if got := nextIdentity(t, ids).Peer.String(); got != want {
				t.Errorf("Peer = %s, want %s", got, want)
			}
		})
	}
}
