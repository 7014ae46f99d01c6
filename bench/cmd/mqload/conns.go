package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mqgate/mqgate/bench/procstat"
	"github.com/mqgate/mqgate/bench/wire"
)

// connWorkers is how many connections are opened in parallel.
const connWorkers = 32

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit and reports
// an error if that leaves fewer than need descriptors.
func raiseFileLimit(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return fmt.Errorf("setrlimit: %w", err)
		}
	}
	if lim.Cur < need {
		return fmt.Errorf("need %d file descriptors, the hard limit is %d", need, lim.Max)
	}
	return nil
}

// runConns opens cfg.conns idle connections, lets the broker settle, and
// charges the growth of its resident memory to them. The measured interval
// (for connections per second and per CPU-second) is the opening.
func runConns(cfg *config, res *result) error {
	if err := raiseFileLimit(uint64(cfg.conns) + 256); err != nil {
		return err
	}
	m := meter{pid: cfg.pid}
	res.Conns = cfg.conns
	var rss0 int64
	if cfg.pid > 0 {
		var err error
		if rss0, err = procstat.RSS(cfg.pid); err != nil {
			return err
		}
	}
	conns := make([]net.Conn, cfg.conns)
	var opened atomic.Uint64
	var errs errOnce
	var failed atomic.Int64
	s0, err := m.snap(0)
	if err != nil {
		return err
	}
	parallel(cfg.conns, func(i int) {
		nc, err := openIdle(cfg.tr, cfg.addr, fmt.Sprintf("mqload-%d-idle%d", os.Getpid(), i), uint16(cfg.keepAlive))
		if err != nil {
			failed.Add(1)
			errs.set(err)
			return
		}
		conns[i] = nc
		opened.Add(1)
	})
	s1, err := m.snap(opened.Load())
	if err != nil {
		return err
	}
	res.measure(s0, s1)
	defer parallel(len(conns), func(i int) {
		if conns[i] != nil {
			_ = conns[i].SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = conns[i].Write(wire.AppendDisconnect(nil))
			_ = conns[i].Close()
		}
	})
	time.Sleep(cfg.settle)
	if cfg.pid > 0 {
		rss1, err := procstat.RSS(cfg.pid)
		if err != nil {
			return err
		}
		res.RSSBefore, res.RSSAfter = rss0, rss1
		if n := opened.Load(); n > 0 {
			res.BytesPerConn = float64(rss1-rss0) / float64(n)
		}
	}
	// Every connection must still be served: each answers a PINGREQ.
	var alive atomic.Int64
	parallel(len(conns), func(i int) {
		if conns[i] == nil {
			return
		}
		if err := ping(conns[i]); err != nil {
			errs.set(err)
			return
		}
		alive.Add(1)
	})
	res.Alive = int(alive.Load())
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d of %d connections failed, first: %w", n, cfg.conns, errs.get())
	}
	if res.Alive != cfg.conns {
		return fmt.Errorf("%d of %d connections did not answer a ping, first: %w", cfg.conns-res.Alive, cfg.conns, errs.get())
	}
	return nil
}

// parallel calls f(0..n-1) on connWorkers goroutines.
func parallel(n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < connWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// openIdle connects and completes CONNECT/CONNACK with no buffers kept: an
// idle connection costs this process only its socket.
func openIdle(tr *transport, addr, clientID string, keepAlive uint16) (net.Conn, error) {
	nc, err := tr.dial(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if err := handshakeIdle(nc, clientID, keepAlive); err != nil {
		nc.Close()
		return nil, err
	}
	return nc, nil
}

func handshakeIdle(nc net.Conn, clientID string, keepAlive uint16) error {
	if err := nc.SetDeadline(time.Now().Add(handshakeTimeout)); err != nil {
		return fmt.Errorf("connect %s: %w", clientID, err)
	}
	if _, err := nc.Write(wire.AppendConnect(make([]byte, 0, 64), clientID, keepAlive, true)); err != nil {
		return fmt.Errorf("connect %s: %w", clientID, err)
	}
	var ack [4]byte
	if _, err := io.ReadFull(nc, ack[:]); err != nil {
		return fmt.Errorf("connect %s: waiting for connack: %w", clientID, err)
	}
	// CONNACK is 0x20, remaining length 2 [MQTT-3.2.0-1].
	if ack[0] != wire.TypeConnack<<4 || ack[1] != 2 {
		return fmt.Errorf("connect %s: got % x, not a connack", clientID, ack)
	}
	c, err := wire.ParseConnack(ack[2:])
	if err != nil {
		return fmt.Errorf("connect %s: %w", clientID, err)
	}
	if c.Code != 0 {
		return fmt.Errorf("connect %s: refused with return code %d", clientID, c.Code)
	}
	return nc.SetDeadline(time.Time{})
}

// ping sends PINGREQ and expects PINGRESP [MQTT-3.12.4-1].
func ping(nc net.Conn) error {
	if err := nc.SetDeadline(time.Now().Add(handshakeTimeout)); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	if _, err := nc.Write(wire.AppendPingreq(nil)); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	var resp [2]byte
	if _, err := io.ReadFull(nc, resp[:]); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	if resp != [2]byte{wire.TypePingresp << 4, 0} {
		return fmt.Errorf("ping: got % x, not a pingresp", resp)
	}
	return nil
}
