package webhook_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
	"github.com/mqgate/mqgate/webhook"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPublishPath measures the MQTT path (a QoS 0 publish through the
// broker to one subscriber) with no web hook, with a message.publish rule
// posting to a local receiver (one event per POST, and in batches of up to
// 200), and with the receiver down.
// It reports messages per second of wall time and per CPU second of the
// whole process (broker, dispatcher, and in the "up" case the receiver).
func BenchmarkPublishPath(b *testing.B) {
	for _, mode := range []string{"none", "up", "up-batch", "down"} {
		b.Run(mode, func(b *testing.B) {
			var bus *events.Bus
			var d *webhook.Dispatcher
			if mode != "none" {
				status := http.StatusOK
				if mode == "down" {
					status = http.StatusServiceUnavailable
				}
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }))
				b.Cleanup(srv.Close)
				value := `{"action": "on_message_publish"}`
				if mode == "up-batch" {
					value = `{"action": "on_message_publish", "batch": {"max_size": 200, "max_delay": "5ms"}}`
				}
				d, bus = startDispatcher(b, webhook.Options{Rules: []webhook.Rule{rule(b, "web.hook.rule.message.publish.1", value)},
					URL: srv.URL, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
			}
			_, addr := testutil.RunBroker(b, func(o *broker.Options) { o.Events = bus })
			sub := testutil.Dial(b, addr, mqtt.V311)
			sub.Connect(&mqtt.Connect{ClientID: "sub", CleanStart: true})
			sub.Send(&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "bench/#"}}})
			sub.Read()
			pub := testutil.Dial(b, addr, mqtt.V311)
			pub.Connect(&mqtt.Connect{ClientID: "pub", CleanStart: true})
			payload := []byte(`{"temp":21.5,"hum":40,"ts":1733300000000,"dev":"sensor-0001"}`) // 64 B
			b.ResetTimer()
			cpu0 := cpuTime()
			start := time.Now()
			got := make(chan struct{})
			go func() {
				defer close(got)
				for range b.N {
					if _, err := sub.ReadTimeout(10 * time.Second); err != nil {
						return
					}
				}
			}()
			for range b.N {
				pub.Send(&mqtt.Publish{Topic: "bench/t", Payload: payload})
			}
			<-got
			el, cpu := time.Since(start), cpuTime()-cpu0
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "msg/s")
			b.ReportMetric(float64(b.N)/cpu.Seconds(), "msg/cpu-s")
			if d != nil {
				s := d.Stats()
				b.ReportMetric(float64(s.Total(events.MessagePublish).Delivered), "posted")
				b.ReportMetric(float64(s.BusDropped), "bus-dropped")
			}
		})
	}
}

// BenchmarkDispatcherDown measures what one message.publish event costs the
// dispatcher while its endpoint is down: from the bus, through encoding,
// into the outbox with its group commit and fsync, and queued behind the
// open breaker. It reports CPU per event (whole process: the benchmark loop
// only publishes to the bus) and allocations per event; the MQTT path is
// not in it. Events come as fast as the loop makes them (burst) or 100
// every 10 ms (10k/s, as from a broker routing 10,000 msg/s, where each
// commit carries about 100 events and the process sleeps in between); the
// outbox is fsynced every commit (sync=commit) or once a second (sync=1s,
// the default).
func BenchmarkDispatcherDown(b *testing.B) {
	for _, paced := range []bool{false, true} {
		for _, sync := range []time.Duration{-1, time.Second} {
			name := map[bool]string{false: "burst", true: "10k/s"}[paced] + "/sync=" + map[bool]string{true: "commit", false: "1s"}[sync < 0]
			b.Run(name, func(b *testing.B) { benchDispatcherDown(b, paced, sync) })
		}
	}
}

func benchDispatcherDown(b *testing.B, paced bool, sync time.Duration) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	b.Cleanup(srv.Close)
	d, bus := startDispatcher(b, webhook.Options{Rules: []webhook.Rule{rule(b, "web.hook.rule.message.publish.1", `{"action": "on_message_publish"}`)},
		URL: srv.URL, BreakerThreshold: 1, MinBackoff: time.Hour, MaxBackoff: time.Hour, MaxBytes: 1 << 30, SyncInterval: sync})
	publish := telemetryEvents(bus)
	queued := waitCount(d, func(c webhook.Counts) uint64 { return c.Queued })
	publish() // opens the breaker
	queued(1)
	waitOpen(b, d, srv.URL)
	measureEvents(b, paced, publish, queued)
}

// telemetryEvents returns a function that publishes one message.publish
// event of a 64-byte telemetry message to bus.
func telemetryEvents(bus *events.Bus) func() {
	payload := []byte(`{"temp":21.5,"hum":40,"ts":1733300000000,"dev":"sensor-0001"}`) // 64 B
	now := time.Now()
	return func() {
		e := events.New()
		e.Kind, e.FromClientID, e.Topic, e.Payload, e.MessageTime = events.MessagePublish, "sensor-0001", "sensors/0001/telemetry", payload, now
		bus.Publish(e)
	}
}

// waitCount returns a function that waits until count, of the
// message.publish totals in d's Stats, reaches n.
func waitCount(d *webhook.Dispatcher, count func(webhook.Counts) uint64) func(n uint64) {
	return func(n uint64) {
		for count(d.Stats().Total(events.MessagePublish)) < n {
			time.Sleep(time.Millisecond)
		}
	}
}

// measureEvents publishes b.N events, in a burst or 100 every 10 ms
// (paced), and reports CPU, allocations and bytes per event. done(n)
// waits until the dispatcher has taken n events in all (one was published
// before); in a burst it is also called every 20,000 events, to stay within
// the bus queue (65,536) while polling Stats rarely.
func measureEvents(b *testing.B, paced bool, publish func(), done func(n uint64)) {
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.ResetTimer()
	cpu0 := cpuTime()
	next := time.Now()
	for i := range b.N {
		publish()
		switch {
		case paced && i%100 == 99:
			next = next.Add(10 * time.Millisecond)
			time.Sleep(time.Until(next))
		case !paced && i%20000 == 19999:
			done(uint64(i + 2))
		}
	}
	done(uint64(b.N + 1))
	cpu := cpuTime() - cpu0
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/event")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(b.N), "allocs/event")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(b.N), "B/event")
}

// BenchmarkDispatcherBatch measures what one message.publish event costs
// while a batching rule (100 events or 10 ms) delivers to a receiver that
// answers 200: encoding, the outbox commit of the event and of its
// acknowledgement, the request and its response. The receiver runs in the
// process, so cpu-ns/event includes its side (reading the request); the
// allocation figures are mostly the dispatcher's. Events come in a burst or
// at 10,000/s as in BenchmarkDispatcherDown.
func BenchmarkDispatcherBatch(b *testing.B) {
	for _, paced := range []bool{false, true} {
		b.Run(map[bool]string{false: "burst", true: "10k/s"}[paced], func(b *testing.B) { benchDispatcherBatch(b, paced) })
	}
}

func benchDispatcherBatch(b *testing.B, paced bool) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	b.Cleanup(srv.Close)
	d, bus := startDispatcher(b, webhook.Options{Rules: []webhook.Rule{rule(b, "web.hook.rule.message.publish.1",
		`{"action": "on_message_publish", "batch": {"max_size": 100, "max_delay": "10ms"}}`)},
		URL: srv.URL, MaxBytes: 1 << 30})
	publish := telemetryEvents(bus)
	delivered := waitCount(d, func(c webhook.Counts) uint64 { return c.Delivered })
	publish() // a first delivery: the connection is open before measuring
	delivered(1)
	measureEvents(b, paced, publish, delivered)
}
