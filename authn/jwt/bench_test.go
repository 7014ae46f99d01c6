package jwt

import (
	"crypto"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	gjwt "github.com/golang-jwt/jwt/v5"

	"github.com/mqgate/mqgate/authn"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// BenchmarkConnectStormRS256 connects real MQTT clients, in parallel,
// with RS256 tokens through a broker and the chain. "distinct" verifies a
// new token per connect; "repeat" reconnects 100 clients, where the cache
// answers. Tokens are signed before the timer starts.
func BenchmarkConnectStormRS256(b *testing.B) {
	for _, mode := range []string{"distinct", "repeat"} {
		b.Run(mode, func(b *testing.B) {
			be := newBackend(b, Options{PublicKeys: []crypto.PublicKey{&rsaKey.PublicKey}, Algorithms: []string{"RS256"}})
			chain, err := authn.New(authn.Options{Links: []*authn.Link{{Name: "jwt", Backend: be}}, CacheTTL: time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = chain.Close() })
			_, addr := testutil.RunBroker(b, func(o *broker.Options) {
				o.Authenticator = chain
				o.AllowAnonymous = false
			})
			n := b.N
			if mode == "repeat" {
				n = min(n, 100)
			}
			tokens := make([][]byte, n)
			exp := time.Now().Add(time.Hour).Unix()
			for i := range tokens {
				tokens[i] = []byte(sign(b, gjwt.SigningMethodRS256, rsaKey, gjwt.MapClaims{"sub": strconv.Itoa(i), "exp": exp}, ""))
			}
			var next atomic.Int64
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(next.Add(1)-1) % n
					c := testutil.Dial(b, addr, mqtt.V311)
					ack := c.Connect(&mqtt.Connect{ClientID: "c" + strconv.Itoa(i), CleanStart: true, PasswordSet: true, UsernameSet: true, Username: "u", Password: tokens[i]})
					if ack.ReasonCode != 0 {
						b.Errorf("connack %v", ack.ReasonCode)
					}
					_ = c.Conn.Close()
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "connects/s")
			b.ReportMetric(float64(chain.Metrics().BackendCalls())/float64(b.N), "backend-calls/connect")
		})
	}
}
