package store

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime/pprof"
	"slices"
	"sync"
	"time"
)

// Segments is a Queue kept as an append-only log split into segment files
// in one directory. A Commit appends its records and its deletions as
// frames to the newest segment with one write and one fsync (or, with
// SegmentOptions.SyncInterval, one write now and an fsync at most once per
// interval); nothing is ever rewritten in place. An index in memory says
// where each live record is. The oldest segment is removed once none of
// its records is live; when it holds only a few live records among many
// dead ones, those are copied forward (same sequence numbers) so that it
// can go.
//
// Compared with Log (one bbolt file), a commit costs one write(2) and one
// fsync whatever its size, with no B+tree pages to split, copy and free:
// it is the cheaper choice for a queue whose records are written once and
// deleted soon, such as an outbox.
//
// Frame layout, little endian: payload length (4 bytes), CRC-32C of kind and
// payload (4), kind (1), payload. A put's payload is the sequence number (8)
// then the data; a delete's is a list of sequence numbers (8 each). A frame
// that is cut short or fails its CRC ends the segment: at the tail of the
// newest segment (a write torn by a crash) the file is truncated there and
// the loss is logged; in an older segment the rest of it is skipped and
// logged.
type Segments struct {
	dir  string
	o    SegmentOptions
	lock *os.File

	mu   sync.Mutex // guards next
	next uint64

	// Writer state: Commit has a single caller at a time; Scan may run
	// beside it and takes wmu too.
	wmu  sync.Mutex
	segs []*segment // oldest first; the last one is written to
	// found is the segment seg found last by a search: deletions come
	// in the order the records were written (deliveries acknowledged, or
	// the oldest dropped from a full queue), one segment after another.
	found *segment
	index seqIndex
	buf   []byte
	num   uint64 // number of the newest segment

	// With SyncInterval: the newest segment has puts not yet fsynced
	// (dirty), when the last fsync was, the timer that makes the next one,
	// and the error of a timed fsync, returned by the next Commit.
	dirty    bool
	lastSync time.Time
	timer    *time.Timer
	syncErr  error
	closed   bool
	syncs    int // fsyncs of commits, for tests
	reads    int // reads of records' data, for tests
}

// SegmentOptions tunes OpenSegments.
type SegmentOptions struct {
	// NoSync skips the fsync of each commit: a crash may lose committed
	// records.
	NoSync bool
	// SyncInterval, when positive, spaces the fsyncs of commits at least
	// that far apart: a Commit's records are written to the file before it
	// returns, so they survive the process dying, and are fsynced (they
	// survive the machine crashing) within SyncInterval, by a later Commit
	// or by a timer. 0 fsyncs every commit that puts records before it
	// returns. An fsync costs the same CPU whatever it carries (tens to
	// hundreds of microseconds), and each one that blocks wakes the Go
	// scheduler's monitor thread, so at a steady trickle of commits this is
	// most of a commit's cost.
	SyncInterval time.Duration
	// SegmentSize is the size after which a new segment is started; 0
	// means 8 MiB.
	SegmentSize int64
	// Logger reports torn and corrupt frames found at open; nil discards.
	Logger *slog.Logger
	// Labels are the profiler labels (runtime/pprof) of the store's own
	// goroutine, the timer's that fsyncs within SyncInterval. A timer's
	// goroutine carries no labels, so without them a CPU profile split by
	// labels charges these fsyncs to the rest of the process instead of
	// to the store's user. Empty: none.
	Labels pprof.LabelSet
}

type segment struct {
	num       uint64
	path      string
	f         *os.File // open for the newest segment only
	rf        *os.File // for reading; opened on first use
	size      int64
	live      int
	liveBytes int64
	maxSeq    uint64 // the largest sequence number put in it
}

// loc is where a record's data is. It holds no pointer, so that the
// garbage collector does not scan an index of millions of them, and it is
// 16 bytes, not 24: the index has one per pending record, and a backlog of
// millions grows the heap by that much (with a web hook endpoint down at
// 10,000 events/s, the page faults of that growth were 249 of the 1,094
// samples the outbox added to the broker's profile).
type loc struct {
	off int64  // of the data, in seg
	n   int32  // data length
	seg uint32 // the segment's number (maxSegment at most); 0: none
}

// maxSegment is the largest segment number: loc keeps 32 bits of it. At
// the default 8 MB per segment that is 32 PB written into one store.
const maxSegment = math.MaxUint32

// dead counts the record at l out of its segment's live ones.
func (s *Segments) dead(l loc) {
	sg := s.seg(uint64(l.seg))
	sg.live--
	sg.liveBytes -= int64(l.n)
}

// seg returns the segment numbered num: the newest for a record just
// written, else usually the one it found last (see found). A full outbox
// dropping its oldest (32 segments of 8 MB) searched the segments for
// every record it dropped: 1.4% of the broker's CPU, saturated with the
// receiver down (webhook/README.md).
func (s *Segments) seg(num uint64) *segment {
	if n := len(s.segs); n > 0 && s.segs[n-1].num == num {
		return s.segs[n-1]
	}
	if sg := s.found; sg != nil && sg.num == num {
		return sg
	}
	i, ok := slices.BinarySearchFunc(s.segs, num, func(sg *segment, num uint64) int { return cmpUint(sg.num, num) })
	if !ok {
		panic(fmt.Sprintf("store: no segment %d for a live record", num)) // the index and segs disagree: a bug
	}
	s.found = s.segs[i]
	return s.found
}

const (
	frameHeader = 9 // length, crc, kind
	kindPut     = 1
	kindDel     = 2
	kindMark    = 3 // the next sequence number when the segment began
	segSuffix   = ".seg"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var _ Queue = (*Segments)(nil)

// OpenSegments opens (creating it if needed) the segmented queue in dir
// and reads its index. A second process opening the same dir gets
// ErrLocked.
func OpenSegments(dir string, o SegmentOptions) (*Segments, error) {
	if o.SegmentSize <= 0 {
		o.SegmentSize = 8 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	lock, err := LockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s := &Segments{dir: dir, o: o, lock: lock, next: 1}
	if err := s.load(); err != nil {
		s.closeFiles()
		s.index.release()
		return nil, err
	}
	return s, nil
}

// load replays every segment in order into the index, then drops the
// segments with nothing live and opens the newest for appending.
func (s *Segments) load() error {
	files, err := SegmentFiles(s.dir, segSuffix)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	for _, sf := range files {
		if sf.Num == 0 || sf.Num > maxSegment { // numbers start at 1; 0 means none in loc
			return fmt.Errorf("store: %s: segment number %d is not one this store writes (1 to %d)", sf.Path, sf.Num, uint64(maxSegment))
		}
		s.segs = append(s.segs, &segment{num: sf.Num, path: sf.Path})
	}
	for i, sg := range s.segs {
		if err := s.replay(sg, i == len(s.segs)-1); err != nil {
			return err
		}
	}
	s.index.each(func(_ uint64, l loc) bool {
		sg := s.seg(uint64(l.seg))
		sg.live++
		sg.liveBytes += int64(l.n)
		return true
	})
	if len(s.segs) > 0 {
		s.num = s.segs[len(s.segs)-1].num
	}
	// The newest segment stays, even when empty: it carries the highest
	// sequence number's deletion, if nothing else.
	if err := s.dropDead(); err != nil {
		return err
	}
	return s.openActive()
}

// replay reads the frames of sg into the index.
func (s *Segments) replay(sg *segment, newest bool) error {
	f, err := os.Open(sg.path)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var off int64
	var hdr [frameHeader]byte
	var payload []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF {
				break
			}
			return s.torn(sg, off, newest, "frame header cut short")
		}
		n := binary.LittleEndian.Uint32(hdr[0:])
		if int64(n) > 1<<30 {
			return s.torn(sg, off, newest, "frame length out of range")
		}
		payload = slices.Grow(payload[:0], int(n))[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			return s.torn(sg, off, newest, "frame cut short")
		}
		crc := crc32.Update(crc32.Checksum(hdr[8:9], castagnoli), castagnoli, payload)
		if crc != binary.LittleEndian.Uint32(hdr[4:]) {
			return s.torn(sg, off, newest, "frame checksum mismatch")
		}
		switch hdr[8] {
		case kindPut:
			if n < 8 {
				return s.torn(sg, off, newest, "put frame too short")
			}
			seq := binary.LittleEndian.Uint64(payload)
			s.index.put(seq, loc{seg: uint32(sg.num), off: off + frameHeader + 8, n: int32(n - 8)})
			sg.maxSeq = max(sg.maxSeq, seq)
			s.next = max(s.next, seq+1)
		case kindDel:
			for p := payload; len(p) >= 8; p = p[8:] {
				seq := binary.LittleEndian.Uint64(p)
				s.index.del(seq)
				s.next = max(s.next, seq+1)
			}
		case kindMark:
			if n != 8 {
				return s.torn(sg, off, newest, "mark frame of a wrong size")
			}
			s.next = max(s.next, binary.LittleEndian.Uint64(payload))
		default:
			return s.torn(sg, off, newest, "unknown frame kind")
		}
		off += frameHeader + int64(n)
	}
	sg.size = off
	return nil
}

// torn handles a bad frame at off in sg: the rest of the segment is lost.
// The newest segment is truncated there so that appends continue after the
// last good frame.
func (s *Segments) torn(sg *segment, off int64, newest bool, why string) error {
	lost, err := CutTorn(sg.path, off, newest)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	s.o.Logger.Warn("store: damaged log frame; the rest of the segment is skipped",
		"file", sg.path, "offset", off, "bytes_lost", lost, "why", why)
	sg.size = off
	return nil
}

// openActive opens the newest segment for appending, or starts one.
func (s *Segments) openActive() error {
	if len(s.segs) == 0 {
		return s.roll()
	}
	sg := s.segs[len(s.segs)-1]
	f, err := os.OpenFile(sg.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	sg.f = f
	return nil
}

// syncActive fsyncs the newest segment if it has puts not yet synced.
// s.wmu must be held.
func (s *Segments) syncActive() error {
	if !s.dirty {
		return nil
	}
	if err := s.segs[len(s.segs)-1].f.Sync(); err != nil {
		return err
	}
	s.dirty = false
	s.syncs++
	s.lastSync = time.Now()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	return nil
}

// timedSync is the timer's fsync of puts that no Commit synced within
// SyncInterval. A failure is logged and returned by the next Commit.
func (s *Segments) timedSync() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.timer = nil
	if s.closed {
		return
	}
	if err := s.syncActive(); err != nil {
		s.syncErr = fmt.Errorf("store: sync: %w", err)
		s.o.Logger.Error("store: fsync failed; records written since the last one may not survive a machine crash", "dir", s.dir, "err", err)
	}
}

// Sync fsyncs the records committed but not yet synced (see
// SegmentOptions.SyncInterval).
func (s *Segments) Sync() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.syncActive(); err != nil {
		return fmt.Errorf("store: sync: %w", err)
	}
	return nil
}

// roll starts a new newest segment, closing the current one (fsynced
// first if it has puts not yet synced).
func (s *Segments) roll() error {
	if s.num >= maxSegment {
		return fmt.Errorf("store: %s: segment numbers used up (%d)", s.dir, uint64(maxSegment))
	}
	if len(s.segs) > 0 {
		if err := s.syncActive(); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		cur := s.segs[len(s.segs)-1]
		if cur.f != nil {
			if err := cur.f.Close(); err != nil {
				return fmt.Errorf("store: %w", err)
			}
			cur.f = nil
		}
	}
	s.num++
	sg := &segment{num: s.num, path: SegmentPath(s.dir, s.num, segSuffix)}
	f, err := os.OpenFile(sg.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	sg.f = f
	s.segs = append(s.segs, sg)
	s.mu.Lock()
	next := s.next
	s.mu.Unlock()
	mark := binary.LittleEndian.AppendUint64(beginFrame(nil, kindMark), next)
	finishFrame(mark, 0)
	if _, err := f.Write(mark); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	sg.size = int64(len(mark))
	if !s.o.NoSync {
		if err := SyncDir(s.dir); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	return nil
}

// dropDead removes the oldest segments while nothing in them is live. Only
// a prefix may go: a segment's deletions may refer to records of older
// segments, never of newer ones.
func (s *Segments) dropDead() error {
	for len(s.segs) > 1 && s.segs[0].live == 0 {
		if rf := s.segs[0].rf; rf != nil {
			rf.Close()
		}
		if err := os.Remove(s.segs[0].path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("store: %w", err)
		}
		if s.found == s.segs[0] {
			s.found = nil
		}
		s.segs = s.segs[1:]
	}
	return nil
}

// Reserve implements Queue.
func (s *Segments) Reserve(n int) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := s.next
	s.next += uint64(n)
	return first
}

// beginFrame appends the header of a frame of kind, whose length and
// checksum finishFrame fills in once the payload follows it.
func beginFrame(buf []byte, kind byte) []byte {
	return append(buf, 0, 0, 0, 0, 0, 0, 0, 0, kind)
}

// Commit implements Queue: one write and one fsync for the whole batch.
func (s *Segments) Commit(put []Record, del []uint64) error {
	if len(put) == 0 && len(del) == 0 {
		return nil
	}
	return s.locked(func() error { return s.commit(put, del, false) })
}

// locked runs write, which appends a commit's frames, under wmu: after
// reporting, once, an fsync that failed in the background, and followed
// by dropping the segments left dead and compacting.
func (s *Segments) locked(write func() error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.syncErr; err != nil {
		s.syncErr = nil
		return err
	}
	if err := write(); err != nil {
		return err
	}
	if err := s.dropDead(); err != nil {
		return err
	}
	return s.compact()
}

// commit appends del, then put, to the newest segment (appendFrames),
// framed in s.buf.
func (s *Segments) commit(put []Record, del []uint64, durable bool) error {
	buf := appendDelFrame(s.buf[:0], del)
	for _, r := range put {
		at := len(buf)
		buf = append(AppendPutHead(buf, r.Seq), r.Data...)
		FinishPut(buf, at)
	}
	s.buf = buf
	if cap(s.buf) > 4<<20 {
		s.buf = nil // do not keep a huge buffer after a burst
	}
	return s.appendFrames(buf, len(put) > 0, durable)
}

// AppendPutHead appends to buf the start of the frame that puts record
// seq: its header, whose length and checksum FinishPut fills in, then
// seq. The record's data goes after it. Frames made so, one after the
// other, are what CommitFrames writes.
func AppendPutHead(buf []byte, seq uint64) []byte {
	return binary.LittleEndian.AppendUint64(beginFrame(buf, kindPut), seq)
}

// FinishPut ends the put frame that AppendPutHead began at buf[at:]: the
// record's data runs to the end of buf.
func FinishPut(buf []byte, at int) { finishFrame(buf, at) }

// finishFrame fills in the length and checksum of the frame at buf[at:],
// whose payload runs to the end of buf.
func finishFrame(buf []byte, at int) {
	binary.LittleEndian.PutUint32(buf[at:], uint32(len(buf)-at-frameHeader))
	binary.LittleEndian.PutUint32(buf[at+4:], crc32.Checksum(buf[at+8:], castagnoli))
}

// appendDelFrame appends the frame that deletes the records del, if any.
func appendDelFrame(buf []byte, del []uint64) []byte {
	if len(del) == 0 {
		return buf
	}
	start := len(buf)
	buf = beginFrame(buf, kindDel)
	for _, seq := range del {
		buf = binary.LittleEndian.AppendUint64(buf, seq)
	}
	finishFrame(buf, start)
	return buf
}

// CommitFrames is Commit for records its caller framed itself, with
// AppendPutHead and FinishPut, one after the other in frames: it writes
// them as they are, with no copy, followed by the frame of del, which it
// appends to frames (in its spare capacity, when there is room). It
// returns frames with that frame; a caller that reuses its buffer keeps
// this one. frames must hold whole put frames and nothing else.
func (s *Segments) CommitFrames(frames []byte, del []uint64) ([]byte, error) {
	if err := checkPutFrames(frames); err != nil {
		return frames, err
	}
	puts := len(frames) > 0
	if !puts && len(del) == 0 {
		return frames, nil
	}
	frames = appendDelFrame(frames, del)
	return frames, s.locked(func() error { return s.appendFrames(frames, puts, false) })
}

// checkPutFrames reports whether frames is a run of whole put frames, so
// that a caller's mistake fails its commit instead of tearing the
// segment. It reads the headers only: the checksums are the caller's.
func checkPutFrames(frames []byte) error {
	for p := frames; len(p) > 0; {
		if len(p) < frameHeader+8 || p[8] != kindPut {
			return errors.New("store: commit: not a put frame")
		}
		n := int(binary.LittleEndian.Uint32(p))
		if n < 8 || n > len(p)-frameHeader {
			return errors.New("store: commit: put frame of a wrong length")
		}
		p = p[frameHeader+n:]
	}
	return nil
}

// appendFrames appends buf, whole frames, to the newest segment with one
// write, then indexes them in order, as a replay of the segment would.
// When buf has puts, they are fsynced now if durable is set, if
// SyncInterval is 0, or if the last fsync is SyncInterval old; otherwise
// the segment is marked dirty and the timer will.
func (s *Segments) appendFrames(buf []byte, puts, durable bool) error {
	if len(buf) == 0 {
		return nil
	}
	active := s.segs[len(s.segs)-1]
	if active.size >= s.o.SegmentSize {
		if err := s.roll(); err != nil {
			return err
		}
		active = s.segs[len(s.segs)-1]
	}
	if _, err := active.f.Write(buf); err != nil {
		// A partial write leaves a torn frame that the next open
		// truncates; cut it now so later commits append after good data.
		_ = active.f.Truncate(active.size)
		return fmt.Errorf("store: commit: %w", err)
	}
	base := active.size
	active.size += int64(len(buf))
	// Deletions alone are not synced (see Queue.Commit): an outbox that
	// delivers as fast as it takes events would otherwise pay a second
	// fsync per batch for its acknowledgements.
	if !s.o.NoSync && puts {
		s.dirty = true
		if wait := s.o.SyncInterval - time.Since(s.lastSync); durable || wait <= 0 {
			if err := s.syncActive(); err != nil {
				return fmt.Errorf("store: commit: %w", err)
			}
		} else if s.timer == nil {
			s.timer = time.AfterFunc(wait, func() {
				pprof.Do(context.Background(), s.o.Labels, func(context.Context) { s.timedSync() })
			})
		}
	}
	var next uint64
	for off := 0; off < len(buf); {
		n := int(binary.LittleEndian.Uint32(buf[off:]))
		payload := buf[off+frameHeader : off+frameHeader+n]
		switch buf[off+8] {
		case kindPut:
			seq := binary.LittleEndian.Uint64(payload)
			l := loc{seg: uint32(active.num), off: base + int64(off) + frameHeader + 8, n: int32(n - 8)}
			if old, ok := s.index.put(seq, l); ok {
				s.dead(old)
			}
			active.live++
			active.liveBytes += int64(l.n)
			active.maxSeq = max(active.maxSeq, seq)
			next = max(next, seq+1)
		case kindDel:
			for p := payload; len(p) >= 8; p = p[8:] {
				if l, ok := s.index.del(binary.LittleEndian.Uint64(p)); ok {
					s.dead(l)
				}
			}
		}
		off += frameHeader + n
	}
	if puts {
		s.mu.Lock()
		s.next = max(s.next, next)
		s.mu.Unlock()
	}
	return nil
}

// compact copies the live records of the oldest segment forward when they
// are under a quarter of its size and it is not the newest, so that it can
// be removed: a few long-pending records do not pin a whole file. It does
// so only while the segments hold more than twice their live bytes plus two
// segments: a queue that dies in order (an outbox draining, or dropping its
// oldest when full) wastes less than that, and copying forward records that
// are about to die is work for nothing.
func (s *Segments) compact() error {
	if len(s.segs) < 3 {
		return nil
	}
	old := s.segs[0]
	if old.liveBytes*4 > old.size {
		return nil
	}
	var size, live int64
	for _, sg := range s.segs {
		size += sg.size
		live += sg.liveBytes
	}
	if size <= 2*live+2*s.o.SegmentSize {
		return nil
	}
	var recs []Record
	var rerr error
	s.index.each(func(seq uint64, l loc) bool {
		if seq > old.maxSeq {
			return false // none of the rest is in old
		}
		if uint64(l.seg) != old.num {
			return true
		}
		data, err := s.readAt(l, nil)
		if err != nil {
			rerr = fmt.Errorf("store: compact: %w", err)
			return false
		}
		recs = append(recs, Record{Seq: seq, Data: data})
		return true
	})
	if rerr != nil {
		return rerr
	}
	if len(recs) > 0 {
		// Synced now: the copies must be on disk before the originals'
		// file is removed.
		if err := s.commit(recs, nil, true); err != nil {
			return err
		}
	}
	return s.dropDead()
}

// Scan implements Queue. It reads the records of a run that lie close
// together in a segment with one read, as ReadMany does: a restart with a
// backlog of small records made one system call per record.
func (s *Segments) Scan(fn func(Record) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	type member struct {
		seq uint64
		l   loc
	}
	var (
		run  []member
		data []byte
		err  error
	)
	flush := func() bool {
		first := run[0].l
		data, err = s.readAt(spanning(first, run[len(run)-1].l), data[:0])
		if err != nil {
			err = fmt.Errorf("store: scan: %w", err)
			return false
		}
		for _, m := range run {
			at := int(m.l.off - first.off)
			if err = fn(Record{Seq: m.seq, Data: data[at : at+int(m.l.n) : at+int(m.l.n)]}); err != nil {
				return false
			}
		}
		run = run[:0]
		return true
	}
	s.index.each(func(seq uint64, l loc) bool {
		if len(run) > 0 && !readTogether(run[0].l, run[len(run)-1].l, l) && !flush() {
			return false
		}
		run = append(run, member{seq, l})
		return true
	})
	if err == nil && len(run) > 0 {
		flush()
	}
	return err
}

// readTogether reports whether the record at l can be read in the same
// read as a run from first to last: in the same segment, after last and
// at most readGap bytes from it, and within readSpan of first's start.
func readTogether(first, last, l loc) bool {
	end := last.off + int64(last.n)
	return l.seg == first.seg && l.off >= end && l.off-end <= readGap && l.off+int64(l.n)-first.off <= readSpan
}

// spanning is where a run of records from first to last is: the bytes
// from first's data to the end of last's, other frames between them too.
func spanning(first, last loc) loc {
	return loc{off: first.off, n: int32(last.off + int64(last.n) - first.off), seg: first.seg}
}

// ErrNotFound is returned by Read for a sequence number with no live
// record.
var ErrNotFound = errors.New("store: no such record")

// ErrClosed is what a commit to a closed Segments returns.
var ErrClosed = errors.New("store: closed")

// Read appends the data of record seq to buf. It is for a reader that did
// not keep the data in memory; it may run beside Commit.
func (s *Segments) Read(seq uint64, buf []byte) ([]byte, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	l, ok := s.index.get(seq)
	if !ok {
		return buf, ErrNotFound
	}
	buf, err := s.readAt(l, buf)
	if err != nil {
		return buf, fmt.Errorf("store: read: %w", err)
	}
	return buf, nil
}

// readSpan bounds the bytes of one read of ReadMany, and readGap the bytes
// between two records that it reads through rather than make a read for
// each: the frames of other records and of deletions that lie between two
// records of one reader's backlog.
const (
	readSpan = 256 << 10
	readGap  = 4 << 10
)

// ReadMany reads the data of records seqs and then calls fn for each, in
// the order of seqs, with its data or the error that reading it met:
// ErrNotFound for a record that is not live. The data is a view of the
// buffer ReadMany returns, valid until the caller reuses that.
// Records that lie close together in one segment, as a commit's do, are
// read with one read of up to readSpan bytes: a reader catching up on a
// backlog of small records made one system call per record with Read.
// buf is a buffer to read into; ReadMany returns it, perhaps grown, for
// the next call. fn runs once all the reads are done, without the store's
// lock, so it may call the store.
func (s *Segments) ReadMany(seqs []uint64, buf []byte, fn func(i int, data []byte, err error)) []byte {
	type span struct {
		start, end int // of the record's data in buf
		err        error
	}
	type member struct {
		i int // in seqs
		l loc
	}
	spans := make([]span, len(seqs))
	var run []member
	buf = buf[:0]
	for i := 0; i < len(seqs); {
		// The lock is held for one run at a time: a commit waits for one
		// read of up to readSpan, not for all of them.
		s.wmu.Lock()
		first, ok := s.index.get(seqs[i])
		if !ok {
			s.wmu.Unlock()
			spans[i].err = ErrNotFound
			i++
			continue
		}
		// The run: the live records after it that readTogether accepts.
		// Records that are not live (deleted meanwhile) do not end it.
		run = append(run[:0], member{i, first})
		for i++; i < len(seqs); i++ {
			l, ok := s.index.get(seqs[i])
			if !ok {
				spans[i].err = ErrNotFound
				continue
			}
			if !readTogether(first, run[len(run)-1].l, l) {
				break
			}
			run = append(run, member{i, l})
		}
		at := len(buf)
		var err error
		buf, err = s.readAt(spanning(first, run[len(run)-1].l), buf)
		s.wmu.Unlock()
		for _, m := range run {
			if err != nil {
				spans[m.i].err = fmt.Errorf("store: read: %w", err)
				continue
			}
			start := at + int(m.l.off-first.off)
			spans[m.i] = span{start: start, end: start + int(m.l.n)}
		}
	}
	for i, sp := range spans {
		if sp.err != nil {
			fn(i, nil, sp.err)
			continue
		}
		fn(i, buf[sp.start:sp.end:sp.end], nil)
	}
	return buf
}

// readAt appends the data at l to buf, through the segment's read handle
// (opened on first use, closed when the segment goes). s.wmu must be held.
func (s *Segments) readAt(l loc, buf []byte) ([]byte, error) {
	sg := s.seg(uint64(l.seg))
	if sg.rf == nil {
		f, err := os.Open(sg.path)
		if err != nil {
			return buf, err
		}
		sg.rf = f
	}
	n := len(buf)
	buf = slices.Grow(buf, int(l.n))[:n+int(l.n)]
	s.reads++
	if _, err := sg.rf.ReadAt(buf[n:], l.off); err != nil {
		return buf[:n], err
	}
	return buf, nil
}

// Len returns the number of live records and the bytes of the segment
// files.
func (s *Segments) Len() (records int, fileBytes int64) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for _, sg := range s.segs {
		fileBytes += sg.size
	}
	return s.index.len(), fileBytes
}

// Close implements Queue.
func (s *Segments) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var serr error
	if err := s.syncActive(); err != nil { // dirty only with an open newest segment
		serr = fmt.Errorf("store: close: %w", err)
	}
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	err := errors.Join(serr, s.closeFiles())
	s.index.release() // the index is empty to what runs after, under wmu
	return err
}

func (s *Segments) closeFiles() error {
	var errs []error
	for _, sg := range s.segs {
		if sg.f != nil {
			errs = append(errs, sg.f.Close())
			sg.f = nil
		}
		if sg.rf != nil {
			errs = append(errs, sg.rf.Close())
			sg.rf = nil
		}
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
		s.lock = nil
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}
