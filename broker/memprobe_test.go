package broker_test

import (
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// BenchmarkIdleConnMemory opens b.N idle MQTT 3.1.1 connections (keep alive
// 300 s) and reports the heap and goroutine stack each costs the process.
// The heap figure includes the client side of each socket (about 400 B),
// since clients and broker share the process; bench/ measures the broker's
// RSS from outside.
func BenchmarkIdleConnMemory(b *testing.B) {
	_, addr := testutil.RunBroker(b, nil)
	stats := func() runtime.MemStats {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m
	}
	before := stats()
	conns := make([]net.Conn, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		pkt, _ := (&mqtt.Connect{ProtocolName: "MQTT", Version: mqtt.V311, ClientID: fmt.Sprintf("idle%d", i), CleanStart: true, KeepAlive: 300}).Encode(nil, mqtt.V311)
		if _, err := c.Write(pkt); err != nil {
			b.Fatal(err)
		}
		var ack [4]byte
		if _, err := c.Read(ack[:]); err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
	}
	b.StopTimer()
	time.Sleep(200 * time.Millisecond)
	after := stats()
	n := float64(b.N)
	b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/n, "heap-B/conn")
	b.ReportMetric(float64(int64(after.StackInuse)-int64(before.StackInuse))/n, "stack-B/conn")
	for _, c := range conns {
		_ = c.Close()
	}
}
