package authn

import (
	"strings"

	"github.com/mqgate/mqgate/access"
)

// Expand replaces the EMQX 4 placeholders of an authentication template
// with the client's values: %u username, %c client id, %a peer IP, %r
// protocol ("mqtt"), %P password (clear text), %p listener port, %C TLS
// certificate common name, %d TLS certificate subject. Other text,
// including unknown placeholders, is kept as written. port is the
// listener's port, or "" when unknown.
func Expand(tmpl string, id access.Identity, port string) string {
	if !strings.Contains(tmpl, "%") {
		return tmpl
	}
	var b strings.Builder
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '%' || i+1 == len(tmpl) {
			b.WriteByte(tmpl[i])
			continue
		}
		v, ok := placeholder(tmpl[i+1], id, port)
		if !ok {
			b.WriteByte(tmpl[i])
			continue
		}
		b.WriteString(v)
		i++
	}
	return b.String()
}

// placeholder returns the value of %c (for c one of the letters above).
func placeholder(c byte, id access.Identity, port string) (string, bool) {
	switch c {
	case 'u':
		return id.Username, true
	case 'c':
		return id.ClientID, true
	case 'a':
		if id.Peer.IsValid() {
			return id.Peer.Addr().Unmap().String(), true
		}
		return "", true
	case 'r':
		return "mqtt", true
	case 'P':
		return string(id.Password), true
	case 'p':
		return port, true
	case 'C':
		return id.CertCN, true
	case 'd':
		return id.CertDN, true
	}
	return "", false
}
