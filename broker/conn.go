package broker

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqgate/mqgate/access"
	transport "github.com/mqgate/mqgate/broker/listener"
	"github.com/mqgate/mqgate/mqtt"
)

// smallBuf is the read buffer every connection owns. An idle connection
// parks its reader on these bytes only; larger reads borrow a pooled buffer
// while data keeps arriving and give it back after a short read.
const smallBuf = 128

// bigBuf is the pooled read buffer size used while a connection is busy.
const bigBuf = 16 << 10

// writeTimeout bounds one socket write; a peer that does not read for this
// long is cut.
const writeTimeout = 15 * time.Second

var readPool = sync.Pool{New: func() any { b := make([]byte, bigBuf); return &b }}

var writePool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxPooledWrite is the largest write buffer given back to writePool: a
// large message's buffer is left to the collector.
const maxPooledWrite = 64 << 10

// conn is one network connection. Its reader goroutine owns the inbound
// state and runs the teardown; other goroutines only append outbound bytes
// (under wmu) or ask it to stop (kick).
type conn struct {
	b    *Broker
	l    *listener
	nc   net.Conn
	peer netip.AddrPort

	// From the TLS handshake: the verified client certificate, if any.
	cert transport.Peer

	aclLast *lastDecision // reader goroutine only; nil until the first PUBLISH
	pub     *mqtt.Publish // reader goroutine only: the PUBLISH being handled; nil until the first
	ack     *mqtt.Ack     // reader goroutine only: the PUBACK, PUBREC, PUBREL or PUBCOMP being handled

	// Set during CONNECT by the reader, read-only afterwards.
	version   mqtt.Version
	clientID  string
	sess      *session
	info      connInfo // from the CONNECT; valid once infoSet
	infoSet   bool
	connAt    time.Time
	superuser bool
	grants    *access.Decision // rules and expiry the authentication granted; nil when none
	authT     *time.Timer      // disconnects when the credentials expire

	keepAlive time.Duration // 1.5 × the negotiated keep alive; 0 = none

	// Inbound v5 state, reader goroutine only.
	aliasIn map[uint16]string

	// ackWait counts acknowledgements waiting for the log (see writeAck),
	// outWait PUBLISH packets (see writeHeld).
	ackWait atomic.Int32
	outWait atomic.Int32

	// Outbound limits the client announced (v5), read-only after CONNECT.
	clientMaxPacket uint32 // 0 = unlimited
	clientAliasMax  uint16
	clientRecvMax   int

	// wmu guards the outbound buffer and the closing state.
	wmu      sync.Mutex
	out      *[]byte // pending bytes; nil when empty
	flushing bool    // a flusher goroutine is running
	dead     bool    // no more writes: the socket failed or is closing
	sealed   bool    // only the final DISCONNECT may still be queued
	stopping bool    // teardown requested; reason below
	stopCode mqtt.ReasonCode
	stopWhy  string
	flushed  chan struct{} // closed when the flusher exits while stopping

	// aliasOut maps topics to the aliases this connection's client knows;
	// guarded by the session lock (deliveries encode under it).
	aliasOut map[string]uint16

	small [smallBuf]byte
}

func newConn(b *Broker, l *listener, nc net.Conn) *conn {
	c := &conn{b: b, l: l, nc: nc}
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		c.peer = ap
	}
	return c
}

// errStop is returned by handlers when the connection must end; the reason
// is recorded in stopCode/stopWhy.
var errStop = errors.New("connection stopping")

// connInfo is what the broker keeps of a CONNECT: a compact copy, so that
// an idle connection does not hold the whole decoded packet.
type connInfo struct {
	username    string
	usernameSet bool
	cleanStart  bool
	keepAlive   uint16
	protoName   string
	expiry      uint32 // v5 Session Expiry Interval as requested
	will        *mqtt.Will
}

// readState is the inbound buffer of a connection: the bytes held and
// where they are (the connection's small array or a borrowed buffer).
type readState struct {
	buf    []byte
	pooled *[]byte
	held   int
}

// serve runs the connection until CONNECT has been handled, on the
// goroutine the listener started. It then hands the connection to a fresh
// goroutine: the deep stack that authentication and session set-up grew is
// freed, and an idle connection keeps only a minimal stack parked in Read.
func (c *conn) serve() {
	defer c.b.wg.Done()
	st := readState{buf: c.small[:]}
	_ = c.nc.SetReadDeadline(time.Now().Add(c.b.opts.IdleTimeout))
	if c.readLoop(&st, true) {
		c.b.wg.Add(1)
		go c.serveConnected(st)
		return
	}
	c.teardown()
}

// serveConnected reads and dispatches packets until the connection ends,
// then tears it down.
func (c *conn) serveConnected(st readState) {
	defer c.b.wg.Done()
	c.readLoop(&st, false)
	c.teardown()
}

// readLoop reads and dispatches packets until the connection must end, or,
// with untilConnect, until the client is connected (it then returns true).
func (c *conn) readLoop(st *readState, untilConnect bool) (handoff bool) {
	b := c.b
	buf, pooled, held := st.buf, st.pooled, st.held
	defer func() { st.buf, st.pooled, st.held = buf, pooled, held }()
	for {
		n, err := c.nc.Read(buf[held:])
		if n > 0 {
			b.m.bytesReceived.Add(uint64(n))
			held += n
			off, need, perr := c.parse(buf[:held])
			if perr != nil {
				return false
			}
			held = copy(buf, buf[off:held])
			switch {
			case need > len(buf):
				// A packet larger than the buffer: borrow one that fits.
				var nb *[]byte
				if need <= bigBuf {
					nb = readPool.Get().(*[]byte)
				} else {
					s := make([]byte, need)
					nb = &s
				}
				copy(*nb, buf[:held])
				if pooled != nil && cap(*pooled) == bigBuf {
					readPool.Put(pooled)
				}
				pooled, buf = nb, *nb
			case pooled == nil && n == len(c.small) && held < bigBuf:
				// The small buffer filled up: data is streaming in.
				pooled = readPool.Get().(*[]byte)
				copy(*pooled, buf[:held])
				buf = *pooled
			case pooled != nil && held < smallBuf && need <= smallBuf && n < len(buf)/2:
				// A short read: the burst is over, give the buffer back,
				// unless what is held would fill the small buffer (the
				// next read would ask for nothing and the loop would
				// spin) or belongs to a packet that needs more.
				copy(c.small[:], buf[:held])
				if cap(*pooled) == bigBuf {
					readPool.Put(pooled)
				}
				pooled, buf = nil, c.small[:]
			}
			if untilConnect && c.sess != nil {
				return true
			}
		}
		if err != nil {
			if c.isStopping() {
				return false
			}
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				if c.sess == nil {
					c.setStop(0, "idle_timeout")
				} else {
					b.m.keepaliveKicks.Add(1)
					c.setStop(mqtt.KeepAliveTimeout, "keepalive_timeout")
				}
			case errors.Is(err, io.EOF):
				c.setStop(0, "tcp_closed")
			default:
				c.setStop(0, "sock_error")
			}
			return false
		}
		if c.keepAlive > 0 {
			_ = c.nc.SetReadDeadline(time.Now().Add(c.keepAlive))
		}
		// A kick between Read and the deadline above must not be lost.
		if c.isStopping() {
			return false
		}
	}
}

// parse decodes and handles every complete packet in buf. It returns how
// many bytes it consumed and, when a packet is incomplete, the buffer size
// that packet needs. A non-nil error means the connection must end.
func (c *conn) parse(buf []byte) (off, need int, err error) {
	b := c.b
	for off < len(buf) {
		h, hn, err := mqtt.ParseFixedHeader(buf[off:])
		if errors.Is(err, mqtt.ErrIncomplete) {
			return off, 0, nil
		}
		if err != nil {
			c.protocolFailure(err)
			return off, 0, errStop
		}
		total := hn + h.Remaining
		if total > b.opts.MaxPacketSize {
			// [MQTT-3.2.2-15] (v5): a packet over our Maximum Packet Size.
			c.setStop(mqtt.PacketTooLarge, "packet_too_large")
			return off, 0, errStop
		}
		if len(buf)-off < total {
			return off, total, nil
		}
		if c.sess == nil && h.Type != mqtt.CONNECT {
			// [MQTT-3.1.0-1] the first packet must be CONNECT.
			c.setStop(mqtt.ProtocolError, "protocol_error")
			return off, 0, errStop
		}
		if c.sess != nil && h.Type == mqtt.CONNECT {
			// [MQTT-3.1.0-2] a second CONNECT is a protocol error, whatever
			// it holds.
			c.setStop(mqtt.ProtocolError, "protocol_error")
			return off, 0, errStop
		}
		// A PUBLISH or an acknowledgement is decoded into the
		// connection's own packet value: their handlers keep field values
		// only, so one serves them all. Each is made at the first such
		// packet: an idle connection does not carry it.
		var pkt mqtt.Packet
		switch h.Type {
		case mqtt.PUBLISH:
			if c.pub == nil {
				c.pub = new(mqtt.Publish)
			}
			err = mqtt.DecodePublish(h, buf[off+hn:off+total], c.version, c.pub)
			pkt = c.pub
		case mqtt.PUBACK, mqtt.PUBREC, mqtt.PUBREL, mqtt.PUBCOMP:
			if c.ack == nil {
				c.ack = new(mqtt.Ack)
			}
			err = mqtt.DecodeAck(h, buf[off+hn:off+total], c.version, c.ack)
			pkt = c.ack
		default:
			pkt, err = mqtt.Decode(h, buf[off+hn:off+total], c.version)
		}
		off += total
		b.m.packetsReceived.Add(1)
		if err != nil {
			if cp, ok := pkt.(*mqtt.Connect); ok && cp.Version > mqtt.V5 {
				// A level above 5 is refused in the 5.0 CONNACK format
				// [MQTT-3.1.2-2].
				c.version = mqtt.V5
			}
			c.protocolFailure(err)
			return off, 0, errStop
		}
		if err := c.handle(pkt); err != nil {
			return off, 0, err
		}
	}
	return off, 0, nil
}

// protocolFailure ends the connection for a malformed packet or a protocol
// error, with the reason code the decoder chose.
func (c *conn) protocolFailure(err error) {
	code := mqtt.MalformedPacket
	var me *mqtt.Error
	if errors.As(err, &me) {
		code = me.Code
	}
	c.b.log.Debug("protocol failure", "client", c.clientID, "peer", c.peer.String(), "err", err)
	if c.sess == nil && errors.Is(err, mqtt.UnsupportedProtocolVersion) {
		c.refuseVersion()
		c.setStop(0, "unsupported_protocol_version")
		return
	}
	c.setStop(code, "protocol_error")
}

// handle dispatches one decoded packet.
func (c *conn) handle(pkt mqtt.Packet) error {
	switch p := pkt.(type) {
	case *mqtt.Connect:
		if c.sess != nil {
			// [MQTT-3.1.0-2] a second CONNECT is a protocol error.
			c.setStop(mqtt.ProtocolError, "protocol_error")
			return errStop
		}
		return c.handleConnect(p)
	case *mqtt.Publish:
		return c.handlePublish(p)
	case *mqtt.Ack:
		return c.handleAck(p)
	case *mqtt.Subscribe:
		return c.handleSubscribe(p)
	case *mqtt.Unsubscribe:
		return c.handleUnsubscribe(p)
	case *mqtt.Pingreq:
		c.b.m.pingReceived.Add(1)
		c.writePacket(&mqtt.Pingresp{})
		return nil
	case *mqtt.Disconnect:
		return c.handleDisconnect(p)
	case *mqtt.Auth:
		return c.handleAuth(p)
	default:
		// CONNACK, SUBACK, UNSUBACK and PINGRESP go from server to client only.
		c.setStop(mqtt.ProtocolError, "protocol_error")
		return errStop
	}
}

// writePacket encodes p for this connection and queues it.
func (c *conn) writePacket(p mqtt.Packet) bool {
	return c.writeEncoded(p.Type(), func(dst []byte) ([]byte, error) { return p.Encode(dst, c.version) })
}

// writeEncoded queues what encode appends to a pooled buffer. Callers that
// encode through a concrete packet type in encode keep the packet off the
// heap (writePacket's interface makes it escape): the CONNACK, and the
// acknowledgement of every QoS 1 and 2 message.
func (c *conn) writeEncoded(t mqtt.Type, encode func(dst []byte) ([]byte, error)) bool {
	bp := writePool.Get().(*[]byte)
	out, err := encode((*bp)[:0])
	if err != nil {
		c.b.log.Error("encode failed", "client", c.clientID, "type", t, "err", err)
		writePool.Put(bp)
		return false
	}
	ok := c.write(out)
	*bp = out[:0]
	writePool.Put(bp)
	return ok
}

// write queues encoded bytes for sending and makes sure a flusher runs. It
// never blocks on the network. It returns false when the connection is dead
// or when the bytes would pass max_queued_bytes, in which case the
// connection is cut as a slow consumer.
func (c *conn) write(p []byte) bool { return c.queue(p, false) }

// writeLast queues the server's last packet, a DISCONNECT: it passes
// max_queued_bytes and the seal of a cut slow consumer, and nothing is
// queued after it [MQTT-3.14.4-1].
func (c *conn) writeLast(p mqtt.Packet) bool {
	out, err := p.Encode(nil, c.version)
	if err != nil {
		c.b.log.Error("encode failed", "client", c.clientID, "type", p.Type(), "err", err)
		return false
	}
	return c.queue(out, true)
}

// queue is write; last marks the final packet (see writeLast).
func (c *conn) queue(p []byte, last bool) bool {
	c.wmu.Lock()
	if c.dead || (c.sealed && !last) {
		c.wmu.Unlock()
		return false
	}
	if c.out == nil {
		c.out = writePool.Get().(*[]byte)
		*c.out = (*c.out)[:0]
	}
	if max := c.b.opts.MaxQueuedBytes; max > 0 && !last && len(*c.out)+len(p) > max {
		already := c.stopping
		if !already {
			// A slow consumer gets nothing more but the DISCONNECT.
			c.sealed = true
		}
		c.wmu.Unlock()
		if !already {
			c.b.m.slowConsumers.Add(1)
			c.b.log.Warn("slow consumer disconnected", "client", c.clientID, "peer", c.peer.String(), "queued_bytes", max)
			c.kickNow(mqtt.QuotaExceeded, "slow_consumer")
		}
		return false
	}
	*c.out = append(*c.out, p...)
	c.sealed = c.sealed || last
	c.b.m.packetsSent.Add(1)
	if !c.flushing {
		c.flushing = true
		c.b.wg.Add(1)
		go c.flush()
	}
	c.wmu.Unlock()
	return true
}

// flush writes queued bytes until none are left, then exits: a connection
// with nothing to send has no flusher goroutine.
func (c *conn) flush() {
	defer c.b.wg.Done()
	var spare *[]byte
	for {
		c.wmu.Lock()
		if c.out == nil || len(*c.out) == 0 || c.dead {
			c.flushing = false
			if c.out != nil && len(*c.out) == 0 {
				writePool.Put(c.out)
				c.out = nil
			}
			if c.stopping && c.flushed != nil {
				close(c.flushed)
				c.flushed = nil
			}
			c.wmu.Unlock()
			if spare != nil {
				writePool.Put(spare)
			}
			return
		}
		buf := c.out
		if spare != nil {
			*spare = (*spare)[:0]
		}
		c.out = spare
		spare = nil
		c.wmu.Unlock()

		_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		n, err := c.nc.Write(*buf)
		c.b.m.bytesSent.Add(uint64(n))
		if cap(*buf) <= maxPooledWrite {
			spare = buf
		}
		if err != nil {
			c.wmu.Lock()
			c.dead = true
			c.wmu.Unlock()
			c.setStop(0, "sock_error")
			// Wake the reader so that it runs the teardown.
			_ = c.nc.SetReadDeadline(time.Now())
		}
	}
}

// setStop records why the connection ends (the first reason wins).
func (c *conn) setStop(code mqtt.ReasonCode, why string) {
	c.wmu.Lock()
	if !c.stopping {
		c.stopping = true
		c.stopCode = code
		c.stopWhy = why
	}
	c.wmu.Unlock()
}

func (c *conn) isStopping() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.stopping
}

// kick asks the connection to end from another goroutine: it records the
// reason and wakes the reader, which sends the v5 DISCONNECT, flushes and
// tears down.
func (c *conn) kick(code mqtt.ReasonCode, why string) {
	c.setStop(code, why)
	_ = c.nc.SetReadDeadline(time.Now())
}

// kickNow is kick for a connection whose queued output is to be dropped (a
// slow consumer): nothing more is written but the DISCONNECT.
func (c *conn) kickNow(code mqtt.ReasonCode, why string) {
	c.wmu.Lock()
	if c.out != nil {
		*c.out = (*c.out)[:0]
	}
	c.wmu.Unlock()
	c.kick(code, why)
}

// teardown runs once on the reader goroutine when the connection ends: it
// sends a v5 DISCONNECT with the reason (if any), flushes, detaches the
// session (publishing the will when due) and closes the socket.
func (c *conn) teardown() {
	b := c.b
	c.wmu.Lock()
	c.stopping = true
	code, why := c.stopCode, c.stopWhy
	c.wmu.Unlock()
	if why == "" {
		why = "normal"
	}
	if c.authT != nil {
		c.authT.Stop()
	}
	if f, ok := b.opts.Authorizer.(access.Forgetter); ok && c.sess != nil {
		f.Forget(c.clientID)
	}
	if c.sess != nil && c.version == mqtt.V5 && code >= 0x80 {
		// [MQTT-4.13.2-1] tell a v5 client why, when the server closes.
		d := &mqtt.Disconnect{ReasonCode: code}
		// The reason string says why, e.g. "slow_consumer" (DISCONNECT
		// may carry one whatever Request Problem Information said).
		d.Props.ReasonString = why
		d.Props.Set(mqtt.PropReasonString)
		c.writeLast(d)
		b.m.disconnectSent.Add(1)
	} else if c.sess == nil && c.version == mqtt.V5 && code >= 0x80 && code != mqtt.KeepAliveTimeout {
		// Before CONNACK the reason goes in a CONNACK [MQTT-4.13.1-1].
		c.writePacket(&mqtt.Connack{ReasonCode: code})
	}
	c.waitFlushed()
	c.wmu.Lock()
	c.dead = true
	if c.out != nil {
		writePool.Put(c.out)
		c.out = nil
	}
	c.wmu.Unlock()
	b.connsMu.Lock()
	delete(b.conns, c)
	b.connsMu.Unlock()
	c.l.count.Add(-1)
	if c.sess != nil {
		b.m.connCount.Add(-1)
		b.detach(c, why)
	}
	// Closed after detach: a client that reconnects as soon as it sees
	// the close finds its session already ended or offline
	// [MQTT-3.1.2-6].
	_ = c.nc.Close()
}

// waitFlushed waits until the flusher has written what is queued, for at
// most the shutdown timeout.
func (c *conn) waitFlushed() {
	c.wmu.Lock()
	if !c.flushing || c.dead {
		c.wmu.Unlock()
		return
	}
	ch := make(chan struct{})
	c.flushed = ch
	c.wmu.Unlock()
	t := time.NewTimer(c.b.opts.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
		_ = c.nc.SetWriteDeadline(time.Now())
		<-ch
	}
}
