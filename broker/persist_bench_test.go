package broker

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/mqgate/mqgate/broker/topics"
	"github.com/mqgate/mqgate/mqtt"
)

// benchEnv returns the integer in the environment variable name, or def.
func benchEnv(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		b.Fatalf("%s=%q: want a count", name, v)
	}
	return n
}

// storeOnlyBroker starts a broker without listeners whose state is in dir.
func storeOnlyBroker(b *testing.B, dir string) *Broker {
	b.Helper()
	o := DefaultOptions()
	o.StoreDir = dir
	o.SysInterval = 0
	br, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	if err := br.Start(); err != nil {
		b.Fatal(err)
	}
	return br
}

func shutdown(b *testing.B, br *Broker) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := br.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRestoreState measures the start-up of a broker whose log holds
// MQGATE_BENCH_SESSIONS (default 10,000) persistent 3.1.1 sessions, each
// with one subscription, and MQGATE_BENCH_RETAINED (default 100,000)
// retained messages of 64 bytes: the time of Start and the heap it leaves.
// The state is written through the broker's own persistence functions,
// without clients, so that building it takes seconds, not minutes.
func BenchmarkRestoreState(b *testing.B) {
	nSessions := benchEnv(b, "MQGATE_BENCH_SESSIONS", 10_000)
	nRetained := benchEnv(b, "MQGATE_BENCH_RETAINED", 100_000)
	dir := b.TempDir()
	br := storeOnlyBroker(b, dir)
	payload := make([]byte, 64)
	now := time.Now()
	for i := range nRetained {
		br.storeRetained(&message{id: br.newMessageID(), topic: fmt.Sprintf("site/%d/dev/%d", i/1000, i),
			payload: payload, qos: 1, retain: true, created: now})
	}
	for i := range nSessions {
		s := newSession(br, fmt.Sprintf("device-%07d", i))
		s.version, s.neverEnds, s.persisted = mqtt.V311, true, true
		filter := fmt.Sprintf("cmd/%d/#", i)
		e := subEntry{sub: topics.Sub{Client: s, Filter: filter, QoS: 1}, added: now}
		s.mu.Lock()
		s.subs = map[string]subEntry{filter: e}
		s.logHeader(now)
		s.logSub(filter, e)
		s.mu.Unlock()
	}
	shutdown(b, br)
	b.ResetTimer()
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		br := storeOnlyBroker(b, dir)
		took := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		st := br.Stats()
		if st["sessions.count"] != int64(nSessions) || st["subscriptions.count"] != int64(nSessions) || st["retained.count"] != int64(nRetained) {
			b.Fatalf("restored %d sessions, %d subscriptions, %d retained messages; want %d, %d, %d",
				st["sessions.count"], st["subscriptions.count"], st["retained.count"], nSessions, nSessions, nRetained)
		}
		b.ReportMetric(took.Seconds(), "start-s")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(br.Metrics()["store.bytes"])/(1<<20), "log-MiB")
		shutdown(b, br)
	}
}
