package listener

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// opensslCiphers maps the OpenSSL names of the TLS 1.2 cipher suites Go
// serves (as pasted from an EMQX 4 listener.ssl.<name>.ciphers) to their
// ids. Suites Go does not implement (DHE, ECDH, CCM, ARIA, ...) and the
// ones it considers insecure are left out, so naming them is an error.
var opensslCiphers = map[string]uint16{
	"ECDHE-ECDSA-AES128-GCM-SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-ECDSA-AES256-GCM-SHA384": tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-RSA-AES128-GCM-SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-RSA-AES256-GCM-SHA384":   tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-ECDSA-CHACHA20-POLY1305": tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-RSA-CHACHA20-POLY1305":   tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-ECDSA-AES128-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	"ECDHE-ECDSA-AES256-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	"ECDHE-RSA-AES128-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	"ECDHE-RSA-AES256-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	"AES128-GCM-SHA256":             tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	"AES256-GCM-SHA384":             tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
	"AES128-SHA":                    tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	"AES256-SHA":                    tls.TLS_RSA_WITH_AES_256_CBC_SHA,
}

// tls13Ciphers are the TLS 1.3 suites. Go picks among them itself, so
// they are accepted in a cipher list and have no effect.
var tls13Ciphers = map[string]bool{
	"TLS_AES_128_GCM_SHA256":       true,
	"TLS_AES_256_GCM_SHA384":       true,
	"TLS_CHACHA20_POLY1305_SHA256": true,
	"TLS_AES_128_CCM_SHA256":       true,
	"TLS_AES_128_CCM_8_SHA256":     true,
}

// cipherIDs maps cipher suite names, OpenSSL (ECDHE-RSA-AES128-GCM-SHA256)
// or IANA (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256), to the ids of the TLS
// 1.2 suites. TLS 1.3 names are skipped. An unknown, unsupported or
// insecure name is an error that names it.
func cipherIDs(names []string) ([]uint16, error) {
	iana := map[string]uint16{}
	for _, s := range tls.CipherSuites() {
		if !s.Insecure && !onlyTLS13(s) {
			iana[s.Name] = s.ID
		}
	}
	var ids []uint16
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" || tls13Ciphers[strings.ToUpper(n)] {
			continue
		}
		id, ok := opensslCiphers[strings.ToUpper(n)]
		if !ok {
			id, ok = iana[strings.ToUpper(n)]
		}
		if !ok {
			return nil, fmt.Errorf("%w: ciphers: unknown, unsupported or insecure cipher suite %q", ErrBadTLS, n)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// onlyTLS13 reports whether s is a TLS 1.3 suite.
func onlyTLS13(s *tls.CipherSuite) bool {
	for _, v := range s.SupportedVersions {
		if v != tls.VersionTLS13 {
			return false
		}
	}
	return true
}
