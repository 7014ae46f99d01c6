package api_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mqgate/mqgate/api"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// BenchmarkClientsPage is one GET /clients page of 100 among 1,000 live
// connections, filtered by a substring of the client id.
func BenchmarkClientsPage(b *testing.B) {
	br, addr := testutil.RunBroker(b, nil)
	for i := range 1000 {
		c := testutil.Dial(b, addr, mqtt.V311)
		c.Connect(&mqtt.Connect{ClientID: fmt.Sprintf("k%04d", i), CleanStart: true, KeepAlive: 60})
	}
	s, err := api.New(api.Options{Broker: br, Addr: "127.0.0.1:0", Apps: map[string]string{appID: appSecret}})
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{"_limit=100&_page=5", "_limit=100&_like_clientid=k05"} {
		b.Run(q, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "/api/v4/clients?"+q, nil)
				req.SetBasicAuth(appID, appSecret)
				w := httptest.NewRecorder()
				s.Handler().ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code)
				}
			}
		})
	}
}

// BenchmarkPublish is one POST /mqtt/publish to a topic without
// subscribers.
func BenchmarkPublish(b *testing.B) {
	br, _ := testutil.RunBroker(b, nil)
	s, err := api.New(api.Options{Broker: br, Addr: "127.0.0.1:0", Apps: map[string]string{appID: appSecret}})
	if err != nil {
		b.Fatal(err)
	}
	const body = `{"topic":"bench/t","payload":"hello","qos":1}`
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/api/v4/mqtt/publish", strings.NewReader(body))
		req.SetBasicAuth(appID, appSecret)
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
