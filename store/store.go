// Package store is mqgate's embedded persistence. It keeps durable queues of
// records (the web hook outbox today; sessions and retained messages later)
// in a bbolt file, and commits many changes in one transaction so that one
// fsync covers a whole batch (group commit).
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrLocked is wrapped by the errors of Open, OpenSegments and LockDir
// when another process holds the file or directory.
var ErrLocked = errors.New("in use by another process")

// Record is one entry of a Queue: a sequence number and opaque bytes.
type Record struct {
	Seq  uint64
	Data []byte
}

// Queue is a durable FIFO of records keyed by increasing sequence numbers.
// A Queue has a single writer; Scan may run concurrently with it.
type Queue interface {
	// Reserve returns the first of n new sequence numbers, each larger than
	// every number reserved before, also across restarts once a record that
	// used one has been committed.
	Reserve(n int) uint64
	// Commit stores put and deletes the records numbered del, atomically:
	// when it returns nil, put survives a crash (a Segments with a
	// SyncInterval: the process's at once, the machine's once the interval
	// has passed). A Commit with deletions
	// only may skip the fsync: a crash can then bring deleted records
	// back, which at-least-once delivery allows (they are delivered
	// again), and they go with the next durable Commit.
	Commit(put []Record, del []uint64) error
	// Scan calls fn for each stored record in sequence order. Data is only
	// valid during the call.
	Scan(fn func(Record) error) error
	// Close releases the file.
	Close() error
}

// Options tunes Open.
type Options struct {
	// NoSync skips the fsync of each commit. Only for benchmarks: a crash
	// may lose committed records.
	NoSync bool
	// LockTimeout is how long Open waits for another process to release the
	// file; 0 means 1s.
	LockTimeout time.Duration
}

// Log is a Queue kept in one bucket of a bbolt file.
type Log struct {
	db     *bolt.DB
	bucket []byte

	mu   sync.Mutex
	next uint64 // next sequence number to hand out
}

var _ Queue = (*Log)(nil)

// Open opens (creating it and its directory if needed) the queue file at
// path.
func Open(path string, o Options) (*Log, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	timeout := o.LockTimeout
	if timeout <= 0 {
		timeout = time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: timeout,
		NoSync:  o.NoSync,
		// The freelist is rebuilt at open instead of written by every
		// commit, and the map keeps its (virtual) size while the file grows:
		// both save work per commit on a queue that grows and shrinks.
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 256 << 20,
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	l := &Log{db: db, bucket: []byte("queue")}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(l.bucket)
		if err != nil {
			return err
		}
		l.next = b.Sequence() + 1
		if k, _ := b.Cursor().Last(); k != nil && binary.BigEndian.Uint64(k) >= l.next {
			l.next = binary.BigEndian.Uint64(k) + 1
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return l, nil
}

// Reserve implements Queue.
func (l *Log) Reserve(n int) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := l.next
	l.next += uint64(n)
	return first
}

// Commit implements Queue. It runs one bbolt transaction, hence one fsync.
func (l *Log) Commit(put []Record, del []uint64) error {
	if len(put) == 0 && len(del) == 0 {
		return nil
	}
	err := l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(l.bucket)
		b.FillPercent = 0.95 // keys only grow: pack pages full
		var key [8]byte
		var top uint64
		for _, r := range put {
			binary.BigEndian.PutUint64(key[:], r.Seq)
			if err := b.Put(key[:], r.Data); err != nil {
				return err
			}
			top = max(top, r.Seq)
		}
		for _, s := range del {
			binary.BigEndian.PutUint64(key[:], s)
			if err := b.Delete(key[:]); err != nil {
				return err
			}
		}
		if top > b.Sequence() {
			return b.SetSequence(top)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// Scan implements Queue.
func (l *Log) Scan(fn func(Record) error) error {
	return l.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(l.bucket).ForEach(func(k, v []byte) error {
			return fn(Record{Seq: binary.BigEndian.Uint64(k), Data: v})
		})
	})
}

// Close implements Queue.
func (l *Log) Close() error {
	if err := l.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}
