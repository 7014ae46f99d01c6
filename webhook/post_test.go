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
				jobs[i] = testJob(ep, i)
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

// testJob is job i of a message.publish event of client c for ep, its
// body held in memory, as the outbox writer makes one.
func testJob(ep *endpoint, i int) *job {
	e := &events.Event{Kind: events.MessagePublish, FromClientID: "c", Topic: "t/c", Payload: []byte(fmt.Sprint("payload ", i))}
	return &job{seq: uint64(i + 1), idText: fmt.Sprintf("id-%d", i), client: "c", event: e.Kind, created: time.Now(), body: appendEventRec(nil, e), ep: ep}
}

// TestBatchWorkerWaitsOnlyForCommits: a batching lane's worker posts a
// batch that is not full at once when no commit can add to it before its
// max_delay (an hour) ends, and waits for the max_delay otherwise. The
// outbox writer is not started: the test says when its next commit can
// come (commitGap from now), so a wrong wait shows as an hour against the
// test's 10 s, not as a timing.
func TestBatchWorkerWaitsOnlyForCommits(t *testing.T) {
	posted := make(chan struct{}, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		posted <- struct{}{}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name  string
		gap   time.Duration
		posts bool
	}{
		{"no commit before max_delay", 2 * time.Hour, true},
		{"a commit may come first", 30 * time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(Options{URL: srv.URL, Dir: t.TempDir(), Rules: []Rule{{Event: events.MessagePublish, Batch: Batch{MaxSize: 10, MaxDelay: time.Hour}}}})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := d.Stop(context.Background()); err != nil {
					t.Error(err)
				}
			}()
			d.commitGap = tc.gap
			d.quietFrom.Store(-1) // waiting for events: a commit is commitGap away at the soonest
			ep := d.epList[0]
			ep.enqueue(testJob(ep, 0)) // starts the worker
			if tc.posts {
				select {
				case <-posted:
				case <-time.After(10 * time.Second):
					t.Fatal("batch not posted: it waits for its max_delay although no commit can add to it")
				}
				return
			}
			for deadline := time.Now().Add(10 * time.Second); ; {
				ep.mu.Lock()
				l := ep.lanes[""]
				waiting := l != nil && l.batchWait
				ep.mu.Unlock()
				if waiting {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the lane does not wait for its max_delay")
				}
				time.Sleep(5 * time.Millisecond)
			}
			select {
			case <-posted:
				t.Fatal("batch posted although a commit may add to it before its max_delay")
			default:
			}
		})
	}
}
