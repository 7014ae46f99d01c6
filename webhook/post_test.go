package webhook

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqgate/mqgate/events"
)

// TestRequestInOneWrite: a POST whose body fits its connection's write
// buffer goes out in one write, headers and body together: an event on
// its own (net/http's 4 KB buffer) and a batch of 100 (batchWriteBuffer).
// A batch of 1,000 is larger, and takes several.
func TestRequestInOneWrite(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name   string
		batch  Batch
		events int
		one    bool
	}{
		{"one event", Batch{}, 1, true},
		{"a batch of 100", Batch{MaxSize: 100, MaxDelay: time.Second}, 100, true},
		{"a batch of 1,000", Batch{MaxSize: 1000, MaxDelay: time.Second}, 1000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(Options{URL: srv.URL, Dir: t.TempDir(), Rules: []Rule{{Event: events.MessagePublish, Batch: tc.batch}}})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := d.Stop(context.Background()); err != nil {
					t.Error(err)
				}
			}()
			var writes atomic.Int32
			for _, c := range []*http.Client{d.client, d.batchClient} {
				tr := c.Transport.(*http.Transport)
				dial := tr.DialContext
				tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
					c, err := dial(ctx, network, addr)
					if err != nil {
						return nil, err
					}
					return writeCounter{c, &writes}, nil
				}
			}
			ep := d.epList[0]
			jobs := make([]*job, tc.events)
			for i := range jobs {
				e := events.New()
				e.Kind, e.FromClientID, e.Topic, e.Payload = events.MessagePublish, "c", "t/c", []byte(fmt.Sprint("payload ", i))
				jobs[i] = &job{seq: uint64(i + 1), idText: fmt.Sprintf("id-%d", i), event: e.Kind, created: time.Now(), body: appendEventRec(nil, e), ep: ep}
			}
			if res := ep.post(jobs); res.status != http.StatusOK {
				t.Fatalf("POST of %d events: %+v", tc.events, res)
			}
			if n := writes.Load(); (n == 1) != tc.one {
				t.Fatalf("POST of %d events in %d writes", tc.events, n)
			}
		})
	}
}

// writeCounter counts the writes to a connection. It has only net.Conn's
// methods: net/http copies a body through Write to it.
type writeCounter struct {
	net.Conn
	n *atomic.Int32
}

func (c writeCounter) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}
