package rawconn_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqgate/mqgate/internal/rawconn"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair returns both ends of a loopback TCP connection, the accepted one
// wrapped.
func pair(t *testing.T) (wrapped, peer net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	wrapped = rawconn.Wrap(nc)
	if _, ok := wrapped.(*rawconn.Conn); !ok {
		t.Fatalf("Wrap(%T) = %T, want *rawconn.Conn", nc, wrapped)
	}
	t.Cleanup(func() { wrapped.Close(); peer.Close() })
	return wrapped, peer
}

// pattern returns n bytes that differ from their neighbours' offsets, so
// that a lost, repeated or reordered chunk shows.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestReadWrite(t *testing.T) {
	c, peer := pair(t)
	if _, err := peer.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := io.ReadAtLeast(c, buf, 5)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if n, err := c.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v", n, err)
	}
	if n, err := c.Write([]byte("world")); n != 5 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	n, err = io.ReadAtLeast(peer, buf, 5)
	if err != nil || string(buf[:n]) != "world" {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}
}

// A write larger than both sockets' buffers (at most 4 and 6 MB on Linux
// by default) waits for the reader (the EAGAIN path) and delivers every
// byte in order.
func TestWriteWaitsForReader(t *testing.T) {
	c, peer := pair(t)
	want := pattern(32 << 20)
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(peer, int64(len(want))))
		got <- b
	}()
	n, err := c.Write(want)
	if n != len(want) || err != nil {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(want))
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("the peer read %d bytes that differ from the %d written", len(b), len(want))
	}
}

// Reads of a stream written in small pieces return it whole and in order,
// then io.EOF once the peer closes.
func TestReadUntilEOF(t *testing.T) {
	c, peer := pair(t)
	want := pattern(1 << 20)
	go func() {
		for b := want; len(b) > 0; {
			k := min(len(b), 1000)
			if _, err := peer.Write(b[:k]); err != nil {
				return
			}
			b = b[k:]
		}
		peer.Close()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes that differ from the %d written", len(got), len(want))
	}
	if n, err := c.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("Read after the end = %d, %v; want 0, io.EOF", n, err)
	}
}

func TestReadDeadline(t *testing.T) {
	c, _ := pair(t)
	if err := c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Read(make([]byte, 8))
	assertTimeout(t, "read", err)
}

// A deadline set from another goroutine wakes a blocked Read: the broker
// ends a connection that way.
func TestDeadlineWakesRead(t *testing.T) {
	c, _ := pair(t)
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 8))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Read returned before the deadline: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	if err := c.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	assertTimeout(t, "read", <-done)
}

// A write to a peer that does not read stops at the deadline, and says
// how much the kernel took.
func TestWriteDeadline(t *testing.T) {
	c, peer := pair(t)
	_ = c.(*rawconn.Conn).SetWriteBuffer(4096)
	_ = peer.(*net.TCPConn).SetReadBuffer(4096)
	data := pattern(64 << 20)
	if err := c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	n, err := c.Write(data)
	if n <= 0 || n >= len(data) {
		t.Errorf("Write wrote %d of %d bytes; want some, not all", n, len(data))
	}
	assertTimeout(t, "write", err)
	// What it reported written reached the peer, intact.
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, n)
	if _, err := io.ReadFull(peer, got); err != nil || !bytes.Equal(got, data[:n]) {
		t.Fatalf("the peer did not read the %d bytes written: %v", n, err)
	}
}

func TestClosed(t *testing.T) {
	c, _ := pair(t)
	c.Close()
	if _, err := c.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close: %v, want net.ErrClosed", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v, want net.ErrClosed", err)
	}
}

// A write to a connection the peer reset fails with the system's error.
func TestWriteAfterReset(t *testing.T) {
	c, peer := pair(t)
	_ = peer.(*net.TCPConn).SetLinger(0)
	peer.Close() // an RST
	var err error
	for range 100 {
		if _, err = c.Write(pattern(64 << 10)); err != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	var oe *net.OpError
	var se *os.SyscallError
	if !errors.As(err, &oe) || oe.Op != "write" || !errors.As(err, &se) {
		t.Fatalf("Write to a reset connection: %v (%T), want a *net.OpError of a write holding an *os.SyscallError", err, err)
	}
}

func TestWrapOther(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := rawconn.Wrap(a); got != a {
		t.Fatalf("Wrap(net.Pipe end) = %T, want it unchanged", got)
	}
}

func assertTimeout(t *testing.T, op string, err error) {
	t.Helper()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s past the deadline: %v, want a timeout", op, err)
	}
	if !strings.HasPrefix(err.Error(), op+" tcp ") || strings.Contains(err.Error(), "raw-") {
		t.Fatalf("%s error reads %q, want it as net.Conn says it", op, err)
	}
}

func TestDialContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, _ := ln.Accept()
		accepted <- nc
	}()
	dial := rawconn.DialContext(&net.Dialer{Timeout: time.Second})
	c, err := dial(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*rawconn.Conn); !ok {
		t.Fatalf("dial gave %T, want *rawconn.Conn", c)
	}
	peer := <-accepted
	defer peer.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("peer read %q, %v", buf, err)
	}
	ln.Close()
	// Nothing listens there any more: the dialer's error comes back as it is.
	if _, err := dial(t.Context(), "tcp", addr); err == nil {
		t.Fatal("dial to a closed port succeeded")
	} else if _, ok := err.(*net.OpError); !ok {
		t.Fatalf("dial error %T (%v), want the dialer's *net.OpError", err, err)
	}
}

// ReadFrom and WriteTo, which bufio.Writer and io.Copy call when they can
// (net/http sends a request's body so), move every byte in order and go
// through Write and Read.
func TestReadFromWriteTo(t *testing.T) {
	c, peer := pair(t)
	rc := c.(*rawconn.Conn)
	want := pattern(8 << 20)
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(peer, int64(len(want))))
		got <- b
	}()
	if n, err := rc.ReadFrom(bytes.NewReader(want)); n != int64(len(want)) || err != nil {
		t.Fatalf("ReadFrom = %d, %v; want %d, nil", n, err, len(want))
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("the peer read %d bytes that differ from the %d sent", len(b), len(want))
	}

	go func() {
		_, _ = peer.Write(want)
		peer.Close()
	}()
	var buf bytes.Buffer
	if n, err := rc.WriteTo(&buf); n != int64(len(want)) || err != nil {
		t.Fatalf("WriteTo = %d, %v; want %d, nil", n, err, len(want))
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("WriteTo gave %d bytes that differ from the %d written", buf.Len(), len(want))
	}
}

// Their errors are those of Write and Read: *net.TCPConn's own ReadFrom
// and WriteTo, which make system calls the scheduler sees, would say
// "readfrom" and "writeto".
func TestReadFromWriteToAreRaw(t *testing.T) {
	c, _ := pair(t)
	rc := c.(*rawconn.Conn)
	_ = rc.SetWriteBuffer(4096)
	if err := rc.SetDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := rc.ReadFrom(bytes.NewReader(pattern(64 << 20)))
	assertTimeout(t, "write", err)
	_, err = rc.WriteTo(io.Discard)
	assertTimeout(t, "read", err)
}

// TestReadWriteAllocs: a Read and a Write that the socket takes at once
// allocate nothing; the broker makes one of each per message it routes.
func TestReadWriteAllocs(t *testing.T) {
	c, peer := pair(t)
	msg, buf := []byte("0123456789"), make([]byte, 64)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(peer, buf[:len(msg)]); err != nil {
			t.Fatal(err)
		}
		if _, err := peer.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf[:len(msg)]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per Write and Read, want 0", allocs)
	}
}

// TestConcurrentWrites: writers sharing a Conn, as net.Conn allows, each
// get their turn: every record arrives whole, none mixed with another,
// while a reader on the same Conn reads at the same time.
func TestConcurrentWrites(t *testing.T) {
	c, peer := pair(t)
	const writers, records, size = 4, 200, 3000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := bytes.Repeat([]byte{byte('a' + w)}, size)
			for range records {
				if _, err := c.Write(rec); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	// The other direction at the same time, read by two readers.
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = peer.Write(pattern(1 << 20))
		_ = peer.(*net.TCPConn).CloseWrite()
	}()
	var got [2]int
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				got[i] += n
				if err != nil {
					return
				}
			}
		}()
	}
	all := make([]byte, writers*records*size)
	if _, err := io.ReadFull(peer, all); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if got[0]+got[1] != 1<<20 {
		t.Errorf("readers got %d bytes, want %d", got[0]+got[1], 1<<20)
	}
	counts := map[byte]int{}
	for i := 0; i < len(all); i += size {
		rec := all[i : i+size]
		if bytes.Count(rec, rec[:1]) != size {
			t.Fatalf("record at %d mixed: %q...", i, rec[:40])
		}
		counts[rec[0]]++
	}
	for w := range writers {
		if counts[byte('a'+w)] != records {
			t.Errorf("writer %d: %d records, want %d", w, counts[byte('a'+w)], records)
		}
	}
}
