// Command hookrecv is the web hook receiver of the benchmarks: it answers
// every POST with a fixed status, counts requests and the events in them (a
// JSON array body is a batch), and prints the counts as one JSON line when
// it gets SIGTERM or SIGINT.
//
//	hookrecv -addr 127.0.0.1:8990 -status 200
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "hookrecv:", err)
		os.Exit(1)
	}
}

// counts are what the receiver saw.
type counts struct {
	Requests uint64 `json:"requests"`
	Events   uint64 `json:"events"`
	Bad      uint64 `json:"bad"` // bodies that were not JSON
}

type receiver struct {
	status           int
	requests, events atomic.Uint64
	bad              atomic.Uint64
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	rc.requests.Add(1)
	switch {
	case err != nil || !json.Valid(body):
		rc.bad.Add(1)
	case bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")):
		var batch []json.RawMessage
		if json.Unmarshal(body, &batch) == nil {
			rc.events.Add(uint64(len(batch)))
		}
	default:
		rc.events.Add(1)
	}
	w.WriteHeader(rc.status)
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("hookrecv", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	status := fs.Int("status", http.StatusOK, "HTTP status of every answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	rc := &receiver{status: *status}
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Fprintf(os.Stderr, "hookrecv: listening on %s, answering %d\n", ln.Addr(), *status)
	select {
	case <-ctx.Done():
	case err := <-done:
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return json.NewEncoder(stdout).Encode(counts{Requests: rc.requests.Load(), Events: rc.events.Load(), Bad: rc.bad.Load()})
}
