package listener_test

import (
	"crypto/tls"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/broker"
)

// proxyV2 builds a PROXY protocol v2 header: command cmd (0 LOCAL, 1
// PROXY) for a TCP connection from src.
func proxyV2(cmd byte, src netip.AddrPort) []byte {
	h := []byte("\r\n\r\n\x00\r\nQUIT\n")
	var body []byte
	fam := byte(0x11)
	if src.Addr().Is4() {
		a := src.Addr().As4()
		body = append(body, a[:]...)
		body = append(body, 10, 0, 0, 1)
	} else {
		fam = 0x21
		a := src.Addr().As16()
		body = append(body, a[:]...)
		body = append(body, make([]byte, 16)...)
	}
	body = binary.BigEndian.AppendUint16(body, src.Port())
	body = binary.BigEndian.AppendUint16(body, 1883)
	body = append(body, 0x04, 0, 1, 0) // a TLV, which must be skipped
	h = append(h, 0x20|cmd, fam)
	h = binary.BigEndian.AppendUint16(h, uint16(len(body)))
	return append(h, body...)
}

func TestProxyProtocol(t *testing.T) {
	tests := []struct {
		name     string
		header   []byte
		wantPeer string // "" = the proxy's own address
		wantFail bool
	}{
		{"v1 tcp4", []byte("PROXY TCP4 203.0.113.7 10.0.0.1 51234 1883\r\n"), "203.0.113.7:51234", false},
		{"v1 tcp6", []byte("PROXY TCP6 2001:db8::7 2001:db8::1 40000 1883\r\n"), "[2001:db8::7]:40000", false},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), "", false},
		{"v2 ipv4", proxyV2(1, netip.MustParseAddrPort("198.51.100.9:6000")), "198.51.100.9:6000", false},
		{"v2 ipv6", proxyV2(1, netip.MustParseAddrPort("[2001:db8::9]:6001")), "[2001:db8::9]:6001", false},
		{"v2 local", proxyV2(0, netip.MustParseAddrPort("198.51.100.9:6000")), "", false},
		{"no header", nil, "", true},
		{"v1 family mismatch", []byte("PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n"), "", true},
		{"v1 garbage", []byte("PROXY TCP4 nonsense\r\n"), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids := make(chan access.Identity, 1)
			b, addr := runBroker(t, broker.Listener{Name: "lb", ProxyProtocol: true, ProxyProtocolTimeout: time.Second}, ids)
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if tt.header != nil {
				if _, err := nc.Write(tt.header); err != nil {
					t.Fatal(err)
				}
			}
			ack, err := connect(t, nc, "behind-lb")
			if tt.wantFail {
				if err == nil {
					t.Fatalf("connected (CONNACK %v), want refused", ack.ReasonCode)
				}
				awaitMetric(t, b, "connections.handshake_failed", 1)
				return
			}
			if err != nil || ack.ReasonCode != 0 {
				t.Fatalf("connect: %v %v", ack, err)
			}
			want := tt.wantPeer
			if want == "" {
				want = nc.LocalAddr().String()
			}
			if got := nextIdentity(t, ids).Peer.String(); got != want {
				t.Errorf("Peer = %s, want %s", got, want)
			}
		})
	}
}

// TestProxyProtocolTLS checks a PROXY header in front of a TLS handshake.
func TestProxyProtocolTLS(t *testing.T) {
	p := newPKI(t, "test CA")
	l := sslListener(t, p, nil)
	l.ProxyProtocol = true
	ids := make(chan access.Identity, 1)
	_, addr := runBroker(t, l, ids)
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Write(proxyV2(1, netip.MustParseAddrPort("192.0.2.44:7000"))); err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(raw, p.clientTLS())
	if ack, err := connect(t, tc, "tls-behind-lb"); err != nil || ack.ReasonCode != 0 {
		t.Fatalf("connect: %v %v", ack, err)
	}
	id := nextIdentity(t, ids)
	if id.Peer.String() != "192.0.2.44:7000" || id.Listener != "ssl:external" {
		t.Errorf("identity %+v, want peer 192.0.2.44:7000", id)
	}
}
