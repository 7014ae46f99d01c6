package listener_test

import (
	"context"
	"crypto/x509/pkix"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/broker/listener"
)

// TestMosquittoTLS publishes with mosquitto_pub --cafile/--cert/--key to
// mosquitto_sub, both over TLS with a client certificate that becomes the
// username. It skips when the Debian mosquitto-clients are missing, and
// fails instead when MQGATE_REQUIRE_MOSQUITTO is set (make test installs
// them and sets it).
func TestMosquittoTLS(t *testing.T) {
	subPath, errSub := exec.LookPath("mosquitto_sub")
	pubPath, errPub := exec.LookPath("mosquitto_pub")
	if err := errors.Join(errSub, errPub); err != nil {
		if os.Getenv("MQGATE_REQUIRE_MOSQUITTO") != "" {
			t.Fatalf("mosquitto clients missing, and MQGATE_REQUIRE_MOSQUITTO is set (make test installs them): %v", err)
		}
		t.Skipf("mosquitto clients not installed: %v", err)
	}
	p := newPKI(t, "test CA")
	cert, key := p.issueFiles(t, "sensor", pkix.Name{CommonName: "sensor-42"}, false)
	l := sslListener(t, p, func(f *listener.TLSFiles) { f.VerifyPeer, f.FailIfNoPeerCert = true, true })
	l.PeerCertAsUsername = "cn"
	ids := make(chan access.Identity, 4)
	_, addr := runBroker(t, l, ids)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	tlsArgs := []string{"-h", host, "-p", port, "--cafile", p.CAFile, "--cert", cert, "--key", key}
	sub := exec.CommandContext(ctx, subPath, append(tlsArgs, "-t", "m/#", "-v", "-C", "1", "-q", "1")...)
	var out, stderr strings.Builder
	sub.Stdout, sub.Stderr = &out, &stderr
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	// The subscriber has connected once the broker has authenticated it;
	// it subscribes right after, so publish until it prints the message.
	if id := nextIdentity(t, ids); id.Username != "sensor-42" || id.CertCN != "sensor-42" {
		t.Errorf("subscriber identity %+v, want username and CN sensor-42", id)
	}
	done := make(chan error, 1)
	go func() { done <- sub.Wait() }()
	for {
		pub := exec.CommandContext(ctx, pubPath, append(tlsArgs, "-t", "m/1", "-m", "over tls", "-q", "1")...)
		if b, err := pub.CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub: %v: %s", err, b)
		}
		<-ids
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("mosquitto_sub: %v: %s", err, stderr.String())
			}
			if got := strings.TrimSpace(out.String()); got != "m/1 over tls" {
				t.Fatalf("mosquitto_sub printed %q", got)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}
