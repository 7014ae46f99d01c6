package listener_test

import (
	"context"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/broker/listener"
)

// TestTLSWatch replaces the certificate files on disk: the listener serves
// the new certificate without a restart, and a broken key that follows is
// reported while the new certificate stays in use.
func TestTLSWatch(t *testing.T) {
	p := newPKI(t, "test CA")
	certs, err := listener.LoadTLS(listener.TLSFiles{CertFile: p.CertFile, KeyFile: p.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	_, addr := runBroker(t, broker.Listener{Name: "external", Kind: listener.SSL, TLS: certs.Config()}, nil)
	serial := func() string {
		t.Helper()
		c, err := dialTLS(t, addr, p.clientTLS())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return tlsPeerSerial(c)
	}
	first := serial()

	reports := watch(t, certs)
	nextReport := func() error {
		t.Helper()
		select {
		case err := <-reports:
			return err
		case <-time.After(wait):
			t.Fatal("no reload reported")
			return nil
		}
	}

	cert, key := p.issueFiles(t, "server2", pkix.Name{CommonName: "127.0.0.1"}, true)
	// Both files are replaced before Watch may have started: write them
	// again until a reload reports success with the new certificate.
	deadline := time.Now().Add(wait)
	for {
		mustCopy(t, cert, p.CertFile)
		mustCopy(t, key, p.KeyFile)
		var err error
		select {
		case err = <-reports:
		case <-time.After(time.Second): // Watch was not watching yet: again
			err = errNoReport
		}
		if err == nil && serial() != first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the new certificate was never served")
		}
	}
	second := serial()

	if err := os.WriteFile(p.KeyFile, []byte("broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	for {
		if err := nextReport(); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the broken key was never reported")
		}
	}
	if got := serial(); got != second {
		t.Fatalf("serial %s after a broken key, want %s still", got, second)
	}
}

var errNoReport = errors.New("no report yet")

// watch runs certs.Watch until the test ends and returns the channel of
// its reload reports.
func watch(t *testing.T, certs *listener.Certs) <-chan error {
	ctx, cancel := context.WithCancel(context.Background())
	reports := make(chan error, 64)
	done := make(chan error, 1)
	go func() { done <- certs.Watch(ctx, func(err error) { reports <- err }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	return reports
}

func mustCopy(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	mustRename(t, to+".tmp", to)
}

// TestTLSWatchIgnoresOtherFiles: a file written again and again in the
// directory of the certificate (a log, say) and the certificate written
// back unchanged cause no reload; a real change still does.
func TestTLSWatchIgnoresOtherFiles(t *testing.T) {
	p := newPKI(t, "test CA")
	certs, err := listener.LoadTLS(listener.TLSFiles{CertFile: p.CertFile, KeyFile: p.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	reports := watch(t, certs)
	logFile := filepath.Join(filepath.Dir(p.CertFile), "mqgate.log")
	for i := range 20 {
		if err := os.WriteFile(logFile, []byte(fmt.Sprintf("line %d\n", i)), 0o600); err != nil {
			t.Fatal(err)
		}
		mustCopy(t, p.CertFile, p.CertFile) // same bytes, renamed over itself
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case err := <-reports:
		t.Fatalf("reload reported (%v) though the files did not change", err)
	case <-time.After(4 * 250 * time.Millisecond): // four settle periods
	}
	// A real change is still picked up (written until Watch sees it).
	cert, key := p.issueFiles(t, "server2", pkix.Name{CommonName: "127.0.0.1"}, true)
	mustCopy(t, cert, p.CertFile)
	mustCopy(t, key, p.KeyFile)
	select {
	case err := <-reports:
		if err != nil {
			t.Fatalf("reload of a valid new certificate: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("the new certificate was never reloaded")
	}
}
