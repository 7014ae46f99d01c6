package webhook

import (
	"bytes"
	"io"
	"sync"
	"sync/atomic"
)

// reqBufs holds the buffers of request bodies that nothing reads any
// more, for the next requests: a batch of 1,000 events is a body of about
// 230 KB, which a new buffer would cost the clearing of, and the caches
// the room of, at every POST.
var reqBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBody is the capacity above which a body's buffer is left to
// the collector instead of being kept for reuse.
const maxPooledBody = 4 << 20

// inMemoryBody is the size up to which a request's body is copied out of
// its pooled buffer, and handed to net/http as a *bytes.Reader. net/http
// flushes a request's headers on their own before any body but those of
// the standard in-memory types, so a pooled body cost a write(2) of its
// own for the headers: two per event posted on its own, each a loopback
// segment and a wake-up of the receiver. With a plain reader the headers
// and a body that fits the connection's write buffer go out in one write
// (batchWriteBuffer's bodies too). A copy, at these sizes, costs less than
// a write; and a batch of 1,000 events (about 300 KB) stays in its
// pooled buffer, where one write more among ten does not matter.
const inMemoryBody = batchWriteBuffer

// pooledBody is the body of one POST, in a buffer from reqBufs that goes
// back there once the poster and every reader of it are done with it. An
// http.RoundTripper may read a request's body after RoundTrip returned,
// and reads it again, through GetBody, when it retries on another
// connection; so each reader holds a reference that its Close gives up,
// and the transport closes every request body it is given, also on
// errors. A reader the transport failed to close only keeps the buffer
// from being reused.
type pooledBody struct {
	buf  *[]byte
	refs atomic.Int32
}

// newPooledBody returns an empty body holding the poster's reference.
func newPooledBody() *pooledBody {
	p := &pooledBody{buf: reqBufs.Get().(*[]byte)}
	*p.buf = (*p.buf)[:0]
	p.refs.Store(1)
	return p
}

// reader returns a new reader of the body, holding a reference until it
// is closed.
func (p *pooledBody) reader() io.ReadCloser {
	p.refs.Add(1)
	return &bodyReader{Reader: bytes.NewReader(*p.buf), p: p}
}

// release gives up a reference; the last one puts the buffer back.
func (p *pooledBody) release() {
	if p.refs.Add(-1) != 0 {
		return
	}
	if cap(*p.buf) <= maxPooledBody {
		*p.buf = (*p.buf)[:0]
		reqBufs.Put(p.buf)
	}
	p.buf = nil
}

// bodyReader reads a pooledBody; closing it gives up its reference, once.
type bodyReader struct {
	*bytes.Reader
	p      *pooledBody
	closed atomic.Bool
}

func (r *bodyReader) Close() error {
	if r.closed.CompareAndSwap(false, true) {
		r.p.release()
	}
	return nil
}
