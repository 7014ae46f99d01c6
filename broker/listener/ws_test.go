package listener_test

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/broker/listener"
	"github.com/mqgate/mqgate/mqtt"
)

// wsCase is one WebSocket transport under test: ws or wss.
type wsCase struct {
	name   string
	scheme string
	l      broker.Listener
	client *tls.Config
}

// wsCases returns a ws and a wss listener (with a client certificate
// required on wss) and the client configuration for each.
func wsCases(t *testing.T) []wsCase {
	p := newPKI(t, "test CA")
	device := p.client(t, pkix.Name{CommonName: "browser-1"})
	wss := sslListener(t, p, func(f *listener.TLSFiles) { f.VerifyPeer, f.FailIfNoPeerCert = true, true })
	wss.Kind = listener.WSS
	wss.PeerCertAsUsername = "cn"
	return []wsCase{
		{name: "ws", scheme: "ws", l: broker.Listener{Name: "external", Kind: listener.WS}},
		{name: "wss", scheme: "wss", l: wss, client: p.clientTLS(device)},
	}
}

// TestWSPahoV3 runs paho.mqtt.golang (MQTT 3.1.1) over ws:// and wss://.
func TestWSPahoV3(t *testing.T) {
	for _, tc := range wsCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			ids := make(chan access.Identity, 1)
			_, addr := runBroker(t, tc.l, ids)
			c := dialPahoV3(t, tc.scheme+"://"+addr+"/mqtt", tc.client, "paho3-"+tc.name)
			id := nextIdentity(t, ids)
			if want := tc.name + ":external"; id.Listener != want {
				t.Errorf("Listener = %q, want %q", id.Listener, want)
			}
			if tc.name == "wss" && id.Username != "browser-1" {
				t.Errorf("Username = %q, want the certificate's CN", id.Username)
			}
			c.roundTrip(t, "ws/v3/"+tc.name)
		})
	}
}

// TestWSPahoV5 runs paho.golang (MQTT 5.0) over ws:// and wss://.
func TestWSPahoV5(t *testing.T) {
	for _, tc := range wsCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := runBroker(t, tc.l, nil)
			wc, err := dialWS(t, tc.scheme+"://"+addr+"/mqtt", tc.client, "mqtt")
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			c := dialPahoV5(t, wc, "paho5-"+tc.name)
			c.roundTrip(t, "ws/v5/"+tc.name)
		})
	}
}

// TestWSFraming sends a CONNECT split across the frames of a fragmented
// message, with a ping between the fragments and an empty message after
// it, then two packets in one frame [MQTT-6.0.0-2].
func TestWSFraming(t *testing.T) {
	_, addr := runBroker(t, broker.Listener{Name: "external", Kind: listener.WS}, nil)
	c, err := dialWS(t, "ws://"+addr+"/mqtt", nil, "mqtt")
	if err != nil {
		t.Fatal(err)
	}
	conn := encode(t, &mqtt.Connect{ProtocolName: "MQTT", Version: mqtt.V311, CleanStart: true, KeepAlive: 30, ClientID: "frames"})
	c.frame(t, ws.OpBinary, false, conn[:1])
	c.frame(t, ws.OpPing, true, []byte("are you there"))
	c.frame(t, ws.OpContinuation, false, conn[1:5])
	c.frame(t, ws.OpContinuation, false, nil)
	c.frame(t, ws.OpContinuation, true, conn[5:])
	c.frame(t, ws.OpBinary, true, nil)
	p, err := read(c, mqtt.V311)
	if err != nil {
		t.Fatalf("read CONNACK: %v", err)
	}
	if ack, ok := p.(*mqtt.Connack); !ok || ack.ReasonCode != 0 {
		t.Fatalf("got %#v, want an accepting CONNACK", p)
	}

	// SUBSCRIBE and PUBLISH in one frame, the PUBLISH cut by the next.
	two := append(encode(t, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "f/#", QoS: 0}}}),
		encode(t, &mqtt.Publish{Topic: "f/x", Payload: []byte("framed")})...)
	cut := len(two) - 3
	c.frame(t, ws.OpBinary, true, two[:cut])
	c.frame(t, ws.OpBinary, true, two[cut:])
	if p, err := read(c, mqtt.V311); err != nil {
		t.Fatalf("read SUBACK: %v", err)
	} else if _, ok := p.(*mqtt.Suback); !ok {
		t.Fatalf("got %T, want SUBACK", p)
	}
	p, err = read(c, mqtt.V311)
	if err != nil {
		t.Fatalf("read PUBLISH: %v", err)
	}
	if pub, ok := p.(*mqtt.Publish); !ok || pub.Topic != "f/x" || string(pub.Payload) != "framed" {
		t.Fatalf("got %#v, want the PUBLISH back", p)
	}
}

// TestWSPing checks that a ping outside a message is answered with a pong
// carrying its payload.
func TestWSPing(t *testing.T) {
	_, addr := runBroker(t, broker.Listener{Name: "external", Kind: listener.WS}, nil)
	c, err := dialWS(t, "ws://"+addr+"/mqtt", nil, "mqtt")
	if err != nil {
		t.Fatal(err)
	}
	c.frame(t, ws.OpPing, true, []byte("p1"))
	_ = c.SetReadDeadline(time.Now().Add(wait))
	h, err := ws.ReadHeader(c.Conn.Conn) // the raw socket: the pong frame itself
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, h.Length)
	if _, err := io.ReadFull(c.Conn.Conn, body); err != nil {
		t.Fatal(err)
	}
	if h.OpCode != ws.OpPong || string(body) != "p1" {
		t.Fatalf("got %v %q, want pong p1", h.OpCode, body)
	}
}

// TestWSRejects checks the requests and frames the listener refuses.
func TestWSRejects(t *testing.T) {
	_, addr := runBroker(t, broker.Listener{Name: "external", Kind: listener.WS, WSPath: "/mqtt"}, nil)
	tests := []struct {
		name   string
		path   string
		protos []string
		status int
	}{
		{"other path", "/ws", []string{"mqtt"}, http.StatusNotFound},
		// [MQTT-6.0.0-3] the subprotocol must be mqtt.
		{"other subprotocol", "/mqtt", []string{"chat"}, http.StatusBadRequest},
		{"no subprotocol", "/mqtt", nil, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dialWS(t, "ws://"+addr+tt.path, nil, tt.protos...)
			var se ws.StatusError
			if !errors.As(err, &se) || int(se) != tt.status {
				t.Fatalf("dial: %v, want HTTP %d", err, tt.status)
			}
		})
	}
	t.Run("mqttv3.1 subprotocol accepted", func(t *testing.T) {
		c, err := dialWS(t, "ws://"+addr+"/mqtt?x=1", nil, "mqttv3.1")
		if err != nil {
			t.Fatal(err)
		}
		if ack, err := connect(t, c, "v31"); err != nil || ack.ReasonCode != 0 {
			t.Fatalf("connect: %v %v", ack, err)
		}
	})
	t.Run("text frame closes the connection", func(t *testing.T) {
		// [MQTT-6.0.0-1] MQTT control packets travel in binary frames.
		c, err := dialWS(t, "ws://"+addr+"/mqtt", nil, "mqtt")
		if err != nil {
			t.Fatal(err)
		}
		c.frame(t, ws.OpText, true, encode(t, &mqtt.Connect{ProtocolName: "MQTT", Version: mqtt.V311, CleanStart: true, ClientID: "text"}))
		_, err = read(c, mqtt.V311)
		var ce wsutil.ClosedError
		if !errors.As(err, &ce) || ce.Code != ws.StatusUnsupportedData {
			t.Fatalf("read: %v, want close 1003", err)
		}
	})
	t.Run("plain MQTT on a ws listener", func(t *testing.T) {
		// The upgrade never completes: the handshake timeout ends it.
		b, addr := runBroker(t, broker.Listener{Name: "external", Kind: listener.WS, HandshakeTimeout: 50 * time.Millisecond}, nil)
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if _, err := connect(t, nc, "raw"); err == nil {
			t.Fatal("a CONNECT without upgrade was answered")
		}
		awaitMetric(t, b, "connections.handshake_failed", 1)
	})
}

func encode(t *testing.T, p mqtt.Packet) []byte {
	t.Helper()
	b, err := p.Encode(nil, mqtt.V311)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
