package listener

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
)

// TLSFiles are the settings of a TLS listener, as in listener.ssl.<name>.*.
type TLSFiles struct {
	CertFile   string // PEM certificate chain of the server
	KeyFile    string // PEM private key of the server
	CACertFile string // PEM CA certificates that client certificates must chain to

	// VerifyPeer asks clients for a certificate and verifies it against
	// CACertFile (verify = verify_peer). FailIfNoPeerCert then refuses
	// clients that send none.
	VerifyPeer       bool
	FailIfNoPeerCert bool

	Versions []string // e.g. "tlsv1.3", "tlsv1.2"; empty = TLS 1.2 and 1.3
	Ciphers  []string // TLS 1.2 cipher suites, OpenSSL or IANA names; TLS 1.3 names are ignored; empty = Go's defaults
}

// ErrBadTLS is wrapped by the errors of LoadTLS and Certs.Reload.
var ErrBadTLS = errors.New("listener: bad tls settings")

// Certs is the live TLS configuration of a listener: its certificate, key
// and CA are read from disk by LoadTLS and again by Reload, which swaps
// them in for new handshakes only when the new files are valid.
type Certs struct {
	files TLSFiles
	cur   atomic.Pointer[tls.Config]
	// read is a digest of the files as the last Reload read them (whether
	// they were valid or not): Watch reloads only when it changes.
	read atomic.Pointer[[sha256.Size]byte]
}

// LoadTLS reads and checks the files of f. Its error names the file at
// fault.
func LoadTLS(f TLSFiles) (*Certs, error) {
	c := &Certs{files: f}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the files again. On error the configuration in use is kept.
func (c *Certs) Reload() error {
	sum := c.files.digest()
	c.read.Store(&sum)
	cfg, err := buildTLS(c.files)
	if err != nil {
		return err
	}
	c.cur.Store(cfg)
	return nil
}

// Config returns the tls.Config to serve with. Each handshake uses the
// configuration most recently loaded.
func (c *Certs) Config() *tls.Config {
	first := c.cur.Load()
	return &tls.Config{
		MinVersion: first.MinVersion,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return c.cur.Load(), nil
		},
	}
}

// digest is a SHA-256 of the names and contents of f's files (a file that
// cannot be read counts by its error).
func (f TLSFiles) digest() [sha256.Size]byte {
	h := sha256.New()
	for _, name := range []string{f.CertFile, f.KeyFile, f.CACertFile} {
		b, err := os.ReadFile(name)
		if err != nil {
			b = []byte(err.Error())
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(b))
		h.Write(b)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// buildTLS makes a tls.Config from the files and options of f.
func buildTLS(f TLSFiles) (*tls.Config, error) {
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, fmt.Errorf("%w: certfile and keyfile are required", ErrBadTLS)
	}
	certPEM, err := os.ReadFile(f.CertFile)
	if err != nil {
		return nil, fmt.Errorf("%w: certfile: %w", ErrBadTLS, err)
	}
	keyPEM, err := os.ReadFile(f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: keyfile: %w", ErrBadTLS, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: certfile %s and keyfile %s: %w", ErrBadTLS, f.CertFile, f.KeyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if len(f.Versions) > 0 {
		lo, hi, err := versionRange(f.Versions)
		if err != nil {
			return nil, err
		}
		cfg.MinVersion, cfg.MaxVersion = lo, hi
	}
	if len(f.Ciphers) > 0 {
		ids, err := cipherIDs(f.Ciphers)
		if err != nil {
			return nil, err
		}
		cfg.CipherSuites = ids
	}
	if f.VerifyPeer {
		if f.CACertFile == "" {
			return nil, fmt.Errorf("%w: verify_peer needs cacertfile", ErrBadTLS)
		}
		caPEM, err := os.ReadFile(f.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("%w: cacertfile: %w", ErrBadTLS, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("%w: cacertfile %s holds no PEM certificate", ErrBadTLS, f.CACertFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if f.FailIfNoPeerCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return cfg, nil
}

// versionRange maps EMQX version names (tlsv1.3, tlsv1.2, tlsv1.1, tlsv1)
// to the lowest and highest version allowed.
func versionRange(names []string) (lo, hi uint16, err error) {
	for _, n := range names {
		var v uint16
		switch strings.ToLower(strings.TrimSpace(n)) {
		case "tlsv1.3":
			v = tls.VersionTLS13
		case "tlsv1.2":
			v = tls.VersionTLS12
		case "tlsv1.1":
			v = tls.VersionTLS11
		case "tlsv1", "tlsv1.0":
			v = tls.VersionTLS10
		case "":
			continue
		default:
			return 0, 0, fmt.Errorf("%w: unknown tls version %q", ErrBadTLS, n)
		}
		if lo == 0 || v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	if lo == 0 {
		return 0, 0, fmt.Errorf("%w: no tls version", ErrBadTLS)
	}
	return lo, hi, nil
}
