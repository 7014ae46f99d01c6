package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/broker/listener"
	"github.com/mqgate/mqgate/internal/testutil"
)

// TestTransports runs the fanin and conns scenarios, briefly, over each
// transport of a real broker: TCP, TLS (trusting the CA file), WebSocket
// and secure WebSocket (without verification); a TLS client that does not
// trust the broker's certificate fails.
func TestTransports(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker")
	}
	dir := t.TempDir()
	certFile, keyFile, _ := testutil.SelfSigned(t, dir)
	certs, err := listener.LoadTLS(listener.TLSFiles{CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := testutil.RunBroker(t, func(o *broker.Options) {
		o.Listeners = []broker.Listener{
			{Name: "tcp", Addr: "127.0.0.1:0"},
			{Name: "ssl", Addr: "127.0.0.1:0", Kind: listener.SSL, TLS: certs.Config()},
			{Name: "ws", Addr: "127.0.0.1:0", Kind: listener.WS},
			{Name: "wss", Addr: "127.0.0.1:0", Kind: listener.WSS, TLS: certs.Config()},
		}
	})
	pid := os.Getpid()
	runs := []struct {
		name string
		args []string
	}{
		{"tcp", []string{"-addr", b.Addr("tcp").String()}},
		{"tls", []string{"-addr", b.Addr("ssl").String(), "-tls", "-cafile", certFile}},
		{"ws", []string{"-addr", "ws://" + b.Addr("ws").String() + "/mqtt"}},
		{"wss", []string{"-addr", "wss://" + b.Addr("wss").String() + "/mqtt", "-insecure"}},
	}
	for _, r := range runs {
		for _, sc := range [][]string{{"-scenario", "fanin"}, {"-scenario", "conns", "-conns", "50", "-settle", "0s"}} {
			t.Run(r.name+"/"+sc[1], func(t *testing.T) {
				args := append([]string{"-pid", strconv.Itoa(pid), "-duration", "200ms", "-warmup", "50ms", "-json"}, r.args...)
				args = append(args, sc...)
				var stdout, stderr bytes.Buffer
				if rc := realMain(args, &stdout, &stderr); rc != 0 {
					t.Fatalf("exit status %d: %s %s", rc, stdout.String(), stderr.String())
				}
				var res result
				if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
					t.Fatalf("%v: %s", err, stdout.String())
				}
				ok := res.Msgs > 0 && res.Lost == 0 && res.Received == res.Sent
				if sc[1] == "conns" {
					ok = res.Alive == 50
				}
				if res.Error != "" || !ok {
					t.Fatalf("unexpected result %s", stdout.String())
				}
			})
		}
	}
	t.Run("untrusted certificate", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		args := []string{"-addr", b.Addr("ssl").String(), "-tls", "-scenario", "fanin", "-duration", "100ms", "-warmup", "0s"}
		if rc := realMain(args, &stdout, &stderr); rc == 0 || !strings.Contains(stdout.String()+stderr.String(), "certificate") {
			t.Fatalf("exit status %d: %s %s; want a certificate error", rc, stdout.String(), stderr.String())
		}
	})
}
