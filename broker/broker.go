package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	transport "github.com/mqgate/mqgate/broker/listener"
	"github.com/mqgate/mqgate/broker/topics"
	"github.com/mqgate/mqgate/internal/rawconn"
	"github.com/mqgate/mqgate/mqtt"
	"github.com/mqgate/mqgate/store/wal"
	"golang.org/x/time/rate"
)

// ErrClosed is returned by Start after Shutdown.
var ErrClosed = errors.New("broker: closed")

// Broker is one MQTT broker node. Create it with New, then Start it; stop it
// with Shutdown.
type Broker struct {
	opts Options
	log  *slog.Logger

	index    *topics.Index
	retained *topics.Retained[*message]

	// mu guards sessions and closed. Lock order: Broker.mu, then session.mu,
	// then conn.wmu.
	mu       sync.Mutex
	sessions map[string]*session
	closed   bool

	listeners []*listener
	connsMu   sync.Mutex
	conns     map[*conn]struct{} // every live connection

	ctx    context.Context // cancelled by Shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the broker starts

	store *wal.Log // durable state; nil = memory only
	// retainMu orders changes of a retained message with their log
	// records (a leaf lock: taken around retained.Set/Delete and
	// store.Put/Delete only).
	retainMu sync.Mutex
	// persistMu orders the reference counts of messages held by durable
	// session entries (message.refs) with the log records of the messages
	// (a leaf lock: taken under session.mu around the count and
	// store.Write only).
	persistMu sync.Mutex
	// storeErrAt is when a failed write to the log was last reported
	// (Unix nanoseconds).
	storeErrAt atomic.Int64

	started time.Time
	msgSeq  atomic.Uint64 // message ids
	m       metrics
}

// New validates opts and returns a broker that is not yet listening.
func New(opts Options) (*Broker, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxPacketSize <= 0 || opts.MaxPacketSize > 268435455+5 {
		return nil, fmt.Errorf("broker: max packet size %d out of range", opts.MaxPacketSize)
	}
	if opts.MaxQoS > 2 {
		return nil, fmt.Errorf("broker: max qos %d out of range", opts.MaxQoS)
	}
	if opts.MaxInflight < 1 || opts.MaxInflight > 65535 {
		return nil, fmt.Errorf("broker: max inflight %d out of range 1..65535", opts.MaxInflight)
	}
	if opts.ReceiveMaximum < 1 || opts.ReceiveMaximum > 65535 {
		return nil, fmt.Errorf("broker: receive maximum %d out of range 1..65535", opts.ReceiveMaximum)
	}
	if opts.MaxClientIDLen < 1 {
		opts.MaxClientIDLen = 65535
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{
		opts:     opts,
		log:      opts.Logger.With("component", "broker"),
		index:    topics.NewIndex(opts.SharedStrategy),
		retained: topics.NewRetained[*message](),
		sessions: make(map[string]*session),
		conns:    make(map[*conn]struct{}),
		ctx:      ctx,
		cancel:   cancel,
	}
	return b, nil
}

// listener is one bound listening socket.
type listener struct {
	cfg   Listener
	ln    net.Listener
	count atomic.Int64 // live connections
	ident string
	tr    transport.Transport
	rate  *rate.Limiter // nil = no max_conn_rate
}

// Start binds every listener and starts accepting. It fails without
// listening at all if any listener cannot bind.
func (b *Broker) Start() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	b.mu.Unlock()
	// The durable state is restored before any client can connect.
	if b.store == nil {
		if err := b.openStore(); err != nil {
			return err
		}
	}
	var lns []*listener
	for _, l := range b.opts.Listeners {
		kind := l.Kind
		if kind == "" {
			kind = transport.TCP
		}
		tr := transport.Transport{Kind: kind, TLS: l.TLS, HandshakeTimeout: l.HandshakeTimeout, Path: l.WSPath,
			ProxyProtocol: l.ProxyProtocol, ProxyTimeout: l.ProxyProtocolTimeout,
			TrustedProxies: l.TrustedProxies, AddressHeader: l.ProxyAddressHeader, PortHeader: l.ProxyPortHeader}
		err := tr.Validate()
		var ln net.Listener
		if err == nil {
			ln, err = net.Listen("tcp", l.Addr)
		}
		if err != nil {
			for _, o := range lns {
				_ = o.ln.Close()
			}
			if b.store != nil {
				_ = b.store.Close()
				b.store = nil
			}
			b.dropRestored()
			return fmt.Errorf("broker: listener %s.%s on %s: %w", kind, l.Name, l.Addr, err)
		}
		nl := &listener{cfg: l, ln: ln, ident: string(kind) + ":" + l.Name, tr: tr}
		if l.MaxConnRate > 0 {
			nl.rate = rate.NewLimiter(rate.Limit(l.MaxConnRate), l.MaxConnRate)
		}
		lns = append(lns, nl)
	}
	b.started = time.Now()
	b.listeners = lns
	for _, l := range lns {
		b.log.Info("listening", "listener", l.ident, "addr", l.ln.Addr().String())
		b.goRun(func() { b.acceptLoop(l) })
	}
	b.startSys()
	b.startSweeper()
	return nil
}

// dropRestored forgets the sessions that a Start which then failed
// restored from the log (stopping their expiry and will timers and taking
// their subscriptions out of the index), so that a later Start restores
// them once, from the log again.
func (b *Broker) dropRestored() {
	b.mu.Lock()
	restored := b.sessions
	b.sessions = make(map[string]*session)
	b.mu.Unlock()
	for _, s := range restored {
		s.stopTimers()
		s.mu.Lock()
		filters := make([]string, 0, len(s.subs))
		for f := range s.subs {
			filters = append(filters, f)
		}
		s.mu.Unlock()
		for _, f := range filters {
			group, filter, _ := mqtt.ParseShared(f)
			b.index.Unsubscribe(s, filter, group)
		}
	}
}

// goRun starts f on a goroutine owned by the broker: Shutdown waits for it.
func (b *Broker) goRun(f func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
}

// Addr returns the bound address of the named listener, or nil. name is
// either a listener's name (the first listener of that name) or its
// identifier, e.g. "wss:external".
func (b *Broker) Addr(name string) net.Addr {
	for _, l := range b.listeners {
		if l.cfg.Name == name || l.ident == name {
			return l.ln.Addr()
		}
	}
	return nil
}

func (b *Broker) acceptLoop(l *listener) {
	var delay time.Duration
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if b.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failures such as EMFILE: back off, as net/http does.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay *= 2; delay > time.Second {
				delay = time.Second
			}
			b.log.Warn("accept failed", "listener", l.ident, "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-b.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		if max := l.cfg.MaxConnections; max > 0 && l.count.Load() >= int64(max) {
			b.m.connRefused.Add(1)
			_ = nc.Close()
			continue
		}
		if l.rate != nil && !l.rate.Allow() {
			b.m.connRateLimited.Add(1)
			_ = nc.Close()
			continue
		}
		l.count.Add(1)
		// Reads and writes as raw system calls (see package rawconn):
		// beneath TLS and WebSocket too. A refused connection, above, is
		// closed without it.
		nc = rawconn.Wrap(nc)
		if !l.tr.Passthrough() {
			// The handshake runs on its own short-lived goroutine: a slow
			// client does not hold up the accept loop, and the stack the
			// handshake grows is not kept by the connection's reader.
			b.wg.Add(1)
			go b.handshake(l, nc)
			continue
		}
		b.startConn(newConn(b, l, nc))
	}
}

// handshake reads the PROXY protocol header and performs the TLS handshake
// or WebSocket upgrade of an accepted connection, then starts serving it.
func (b *Broker) handshake(l *listener, nc net.Conn) {
	defer b.wg.Done()
	mc, peer, err := l.tr.Accept(b.ctx, nc)
	if err != nil {
		l.count.Add(-1)
		b.m.handshakeFailed.Add(1)
		b.log.Debug("handshake failed", "listener", l.ident, "peer", nc.RemoteAddr().String(), "err", err)
		_ = nc.Close()
		return
	}
	c := newConn(b, l, mc)
	c.cert = peer
	b.startConn(c)
}

// startConn registers c and starts its reader. A connection whose
// handshake ends after Shutdown began is closed: Shutdown cancels the
// context before it takes the snapshot of live connections under connsMu.
func (b *Broker) startConn(c *conn) {
	b.connsMu.Lock()
	if b.ctx.Err() != nil {
		b.connsMu.Unlock()
		c.l.count.Add(-1)
		_ = c.nc.Close()
		return
	}
	b.conns[c] = struct{}{}
	b.connsMu.Unlock()
	b.wg.Add(1)
	go c.serve()
}

// Shutdown stops accepting, sends v5 clients DISCONNECT 0x8B (server
// shutting down), flushes what each connection has queued and closes it. It
// returns when every goroutine of the broker has ended or ctx expires.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	for _, l := range b.listeners {
		_ = l.ln.Close()
	}
	b.cancel()
	for _, c := range b.liveConns() {
		c.kick(mqtt.ServerShuttingDown, "shutdown")
	}
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		// Flushing took too long: cut every connection and wait again.
		for _, c := range b.liveConns() {
			_ = c.nc.Close()
		}
		<-done
	}
	b.mu.Lock()
	for _, s := range b.sessions {
		s.stopTimers()
	}
	b.mu.Unlock()
	if b.store != nil {
		if err := b.store.Close(); err != nil {
			return fmt.Errorf("broker: store: %w", err)
		}
	}
	return nil
}

// liveConns returns a snapshot of the live connections.
func (b *Broker) liveConns() []*conn {
	b.connsMu.Lock()
	defer b.connsMu.Unlock()
	list := make([]*conn, 0, len(b.conns))
	for c := range b.conns {
		list = append(list, c)
	}
	return list
}

// newMessageID returns a process-unique message id.
func (b *Broker) newMessageID() uint64 { return b.msgSeq.Add(1) }
