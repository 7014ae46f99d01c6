package listener_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/broker/listener"
	"github.com/mqgate/mqgate/mqtt"
)

// benchTransport is one listener kind under benchmark, with a function
// that opens a client connection to it.
type benchTransport struct {
	name string
	l    broker.Listener
	dial func(tb testing.TB, addr string) net.Conn
}

func benchTransports(t testing.TB) []benchTransport {
	p := newPKI(t, "bench CA")
	sslL := sslListener(t, p, nil)
	wssL := sslListener(t, p, nil)
	wssL.Kind = listener.WSS
	ccfg := p.clientTLS()
	ccfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	dialTCP := func(tb testing.TB, addr string) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			tb.Fatal(err)
		}
		return c
	}
	return []benchTransport{
		{"tcp", broker.Listener{Name: "external"}, dialTCP},
		{"tls", sslL, func(tb testing.TB, addr string) net.Conn {
			c, err := tls.Dial("tcp", addr, ccfg)
			if err != nil {
				tb.Fatal(err)
			}
			return c
		}},
		{"ws", broker.Listener{Name: "external", Kind: listener.WS}, func(tb testing.TB, addr string) net.Conn {
			c, err := dialWS(tb, "ws://"+addr+"/mqtt", nil, "mqtt")
			if err != nil {
				tb.Fatal(err)
			}
			return c
		}},
		{"wss", wssL, func(tb testing.TB, addr string) net.Conn {
			c, err := dialWS(tb, "wss://"+addr+"/mqtt", ccfg, "mqtt")
			if err != nil {
				tb.Fatal(err)
			}
			return c
		}},
	}
}

// BenchmarkIdleConnMemory opens b.N idle MQTT 3.1.1 connections over each
// transport and reports the heap and goroutine stack each costs the
// process. Clients and broker share the process, so the heap figure
// includes the client side (for TLS, its half of the session state too).
func BenchmarkIdleConnMemory(b *testing.B) {
	for _, tr := range benchTransports(b) {
		b.Run(tr.name, func(b *testing.B) {
			addr := runBenchBroker(b, tr.l)
			stats := func() runtime.MemStats {
				runtime.GC()
				runtime.GC()
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				return m
			}
			before := stats()
			conns := make([]net.Conn, 0, b.N)
			for i := 0; i < b.N; i++ {
				c := tr.dial(b, addr)
				pkt, _ := (&mqtt.Connect{ProtocolName: "MQTT", Version: mqtt.V311, ClientID: fmt.Sprintf("idle%d", i), CleanStart: true, KeepAlive: 300}).Encode(nil, mqtt.V311)
				if _, err := c.Write(pkt); err != nil {
					b.Fatal(err)
				}
				var ack [4]byte
				if _, err := io.ReadFull(c, ack[:]); err != nil {
					b.Fatal(err)
				}
				conns = append(conns, c)
			}
			time.Sleep(200 * time.Millisecond)
			after := stats()
			n := float64(b.N)
			b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/n, "heap-B/conn")
			b.ReportMetric(float64(int64(after.StackInuse)-int64(before.StackInuse))/n, "stack-B/conn")
			for _, c := range conns {
				_ = c.Close()
			}
		})
	}
}

// BenchmarkThroughput publishes b.N QoS 0 messages of 64 bytes from one
// client to one subscriber over each transport.
func BenchmarkThroughput(b *testing.B) {
	for _, tr := range benchTransports(b) {
		b.Run(tr.name, func(b *testing.B) {
			addr := runBenchBroker(b, tr.l)
			sub, pub := tr.dial(b, addr), tr.dial(b, addr)
			defer sub.Close()
			defer pub.Close()
			for i, c := range []net.Conn{sub, pub} {
				pkt, _ := (&mqtt.Connect{ProtocolName: "MQTT", Version: mqtt.V311, ClientID: fmt.Sprintf("c%d", i), CleanStart: true}).Encode(nil, mqtt.V311)
				_, _ = c.Write(pkt)
				if _, err := mqtt.ReadPacket(c, mqtt.V311, 0); err != nil {
					b.Fatal(err)
				}
			}
			pkt, _ := (&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: "bench"}}}).Encode(nil, mqtt.V311)
			_, _ = sub.Write(pkt)
			if _, err := mqtt.ReadPacket(sub, mqtt.V311, 0); err != nil {
				b.Fatal(err)
			}
			msg, _ := (&mqtt.Publish{Topic: "bench", Payload: make([]byte, 64)}).Encode(nil, mqtt.V311)
			batch := make([]byte, 0, 100*len(msg))
			for range 100 {
				batch = append(batch, msg...)
			}
			done := make(chan error, 1)
			go func() {
				// Buffered, so that the client's reads do not dominate.
				br := bufio.NewReaderSize(sub, 64<<10)
				for i := 0; i < b.N; i++ {
					if _, err := mqtt.ReadPacket(br, mqtt.V311, 0); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			b.ResetTimer()
			for sent := 0; sent < b.N; sent += 100 {
				n := min(100, b.N-sent)
				if _, err := pub.Write(batch[:n*len(msg)]); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// runBenchBroker starts a broker for a benchmark.
func runBenchBroker(b *testing.B, l broker.Listener) string {
	l.Addr = "127.0.0.1:0"
	o := broker.DefaultOptions()
	o.Listeners = []broker.Listener{l}
	o.SysInterval = 0
	o.MaxMqueueLen = 0
	o.MaxQueuedBytes = 1 << 30
	br, err := broker.New(o)
	if err != nil {
		b.Fatal(err)
	}
	if err := br.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = br.Shutdown(b.Context()) })
	return br.Addr(l.Name).String()
}
