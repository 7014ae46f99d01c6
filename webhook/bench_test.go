package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
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
				r, err := webhook.ParseRule("web.hook.rule.message.publish.1", value)
				if err != nil {
					b.Fatal(err)
				}
				d, err = webhook.New(webhook.Options{Rules: []webhook.Rule{r}, URL: srv.URL, Dir: b.TempDir(), Node: "n",
					MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
				if err != nil {
					b.Fatal(err)
				}
				bus = events.NewBus()
				d.Start(bus)
				b.Cleanup(func() {
					bus.Close()
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					_ = d.Stop(ctx)
				})
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
