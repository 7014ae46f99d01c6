// Package testutil starts real mqgate brokers for tests: on 127.0.0.1 with
// a free port, stopped when the test ends.
package testutil

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/mqgate/mqgate/broker"
)

// RunBroker starts a broker on 127.0.0.1:0 with the default options, after
// edit (if any) has adjusted them, and returns it with its TCP address. $SYS
// publishing is off unless edit turns it on. The broker is shut down when
// the test ends. With MQGATE_TEST_LOG set, the broker's debug log goes to
// the test log.
func RunBroker(t testing.TB, edit func(*broker.Options)) (*broker.Broker, string) {
	t.Helper()
	o := broker.DefaultOptions()
	o.Listeners = []broker.Listener{{Name: "external", Addr: "127.0.0.1:0"}}
	o.SysInterval = 0
	o.ShutdownTimeout = 5 * time.Second
	if os.Getenv("MQGATE_TEST_LOG") != "" {
		o.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if edit != nil {
		edit(&o)
	}
	b, err := broker.New(o)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	if err := b.Start(); err != nil {
		t.Fatalf("broker.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("broker.Shutdown: %v", err)
		}
	})
	return b, b.Addr(o.Listeners[0].Name).String()
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
