// Package wal is the broker's durable state: a key/value log kept as an
// append-only, segmented file of CRC-checked records, replayed into the
// broker's memory at start.
//
// The broker keeps its state (persistent sessions, subscriptions, queued and
// in-flight messages, retained messages, delayed wills) in memory, and
// writes every change of it here as a put or a delete of one key. Open
// replays the records in the order they were written, so the caller rebuilds
// the state by applying them; nothing is ever read back afterwards except by
// compaction.
//
// Writes are group-committed: Write appends the encoded records to a buffer
// in memory and returns at once; one goroutine writes the buffer with one
// write(2) and makes it durable with one fsync, then calls each writer's
// done function, in the order of the writes. SyncAlways makes every Write
// with a done function durable on its own (one fsync each; writes without
// one, which nobody waits for, share the next); SyncBatch (the default) covers all
// the writes that arrived meanwhile, plus those of BatchInterval, with one
// fsync. A caller that must not answer before its records are durable (a
// PUBACK) passes a done function.
//
// Record layout, little endian: body length (4 bytes), CRC-32C of the body
// (4), then the body: kind (1: put, 2: delete), key length (uvarint), key,
// value. A record cut short or failing its CRC ends a segment: in the newest
// segment (a write torn by a crash) the file is truncated there; in an older
// one the rest is skipped. Either way the loss is logged, never a panic.
//
// Compaction: the log knows where the live record of every key is. When the
// files hold more than CompactMinSize and the dead fraction passes
// CompactRatio, a new segment is started, the live records of the older
// segments are copied into it a chunk at a time between batches of writes,
// and the older segments are deleted. Keys are whatever the caller makes
// them: the log only compares them.
package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqgate/mqgate/store"
)

// ErrLocked is wrapped by the error of Open when another process holds
// the directory.
var ErrLocked = store.ErrLocked

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("wal: closed")

// Sync is the durability mode.
type Sync int

const (
	// SyncBatch group-commits: one fsync covers every write that arrived
	// since the last one.
	SyncBatch Sync = iota
	// SyncAlways fsyncs each Write that has a done function on its own;
	// writes without one share the next fsync.
	SyncAlways
)

// String returns the configuration name of the mode.
func (s Sync) String() string {
	if s == SyncAlways {
		return "always"
	}
	return "batch"
}

// ParseSync returns the mode of a configuration name, "batch" or "always".
func ParseSync(s string) (Sync, error) {
	switch s {
	case "batch":
		return SyncBatch, nil
	case "always":
		return SyncAlways, nil
	}
	return SyncBatch, fmt.Errorf("wal: unknown sync mode %q", s)
}

// Options tunes Open. The zero value is usable.
type Options struct {
	Sync Sync
	// BatchInterval is how long the writer waits, after a write arrives,
	// for more to share its fsync (SyncBatch only); 0 writes at once, and
	// batches form only from what arrives during an fsync.
	BatchInterval time.Duration
	// SegmentSize is the size after which a new segment file is started;
	// 0 means 64 MiB.
	SegmentSize int64
	// CompactMinSize is the total size below which the log is never
	// compacted; 0 means 64 MiB.
	CompactMinSize int64
	// CompactRatio is the dead fraction of the files past which the log
	// is compacted; 0 means 0.5.
	CompactRatio float64
	// MaxPending is the size of encoded records waiting for the writer
	// past which Write blocks until they are written; 0 means 64 MiB.
	MaxPending int
	// Logger reports damaged records found at open and write errors.
	Logger *slog.Logger
}

// Op is one change: Value stored under Key, or Key deleted.
type Op struct {
	Key    string
	Value  []byte
	Delete bool
}

const (
	headerSize = 8 // length, crc
	kindPut    = 1
	kindDel    = 2
	maxRecord  = 512 << 20
	segSuffix  = ".wal"
	chunk      = 8192 // records copied by compaction per round
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type segment struct {
	num  uint64
	path string
	f    *os.File // read (and, for the newest, written)
	size int64
}

// loc is where the live record of a key is.
type loc struct {
	seg uint64
	off int64  // of the record header
	n   uint32 // record size, header included
}

// pendOp is a record waiting in the pending buffer.
type pendOp struct {
	key string
	off int // in the pending buffer
	n   int
	del bool
}

// unit is one Write: its records end at end in the pending buffer.
type unit struct {
	end  int
	ops  int // pending ops up to and including this unit
	done func()
}

// Log is the open log. Write may be called from any goroutine; the other
// state belongs to the writer goroutine.
type Log struct {
	dir  string
	o    Options
	log  *slog.Logger
	lock *os.File

	mu      sync.Mutex
	space   *sync.Cond // signalled when the pending buffer is taken
	pend    []byte
	pops    []pendOp
	units   []unit
	closed  bool
	werr    error // first write error: the log stops accepting writes
	wake    chan struct{}
	stop    chan struct{}
	stopped chan struct{}

	// Writer goroutine only (and Open before it starts).
	segs      []*segment // oldest first; the last one is written to
	index     map[string]loc
	liveBytes int64
	spare     []byte
	sparePops []pendOp
	spareU    []unit
	compact   []string // keys left to copy forward; nil when not compacting
	compactTo uint64   // segments below this number are being emptied

	size        atomic.Int64 // bytes of all segment files
	compactions atomic.Uint64
	syncs       atomic.Uint64
	records     atomic.Uint64 // puts and deletes accepted by Write
}

// Open opens the log in dir, creating the directory if needed, and calls
// apply for every record in the order written (Value is only valid during
// the call). A damaged record ends its segment, with a log line. A second
// process opening the same dir gets ErrLocked.
func Open(dir string, o Options, apply func(Op) error) (*Log, error) {
	if o.SegmentSize <= 0 {
		o.SegmentSize = 64 << 20
	}
	if o.CompactMinSize <= 0 {
		o.CompactMinSize = 64 << 20
	}
	if o.CompactRatio <= 0 || o.CompactRatio >= 1 {
		o.CompactRatio = 0.5
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 64 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	lock, err := store.LockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	l := &Log{
		dir:     dir,
		o:       o,
		log:     o.Logger.With("component", "wal"),
		lock:    lock,
		index:   make(map[string]loc),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	l.space = sync.NewCond(&l.mu)
	if err := l.load(apply); err != nil {
		l.closeFiles()
		return nil, err
	}
	go l.run()
	return l, nil
}

// load replays every segment in order, then opens the newest for appending.
func (l *Log) load(apply func(Op) error) error {
	files, err := store.SegmentFiles(l.dir, segSuffix)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	for _, sf := range files {
		l.segs = append(l.segs, &segment{num: sf.Num, path: sf.Path})
	}
	for i, sg := range l.segs {
		if err := l.replay(sg, i == len(l.segs)-1, apply); err != nil {
			return err
		}
	}
	var total int64
	for _, sg := range l.segs {
		total += sg.size
	}
	l.size.Store(total)
	if len(l.segs) == 0 {
		return l.roll()
	}
	cur := l.segs[len(l.segs)-1]
	f, err := os.OpenFile(cur.path, os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	if _, err := f.Seek(cur.size, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("wal: %w", err)
	}
	cur.f = f
	for _, sg := range l.segs[:len(l.segs)-1] {
		if sg.f, err = os.Open(sg.path); err != nil {
			return fmt.Errorf("wal: %w", err)
		}
	}
	return nil
}

// replay reads one segment's records, applies them and indexes them.
func (l *Log) replay(sg *segment, newest bool, apply func(Op) error) error {
	f, err := os.Open(sg.path)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var hdr [headerSize]byte
	var body []byte
	var off int64
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				sg.size = off
				return nil
			}
			return l.torn(sg, off, newest, "record header cut short")
		}
		n := binary.LittleEndian.Uint32(hdr[0:4])
		if n < 2 || n > maxRecord {
			return l.torn(sg, off, newest, "bad record length")
		}
		if cap(body) < int(n) {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			return l.torn(sg, off, newest, "record cut short")
		}
		if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(hdr[4:8]) {
			return l.torn(sg, off, newest, "checksum mismatch")
		}
		kind := body[0]
		klen, k := binary.Uvarint(body[1:])
		if k <= 0 || klen > uint64(len(body)-1-k) || (kind != kindPut && kind != kindDel) {
			return l.torn(sg, off, newest, "malformed record")
		}
		key := string(body[1+k : 1+k+int(klen)])
		op := Op{Key: key, Value: body[1+k+int(klen):], Delete: kind == kindDel}
		size := int64(headerSize) + int64(n)
		if old, ok := l.index[key]; ok {
			l.liveBytes -= int64(old.n)
			delete(l.index, key)
		}
		if !op.Delete {
			l.index[key] = loc{seg: sg.num, off: off, n: uint32(size)}
			l.liveBytes += size
		}
		if err := apply(op); err != nil {
			return fmt.Errorf("wal: replay %s at %d: %w", sg.path, off, err)
		}
		off += size
	}
}

// torn handles a damaged record at off: the rest of the segment is lost.
func (l *Log) torn(sg *segment, off int64, newest bool, why string) error {
	lost, err := store.CutTorn(sg.path, off, newest)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	l.log.Warn("damaged record in the broker's log; the rest of the segment is skipped",
		"file", sg.path, "offset", off, "bytes_lost", lost, "why", why)
	sg.size = off
	return nil
}

// roll starts a new newest segment.
func (l *Log) roll() error {
	var num uint64 = 1
	if n := len(l.segs); n > 0 {
		num = l.segs[n-1].num + 1
	}
	sg := &segment{num: num, path: store.SegmentPath(l.dir, num, segSuffix)}
	f, err := os.OpenFile(sg.path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	sg.f = f
	l.segs = append(l.segs, sg)
	if err := store.SyncDir(l.dir); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	return nil
}

// appendRecord appends one encoded record to b.
func appendRecord(b []byte, kind byte, key string, val []byte) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, kind)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = append(b, val...)
	body := b[start+headerSize:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(body, castagnoli))
	return b
}

// Write queues ops to be written in order and returns without waiting for
// the disk, unless more than MaxPending bytes already wait. done, if not
// nil, is called on the writer goroutine once the ops (and every earlier
// write) are durable, in the order of the writes; it must not block or call
// Write. A write that fails stops the log: later writes return the error
// and done functions are not called.
func (l *Log) Write(ops []Op, done func()) error {
	l.mu.Lock()
	for len(l.pend) > l.o.MaxPending && !l.closed && l.werr == nil {
		l.space.Wait()
	}
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	if l.werr != nil {
		err := l.werr
		l.mu.Unlock()
		return err
	}
	for _, op := range ops {
		off := len(l.pend)
		kind := byte(kindPut)
		var val []byte
		if op.Delete {
			kind = kindDel
		} else {
			val = op.Value
		}
		l.pend = appendRecord(l.pend, kind, op.Key, val)
		l.pops = append(l.pops, pendOp{key: op.Key, off: off, n: len(l.pend) - off, del: op.Delete})
	}
	l.units = append(l.units, unit{end: len(l.pend), ops: len(l.pops), done: done})
	l.mu.Unlock()
	l.records.Add(uint64(len(ops)))
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return nil
}

// Put is Write of one put without a done function.
func (l *Log) Put(key string, val []byte) error {
	return l.Write([]Op{{Key: key, Value: val}}, nil)
}

// Delete is Write of one delete without a done function.
func (l *Log) Delete(key string) error {
	return l.Write([]Op{{Key: key, Delete: true}}, nil)
}

// Barrier calls done once every write before it is durable.
func (l *Log) Barrier(done func()) error {
	return l.Write(nil, done)
}

// Size returns the bytes of the log's files.
func (l *Log) Size() int64 { return l.size.Load() }

// Stats returns the number of compactions and of fsyncs so far.
func (l *Log) Stats() (compactions, syncs uint64) {
	return l.compactions.Load(), l.syncs.Load()
}

// Records returns the number of puts and deletes written since Open.
func (l *Log) Records() uint64 { return l.records.Load() }

// Close writes what is pending, makes it durable and releases the files.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.space.Broadcast()
	l.mu.Unlock()
	close(l.stop)
	<-l.stopped
	l.mu.Lock()
	err := l.werr
	l.mu.Unlock()
	if cerr := l.closeFiles(); err == nil {
		err = cerr
	}
	return err
}

func (l *Log) closeFiles() error {
	var err error
	for _, sg := range l.segs {
		if sg.f != nil {
			if cerr := sg.f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("wal: %w", cerr)
			}
			sg.f = nil
		}
	}
	if l.lock != nil {
		l.lock.Close()
		l.lock = nil
	}
	return err
}

// run is the writer goroutine: it writes and syncs the pending records,
// calls the done functions and compacts.
func (l *Log) run() {
	defer close(l.stopped)
	var timer *time.Timer
	for {
		select {
		case <-l.wake:
		case <-l.stop:
			l.flush()
			return
		}
		if l.o.Sync == SyncBatch && l.o.BatchInterval > 0 {
			if timer == nil {
				timer = time.NewTimer(l.o.BatchInterval)
			} else {
				timer.Reset(l.o.BatchInterval)
			}
			select {
			case <-timer.C:
			case <-l.stop:
				timer.Stop()
				l.flush()
				return
			}
		}
		l.flush()
		if l.compact != nil || l.shouldCompact() {
			l.compactStep()
		}
	}
}

// flush writes and syncs what is pending and calls the done functions.
func (l *Log) flush() {
	l.mu.Lock()
	if len(l.units) == 0 || l.werr != nil {
		l.mu.Unlock()
		return
	}
	buf, ops, units := l.pend, l.pops, l.units
	l.pend, l.pops, l.units = l.spare[:0], l.sparePops[:0], l.spareU[:0]
	l.space.Broadcast()
	l.mu.Unlock()

	err := l.writeUnits(buf, ops, units)
	if err != nil {
		l.log.Error("writing the broker's log failed; state changes are no longer saved", "err", err)
		l.mu.Lock()
		l.werr = err
		l.space.Broadcast()
		l.mu.Unlock()
		return
	}
	for _, u := range units {
		if u.done != nil {
			u.done()
		}
	}
	clear(ops)
	clear(units)
	if cap(buf) <= 4<<20 {
		l.spare = buf[:0]
	} else {
		l.spare = nil
	}
	l.sparePops, l.spareU = ops[:0], units[:0]
}

// writeUnits appends buf to the newest segment, syncing once (batch) or
// after each unit (always), and indexes the ops.
func (l *Log) writeUnits(buf []byte, ops []pendOp, units []unit) error {
	if l.o.Sync == SyncAlways {
		// A write that nobody waits for (no done function) shares the
		// fsync of the next one that somebody does.
		start, first := 0, 0
		for i, u := range units {
			if u.end > start && (u.done != nil || i == len(units)-1) {
				if err := l.writeAndSync(buf[start:u.end], ops[first:u.ops], start); err != nil {
					return err
				}
				start, first = u.end, u.ops
			}
		}
		return nil
	}
	if len(buf) == 0 {
		return nil
	}
	return l.writeAndSync(buf, ops, 0)
}

// writeAndSync writes b, whose ops have offsets relative to base, at the
// end of the newest segment and syncs it.
func (l *Log) writeAndSync(b []byte, ops []pendOp, base int) error {
	cur := l.segs[len(l.segs)-1]
	if cur.size >= l.o.SegmentSize {
		if err := cur.f.Sync(); err != nil {
			return fmt.Errorf("wal: sync: %w", err)
		}
		if err := l.roll(); err != nil {
			return err
		}
		cur = l.segs[len(l.segs)-1]
	}
	if _, err := cur.f.WriteAt(b, cur.size); err != nil {
		return fmt.Errorf("wal: write: %w", err)
	}
	if err := cur.f.Sync(); err != nil {
		return fmt.Errorf("wal: sync: %w", err)
	}
	l.syncs.Add(1)
	for _, op := range ops {
		if old, ok := l.index[op.key]; ok {
			l.liveBytes -= int64(old.n)
			delete(l.index, op.key)
		}
		if !op.del {
			l.index[op.key] = loc{seg: cur.num, off: cur.size + int64(op.off-base), n: uint32(op.n)}
			l.liveBytes += int64(op.n)
		}
	}
	cur.size += int64(len(b))
	l.size.Add(int64(len(b)))
	return nil
}

// shouldCompact reports whether the dead fraction calls for a compaction.
func (l *Log) shouldCompact() bool {
	total := l.size.Load()
	return total >= l.o.CompactMinSize && float64(l.liveBytes) < float64(total)*(1-l.o.CompactRatio)
}

// compactStep starts a compaction or copies its next chunk of live records
// forward; the last step deletes the emptied segments. Writes that arrive
// meanwhile are taken between steps.
func (l *Log) compactStep() {
	if l.compact == nil {
		if err := l.roll(); err != nil {
			l.log.Error("compaction failed", "err", err)
			return
		}
		l.compactTo = l.segs[len(l.segs)-1].num
		keys := make([]string, 0, len(l.index))
		for k, lc := range l.index {
			if lc.seg < l.compactTo {
				keys = append(keys, k)
			}
		}
		l.compact = keys
		l.log.Debug("compaction started", "live_records", len(keys), "bytes", l.size.Load(), "live_bytes", l.liveBytes)
	}
	n := min(chunk, len(l.compact))
	if n > 0 {
		if err := l.copyForward(l.compact[:n]); err != nil {
			l.log.Error("compaction failed", "err", err)
			l.compact = nil
			return
		}
		clear(l.compact[:n])
		l.compact = l.compact[n:]
	}
	if len(l.compact) > 0 {
		select {
		case l.wake <- struct{}{}: // come back for the next chunk
		default:
		}
		return
	}
	l.compact = nil
	cur := l.segs[len(l.segs)-1]
	if err := cur.f.Sync(); err != nil {
		l.log.Error("compaction failed", "err", fmt.Errorf("wal: sync: %w", err))
		return
	}
	keep := l.segs[:0]
	for _, sg := range l.segs {
		if sg.num >= l.compactTo {
			keep = append(keep, sg)
			continue
		}
		sg.f.Close()
		sg.f = nil
		if err := os.Remove(sg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.log.Error("compaction: removing a segment failed", "file", sg.path, "err", err)
		}
		l.size.Add(-sg.size)
	}
	clear(l.segs[len(keep):])
	l.segs = keep
	if err := store.SyncDir(l.dir); err != nil {
		l.log.Error("compaction failed", "err", err)
	}
	l.compactions.Add(1)
	l.log.Debug("compaction done", "bytes", l.size.Load(), "live_bytes", l.liveBytes)
}

// copyForward copies the live records of keys that are still in the
// segments being emptied to the end of the newest segment.
func (l *Log) copyForward(keys []string) error {
	bySeg := make(map[uint64]*segment, len(l.segs))
	for _, sg := range l.segs {
		bySeg[sg.num] = sg
	}
	cur := l.segs[len(l.segs)-1]
	buf := l.spare[:0]
	type moved struct {
		key string
		off int64
		n   uint32
	}
	var mv []moved
	for _, k := range keys {
		lc, ok := l.index[k]
		if !ok || lc.seg >= l.compactTo {
			continue // deleted or rewritten since
		}
		sg := bySeg[lc.seg]
		start := len(buf)
		buf = slices.Grow(buf, int(lc.n))[:start+int(lc.n)]
		if _, err := sg.f.ReadAt(buf[start:], lc.off); err != nil {
			return fmt.Errorf("wal: read %s at %d: %w", sg.path, lc.off, err)
		}
		mv = append(mv, moved{key: k, off: cur.size + int64(start), n: lc.n})
	}
	if len(buf) > 0 {
		if _, err := cur.f.WriteAt(buf, cur.size); err != nil {
			return fmt.Errorf("wal: write: %w", err)
		}
	}
	for _, m := range mv {
		l.index[m.key] = loc{seg: cur.num, off: m.off, n: m.n}
	}
	cur.size += int64(len(buf))
	l.size.Add(int64(len(buf)))
	if cap(buf) <= 4<<20 {
		l.spare = buf[:0]
	}
	return nil
}
