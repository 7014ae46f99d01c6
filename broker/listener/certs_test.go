package listener_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// pki is a CA with a server certificate for 127.0.0.1, written as PEM files
// in a temporary directory.
type pki struct {
	dir                       string
	caCert                    *x509.Certificate
	caKey                     *ecdsa.PrivateKey
	CAFile, CertFile, KeyFile string
	pool                      *x509.CertPool // holds the CA, for clients
}

var serial atomic.Int64

// newPKI makes a CA named name and a server certificate signed by it.
func newPKI(t testing.TB, name string) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"mqgate tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p.caCert, _ = x509.ParseCertificate(der)
	p.caKey = key
	p.CAFile = p.write(t, "ca.pem", "CERTIFICATE", der)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.caCert)
	p.CertFile, p.KeyFile = p.issueFiles(t, "server", pkix.Name{CommonName: "127.0.0.1"}, true)
	return p
}

func nextSerial() *big.Int {
	return big.NewInt(serial.Add(1))
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (p *pki) write(t testing.TB, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue signs a certificate for subject: a server certificate for
// 127.0.0.1 when server is set, a client certificate otherwise.
func (p *pki) issue(t testing.TB, subject pkix.Name, server bool) (certDER []byte, key *ecdsa.PrivateKey) {
	t.Helper()
	key = newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(),
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

// issueFiles signs a certificate and writes it and its key as
// <base>.pem and <base>-key.pem.
func (p *pki) issueFiles(t testing.TB, base string, subject pkix.Name, server bool) (certFile, keyFile string) {
	t.Helper()
	der, key := p.issue(t, subject, server)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, base+".pem", "CERTIFICATE", der), p.write(t, base+"-key.pem", "PRIVATE KEY", kder)
}

// client returns a client certificate for subject.
func (p *pki) client(t testing.TB, subject pkix.Name) tls.Certificate {
	t.Helper()
	der, key := p.issue(t, subject, false)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// clientTLS is a client configuration that trusts the CA and presents the
// given certificates.
// The first certificate is sent whatever CAs the server names, so that a
// certificate of another CA reaches the server's verification.
func (p *pki) clientTLS(certs ...tls.Certificate) *tls.Config {
	cfg := &tls.Config{RootCAs: p.pool, ServerName: "127.0.0.1"}
	if len(certs) > 0 {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &certs[0], nil }
	}
	return cfg
}
