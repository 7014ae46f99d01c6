package broker_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/store/wal"
)

// restartable starts a broker whose state lives in dir and returns it with
// its address; stop shuts it down (the test's cleanup does too).
func restartable(t testing.TB, dir string, mode wal.Sync) (*broker.Broker, string) {
	t.Helper()
	return testutil.RunBroker(t, func(o *broker.Options) {
		o.StoreDir = dir
		o.StoreSync = mode
	})
}

func stopBroker(t testing.TB, b *broker.Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRetainedSurvivesRestart sets retained messages with a 3.1.1 and a v5
// client (one with properties and an expiry, one cleared), restarts the
// broker on the same directory and checks what a new subscriber gets.
func TestRetainedSurvivesRestart(t *testing.T) {
	for _, mode := range []wal.Sync{wal.SyncBatch, wal.SyncAlways} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			b, addr := restartable(t, dir, mode)
			v3 := dialV3(t, addr, "ret3", nil)
			v3.publish(t, "keep/v3", 1, true, []byte("from v3"))
			v3.publish(t, "keep/gone", 1, true, []byte("to be cleared"))
			v3.publish(t, "keep/gone", 1, true, nil)
			v5 := dialV5(t, addr, cleanV5("ret5"))
			v5.publish(t, &paho.Publish{Topic: "keep/v5", QoS: 1, Retain: true, Payload: []byte("from v5"),
				Properties: &paho.PublishProperties{ContentType: "text/plain", User: paho.UserProperties{{Key: "k", Value: "v"}}}})
			exp := uint32(1)
			v5.publish(t, &paho.Publish{Topic: "keep/short", QoS: 1, Retain: true, Payload: []byte("expires"),
				Properties: &paho.PublishProperties{MessageExpiry: &exp}})
			stopBroker(t, b)

			time.Sleep(1100 * time.Millisecond) // let keep/short expire while down
			b, addr = restartable(t, dir, mode)
			if n := b.Stats()["retained.count"]; n != 2 {
				t.Fatalf("retained.count = %d after restart, want 2", n)
			}
			sub5 := dialV5(t, addr, cleanV5("reader5"))
			sub5.subscribe(t, 0, paho.SubscribeOptions{Topic: "keep/#", QoS: 1})
			got := map[string]*paho.Publish{}
			for range 2 {
				m := sub5.next(t)
				got[m.Topic] = m
			}
			if m := got["keep/v3"]; m == nil || string(m.Payload) != "from v3" || !m.Retain || m.QoS != 1 {
				t.Errorf("keep/v3 after restart: %+v", m)
			}
			m := got["keep/v5"]
			if m == nil || string(m.Payload) != "from v5" || !m.Retain {
				t.Fatalf("keep/v5 after restart: %+v", m)
			}
			if m.Properties == nil || m.Properties.ContentType != "text/plain" || m.Properties.User.Get("k") != "v" {
				t.Errorf("keep/v5 lost its properties: %+v", m.Properties)
			}
			sub3 := dialV3(t, addr, "reader3", nil)
			sub3.subscribe(t, "keep/v5", 1)
			if m := sub3.next(t); string(m.Payload()) != "from v5" || !m.Retained() {
				t.Errorf("3.1.1 reader got %q retained=%v", m.Payload(), m.Retained())
			}
		})
	}
}

// BenchmarkRestoreRetained measures the start-up of a broker whose log
// holds MQGATE_BENCH_RETAINED (default 100,000) retained messages of 64
// bytes: the time of Start and the heap it leaves.
func BenchmarkRestoreRetained(b *testing.B) {
	n := 100_000
	if v := os.Getenv("MQGATE_BENCH_RETAINED"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	dir := b.TempDir()
	br, _ := restartable(b, dir, wal.SyncBatch)
	payload := make([]byte, 64)
	for i := range n {
		if _, _, err := br.Publish(broker.Message{Topic: fmt.Sprintf("site/%d/dev/%d", i/1000, i), Payload: payload, Retain: true}); err != nil {
			b.Fatal(err)
		}
	}
	stopBroker(b, br)
	b.ResetTimer()
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		br, _ := restartable(b, dir, wal.SyncBatch)
		took := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		if got := br.Stats()["retained.count"]; got != int64(n) {
			b.Fatalf("restored %d retained messages, want %d", got, n)
		}
		b.ReportMetric(took.Seconds(), "start-s")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(br.Metrics()["store.bytes"])/(1<<20), "log-MiB")
		stopBroker(b, br)
	}
}
