package webhook

import (
	"io"
	"testing"
)

// TestPooledBodyNotReusedWhileRead: a request body's buffer is not handed
// to another request while a reader of it (the transport's, or one of
// GetBody's) is open, whatever the poster did; closing a reader twice gives
// up one reference only.
func TestPooledBodyNotReusedWhileRead(t *testing.T) {
	p := newPooledBody()
	*p.buf = append(*p.buf, `[{"id":"a"}]`...)
	buf := p.buf
	r1 := p.reader()
	r2 := p.reader() // as GetBody makes for a retry
	p.release()      // the poster has its answer
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	_ = r2.Close() // must not give up r1's reference
	for range 100 {
		q := newPooledBody()
		if q.buf == buf {
			t.Fatal("a body's buffer was reused while a reader of it was open")
		}
		defer q.release()
	}
	got, err := io.ReadAll(r1)
	if err != nil || string(got) != `[{"id":"a"}]` {
		t.Fatalf("reader read %q, %v", got, err)
	}
	if err := r1.Close(); err != nil {
		t.Fatal(err)
	}
	if p.buf != nil {
		t.Fatal("the buffer was not given back after the last reader closed")
	}
}
