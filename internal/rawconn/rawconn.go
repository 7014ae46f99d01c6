// Package rawconn makes the reads and writes of TCP connections raw system
// calls, which the Go scheduler does not see.
//
// A net.Conn's Read and Write enter the kernel through syscall.Syscall,
// which tells the scheduler that the goroutine may block there. When the
// process was idle, that wakes the runtime's monitor thread (sysmon), which
// then polls every 20 µs for as long as the process stays busy, in case the
// call blocks and its processor must be handed to another thread. A broker
// at a moderate message rate goes idle between messages, so nearly every
// message woke the monitor: at 10,000 msg/s from one publisher to one
// subscriber, on one core, the monitor thread made about 3,500 context
// switches a second and used 25% of the broker's CPU.
//
// The sockets of the net package are non-blocking: a read or write that
// cannot proceed fails with EAGAIN at once, and the connection then waits
// for the network poller as net.Conn does (syscall.RawConn). Such a call
// cannot block, so the scheduler has nothing to prepare for, and Conn makes
// it with syscall.RawSyscall. The same broker and load then used 35–40%
// less CPU per message (1.49–1.64 times the messages per CPU-second, in
// pairs of brokers run side by side), and the monitor thread 2 context
// switches a second.
//
// Deadlines, closing and the errors are those of net.Conn: a read past
// its deadline fails with an error whose Timeout method reports true, a
// read at the end of the stream with io.EOF, and errors come as
// *net.OpError.
package rawconn

import (
	"context"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Conn is a TCP connection whose Read and Write are raw system calls, and
// whose ReadFrom and WriteTo copy through them. Every other method is the
// *net.TCPConn's.
type Conn struct {
	*net.TCPConn
	rc   syscall.RawConn
	r, w call
}

// call is the state of one direction's system call, which
// syscall.RawConn's Read or Write runs through fn, a method value made
// once per connection. A closure made per call, as it was, escaped into
// the RawConn interface with the variables it set: 4 allocations per
// message routed (a read and a write). mu keeps concurrent calls of one
// direction, which net.Conn allows, each to its own turn; the descriptor
// would make them take turns anyway.
type call struct {
	mu    sync.Mutex
	fn    func(fd uintptr) bool
	p     []byte
	n     int // read: bytes read; write: bytes written so far
	errno syscall.Errno
}

// Wrap returns nc as a Conn when it is a *net.TCPConn, and nc itself
// otherwise (or when its descriptor cannot be reached).
func Wrap(nc net.Conn) net.Conn {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nc
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nc
	}
	c := &Conn{TCPConn: tc, rc: rc}
	c.r.fn, c.w.fn = c.read, c.write
	return c
}

// DialContext returns a dial function, for http.Transport's DialContext,
// that dials with d and wraps what it gets.
func DialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return Wrap(nc), nil
	}
}

// Read reads as net.Conn.Read does.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, errno, err := c.run(&c.r, p)
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case errno != 0:
		return 0, c.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// run makes call k (c.r or c.w) on p through syscall.RawConn's Read or
// Write, and returns what it left in k.
func (c *Conn) run(k *call, p []byte) (int, syscall.Errno, error) {
	k.mu.Lock()
	k.p, k.n, k.errno = p, 0, 0
	var err error
	if k == &c.w {
		err = c.rc.Write(k.fn)
	} else {
		err = c.rc.Read(k.fn)
	}
	n, errno := k.n, k.errno
	k.p = nil
	k.mu.Unlock()
	return n, errno, err
}

// read is the system call of Read, run by syscall.RawConn's Read.
func (c *Conn) read(fd uintptr) bool {
	p := c.r.p
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait until the poller says it is readable
		}
		c.r.n, c.r.errno = int(r), e
		return true
	}
}

// Write writes all of p, as net.Conn.Write does, waiting for the socket
// to take more whenever it is full. On an error it returns how much it
// wrote.
func (c *Conn) Write(p []byte) (int, error) {
	done, errno, err := c.run(&c.w, p)
	switch {
	case err != nil:
		return done, c.opError("write", err)
	case errno != 0:
		return done, c.opError("write", os.NewSyscallError("write", errno))
	}
	return done, nil
}

// write is the system call of Write, run by syscall.RawConn's Write.
func (c *Conn) write(fd uintptr) bool {
	p := c.w.p
	for c.w.n < len(p) {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[c.w.n])), uintptr(len(p)-c.w.n))
		switch e {
		case 0:
			c.w.n += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // wait until the poller says it is writable
		default:
			c.w.errno = e
			return true
		}
	}
	return true
}

// ReadFrom copies from r until io.EOF or an error, through Write.
// Without it, Conn would promote *net.TCPConn's ReadFrom, which io.Copy
// and bufio.Writer use, and net/http to send a request's body: that
// writes with net.Conn's system calls (or splice, or sendfile), which wake
// the monitor thread as described above.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(writeOnly{c}, r)
}

// WriteTo copies to w until io.EOF or an error, through Read, for the
// same reason as ReadFrom.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	return io.Copy(w, readOnly{c})
}

// writeOnly and readOnly hide Conn's ReadFrom and WriteTo from io.Copy,
// which would otherwise call them again.
type (
	writeOnly struct{ c *Conn }
	readOnly  struct{ c *Conn }
)

func (w writeOnly) Write(p []byte) (int, error) { return w.c.Write(p) }
func (r readOnly) Read(p []byte) (int, error)   { return r.c.Read(p) }

// opError wraps err as net.Conn's methods do. The errors of
// syscall.RawConn's methods come wrapped already, as a "raw-read" or
// "raw-write" operation: that wrapping is replaced.
func (c *Conn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
