package http

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/mqgate/mqgate/access"
)

// TestTLS checks https URLs: the service's certificate is verified against
// ssl.cacertfile, refused without it (an outage, not a deny), and accepted
// unverified only when verify is off.
func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name            string
		ca              string
		verify          bool
		wantUnavailable bool
	}{
		{"verified with the CA", ca, true, false},
		{"unknown CA", "", true, true},
		{"verify off", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, err := TLSConfig(tt.ca, "", "", tt.verify, "")
			if err != nil {
				t.Fatal(err)
			}
			b := mustNew(t, Options{Auth: Request{URL: srv.URL, Params: defaultParams(t)}, TLS: tc})
			d := b.Authenticate(context.Background(), ident("u"))
			if d.Unavailable != tt.wantUnavailable || (!tt.wantUnavailable && d.Verdict != access.Allow) {
				t.Fatalf("got %+v", d)
			}
		})
	}
	if _, err := TLSConfig(filepath.Join(t.TempDir(), "missing.pem"), "", "", true, ""); err == nil {
		t.Error("TLSConfig accepted a missing CA file")
	}
}
