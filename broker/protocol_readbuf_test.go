package broker_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
)

// TestReadBufferKeepsPartialPacket: a connection reads into a small buffer
// and borrows a bigger one for bursts and big packets. A read that ends a
// burst with exactly a small buffer's worth (128 bytes) of a bigger packet
// still pending must not go back to the small buffer: it would be full,
// the next read would ask for nothing, and the reader would spin without
// reading again. The writes are spaced so that each arrives as one read.
func TestReadBufferKeepsPartialPacket(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	r := connectClean(t, addr, mqtt.V311, "readbuf")
	big := func(b byte) []byte {
		return mustEncode(t, &mqtt.Publish{Topic: "rb", Payload: bytes.Repeat([]byte{b}, 3000)}, mqtt.V311)
	}
	a, b := big('a'), big('b')
	pause := func() { time.Sleep(50 * time.Millisecond) }
	r.SendBytes(a[:128]) // fills the small buffer: a bigger one is borrowed
	pause()
	r.SendBytes(append(a[128:len(a):len(a)], b[:128]...)) // ends a, 128 bytes of b pending
	pause()
	r.SendBytes(b[128:])
	r.Send(&mqtt.Pingreq{})
	p, err := r.ReadTimeout(5 * time.Second)
	if err != nil {
		t.Fatalf("no answer to PINGREQ after a packet split at the small buffer's size: %v", err)
	}
	if _, ok := p.(*mqtt.Pingresp); !ok {
		t.Fatalf("got %T, want PINGRESP", p)
	}
}
