package listener_test

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	"github.com/mqgate/mqgate/broker/listener"
)

// TestTLSCiphers configures a listener with OpenSSL cipher names, as EMQX 4
// users write them, plus a TLS 1.3 name that is accepted and ignored. A
// TLS 1.2 client limited to a listed suite gets it and an MQTT session; one
// limited to a suite that is not listed fails the handshake. IANA names
// select the same suites.
func TestTLSCiphers(t *testing.T) {
	p := newPKI(t, "test CA") // ECDSA server certificate
	lists := map[string][]string{
		"openssl": {"ECDHE-ECDSA-AES256-GCM-SHA384", "ecdhe-ecdsa-chacha20-poly1305", "TLS_AES_128_GCM_SHA256"},
		"iana":    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_CHACHA20_POLY1305_SHA256"},
	}
	for name, ciphers := range lists {
		t.Run(name, func(t *testing.T) {
			l := sslListener(t, p, func(f *listener.TLSFiles) { f.Ciphers = ciphers })
			_, addr := runBroker(t, l, nil)
			client := func(suite uint16) *tls.Config {
				cfg := p.clientTLS()
				cfg.MaxVersion = tls.VersionTLS12
				cfg.CipherSuites = []uint16{suite}
				return cfg
			}
			for _, suite := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256} {
				nc, err := dialTLS(t, addr, client(suite))
				if err != nil {
					t.Fatalf("%s: %v", tls.CipherSuiteName(suite), err)
				}
				if got := nc.(*tls.Conn).ConnectionState().CipherSuite; got != suite {
					t.Errorf("suite %s, want %s", tls.CipherSuiteName(got), tls.CipherSuiteName(suite))
				}
				if _, err := connect(t, nc, "c-"+name); err != nil {
					t.Fatalf("connect over %s: %v", tls.CipherSuiteName(suite), err)
				}
			}
			if nc, err := dialTLS(t, addr, client(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)); err == nil {
				t.Fatalf("handshake with an unlisted suite succeeded: %s", tls.CipherSuiteName(nc.(*tls.Conn).ConnectionState().CipherSuite))
			}
			// TLS 1.3 is not limited by the list.
			cfg := p.clientTLS()
			cfg.MinVersion = tls.VersionTLS13
			if _, err := dialTLS(t, addr, cfg); err != nil {
				t.Fatalf("TLS 1.3: %v", err)
			}
		})
	}
}

// TestTLSCipherErrors checks that unknown, unsupported and insecure suite
// names are refused with an error naming the key and the suite.
func TestTLSCipherErrors(t *testing.T) {
	p := newPKI(t, "test CA")
	for _, bad := range []string{"BOGUS-CIPHER", "DHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-DES-CBC3-SHA", "TLS_RSA_WITH_RC4_128_SHA"} {
		_, err := listener.LoadTLS(listener.TLSFiles{CertFile: p.CertFile, KeyFile: p.KeyFile,
			Ciphers: []string{"ECDHE-RSA-AES128-GCM-SHA256", bad}})
		if !errors.Is(err, listener.ErrBadTLS) || !strings.Contains(err.Error(), "ciphers") || !strings.Contains(err.Error(), bad) {
			t.Errorf("%s: LoadTLS: %v, want ErrBadTLS naming ciphers and %s", bad, err, bad)
		}
	}
}
