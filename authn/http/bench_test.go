package http

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqgate/mqgate/authn"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// BenchmarkConnectStorm connects real MQTT clients, in parallel, through a
// broker whose chain asks a real HTTP service. "distinct" gives every
// connect its own credentials (each a backend call); "repeat" reconnects
// 100 clients over and over, as after a broker restart, where the cache
// and the coalescing of identical requests spare the service. It reports
// connects per second and backend calls per connect.
func BenchmarkConnectStorm(b *testing.B) {
	for _, mode := range []string{"distinct", "repeat"} {
		b.Run(mode, func(b *testing.B) {
			var served atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served.Add(1) }))
			b.Cleanup(srv.Close)
			ps, _ := ParseParams("clientid=%c,username=%u,password=%P")
			be, err := New(Options{Auth: Request{URL: srv.URL, Params: ps}, PoolSize: 32})
			if err != nil {
				b.Fatal(err)
			}
			chain, err := authn.New(authn.Options{Links: []*authn.Link{{Name: "http", Backend: be, Close: be.Close}},
				CacheTTL: time.Minute, NegativeTTL: time.Second})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = chain.Close() })
			_, addr := testutil.RunBroker(b, func(o *broker.Options) {
				o.Authenticator = chain
				o.AllowAnonymous = false
			})
			var n atomic.Int64
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					if mode == "repeat" {
						i %= 100
					}
					id := strconv.FormatInt(i, 10)
					c := testutil.Dial(b, addr, mqtt.V311)
					ack := c.Connect(&mqtt.Connect{ClientID: "c" + id, CleanStart: true, UsernameSet: true, Username: "u" + id, PasswordSet: true, Password: []byte("p" + id)})
					if ack.ReasonCode != 0 {
						b.Errorf("connack %v", ack.ReasonCode)
					}
					_ = c.Conn.Close()
				}
			})
			el := time.Since(start)
			b.ReportMetric(float64(b.N)/el.Seconds(), "connects/s")
			b.ReportMetric(float64(chain.Metrics().BackendCalls())/float64(b.N), "backend-calls/connect")
			b.ReportMetric(float64(served.Load()), "http-requests")
		})
	}
}
