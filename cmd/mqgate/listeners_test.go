package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/broker/listener"
	"github.com/mqgate/mqgate/config"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

func TestListenerOptions(t *testing.T) {
	dir := t.TempDir()
	cert, key, _ := testutil.SelfSigned(t, dir)
	conf := strings.Join([]string{
		"listener.tcp.external = 127.0.0.1:0",
		"listener.ssl.devices = 127.0.0.1:0",
		"listener.ssl.devices.certfile = " + cert,
		"listener.ssl.devices.keyfile = " + key,
		"listener.ssl.devices.cacertfile = " + cert,
		"listener.ssl.devices.verify = verify_peer",
		"listener.ssl.devices.fail_if_no_peer_cert = true",
		"listener.ssl.devices.peer_cert_as_username = cn",
		"listener.ssl.devices.handshake_timeout = 3s",
		"listener.ssl.devices.max_connections = 10",
		"listener.ssl.devices.max_conn_rate = 50",
		"listener.ssl.devices.allow_anonymous = false",
		"listener.ws.browser = 127.0.0.1:0",
		"listener.ws.browser.mqtt_path = /ws",
		"listener.ws.browser.proxy_protocol = on",
		"listener.ws.browser.proxy_protocol_timeout = 1s",
		"listener.ws.browser.trusted_proxies = 10.0.0.0/8, 192.0.2.1",
		"listener.wss.browser = 127.0.0.1:0",
		"listener.wss.browser.certfile = " + cert,
		"listener.wss.browser.keyfile = " + key,
		"listener.wss.browser.peer_cert_as_clientid = dn",
	}, "\n")
	cfg, err := config.Parse("mqgate.conf", []byte(conf), nil)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := listenerOptions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		kind         listener.Kind
		name, path   string
		tls          bool
		max          int
		timeout      time.Duration
		asUser, asID string
		proxy        bool
		proxyTimeout time.Duration
		rate         int
	}
	wants := []want{
		{kind: "", name: "external", max: 1024000, proxyTimeout: 3 * time.Second},
		{kind: listener.SSL, name: "devices", tls: true, max: 10, timeout: 3 * time.Second, asUser: "cn", proxyTimeout: 3 * time.Second, rate: 50},
		{kind: listener.WS, name: "browser", path: "/ws", max: 102400, proxy: true, proxyTimeout: time.Second},
		{kind: listener.WSS, name: "browser", path: "/mqtt", tls: true, max: 102400, timeout: 15 * time.Second, asID: "dn", proxyTimeout: 3 * time.Second},
	}
	if len(ls) != len(wants) {
		t.Fatalf("got %d listeners, want %d: %+v", len(ls), len(wants), ls)
	}
	if got := fmt.Sprintln(ls[2].TrustedProxies, ls[2].ProxyAddressHeader, ls[2].ProxyPortHeader); got != "[10.0.0.0/8 192.0.2.1/32] X-Forwarded-For X-Forwarded-Port\n" {
		t.Errorf("ws trusted proxies and headers: %s", got)
	}
	if a := ls[1].AllowAnonymous; a == nil || *a {
		t.Errorf("ssl.devices allow_anonymous = %v, want false", a)
	}
	if a := ls[0].AllowAnonymous; a != nil {
		t.Errorf("tcp.external allow_anonymous = %v, want inherit (nil)", *a)
	}
	for i, w := range wants {
		l := ls[i]
		got := want{l.Kind, l.Name, l.WSPath, l.TLS != nil, l.MaxConnections, l.HandshakeTimeout, l.PeerCertAsUsername, l.PeerCertAsClientID,
			l.ProxyProtocol, l.ProxyProtocolTimeout, l.MaxConnRate}
		if got != w {
			t.Errorf("listener %d = %+v, want %+v", i, got, w)
		}
	}
}

func TestListenerOptionsErrors(t *testing.T) {
	dir := t.TempDir()
	cert, key, _ := testutil.SelfSigned(t, dir)
	tests := []struct {
		name string
		conf []string
		want []string
	}{
		{"missing keyfile", []string{"listener.ssl.a = 8883", "listener.ssl.a.certfile = " + cert},
			[]string{"listener.ssl.a:", "certfile and keyfile are required"}},
		{"unreadable certificate", []string{"listener.wss.b = 8884", "listener.wss.b.certfile = " + filepath.Join(dir, "none.pem"), "listener.wss.b.keyfile = " + key},
			[]string{"listener.wss.b:", "certfile", "none.pem"}},
		{"key for certificate", []string{"listener.ssl.c = 8883", "listener.ssl.c.certfile = " + key, "listener.ssl.c.keyfile = " + key},
			[]string{"listener.ssl.c:"}},
		{"verify_peer without CA", []string{"listener.ssl.d = 8883", "listener.ssl.d.certfile = " + cert, "listener.ssl.d.keyfile = " + key, "listener.ssl.d.verify = verify_peer"},
			[]string{"listener.ssl.d:", "cacertfile"}},
		{"relative mqtt_path", []string{"listener.ws.e = 8083", "listener.ws.e.mqtt_path = mqtt"},
			[]string{"listener.ws.e.mqtt_path"}},
		{"bad trusted proxy", []string{"listener.wss.f = 8084", "listener.wss.f.certfile = " + cert, "listener.wss.f.keyfile = " + key, "listener.wss.f.trusted_proxies = 10.0.0.0/33"},
			[]string{"listener.wss.f.trusted_proxies"}},
		{"unknown cipher", []string{"listener.ssl.g = 8883", "listener.ssl.g.certfile = " + cert, "listener.ssl.g.keyfile = " + key, "listener.ssl.g.ciphers = ECDHE-RSA-AES128-GCM-SHA256,TLS_AES_128_GCM_SHA256,BOGUS-CIPHER"},
			[]string{"listener.ssl.g:", "ciphers", "BOGUS-CIPHER"}},
		{"no listener", []string{"listener.tcp.external = off"}, []string{"no listener configured"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("mqgate.conf", []byte(strings.Join(tt.conf, "\n")), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = listenerOptions(cfg)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestListenersServe builds a TLS listener from the configuration, starts a
// broker on it, connects, and checks that a failed reload keeps it serving.
func TestListenersServe(t *testing.T) {
	dir := t.TempDir()
	cert, key, pool := testutil.SelfSigned(t, dir)
	cfg, err := config.Parse("mqgate.conf", []byte(strings.Join([]string{
		"listener.tcp.external = off",
		"listener.ssl.external = 127.0.0.1:0",
		"listener.ssl.external.certfile = " + cert,
		"listener.ssl.external.keyfile = " + key,
	}, "\n")), nil)
	if err != nil {
		t.Fatal(err)
	}
	ls, lc, err := listenersWithCerts(cfg)
	if err != nil {
		t.Fatal(err)
	}
	o := broker.DefaultOptions()
	o.Listeners, o.SysInterval = ls, 0
	b, err := broker.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Shutdown(ctx)
	})
	dial := func() {
		t.Helper()
		nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", b.Addr("ssl:external").String(),
			&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		raw, _ := (&mqtt.Connect{ProtocolName: "MQTT", Version: mqtt.V311, CleanStart: true, ClientID: "cfg"}).Encode(nil, mqtt.V311)
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := nc.Write(raw); err != nil {
			t.Fatal(err)
		}
		p, err := mqtt.ReadPacket(nc, mqtt.V311, 0)
		if ack, ok := p.(*mqtt.Connack); err != nil || !ok || ack.ReasonCode != 0 {
			t.Fatalf("CONNACK: %v %v", p, err)
		}
	}
	dial()
	// A broken key on disk: reload reports it and the listener keeps
	// serving the certificate it has.
	if err := os.WriteFile(key, []byte("broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := lc.Reload(); err == nil || !strings.Contains(err.Error(), "listener.ssl.external") {
		t.Fatalf("reload: %v, want an error naming the listener", err)
	}
	dial()
}
