package broker_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// countPublishes reads packets from r until want PUBLISH packets arrived on
// it, adding each to got and acknowledging QoS 1 ones on w when w is not nil.
func countPublishes(r io.Reader, w io.Writer, want int64, got *atomic.Int64) error {
	var mine int64
	br := bufio.NewReaderSize(r, 64<<10)
	var hdr [5]byte
	var ack [4]byte
	ack[0], ack[1] = byte(mqtt.PUBACK)<<4, 2
	for mine < want {
		b0, err := br.ReadByte()
		if err != nil {
			return err
		}
		hdr[0] = b0
		n := 1
		for {
			c, err := br.ReadByte()
			if err != nil {
				return err
			}
			hdr[n] = c
			n++
			if c&0x80 == 0 || n == 5 {
				break
			}
		}
		h, _, err := mqtt.ParseFixedHeader(hdr[:n])
		if err != nil {
			return err
		}
		body, err := br.Peek(h.Remaining)
		if err != nil {
			return err
		}
		if h.Type == mqtt.PUBLISH {
			if w != nil && (h.Flags>>1)&3 == 1 {
				tl := int(body[0])<<8 | int(body[1])
				ack[2], ack[3] = body[2+tl], body[3+tl]
				if _, err := w.Write(ack[:]); err != nil {
					return err
				}
			}
			got.Add(1)
			mine++
		}
		if _, err := br.Discard(h.Remaining); err != nil {
			return err
		}
	}
	return nil
}

func connectRaw(b *testing.B, addr, id string, filter string, qos byte) net.Conn {
	b.Helper()
	c := testutil.Dial(b, addr, mqtt.V311)
	c.Connect(&mqtt.Connect{ClientID: id, CleanStart: true})
	if filter != "" {
		c.Send(&mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: filter, QoS: qos}}})
		c.Read()
	}
	// testutil's client sets deadlines per call; the load runs longer.
	_ = c.Conn.SetDeadline(timeZero)
	return c.Conn
}

// benchRoute runs pubs publishers sending b.N messages in total to subs
// subscribers, with a window on outstanding deliveries so that no queue
// grows without bound.
func benchRoute(b *testing.B, pubs, subs int, qos byte) {
	_, addr := testutil.RunBroker(b, nil)
	var got atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, subs)
	for i := 0; i < subs; i++ {
		conn := connectRaw(b, addr, fmt.Sprintf("sub%d", i), "bench/+/x", qos)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var w io.Writer
			if qos > 0 {
				w = conn
			}
			errs <- countPublishes(conn, w, int64(b.N), &got)
		}()
	}
	pkt, _, err := mqtt.EncodePublish(nil, &mqtt.Publish{Topic: "bench/1/x", QoS: 0, Payload: make([]byte, 16)}, mqtt.V311)
	if err != nil {
		b.Fatal(err)
	}
	const window = 20000
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	b.ResetTimer()
	var pwg sync.WaitGroup
	var sent atomic.Int64
	for p := 0; p < pubs; p++ {
		conn := connectRaw(b, addr, fmt.Sprintf("pub%d", p), "", 0)
		n := b.N / pubs
		if p == 0 {
			n += b.N % pubs
		}
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			bw := bufio.NewWriterSize(conn, 32<<10)
			for i := 0; i < n; i++ {
				for sent.Load()*int64(subs)-got.Load() > window {
					_ = bw.Flush()
					waitABit()
				}
				_, _ = bw.Write(pkt)
				sent.Add(1)
			}
			if err := bw.Flush(); err != nil {
				b.Error(err)
			}
		}()
	}
	pwg.Wait()
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(got.Load())/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkFanIn: 4 publishers, 1 wildcard subscriber, QoS 0, 16 bytes.
func BenchmarkFanIn(b *testing.B) { benchRoute(b, 4, 1, 0) }

// BenchmarkFanOut: 1 publisher, 100 subscribers, QoS 0, 16 bytes.
func BenchmarkFanOut(b *testing.B) { benchRoute(b, 1, 100, 0) }
