package listener_test

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	paho3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/broker/listener"
	"github.com/mqgate/mqgate/mqtt"
)

// sslListener is an ssl listener serving the files of p with the given
// settings.
func sslListener(t testing.TB, p *pki, edit func(*listener.TLSFiles)) broker.Listener {
	t.Helper()
	f := listener.TLSFiles{CertFile: p.CertFile, KeyFile: p.KeyFile, CACertFile: p.CAFile}
	if edit != nil {
		edit(&f)
	}
	certs, err := listener.LoadTLS(f)
	if err != nil {
		t.Fatalf("LoadTLS: %v", err)
	}
	return broker.Listener{Name: "external", Kind: listener.SSL, TLS: certs.Config()}
}

func TestTLSClientCertificates(t *testing.T) {
	p := newPKI(t, "test CA")
	other := newPKI(t, "other CA")
	device := p.client(t, pkix.Name{CommonName: "device-1", Organization: []string{"acme"}})
	stranger := other.client(t, pkix.Name{CommonName: "device-1"})

	der := device.Certificate[0]
	derMD5 := md5.Sum(der)
	verifyPeer := func(f *listener.TLSFiles) { f.VerifyPeer = true }
	requireCert := func(f *listener.TLSFiles) { f.VerifyPeer, f.FailIfNoPeerCert = true, true }
	tests := []struct {
		name       string
		files      func(*listener.TLSFiles)
		asUsername string
		asClientID string
		cert       []tls.Certificate
		wantFail   bool
		wantCN     string
		wantDN     string
		wantUser   string
		wantID     string
	}{
		{name: "verify_none, no certificate", wantID: "c1"},
		{name: "verify_none ignores a certificate", cert: []tls.Certificate{device}, asUsername: "cn", wantID: "c1"},
		{name: "verify_peer, certificate", files: verifyPeer, cert: []tls.Certificate{device},
			wantCN: "device-1", wantDN: "CN=device-1,O=acme", wantID: "c1"},
		{name: "verify_peer, no certificate allowed", files: verifyPeer, wantID: "c1"},
		{name: "fail_if_no_peer_cert refuses a client without certificate", files: requireCert, wantFail: true},
		{name: "certificate of another CA refused", files: verifyPeer, cert: []tls.Certificate{stranger}, wantFail: true},
		{name: "peer_cert_as_username = cn", files: requireCert, cert: []tls.Certificate{device}, asUsername: "cn",
			wantCN: "device-1", wantDN: "CN=device-1,O=acme", wantUser: "device-1", wantID: "c1"},
		{name: "peer_cert_as_username = dn", files: requireCert, cert: []tls.Certificate{device}, asUsername: "dn",
			wantCN: "device-1", wantDN: "CN=device-1,O=acme", wantUser: "CN=device-1,O=acme", wantID: "c1"},
		{name: "peer_cert_as_clientid = cn", files: requireCert, cert: []tls.Certificate{device}, asClientID: "cn",
			wantCN: "device-1", wantDN: "CN=device-1,O=acme", wantID: "device-1"},
		{name: "peer_cert_as_username = crt", files: requireCert, cert: []tls.Certificate{device}, asUsername: "crt",
			wantCN: "device-1", wantDN: "CN=device-1,O=acme", wantUser: string(der), wantID: "c1"},
		{name: "peer_cert_as_username = pem", files: requireCert, cert: []tls.Certificate{device}, asUsername: "pem",
			wantCN: "device-1", wantDN: "CN=device-1,O=acme", wantUser: base64.StdEncoding.EncodeToString(der), wantID: "c1"},
		{name: "peer_cert_as_clientid = md5", files: requireCert, cert: []tls.Certificate{device}, asClientID: "md5",
			wantCN: "device-1", wantDN: "CN=device-1,O=acme", wantID: hex.EncodeToString(derMD5[:])},
		{name: "peer_cert_as_clientid = pem", files: requireCert, cert: []tls.Certificate{device}, asClientID: "pem",
			wantCN: "device-1", wantDN: "CN=device-1,O=acme", wantID: base64.StdEncoding.EncodeToString(der)},
		{name: "peer_cert_as_username = md5 without a certificate", files: verifyPeer, asUsername: "md5", wantID: "c1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids := make(chan access.Identity, 1)
			l := sslListener(t, p, tt.files)
			l.PeerCertAsUsername, l.PeerCertAsClientID = tt.asUsername, tt.asClientID
			b, addr := runBroker(t, l, ids)
			c, err := dialTLS(t, addr, p.clientTLS(tt.cert...))
			var ack *mqtt.Connack
			if err == nil {
				// With TLS 1.3 a refused client certificate shows on the
				// first read, not in the client's handshake.
				ack, err = connect(t, c, "c1")
			}
			if tt.wantFail {
				if err == nil {
					t.Fatalf("connected (CONNACK %v), want the handshake refused", ack.ReasonCode)
				}
				// The server counts the failure after it sent the alert.
				awaitMetric(t, b, "connections.handshake_failed", 1)
				return
			}
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			if ack.ReasonCode != 0 {
				t.Fatalf("CONNACK %v, want accepted", ack.ReasonCode)
			}
			id := nextIdentity(t, ids)
			if id.Listener != "ssl:external" {
				t.Errorf("Listener = %q, want ssl:external", id.Listener)
			}
			if id.CertCN != tt.wantCN || id.CertDN != tt.wantDN {
				t.Errorf("CertCN, CertDN = %q, %q; want %q, %q", id.CertCN, id.CertDN, tt.wantCN, tt.wantDN)
			}
			if id.Username != tt.wantUser || id.UsernameSet != (tt.wantUser != "") {
				t.Errorf("Username = %q (set %v), want %q", id.Username, id.UsernameSet, tt.wantUser)
			}
			if id.ClientID != tt.wantID {
				t.Errorf("ClientID = %q, want %q", id.ClientID, tt.wantID)
			}
		})
	}
}

// TestTLSPahoV3 runs paho.mqtt.golang (MQTT 3.1.1) over TLS, with and
// without a client certificate, through subscribe, publish and receive.
func TestTLSPahoV3(t *testing.T) {
	p := newPKI(t, "test CA")
	device := p.client(t, pkix.Name{CommonName: "device-7"})
	for _, withCert := range []bool{false, true} {
		t.Run(map[bool]string{false: "no client certificate", true: "client certificate"}[withCert], func(t *testing.T) {
			var certs []tls.Certificate
			l := sslListener(t, p, nil)
			if withCert {
				certs = []tls.Certificate{device}
				l = sslListener(t, p, func(f *listener.TLSFiles) { f.VerifyPeer, f.FailIfNoPeerCert = true, true })
				l.PeerCertAsUsername = "cn"
			}
			ids := make(chan access.Identity, 2)
			_, addr := runBroker(t, l, ids)
			c := dialPahoV3(t, "ssl://"+addr, p.clientTLS(certs...), "paho3-tls")
			id := nextIdentity(t, ids)
			if withCert && id.Username != "device-7" {
				t.Errorf("username = %q, want the certificate's CN device-7", id.Username)
			}
			c.roundTrip(t, "tls/v3")
		})
	}
}

// TestTLSPahoV5 runs paho.golang (MQTT 5.0) over TLS with a client
// certificate.
func TestTLSPahoV5(t *testing.T) {
	p := newPKI(t, "test CA")
	device := p.client(t, pkix.Name{CommonName: "device-5"})
	l := sslListener(t, p, func(f *listener.TLSFiles) { f.VerifyPeer, f.FailIfNoPeerCert = true, true })
	l.PeerCertAsClientID = "cn"
	_, addr := runBroker(t, l, nil)
	nc, err := dialTLS(t, addr, p.clientTLS(device))
	if err != nil {
		t.Fatal(err)
	}
	c := dialPahoV5(t, nc, "ignored")
	if got := c.ack.Properties.AssignedClientID; got != "" {
		t.Errorf("assigned client id %q, want none", got)
	}
	c.roundTrip(t, "tls/v5")
}

// TestTLSStartErrors checks that a listener that cannot serve stops the
// broker from starting, with an error that names the problem, and that no
// listener is left open.
func TestTLSStartErrors(t *testing.T) {
	p := newPKI(t, "test CA")
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a pem file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	otherCert := newPKI(t, "other").CertFile
	tests := []struct {
		name  string
		files listener.TLSFiles
		want  string
	}{
		{"missing certfile", listener.TLSFiles{CertFile: filepath.Join(dir, "none.pem"), KeyFile: p.KeyFile}, "certfile"},
		{"unreadable keyfile", listener.TLSFiles{CertFile: p.CertFile, KeyFile: filepath.Join(dir, "none.pem")}, "keyfile"},
		{"keyfile not a key", listener.TLSFiles{CertFile: p.CertFile, KeyFile: garbage}, "garbage.pem"},
		{"key of another certificate", listener.TLSFiles{CertFile: otherCert, KeyFile: p.KeyFile}, "private key does not match"},
		{"verify_peer without cacertfile", listener.TLSFiles{CertFile: p.CertFile, KeyFile: p.KeyFile, VerifyPeer: true}, "cacertfile"},
		{"cacertfile without certificate", listener.TLSFiles{CertFile: p.CertFile, KeyFile: p.KeyFile, VerifyPeer: true, CACertFile: garbage}, "no PEM certificate"},
		{"unknown tls version", listener.TLSFiles{CertFile: p.CertFile, KeyFile: p.KeyFile, Versions: []string{"sslv3"}}, "sslv3"},
		{"unknown cipher", listener.TLSFiles{CertFile: p.CertFile, KeyFile: p.KeyFile, Ciphers: []string{"RC4-MD5"}}, "RC4-MD5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := listener.LoadTLS(tt.files)
			if !errors.Is(err, listener.ErrBadTLS) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadTLS: %v, want ErrBadTLS mentioning %q", err, tt.want)
			}
		})
	}

	t.Run("ssl listener without tls configuration", func(t *testing.T) {
		err := startErr(t, broker.Listener{Name: "a", Addr: "127.0.0.1:0", Kind: listener.WSS})
		if !errors.Is(err, listener.ErrNoTLS) || !strings.Contains(err.Error(), "wss.a") {
			t.Fatalf("Start: %v, want ErrNoTLS naming wss.a", err)
		}
	})
	t.Run("port in use", func(t *testing.T) {
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		free := freeAddr(t)
		ssl := sslListener(t, p, nil)
		ssl.Name, ssl.Addr = "busy", busy.Addr().String()
		err = startErr(t, broker.Listener{Name: "first", Addr: free}, ssl)
		if err == nil || !strings.Contains(err.Error(), "ssl.busy") || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("Start: %v, want address in use naming ssl.busy", err)
		}
		// The broker did not start half-configured: the first listener
		// was closed again.
		ln, err := net.Listen("tcp", free)
		if err != nil {
			t.Fatalf("first listener still bound: %v", err)
		}
		_ = ln.Close()
	})
}

// startErr starts a broker with the listeners ls and returns Start's error.
func startErr(t *testing.T, ls ...broker.Listener) error {
	t.Helper()
	o := broker.DefaultOptions()
	o.Listeners = ls
	o.SysInterval = 0
	b, err := broker.New(o)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Start()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_ = b.Shutdown(ctx)
	return err
}

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// TestTLSReload checks that a reload serves the new certificate to new
// connections and that a bad new certificate keeps the old one.
func TestTLSReload(t *testing.T) {
	p := newPKI(t, "test CA")
	certs, err := listener.LoadTLS(listener.TLSFiles{CertFile: p.CertFile, KeyFile: p.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	_, addr := runBroker(t, broker.Listener{Name: "external", Kind: listener.SSL, TLS: certs.Config()}, nil)
	serverSerial := func() string {
		t.Helper()
		c, err := dialTLS(t, addr, p.clientTLS())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return tlsPeerSerial(c)
	}
	first := serverSerial()

	// A new certificate and key replace the files.
	cert, key := p.issueFiles(t, "server2", pkix.Name{CommonName: "127.0.0.1"}, true)
	mustRename(t, cert, p.CertFile)
	mustRename(t, key, p.KeyFile)
	if err := certs.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	second := serverSerial()
	if second == first {
		t.Fatalf("serial %s after reload, want the new certificate's", second)
	}

	// A broken key file is refused; the certificate in use stays.
	if err := os.WriteFile(p.KeyFile, []byte("broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := certs.Reload(); !errors.Is(err, listener.ErrBadTLS) {
		t.Fatalf("Reload of a broken key: %v, want ErrBadTLS", err)
	}
	if got := serverSerial(); got != second {
		t.Fatalf("serial %s after a failed reload, want %s", got, second)
	}
}

// awaitMetric waits until the broker's metric name reaches want.
func awaitMetric(t *testing.T, b *broker.Broker, name string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for b.Metrics()[name] != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %d, want %d", name, b.Metrics()[name], want)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// pahoV3 is a paho.mqtt.golang client whose messages go to msgs.
type pahoV3 struct {
	paho3.Client
	msgs chan paho3.Message
}

// dialPahoV3 connects paho.mqtt.golang (MQTT 3.1.1) to the broker URL u.
func dialPahoV3(t *testing.T, u string, cfg *tls.Config, id string) *pahoV3 {
	t.Helper()
	c := &pahoV3{msgs: make(chan paho3.Message, 16)}
	o := paho3.NewClientOptions().AddBroker(u).SetClientID(id).SetProtocolVersion(4).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(wait).SetTLSConfig(cfg).
		SetDefaultPublishHandler(func(_ paho3.Client, m paho3.Message) { c.msgs <- m })
	c.Client = paho3.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("paho v3 connect %s: %v", u, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// roundTrip subscribes to topic, publishes to it at QoS 1 and receives the
// message.
func (c *pahoV3) roundTrip(t *testing.T, topic string) {
	t.Helper()
	for _, tok := range []paho3.Token{c.Subscribe(topic, 1, nil), c.Publish(topic, 1, false, "hello "+topic)} {
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("paho v3: %v", tok.Error())
		}
	}
	select {
	case m := <-c.msgs:
		if m.Topic() != topic || string(m.Payload()) != "hello "+topic {
			t.Fatalf("received %q %q", m.Topic(), m.Payload())
		}
	case <-time.After(wait):
		t.Fatal("paho v3: no message")
	}
}

// pahoV5 is a paho.golang client whose messages go to msgs.
type pahoV5 struct {
	*paho.Client
	ack  *paho.Connack
	msgs chan *paho.Publish
}

// dialPahoV5 runs paho.golang (MQTT 5.0) over nc. Keep alive is off:
// paho writes a packet in several Write calls, and its pinger writes from
// another goroutine, so on a stream that frames each Write (as the test's
// WebSocket client does) a PINGREQ could land inside another packet.
func dialPahoV5(t *testing.T, nc net.Conn, id string) *pahoV5 {
	t.Helper()
	c := &pahoV5{msgs: make(chan *paho.Publish, 16)}
	c.Client = paho.NewClient(paho.ClientConfig{
		Conn: nc,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) { c.msgs <- pr.Packet; return true, nil },
		},
		PacketTimeout: wait,
	})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var err error
	c.ack, err = c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true})
	if err != nil {
		t.Fatalf("paho v5 connect: %v", err)
	}
	t.Cleanup(func() {
		select {
		case <-c.Done():
		default:
			_ = c.Disconnect(&paho.Disconnect{})
		}
		<-c.Done()
	})
	return c
}

func (c *pahoV5) roundTrip(t *testing.T, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic, QoS: 1}}}); err != nil {
		t.Fatalf("paho v5 subscribe: %v", err)
	}
	if _, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte("hello " + topic)}); err != nil {
		t.Fatalf("paho v5 publish: %v", err)
	}
	select {
	case m := <-c.msgs:
		if m.Topic != topic || string(m.Payload) != "hello "+topic {
			t.Fatalf("received %q %q", m.Topic, m.Payload)
		}
	case <-time.After(wait):
		t.Fatal("paho v5: no message")
	}
}

// tlsPeerSerial returns the serial number of the server's certificate.
func tlsPeerSerial(c net.Conn) string {
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.String()
}
