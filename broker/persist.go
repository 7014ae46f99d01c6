package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/mqgate/mqgate/mqtt"
	"github.com/mqgate/mqgate/store/wal"
)

// Durable state. With Options.StoreDir set, the broker keeps its retained
// messages in a store/wal log under that directory: each set or clear is
// one put or delete keyed by 'r' + topic, replayed into the retained store
// by Start. Persistent sessions are not saved yet.

// errBadRecord is returned for a log record the broker cannot decode.
var errBadRecord = errors.New("broker: malformed record in the log")

const keyRetained = 'r'

// openStore opens the log and replays it into the broker's state. Expired
// retained messages are dropped and deleted from the log.
func (b *Broker) openStore() error {
	if b.opts.StoreDir == "" {
		return nil
	}
	o := wal.Options{Sync: b.opts.StoreSync, BatchInterval: b.opts.StoreBatchInterval, Logger: b.opts.Logger}
	start := time.Now()
	l, err := wal.Open(filepath.Join(b.opts.StoreDir, "broker"), o, b.applyRecord)
	if err != nil {
		return fmt.Errorf("broker: store: %w", err)
	}
	b.store = l
	var expired []string
	now := time.Now()
	b.retained.Match("#", func(topic string, m *message) bool {
		if m.expired(now) {
			expired = append(expired, topic)
		}
		return true
	})
	for _, t := range expired {
		b.retained.Delete(t)
		_ = l.Delete(string(keyRetained) + t)
	}
	b.log.Info("state restored", "retained", b.retained.Count(), "expired", len(expired),
		"bytes", l.Size(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// applyRecord applies one replayed record.
func (b *Broker) applyRecord(op wal.Op) error {
	if len(op.Key) == 0 {
		return errBadRecord
	}
	switch op.Key[0] {
	case keyRetained:
		topic := op.Key[1:]
		if op.Delete {
			b.retained.Delete(topic)
			return nil
		}
		m, err := decodeMessage(op.Value)
		if err != nil {
			return err
		}
		b.retained.Set(topic, m)
	}
	return nil
}

// persistRetained saves the retained message of m's topic, or its
// clearing. It never waits for the disk.
func (b *Broker) persistRetained(topic string, m *message) {
	if b.store == nil {
		return
	}
	var err error
	if m == nil {
		err = b.store.Delete(string(keyRetained) + topic)
	} else {
		err = b.store.Put(string(keyRetained)+topic, encodeMessage(nil, m))
	}
	if err != nil && !errors.Is(err, wal.ErrClosed) {
		b.log.Error("saving a retained message failed", "err", err)
	}
}

// encodeMessage appends m's durable form to dst: version, created and
// expiry (Unix nanoseconds, 0 = none), publisher, QoS, retain, topic,
// payload and the v5 properties as an encoded PUBLISH.
func encodeMessage(dst []byte, m *message) []byte {
	dst = append(dst, 1)
	dst = binary.AppendVarint(dst, m.created.UnixNano())
	var exp int64
	if !m.expiry.IsZero() {
		exp = m.expiry.UnixNano()
	}
	dst = binary.AppendVarint(dst, exp)
	dst = appendString(dst, m.from)
	dst = appendString(dst, m.fromUser)
	flags := m.qos
	if m.retain {
		flags |= 4
	}
	if m.userSet {
		flags |= 8
	}
	dst = append(dst, flags)
	dst = appendString(dst, m.topic)
	dst = appendString(dst, string(m.payload))
	var props []byte
	if m.props != nil {
		p := mqtt.Publish{Topic: "p", Props: *m.props}
		if out, _, err := mqtt.EncodePublish(nil, &p, mqtt.V5); err == nil {
			props = out
		}
	}
	return appendString(dst, string(props))
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// reader decodes what encodeMessage wrote; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errBadRecord
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.err = errBadRecord
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) bytes() []byte {
	n, k := binary.Uvarint(r.b)
	if k <= 0 || n > uint64(len(r.b)-k) {
		r.err = errBadRecord
		return nil
	}
	v := r.b[k : k+int(n)]
	r.b = r.b[k+int(n):]
	return v
}

// decodeMessage decodes a message; it copies what it keeps of b.
func decodeMessage(b []byte) (*message, error) {
	r := &reader{b: b}
	if r.byte() != 1 {
		return nil, fmt.Errorf("%w: unknown message version", errBadRecord)
	}
	m := &message{created: time.Unix(0, r.varint())}
	if exp := r.varint(); exp != 0 {
		m.expiry = time.Unix(0, exp)
	}
	m.from = string(r.bytes())
	m.fromUser = string(r.bytes())
	flags := r.byte()
	m.qos, m.retain, m.userSet = flags&3, flags&4 != 0, flags&8 != 0
	m.topic = string(r.bytes())
	m.payload = append([]byte(nil), r.bytes()...)
	props := r.bytes()
	if r.err != nil {
		return nil, r.err
	}
	if len(props) > 0 {
		pkt := append([]byte(nil), props...)
		h, n, err := mqtt.ParseFixedHeader(pkt)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errBadRecord, err)
		}
		p, err := mqtt.Decode(h, pkt[n:], mqtt.V5)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errBadRecord, err)
		}
		if pub, ok := p.(*mqtt.Publish); ok && !pub.Props.Empty() {
			pr := pub.Props
			m.props = &pr
		}
	}
	return m, nil
}

// storeBytes returns the size of the log's files, 0 without a store.
func (b *Broker) storeBytes() uint64 {
	if b.store == nil {
		return 0
	}
	return uint64(b.store.Size())
}
