package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/internal/rawconn"
	"github.com/mqgate/mqgate/store"
)

// Options configures a Dispatcher. Zero values take the defaults noted.
type Options struct {
	Node     string            // node name, the body's "node"
	Rules    []Rule            // at least one
	URL      string            // web.hook.url: endpoint of the rules without their own url
	Headers  map[string]string // web.hook.headers.*: sent with every request
	Encoding Encoding          // payload field encoding
	PoolSize int               // concurrent requests (and kept-alive connections) per endpoint; 0 = 32
	TLS      *tls.Config       // for https URLs; nil = system roots
	Signer   *Signer           // nil = no signature headers

	RequestTimeout time.Duration // per POST; 0 = 5s

	Dir      string // directory of the outbox and the dead-letter file; required
	MaxBytes int64  // outbox size limit; 0 = 256MB
	// MaxMemory bounds the bytes of pending bodies also held in memory;
	// the bodies of the events beyond it are read back from the outbox
	// when they are posted. 0 = 32MB, negative = none in memory.
	MaxMemory  int64
	DropNewest bool // when the outbox is full drop the new event (true) or the oldest pending one (false)
	NoSync     bool // skip fsync (benchmarks only)
	// CommitInterval is how long the outbox writer lets events gather
	// after the first one before one write commits them all; 0 = 10ms,
	// negative = no wait. Longer costs fewer writes and wake-ups and adds
	// that much to each delivery's latency; events not yet committed are
	// lost if the process dies. The writer waits longer while every
	// endpoint is down (outageCommitInterval), and when rules batch
	// (batchCommitInterval) except for the events of rules that do not.
	CommitInterval time.Duration
	// SyncInterval spaces the outbox's fsyncs (store.SegmentOptions):
	// each commit writes its events to the file, which keeps them if the
	// process dies, and they are fsynced, which keeps them if the machine
	// crashes, within this interval. 0 = 1s, negative = every commit.
	SyncInterval time.Duration

	MinBackoff       time.Duration // first retry delay; 0 = 1s
	MaxBackoff       time.Duration // longest retry delay; 0 = 2m
	BreakerThreshold int           // consecutive retryable failures that open an endpoint's breaker; 0 = 5

	QueueSize int          // events in the inbox, between the bus and the outbox writer; 0 = 65536
	Logger    *slog.Logger // nil = discard

	spillWindow int           // jobs in memory per endpoint before new events spill; 0 = spillWindow (tests set it)
	commitGap   time.Duration // replaces the Dispatcher.commitGap that New works out, when set (tests set it)
}

// Names inside Options.Dir.
const (
	// OutboxDir holds the outbox: an append-only segmented log
	// (store.Segments).
	OutboxDir = "outbox"
	// LegacyOutboxFile is the bbolt outbox of earlier versions; its
	// pending events are moved into OutboxDir at start and it is removed.
	LegacyOutboxFile = "outbox.db"
	DeadFile         = "dead.jsonl"
)

// record is what a stored delivery's header says: where to, and what of
// the event, everything needed to deliver it after a restart, whatever
// the rules are by then. Earlier versions stored it as JSON, a newline,
// then the body; this one stores the endpoint's number in EndpointsFile
// and the rest in binary (see recMark).
type record struct {
	endpointDecl
	ClientID string `json:"clientid"`
	Event    string `json:"event"`
	ID       string `json:"id"`
	Time     int64  `json:"time"` // ms
}

// spilled is a pending delivery that is only in the outbox: while its
// endpoint is down, or behind by more than spillWindow jobs, a new event
// costs this entry (24 bytes, no pointer, nothing for the collector to
// scan) instead of a job; the outbox writer turns entries back into jobs,
// in order, as the endpoint takes them.
type spilled struct {
	seq     uint64
	created int64  // Unix nanoseconds
	size    uint32 // of the record: at most a packet's size, escaped
	kind    events.Kind
}

// spillWindow is how many jobs an endpoint has in memory before its new
// events spill; loading spilled ones tops it up to this. A batching rule
// with a larger max_size gets a window of its max_size (endpoint.window).
const spillWindow = 8192

// job is one pending delivery in memory.
type job struct {
	seq     uint64
	idText  string   // the event id, when it was read back from a record
	idBytes [26]byte // the event id of a new event: made a string per request only
	client  string
	event   events.Kind
	created time.Time
	body    []byte     // the stored body: an event record (or an earlier version's JSON body); nil: only in the outbox (see Options.MaxMemory); set before the job is enqueued
	size    int64      // of the stored record
	blk     *bodyBlock // where body is, when it is held: alone, or with others of its commit; guarded by Dispatcher.mu
	ep      *endpoint
	done    atomic.Bool // delivered, dead or dropped
}

// id returns the event's id.
func (j *job) id() string {
	if j.idText != "" {
		return j.idText
	}
	return string(j.idBytes[:])
}

// Dispatcher turns bus events into web hook POSTs: each matching event is
// first committed to the outbox on disk, then delivered at least once by its
// endpoint, in order per client id. It never blocks the broker: the bus
// hands it events through a bounded queue.
type Dispatcher struct {
	o      Options
	log    *slog.Logger
	q      *store.Segments
	client *http.Client // per-event endpoints
	// batchClient posts batches: its connections write a request of up to
	// batchWriteBuffer bytes (see inMemoryBody) with one write(2) instead
	// of one for the headers and one per 32 KB of body (a 45 KB batch:
	// 110 -> 80 µs of CPU, client and server, on loopback). Only one lane
	// per batching endpoint uses it, so the bigger buffers are few.
	batchClient *http.Client
	dead        *deadLetters
	rules       [events.NumKinds][]ruleRT // by the kind they post; an array, read per event
	heads       *bodyHeads                // the start of each kind's bodies, for Options.Node
	// groupWait is how long the outbox writer lets events gather before a
	// commit: CommitInterval, or batchCommitInterval when that is longer.
	groupWait time.Duration
	timer     *time.Timer // gather's, stopped between waits
	// commitGap is how long after a gather starts the writer takes the
	// inbox at the soonest: groupWait, or CommitInterval where an event
	// of a prompt kind may cut the wait short; 0 when events do not
	// gather. quietFrom is when the gather under way started, in Unix
	// nanoseconds; -1 while the writer waits for events to start one (a
	// commit is then at least commitGap away); 0 while it takes and
	// commits. See commitBefore.
	commitGap time.Duration
	quietFrom atomic.Int64
	ids       *idSource // used by the outbox writer only
	// arena is where the outbox writer makes the records of one commit
	// (a head, and the event record from the inbox), each in the frame
	// the outbox stores it in, so that the commit writes the arena as it
	// is (store.Segments.CommitFrames) instead of copying every record
	// into a buffer of the store's. It is reused from one commit to the
	// next. A body is copied out of it, at its exact size, only when it
	// is kept in memory.
	arena []byte
	// items is the outbox writer's per-commit list, reused like arena:
	// allocating it per commit (100 KB for 1,000 events) was a tenth of
	// the writer's CPU at 10,000 events/s, most of it the page faults of
	// fresh memory.
	items []item
	// unspillBuf is the buffer unspill reads spilled records into, reused
	// like arena.
	unspillBuf []byte

	// in is where observe leaves the events it takes from the bus until the
	// outbox writer takes them all at once (inbox.take), as entries that
	// hold their event records (see observe), and where observeMessage
	// leaves the message kinds' events, as references to their messages
	// (events.MessageRef) that the writer makes the entries of. Taking an
	// event by copying its fields costs the broker's goroutine the copy;
	// handing over the event itself (a channel of pooled events, released
	// by the writer) cost it and the writer more, and kept every event, and
	// its payload, out of the pool until the next commit. A message is no
	// pooled event: the broker made it for this publication, never changes
	// it, and the garbage collector frees it once the writer has dropped
	// its reference.
	in       *inbox
	inSpare  []byte              // the writer's: the inbox it took last, for reuse
	refSpare []events.MessageRef // the same for the references
	refRecs  []byte              // the writer's: the entries it made of the references, for reuse
	// filtered tells the kinds of which some rule has a topic filter: for
	// them observeMessage matches the topic, so that events no rule posts
	// take no room in the inbox.
	filtered [events.NumKinds]bool

	epMu   sync.Mutex
	eps    map[string]*endpoint
	epList []*endpoint // the values of eps; set by New, read-only after it

	mu          sync.Mutex // guards the fields below
	pending     fifo[*job] // in seq order; may hold done jobs
	count       int        // jobs in pending that are not done
	bytes       int64
	mem         int64 // bytes of the bodies held in memory
	delq        []uint64
	overflowLog bool
	busDropped  uint64    // bus drops already logged
	busLogged   time.Time // when they were last logged
	commitErrs  uint64
	commits     atomic.Uint64 // outbox writes (Stats.Commits)

	kick     chan struct{}
	sub      *events.Subscription
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	writerWG sync.WaitGroup
	stopped  atomic.Bool
}

type ruleRT struct {
	Rule
	ep *endpoint
}

// New validates o, opens the outbox under o.Dir and loads the deliveries
// left pending by a previous run. Call Start to begin.
func New(o Options) (*Dispatcher, error) {
	if o.Dir == "" {
		return nil, errors.New("webhook: no data directory")
	}
	if len(o.Rules) == 0 {
		return nil, errors.New("webhook: no rules")
	}
	if o.PoolSize <= 0 {
		o.PoolSize = 32
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 5 * time.Second
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 256 << 20
	}
	if o.MaxMemory == 0 {
		o.MaxMemory = 32 << 20
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(2*time.Minute, o.MinBackoff)
	}
	if o.BreakerThreshold <= 0 {
		o.BreakerThreshold = 5
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 65536
	}
	if o.spillWindow <= 0 {
		o.spillWindow = spillWindow
	}
	if o.CommitInterval == 0 {
		o.CommitInterval = 10 * time.Millisecond
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.URL != "" {
		if err := checkURL(o.URL); err != nil {
			return nil, fmt.Errorf("webhook: web.hook.url: %w", err)
		}
	}
	d := &Dispatcher{
		o:     o,
		log:   o.Logger,
		heads: newBodyHeads(o.Node),
		ids:   newIDSource(),
		eps:   map[string]*endpoint{},
		kick:  make(chan struct{}, 1),
		in:    newInbox(o.QueueSize),
		dead:  &deadLetters{path: filepath.Join(o.Dir, DeadFile)},
	}
	d.client = &http.Client{Transport: newTransport(o.PoolSize, o.TLS, 0)}
	d.batchClient = &http.Client{Transport: newTransport(o.PoolSize, o.TLS, batchWriteBuffer)}
	for _, r := range o.Rules {
		u := r.URL
		if u == "" {
			u = o.URL
		}
		if u == "" {
			return nil, fmt.Errorf("webhook: %s: no url and web.hook.url is empty", r.Name)
		}
		h := maps.Clone(o.Headers)
		if h == nil {
			h = map[string]string{}
		}
		maps.Copy(h, r.Headers)
		d.rules[r.Event] = append(d.rules[r.Event], ruleRT{Rule: r, ep: d.endpoint(u, h, r.Batch)})
		if r.Topic != "" {
			d.filtered[r.Event] = true
		}
	}
	d.groupWait = o.CommitInterval
	if o.CommitInterval > 0 {
		d.groupWait = max(o.CommitInterval, batchCommitInterval(o.Rules, o.CommitInterval))
	}
	if d.groupWait > o.CommitInterval {
		for _, r := range o.Rules {
			if r.Batch.MaxSize == 0 {
				d.in.prompt[r.Event] = true
			}
		}
	}
	if o.CommitInterval > 0 {
		d.commitGap = d.groupWait
		if slices.Contains(d.in.prompt[:], true) {
			d.commitGap = o.CommitInterval
		}
	}
	if o.commitGap > 0 {
		d.commitGap = o.commitGap
	}
	q, err := store.OpenSegments(filepath.Join(o.Dir, OutboxDir), store.SegmentOptions{NoSync: o.NoSync, SyncInterval: max(o.SyncInterval, 0), Logger: d.log, Labels: profileLabels})
	if err != nil {
		return nil, fmt.Errorf("webhook: outbox: %w", err)
	}
	if err := migrateLegacyOutbox(filepath.Join(o.Dir, LegacyOutboxFile), q, d.log); err != nil {
		q.Close()
		return nil, err
	}
	d.q = q
	d.ctx, d.cancel = context.WithCancel(context.Background())
	cat, err := openCatalog(filepath.Join(o.Dir, EndpointsFile))
	if err != nil {
		q.Close()
		return nil, err
	}
	for _, ep := range d.eps {
		if n, ok := cat.lookup(declOf(ep)); ok {
			cat.give(ep, n)
		}
	}
	if err := d.load(cat); err != nil {
		q.Close()
		return nil, err
	}
	// The endpoints new to the file get their numbers now that the records
	// that named a number the file does not have are gone: such a number
	// may be given again.
	for _, ep := range d.eps { // no endpoint is added after load
		if ep.num < 0 {
			cat.give(ep, cat.number(declOf(ep)))
		}
		d.epList = append(d.epList, ep)
	}
	cat.prune()
	if err := cat.save(); err != nil { // before any record carries a new number
		q.Close()
		return nil, err
	}
	return d, nil
}

// migrateLegacyOutbox moves the pending events of an earlier version's
// bbolt outbox at path into q, with their sequence numbers, then removes
// the file. Nothing to do when there is no such file.
func migrateLegacyOutbox(path string, q store.Queue, log *slog.Logger) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	old, err := store.Open(path, store.Options{})
	if err != nil {
		return fmt.Errorf("webhook: legacy outbox: %w", err)
	}
	var recs []store.Record
	err = old.Scan(func(r store.Record) error {
		recs = append(recs, store.Record{Seq: r.Seq, Data: bytes.Clone(r.Data)})
		return nil
	})
	if cerr := old.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("webhook: legacy outbox: %w", err)
	}
	if len(recs) > 0 {
		if err := q.Commit(recs, nil); err != nil {
			return fmt.Errorf("webhook: legacy outbox: %w", err)
		}
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("webhook: legacy outbox: %w", err)
	}
	log.Info("web hook outbox: moved pending events from the previous format", "events", len(recs), "from", path)
	return nil
}

// batchWriteBuffer is the write buffer of the connections that post
// batches.
const batchWriteBuffer = 64 << 10

// newTransport keeps up to pool idle connections per host and opens at most
// pool at a time, reusing them with keep-alive. writeBuf is each
// connection's write buffer; 0 = net/http's 4 KB.
func newTransport(pool int, tc *tls.Config, writeBuf int) *http.Transport {
	return &http.Transport{
		WriteBufferSize: writeBuf,
		// Reads and writes as raw system calls (see package rawconn): a
		// request posted by a broker that was idle does not wake the Go
		// runtime's monitor thread.
		DialContext:           rawconn.DialContext(&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}),
		MaxIdleConns:          pool * 4,
		MaxIdleConnsPerHost:   pool,
		MaxConnsPerHost:       pool,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       tc,
	}
}

// endpoint returns the endpoint for url, headers and batch, creating it.
func (d *Dispatcher) endpoint(url string, headers map[string]string, b Batch) *endpoint {
	key := endpointKey(url, headers, strconv.Itoa(b.MaxSize)+"/"+b.MaxDelay.String())
	d.epMu.Lock()
	defer d.epMu.Unlock()
	if ep, ok := d.eps[key]; ok {
		return ep
	}
	ep := newEndpoint(d, url, headers, b)
	d.eps[key] = ep
	return ep
}

// recordEndpoint returns the endpoint of a record: the one it names by
// number in cat (num >= 0) or in its header.
func (d *Dispatcher) recordEndpoint(cat *catalog, rec *record, num int) (*endpoint, error) {
	if num < 0 {
		return d.endpoint(rec.URL, rec.Headers, rec.batch()), nil
	}
	if ep := cat.eps[num]; ep != nil {
		return ep, nil
	}
	e := cat.get(uint64(num))
	if e == nil {
		return nil, fmt.Errorf("endpoint %d is not in %s", num, EndpointsFile)
	}
	ep := d.endpoint(e.URL, e.Headers, e.batch())
	cat.give(ep, num)
	return ep, nil
}

// load reads the pending deliveries of a previous run, whose records name
// their endpoints in cat.
func (d *Dispatcher) load(cat *catalog) error {
	var bad []uint64
	err := d.q.Scan(func(r store.Record) error {
		rec, num, body, err := parseRecord(r.Seq, r.Data)
		var ep *endpoint
		if err == nil {
			ep, err = d.recordEndpoint(cat, &rec, num)
		}
		if err != nil {
			d.log.Error("web hook outbox: unreadable record, removing it", "seq", r.Seq, "err", err)
			bad = append(bad, r.Seq)
			return nil
		}
		k, _ := events.ParseKind(rec.Event)
		d.bytes += int64(len(r.Data))
		d.count++
		if d.spills(ep) {
			ep.spill.push(spilled{seq: r.Seq, created: time.UnixMilli(rec.Time).UnixNano(), size: uint32(len(r.Data)), kind: k})
			return nil
		}
		j := &job{seq: r.Seq, idText: rec.ID, client: rec.ClientID, event: k, created: time.UnixMilli(rec.Time),
			size: int64(len(r.Data)), ep: ep}
		d.hold(j, body)
		d.pending.push(j)
		ep.live++
		return nil
	})
	if err != nil {
		return fmt.Errorf("webhook: outbox: %w", err)
	}
	if len(bad) > 0 {
		if err := d.q.Commit(nil, bad); err != nil {
			return fmt.Errorf("webhook: outbox: %w", err)
		}
	}
	if d.count > 0 {
		d.log.Info("web hook outbox: delivering events pending from the previous run", "events", d.count, "bytes", d.bytes)
	}
	return nil
}

// Kinds returns the event kinds that some rule posts.
func (d *Dispatcher) Kinds() []events.Kind {
	var out []events.Kind
	for k, rs := range d.rules {
		if len(rs) > 0 {
			out = append(out, events.Kind(k))
		}
	}
	return out
}

// Start subscribes to bus and starts delivering, beginning with the events
// left pending by a previous run.
func (d *Dispatcher) Start(bus *events.Bus) {
	d.timer = time.NewTimer(time.Hour)
	d.timer.Stop()
	d.sub = bus.ObserveWith("webhook", events.Observer{Event: d.observe, Messages: d.observeMessage}, d.Kinds()...)
	d.mu.Lock()
	loaded := d.pending.appendFirst(nil, d.pending.len())
	for _, ep := range d.epList {
		ep.spill.each(func(s spilled) { ep.counters(s.kind).queued.Add(1) })
	}
	d.mu.Unlock()
	for _, j := range loaded {
		j.ep.counters(j.event).queued.Add(1)
		j.ep.enqueue(j)
	}
	d.writerWG.Add(1)
	go labelled(d.run)
}

// labelled runs fn with the profiler label mqgate=webhook, which the
// goroutines it starts inherit (the HTTP client's connection loops too):
// a CPU profile of the broker then tells the dispatcher's share from the
// MQTT path's (go tool pprof -tagfocus mqgate=webhook).
func labelled(fn func()) {
	pprof.Do(context.Background(), profileLabels, func(context.Context) { fn() })
}

// labelledAfter is time.AfterFunc with fn labelled: a timer's goroutine
// inherits no labels.
func labelledAfter(d time.Duration, fn func()) *time.Timer {
	return time.AfterFunc(d, func() { labelled(fn) })
}

// profileLabels are the profiler labels of the dispatcher's goroutines
// (see labelled) and of the outbox's timed fsyncs.
var profileLabels = pprof.Labels("mqgate", "webhook")

// maxCommit bounds how many events one outbox commit takes.
const maxCommit = 4096

// outageCommitInterval is how long events gather before a commit while
// every endpoint's breaker is open: they cannot be delivered before a probe
// succeeds anyway, and a commit's fixed costs (a timer, a wake-up, a write
// and the scheduler's reaction to it) were half of what an event cost at
// 10,000 events/s with commits every 10 ms. The price: a process that dies
// during an outage loses up to this much of it instead of CommitInterval.
const outageCommitInterval = 100 * time.Millisecond

// batchCommitInterval is how long events may gather before a commit when
// rules batch, with commit the CommitInterval: the shortest max_delay less
// commit, and at least half of that max_delay; at most
// outageCommitInterval; 0 when no rule batches. A batch waits for its
// max_delay counted from its first event's arrival, not from its commit,
// so a batch is posted no later for it: an event is committed at most this
// long after it came (plus the commit's own time, which commit leaves room
// for), and its lane posts its batch when its max_delay is up. What it
// saves is most of the commits' fixed costs (a timer wake-up, a write, the
// bookkeeping): with a 1,000 / 100 ms batch at 10,000 events/s, committing
// every 50 ms instead of 10 ms gave the broker 4-8% more messages per
// CPU-second, and every 100 ms instead of 50 ms another 3-6% (paired:
// 1.033, 1.036, 1.032, 1.063, 1.056). A write costs the store about 200
// µs whether it carries 45 or 90 KB. The price is the same as
// outageCommitInterval's: a process that dies loses up to this much of the
// events not yet committed instead of CommitInterval. The kinds of the
// rules that do not batch keep CommitInterval: the writer's wait is cut
// short when one of their events comes (Dispatcher.prompt), so an EMQX 4
// configuration that posts every lifecycle event on its own and batches
// message.publish commits at this interval while no client connects.
func batchCommitInterval(rules []Rule, commit time.Duration) time.Duration {
	least := time.Duration(-1)
	for _, r := range rules {
		if r.Batch.MaxSize == 0 {
			continue
		}
		if least < 0 || r.Batch.MaxDelay < least {
			least = r.Batch.MaxDelay
		}
	}
	if least <= 0 {
		return 0
	}
	return min(max(least-commit, least/2), outageCommitInterval)
}

// allDown reports whether every endpoint's breaker is open.
func (d *Dispatcher) allDown() bool {
	for _, ep := range d.epList {
		if !ep.down.Load() {
			return false
		}
	}
	return len(d.epList) > 0
}

// maxInbox bounds the bytes in the inbox, whatever Options.QueueSize
// says: 65,536 events of 1 MB payloads would otherwise be 64 GB. The
// writer takes the inbox at least every 100 ms; this is 640 MB/s of events
// for that long, more than a disk takes in.
const maxInbox = 64 << 20

// inbox is where observe and observeMessage leave the events they take
// from the bus until the outbox writer takes them (see observe): all of
// the dispatcher that they touch but its rules, and the bounds and
// wake-ups of the inbox in one place. It is allocated on its own, in 192
// bytes (inboxSize), whose size class puts it on three whole cache lines
// (the allocator places a span's objects at multiples of their size). As
// fields of the Dispatcher, what observe read and wrote was spread over
// four or five cache lines, some of them shared with fields the outbox
// writer writes. What that saved is within the spread of the profiles it
// was measured with (webhook/README.md).
type inbox struct {
	inboxFields
	_ [inboxSize - unsafe.Sizeof(inboxFields{})]byte
}

// inboxSize is the size of an inbox: a size class of the allocator that is
// a multiple of 64 bytes. An inbox's fields that do not fit in it do not
// compile.
const inboxSize = 192

// inboxFields are an inbox's fields.
type inboxFields struct {
	mu      sync.Mutex
	count   int32 // events in entries, stage and refs, at most limit
	limit   int32 // Options.QueueSize
	quarter int32 // count at which a put signals filling
	// refBytes is what the messages of refs hold (their Size), and the
	// references themselves; counted against maxInbox with the entries.
	refBytes int32
	entries  []byte
	stage    []byte // the inbox's last entries, up to stageSize bytes: see observe
	// refs are the events observeMessage took by reference, at most
	// maxRefs; each has its place among the entries, an empty entry (see
	// putRef).
	refs    []events.MessageRef
	ready   chan struct{} // signalled when the inbox gets its first event
	filling chan struct{} // signalled when the inbox reaches a quarter of its bounds: see gather
	// wake is signalled by a put for the prompt kinds: those that some
	// rule posts one by one while other rules batch (groupWait >
	// CommitInterval); an event of one of them cuts the writer's wait
	// down to CommitInterval (see gather).
	wake   chan struct{}
	prompt [events.NumKinds]bool
}

// newInbox returns an empty inbox for up to limit events.
func newInbox(limit int) *inbox {
	limit = min(limit, math.MaxInt32)
	in := &inbox{}
	in.limit = int32(limit)
	in.quarter = int32(max(limit/4, 1))
	in.ready = make(chan struct{}, 1)
	in.filling = make(chan struct{}, 1)
	in.wake = make(chan struct{}, 1)
	return in
}

// refSize is what a reference in the inbox counts against maxInbox
// besides its message's Size: its own size.
const refSize = int(unsafe.Sizeof(events.MessageRef{}))

// bytesLocked is the bytes the inbox holds, as counted against maxInbox.
// in.mu must be held.
func (in *inbox) bytesLocked() int {
	return len(in.entries) + len(in.stage) + int(in.refBytes)
}

// admitLocked counts one more event in the inbox, unless it is full
// (Options.QueueSize events, or maxInbox bytes), and returns the bytes it
// held before. in.mu must be held.
func (in *inbox) admitLocked() (size int, ok bool) {
	size = in.bytesLocked()
	if in.count >= in.limit || size >= maxInbox {
		return size, false
	}
	in.count++
	return size, true
}

// put adds the entry of event e, posted by the rules whose indexes are in
// posting (see observe); false when the inbox is full.
func (in *inbox) put(posting []byte, e *events.Event) bool {
	in.mu.Lock()
	size, ok := in.admitLocked()
	if !ok {
		in.mu.Unlock()
		return false
	}
	if len(e.Payload)+len(e.Topic) >= stageSize/2 {
		in.flushStage()
		in.entries = appendInboxEntry(in.entries, posting, e)
	} else {
		in.staged(appendInboxEntry(in.stage, posting, e))
	}
	in.signalLocked(size, e.Kind)
	return true
}

// maxRefs is the most references the inbox keeps; observeMessage copies
// the events beyond them, as observe does. A reference saves the broker's
// goroutine the event's copy, but the writer reads the message when it is
// no longer in the cache, and the garbage collector scans the references
// and keeps the messages: at 10,000 events/s, the 1,000 of an outage's
// commit, the broker spends less (webhook/README.md); a saturated broker
// taking 16,384 events per commit by reference did 7-9% fewer messages per
// CPU-second than copying them.
const maxRefs = 2048

// What putRef did with an event.
const (
	refTaken = iota // kept by reference
	refFull         // refused: the inbox is full
	refCopy         // left to be copied: the inbox has maxRefs references
)

// putRef adds event r by reference, its place among the entries an empty
// entry (the length 0), and tells what it did.
func (in *inbox) putRef(r *events.MessageRef) int {
	held := r.Msg.Size() + refSize
	in.mu.Lock()
	if len(in.refs) >= maxRefs {
		in.mu.Unlock()
		return refCopy
	}
	size, ok := in.admitLocked()
	if !ok {
		in.mu.Unlock()
		return refFull
	}
	in.refs = append(in.refs, *r)
	in.refBytes += int32(min(held, maxInbox))
	in.staged(append(in.stage, 0, 0, 0, 0))
	in.signalLocked(size, r.Kind)
	return refTaken
}

// staged sets the stage to stage, the stage with entries appended, and
// moves it to the inbox once it holds stageSize bytes. in.mu must be held.
func (in *inbox) staged(stage []byte) {
	in.stage = stage
	if len(in.stage) >= stageSize {
		in.flushStage()
	}
}

// signalLocked unlocks in.mu after a put of an event of kind k to an
// inbox that held size bytes before it, and signals the writer: ready for
// the first event, filling when the inbox reaches a quarter of its bounds
// (of its events, or of maxInbox), wake for the prompt kinds.
func (in *inbox) signalLocked(size int, k events.Kind) {
	first := in.count == 1
	filling := in.count == in.quarter ||
		size < maxInbox/4 && in.bytesLocked() >= maxInbox/4
	in.mu.Unlock()
	if first {
		signal(in.ready)
	}
	if filling {
		signal(in.filling)
	}
	if in.prompt[k] {
		signal(in.wake)
	}
}

// flushStage moves the stage's entries to the end of the inbox. in.mu
// must be held.
func (in *inbox) flushStage() {
	in.entries = append(in.entries, in.stage...)
	in.stage = in.stage[:0]
}

// taken is what inbox.take takes: the entries, and the references whose
// places are among them (see putRef).
type taken struct {
	entries []byte
	refs    []events.MessageRef
}

// take returns the inbox's events and empties it, leaving spare and
// spareRefs, empty slices, to hold the next.
func (in *inbox) take(spare []byte, spareRefs []events.MessageRef) taken {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.flushStage()
	t := taken{entries: in.entries, refs: in.refs}
	in.entries, in.refs, in.count, in.refBytes = spare, spareRefs, 0, 0
	return t
}

// len is how many events the inbox holds.
func (in *inbox) len() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return int(in.count)
}

// observe takes event e from the bus into the inbox, if a rule posts it;
// false when the inbox is full (Options.QueueSize events, or maxInbox
// bytes). It runs on the publisher's goroutine. An entry of the inbox is
// its length (4 bytes, little-endian), the rules that post the event (the
// length of the list as a uvarint, then their indexes in
// d.rules[e.Kind] as uvarints: the writer does not match them again), the
// event's key (inboxKeySize bytes: what the writer needs of the event to
// make its deliveries) and the event record. Entries are written to the
// stage and moved from it to the inbox a few kilobytes at a time (see
// stageSize); the writer takes both.
func (d *Dispatcher) observe(e *events.Event) bool {
	var buf [8]byte
	posting := d.posting(buf[:0], e)
	if len(posting) == 0 {
		return true
	}
	return d.in.put(posting, e)
}

// posting appends to dst the indexes in d.rules[e.Kind] of the rules that
// post e, as uvarints: none for a $SYS topic.
func (d *Dispatcher) posting(dst []byte, e *events.Event) []byte {
	if sysTopic(e) {
		return dst
	}
	for i := range d.rules[e.Kind] {
		if d.rules[e.Kind][i].matchesTopic(e.Topic) {
			dst = binary.AppendUvarint(dst, uint64(i))
		}
	}
	return dst
}

// observeMessage takes event r from the bus into the inbox by reference,
// if a rule may post it; false when the inbox is full. It runs on the
// publisher's goroutine, and leaves to the outbox writer all it can: the
// rules' matching (but for the topic filters of rules that have one: see
// Dispatcher.filtered), the check for $SYS topics, and the event's entry
// (refRecords). Taking a message.publish event cost the publisher's
// goroutine about 200 ns with its entry made there, and 125 ns by
// reference, in CPU profiles of 10,000 events/s (webhook/README.md).
func (d *Dispatcher) observeMessage(r events.MessageRef) bool {
	if d.filtered[r.Kind] && !d.mayPost(r.Kind, r.Msg.Topic()) {
		return true
	}
	switch d.in.putRef(&r) {
	case refTaken:
		return true
	case refFull:
		return false
	}
	var e events.Event
	r.Fill(&e)
	return d.observe(&e)
}

// mayPost reports whether a rule of kind k passes topic.
func (d *Dispatcher) mayPost(k events.Kind, topic string) bool {
	for i := range d.rules[k] {
		if d.rules[k][i].matchesTopic(topic) {
			return true
		}
	}
	return false
}

// refRecords appends to dst the entries of t (see take), in their order:
// its entries as they are, and in the place of each of its references the
// entry of its event, when a rule posts it (see observe). It clears
// t.refs, so that the messages may be freed.
func (d *Dispatcher) refRecords(dst []byte, t taken) []byte {
	rest, refs := t.entries, t.refs
	var e events.Event
	var buf [8]byte
	for len(rest) > 0 {
		n := binary.LittleEndian.Uint32(rest)
		if n > 0 {
			dst, rest = append(dst, rest[:4+n]...), rest[4+n:]
			continue
		}
		r := &refs[0] // the place's: putRef writes both at once
		rest, refs = rest[4:], refs[1:]
		e = events.Event{}
		r.Fill(&e)
		if posting := d.posting(buf[:0], &e); len(posting) > 0 {
			dst = appendInboxEntry(dst, posting, &e)
		}
	}
	clear(t.refs)
	return dst
}

// stageSize is the most bytes observe writes to the stage before it moves
// them to the inbox at once. The inbox is written once per event over a
// commit's window (up to 100 ms), between the broker's other work, which
// has evicted its memory from the cache by then: every entry's first
// stores waited for memory, and so did the inbox lock's release after them.
// The stage is a few kilobytes, written again every few milliseconds, and
// stays in the cache; one copy of 4 KB into the inbox waits for its memory
// once. It took 0.13 µs per event off observe in profiles of 10,000 events/s
// (webhook/README.md). Events whose payload and topic alone fill half the
// stage go to the inbox directly.
const stageSize = 4 << 10

// appendInboxEntry appends to b the inbox entry of event e posted by the
// rules whose indexes are in posting (see observe).
func appendInboxEntry(b, posting []byte, e *events.Event) []byte {
	at := len(b)
	b = binary.AppendUvarint(append(b, 0, 0, 0, 0), uint64(len(posting)))
	b = append(b, posting...)
	keyAt := len(b)
	b = append(b, make([]byte, inboxKeySize)...) // no allocation: appended in place
	b, clientAt := appendEventRecAt(b, e)
	client := e.ClientID
	if e.Kind == events.MessagePublish {
		client = e.FromClientID
	}
	ms := int64(noTime)
	if !e.Time.IsZero() {
		ms = e.Time.UnixMilli()
	}
	key := b[keyAt : keyAt+inboxKeySize]
	key[0] = byte(e.Kind)
	binary.LittleEndian.PutUint64(key[1:], uint64(ms))
	binary.LittleEndian.PutUint32(key[9:], uint32(clientAt-keyAt-inboxKeySize))
	binary.LittleEndian.PutUint32(key[13:], uint32(len(client)))
	binary.LittleEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	return b
}

// inboxKeySize is the size of an inbox entry's key (see observe): the
// event's kind, its time in Unix milliseconds (noTime when it has none),
// and the offset and length in its record of the client id whose lane it
// takes: what the outbox writer needs of an event to make its deliveries.
// It read them from the record before, stepping over the layout's varints
// and the fields before the client id (80 ns per event in a benchmark);
// observe, which has the event at hand, writes them with a few stores
// (webhook/README.md, "What the outbox writer reads of an event").
const inboxKeySize = 1 + 8 + 4 + 4

// noTime is the time in an inbox entry's key of an event without one.
const noTime = math.MinInt64

// nextInbox splits the first entry off recs, entries of the inbox (see
// observe): the indexes of the rules that post its event, its key and
// event record (keyed, see inboxKey), and the entries after it.
func nextInbox(recs []byte) (posting, keyed, rest []byte) {
	n := 4 + int(binary.LittleEndian.Uint32(recs))
	entry, rest := recs[4:n], recs[n:]
	m, k := binary.Uvarint(entry)
	return entry[k : k+int(m)], entry[k+int(m):], rest
}

// inboxKey splits keyed, an inbox entry's key and event record (see
// nextInbox), into the key, whose client id is a view of the record, and
// the record.
func inboxKey(keyed []byte) (eventRecKey, []byte) {
	rec := keyed[inboxKeySize:]
	k := eventRecKey{kind: events.Kind(keyed[0])}
	if ms := int64(binary.LittleEndian.Uint64(keyed[1:])); ms != noTime {
		k.time = time.UnixMilli(ms)
	}
	at, n := binary.LittleEndian.Uint32(keyed[9:]), binary.LittleEndian.Uint32(keyed[13:])
	if n > 0 {
		k.client = unsafe.String(&rec[at], n)
	}
	return k, rec
}

// signal leaves a signal on c, a channel of one, unless one is waiting.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// run moves events from the inbox into the outbox, and acknowledged
// deliveries out of it, one write per batch (fsynced per SyncInterval).
func (d *Dispatcher) run() {
	defer d.writerWG.Done()
	closed := d.sub.Done()
	for {
		open := true
		d.quietFrom.Store(-1)
		now := time.Now()
		for _, ep := range d.epList {
			if ep.batch.MaxSize > 0 {
				ep.postFullBatch(now)
			}
		}
		select {
		case <-d.in.ready:
		case <-d.kick:
		case <-closed:
			open = false // observe is not called again: take what it left
		}
		if open && d.o.CommitInterval > 0 && d.in.len() < maxCommit {
			// Let a group gather: one wake-up and one write for all the
			// events of the window instead of one per event, and for the
			// acknowledgements of the deliveries that end meanwhile (a
			// kick).
			d.gather()
		}
		d.quietFrom.Store(0)
		t := d.in.take(d.inSpare[:0], d.refSpare[:0])
		all, recs := t.entries, t.entries
		if len(t.refs) > 0 {
			recs = d.refRecords(d.refRecs[:0], t)
			d.refRecs = reuse(recs)
		}
		d.refSpare = t.refs[:0] // at most maxRefs: kept whatever its size
		for {
			// Up to maxCommit events, and the records they make: one per
			// rule that posts each (its index in the entry is a uvarint,
			// whose last byte is under 0x80).
			n, records, rest := 0, 0, recs
			for len(rest) > 0 && n < maxCommit {
				var posting []byte
				posting, _, rest = nextInbox(rest)
				for _, b := range posting {
					if b < 0x80 {
						records++
					}
				}
				n++
			}
			d.commit(recs[:len(recs)-len(rest)], records)
			if recs = rest; len(recs) == 0 {
				break
			}
		}
		d.inSpare = reuse(all)
		if !open {
			return
		}
	}
}

// maxReused is the largest buffer the outbox writer keeps for its next
// commit (see reuse).
const maxReused = 8 << 20

// reuse returns b emptied, for the writer's next commit to fill, or nil
// when it grew past maxReused: a burst's buffer is not kept.
func reuse(b []byte) []byte {
	if cap(b) > maxReused {
		return nil
	}
	return b[:0]
}

// gather lets events gather in the inbox before a commit: for groupWait,
// or outageCommitInterval while every endpoint's breaker is open. An event
// of a prompt kind shortens the wait to CommitInterval from when it came.
// The wait caps the writer's wake-ups and writes at one per interval, as
// long as a window's events fit in the inbox: it ends when the inbox
// reaches a quarter of Options.QueueSize or of maxInbox. Without that, a
// broker whose publishers filled the inbox within the window lost the rest
// of the window's events, though the writer could have stored them: with
// the receiver down and one core saturated by four publishers, 11.4 of 50
// million events in 59 s, the inbox full after 73 ms of each 100 ms
// (webhook/README.md).
func (d *Dispatcher) gather() {
	wait := d.groupWait
	d.quietFrom.Store(time.Now().UnixNano())
	var wake chan struct{}
	if d.allDown() {
		wait = max(wait, outageCommitInterval) // nothing is delivered before a probe succeeds
	} else if wait > d.o.CommitInterval {
		wake = d.in.wake
	}
	start := time.Now()
	d.timer.Reset(wait)
	select {
	case <-d.timer.C:
	case <-d.in.filling:
		d.timer.Stop()
	case <-wake:
		// A signal of either channel may be left from events that an
		// earlier commit took: it costs one commit sooner than needed,
		// never one later.
		d.timer.Stop()
		time.Sleep(min(d.o.CommitInterval, wait-time.Since(start)))
	}
}

// commitBefore reports whether the outbox writer may hand its endpoints
// new events before t, as of now: false when it cannot take the inbox
// again before t (see commitGap), so that a batch whose max_delay ends at
// t holds every event it would hold then. Its lane posts it at once
// instead of waiting for t: up to groupWait sooner than it did, and
// without a timer. An early post can only make a batch smaller than it
// might have been (when a burst fills the inbox, whose take then does not
// wait); it never makes an event later.
func (d *Dispatcher) commitBefore(t, now time.Time) bool {
	from := d.quietFrom.Load()
	switch {
	case d.commitGap <= 0 || from == 0:
		return true
	case from < 0:
		from = now.UnixNano()
	}
	return from+int64(d.commitGap) < t.UnixNano()
}

type item struct {
	j     *job   // nil when the event spills (see spilled)
	rec   []byte // the stored record, in d.arena
	body  []byte // its body, the event record, in d.arena
	frame [2]int // where the outbox frame of rec is in d.arena: it ends where rec does
	// what the job is made of
	seq      uint64
	id       [26]byte
	client   string
	clientAt int // where client is in body; -1: not in it (empty)
	kind     events.Kind
	created  time.Time
	ep       *endpoint
	hold     bool // its body is held in memory (holdKept)
}

func (it *item) size() int64 { return int64(len(it.rec)) }

// jobClient returns the client id for it.j: it.client is a view of the
// inbox, which the next commit reuses. When the job holds its body, the
// client id in it serves (a body held is never changed), which saves an
// allocation per event.
func (it *item) jobClient() string {
	if it.j.body != nil && it.clientAt >= 0 {
		return unsafe.String(&it.j.body[it.clientAt], len(it.client))
	}
	return strings.Clone(it.client)
}

// commit stores the deliveries of the events of recs (taken from the
// inbox), records of them, one per rule that posts each, and removes
// acknowledged ones in one outbox transaction, then hands the new ones to
// their endpoints.
func (d *Dispatcher) commit(recs []byte, records int) {
	items := slices.Grow(d.items[:0], records)
	// A sequence number per record, reserved first: newItem frames each
	// record with its number.
	var seq uint64
	if records > 0 {
		seq = d.q.Reserve(records)
	}
	arena := d.arena[:0]
	now := time.Now()
	for len(recs) > 0 {
		var posting, keyed []byte
		posting, keyed, recs = nextInbox(recs)
		key, rec := inboxKey(keyed)
		for len(posting) > 0 {
			i, k := binary.Uvarint(posting)
			posting = posting[k:]
			var it item
			it, arena = d.newItem(arena, &key, rec, d.rules[key.kind][i].ep, seq, now)
			seq++
			items = append(items, it)
		}
	}
	all := items // makeRoom may drop from the front
	d.mu.Lock()
	items = d.makeRoom(items)
	kept := items[:0]
	for i := range items { // by index: an item is about 190 bytes
		it := &items[i]
		size := it.size()
		if d.bytes+size > d.o.MaxBytes { // only with DropNewest: makeRoom made room otherwise
			it.ep.counters(it.kind).dropped.Add(1)
			continue
		}
		d.bytes += size
		d.count++
		if ep := it.ep; d.spills(ep) {
			ep.spill.push(spilled{seq: it.seq, created: it.created.UnixNano(), size: uint32(size), kind: it.kind})
		} else {
			it.j = &job{seq: it.seq, idBytes: it.id, event: it.kind, created: it.created, size: size, ep: ep} // client: below
			d.pending.push(it.j)
			ep.live++
		}
		if len(kept) < i {
			kept = append(kept, *it)
		} else {
			kept = kept[:i+1] // nothing dropped before it: it is in place
		}
	}
	del := d.delq
	d.delq = nil
	var lost uint64
	if sub := d.sub; sub != nil {
		if n := sub.Dropped(); n > d.busDropped && time.Since(d.busLogged) > 10*time.Second {
			lost = n - d.busDropped
			d.busDropped = n
			d.busLogged = time.Now()
		}
	}
	d.mu.Unlock()
	if lost > 0 {
		d.log.Warn("web hook: events lost before the outbox (event queue full)", "lost", lost, "queue", d.o.QueueSize)
	}
	stored := true
	frames, dropped := arena, len(kept) < len(all)
	if dropped {
		frames = keptFrames(arena, kept)
	}
	if len(frames) > 0 || len(del) > 0 {
		d.commits.Add(1)
	}
	var err error
	if frames, err = d.q.CommitFrames(frames, del); err != nil {
		stored = false
		d.mu.Lock()
		d.commitErrs++
		first := d.commitErrs == 1
		d.mu.Unlock()
		if first {
			d.log.Error("web hook outbox: commit failed; events are delivered from memory only until it works again", "err", err)
		}
	}
	d.mu.Lock()
	d.holdKept(kept, !stored)
	for i := range kept {
		if it := &kept[i]; it.j != nil {
			it.j.client = it.jobClient()
		}
	}
	d.mu.Unlock()
	if !dropped {
		arena = frames // with the deletions: the capacity may have grown
	}
	d.arena = reuse(arena)
	// One lock per run of items for one endpoint, and one counter update
	// per run of one kind in it.
	for run := kept; len(run) > 0; {
		ep, n := run[0].ep, 1
		for n < len(run) && run[n].ep == ep {
			n++
		}
		for k := 0; k < n; {
			kind, m := run[k].kind, 1
			for k+m < n && run[k+m].kind == kind {
				m++
			}
			ep.counters(kind).queued.Add(uint64(m))
			k += m
		}
		ep.mu.Lock()
		for i := range n {
			if j := run[i].j; j != nil {
				ep.enqueueLocked(j)
			}
		}
		ep.mu.Unlock()
		run = run[n:]
	}
	// Keep the lists, not what they point to (jobs, endpoints, the arena
	// just dropped), and not a burst's lists. What lies past their length
	// was cleared by the commit that used it.
	clear(all)
	d.items = all[:0]
	if cap(all) > maxCommit {
		d.items = nil
	}
	d.unspill()
}

// unspill turns spilled events back into jobs, in order, for each endpoint
// that is up and has fewer jobs than its window, and one job for an
// endpoint that is down and has none left to probe it with. It runs in
// the outbox writer, the only goroutine that enqueues, so an endpoint's
// loaded events always go before its newer ones.
func (d *Dispatcher) unspill() {
	type load struct {
		ep *endpoint
		s  []spilled
	}
	if d.stopped.Load() {
		return // the endpoints take no more jobs; the events stay in the outbox
	}
	var loads []load
	d.mu.Lock()
	for _, ep := range d.epList {
		if ep.spill.len() == 0 {
			continue
		}
		n := ep.window - ep.live
		if ep.down.Load() {
			n = 1 - ep.live
		}
		n = min(n, ep.spill.len())
		if n <= 0 {
			continue
		}
		l := load{ep: ep, s: make([]spilled, 0, n)}
		for range n {
			l.s = append(l.s, ep.spill.front())
			ep.spill.pop()
		}
		ep.live += n
		loads = append(loads, l)
	}
	d.mu.Unlock()
	var seqs []uint64
	for _, l := range loads {
		for rest := l.s; len(rest) > 0; {
			// The records of up to unspillChunk bytes at a time, read
			// together (store.Segments.ReadMany).
			n, size := 0, 0
			for n < len(rest) && (n == 0 || size+int(rest[n].size) <= unspillChunk) {
				size += int(rest[n].size)
				n++
			}
			chunk := rest[:n]
			rest = rest[n:]
			seqs = seqs[:0]
			for _, s := range chunk {
				seqs = append(seqs, s.seq)
			}
			d.unspillBuf = d.q.ReadMany(seqs, d.unspillBuf, func(i int, rec []byte, err error) {
				s := chunk[i]
				var j *job
				if err == nil {
					j, err = d.loadJob(l.ep, s, rec)
				}
				if err != nil {
					d.log.Error("web hook outbox: cannot read a pending event back; it is lost", "seq", s.seq, "err", err)
					d.mu.Lock()
					d.forget(s.seq, int64(s.size))
					l.ep.live--
					d.mu.Unlock()
					l.ep.counters(s.kind).dropped.Add(1)
					return
				}
				l.ep.enqueue(j)
			})
		}
	}
	if cap(d.unspillBuf) > 4*unspillChunk {
		d.unspillBuf = nil // a record larger than the chunk: do not keep its buffer
	}
}

// unspillChunk bounds the bytes of spilled records that unspill reads at
// once: up to 8,192 records of any size make one load. One read per record
// was one system call per event of a backlog; a receiver catching up on
// one at 4,500 events/s made as many reads a second.
const unspillChunk = 1 << 20

// parseRecord splits stored record seq into its header, with the number
// of its endpoint in EndpointsFile (-1 for a record of an earlier version,
// whose header names the endpoint itself), and its body, which it checks
// can be posted: an event record that reads, or an earlier version's JSON
// body, sent as it is.
func parseRecord(seq uint64, data []byte) (record, int, []byte, error) {
	r, num, body, err := parseRecordHead(data)
	if err == nil && num < 0 && isEventRec(body) { // parseRecordHead read this version's
		var e events.Event
		err = readEventRec(&e, body)
	}
	if err != nil {
		return r, 0, nil, fmt.Errorf("webhook: outbox record %d: %w", seq, err)
	}
	return r, num, body, nil
}

// recordBody returns the body of a stored record, without reading its
// header further than its end.
func recordBody(data []byte) ([]byte, error) {
	if len(data) > 0 && data[0] == recMark {
		_, _, _, body, err := cutRecordHead(data)
		return body, err
	}
	_, body, ok := bytes.Cut(data, []byte{'\n'})
	if !ok {
		return nil, errors.New("no body")
	}
	return body, nil
}

func parseRecordHead(data []byte) (record, int, []byte, error) {
	var r record
	if len(data) > 0 && data[0] == recMark {
		num, id, created, body, err := cutRecordHead(data)
		if err != nil {
			return r, 0, nil, err
		}
		if num > math.MaxInt32 {
			return r, 0, nil, fmt.Errorf("endpoint number %d", num)
		}
		var e events.Event
		if err := readEventRec(&e, body); err != nil {
			return r, 0, nil, err
		}
		client := e.ClientID
		if e.Kind == events.MessagePublish {
			client = e.FromClientID
		}
		r.ClientID, r.Event, r.ID, r.Time = strings.Clone(client), e.Kind.String(), string(id), created
		return r, int(num), body, nil
	}
	head, body, ok := bytes.Cut(data, []byte{'\n'})
	if !ok {
		return r, 0, nil, errors.New("no body")
	}
	if err := json.Unmarshal(head, &r); err != nil {
		return r, 0, nil, fmt.Errorf("unreadable header: %w", err)
	}
	return r, -1, body, nil
}

// spills reports whether a new event of ep goes to its spill instead of
// becoming a job: ep is down, has spilled events already (which go first),
// or holds a full window of jobs. d.mu must be held.
func (d *Dispatcher) spills(ep *endpoint) bool {
	return ep.down.Load() || ep.spill.len() > 0 || ep.live >= ep.window
}

// loadJob makes the job of spilled event s of ep from its stored record.
func (d *Dispatcher) loadJob(ep *endpoint, s spilled, rec []byte) (*job, error) {
	r, _, body, err := parseRecord(s.seq, rec)
	if err != nil {
		return nil, err
	}
	j := &job{seq: s.seq, idText: r.ID, client: r.ClientID, event: s.kind, created: time.Unix(0, s.created), size: int64(s.size), ep: ep}
	d.hold(j, body)
	return j, nil
}

// hold keeps a copy of body, j's stored body, in j, a block of its own,
// when mayHold allows; otherwise it is read back from the outbox when j is
// posted.
func (d *Dispatcher) hold(j *job, body []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := int64(len(body))
	if !d.mayHold(j.ep, n, false) {
		return
	}
	j.body, j.blk = bytes.Clone(body), &bodyBlock{live: 1, size: n}
	d.mem += n
}

// mayHold reports whether a body of n bytes for ep is to be held: while
// the bodies in memory stay under Options.MaxMemory, and not for an
// endpoint that is down, whose bodies would wait in memory for nothing
// (one down for long would fill the budget that the others use); must
// holds it whatever (it is not in the outbox). d.mu must be held.
func (d *Dispatcher) mayHold(ep *endpoint, n int64, must bool) bool {
	return must || d.mem+n <= d.o.MaxMemory && !ep.down.Load()
}

// bodyBlock is one allocation holding the bodies of several jobs of one
// commit, instead of an allocation per body: with one per body, the
// clones were 7% of the dispatcher's CPU time in a profile at 10,000
// message.publish events/s. A block is counted in Dispatcher.mem, at its
// bodies' sum, until the last of its jobs is released: a job that stays
// (a client's lane retrying) keeps its block, and the count says so, so
// that Options.MaxMemory bounds what is held, not what is in use. A block
// is at most maxBodyBlock (or one body), which bounds what one such job
// keeps.
type bodyBlock struct {
	live int   // jobs holding a body in it; guarded by Dispatcher.mu
	size int64 // the bodies' bytes, counted in Dispatcher.mem
}

// maxBodyBlock is the size a bodyBlock is cut at: 500 bodies of a 16-byte
// message or 40 of a 1.5 KB one.
const maxBodyBlock = 64 << 10

// holdKept keeps in memory the bodies of the new jobs of kept (see
// mayHold for which), in blocks. d.mu must be held.
func (d *Dispatcher) holdKept(kept []item, must bool) {
	for i := range kept {
		it := &kept[i]
		it.hold = it.j != nil && d.mayHold(it.ep, int64(len(it.body)), must)
		if it.hold {
			d.mem += int64(len(it.body))
		}
	}
	for i := 0; i < len(kept); {
		// The bodies of kept[i:end] share a block: up to maxBodyBlock,
		// or one body that is bigger.
		var size int64
		end := i
		for ; end < len(kept); end++ {
			if !kept[end].hold {
				continue
			}
			n := int64(len(kept[end].body))
			if size > 0 && size+n > maxBodyBlock {
				break
			}
			size += n
		}
		if size > 0 {
			blk := &bodyBlock{size: size}
			buf := make([]byte, 0, size)
			for _, it := range kept[i:end] {
				if !it.hold {
					continue
				}
				at := len(buf)
				buf = append(buf, it.body...)
				it.j.body, it.j.blk = buf[at:len(buf):len(buf)], blk
				blk.live++
			}
		}
		i = end
	}
}

// release forgets j's body from the memory count: its block's, once no
// other job holds a body in it. d.mu must be held.
func (d *Dispatcher) release(j *job) {
	if blk := j.blk; blk != nil {
		j.blk = nil
		if blk.live--; blk.live == 0 {
			d.mem -= blk.size
		}
	}
}

// appendBody appends j's JSON body to b, written from its record held in
// memory, or read back from the outbox when it is not held.
func (d *Dispatcher) appendBody(b []byte, j *job) ([]byte, error) {
	if j.body != nil {
		if j.idText != "" {
			return appendJSONBody(d, b, j.seq, j.idText, j.body)
		}
		return appendJSONBody(d, b, j.seq, j.idBytes[:], j.body)
	}
	rec, err := d.q.Read(j.seq, nil) // its own buffer: the body is written from it into b
	return d.appendStoredBody(b, j, rec, err)
}

// appendStoredBody is appendBody for a job whose record, rec, was read
// from the outbox, or could not be (err). rec must not share memory with
// b's spare capacity.
func (d *Dispatcher) appendStoredBody(b []byte, j *job, rec []byte, err error) ([]byte, error) {
	if err != nil {
		return b, fmt.Errorf("webhook: outbox: event %d: %w", j.seq, err)
	}
	body, err := recordBody(rec)
	if err != nil {
		return b, fmt.Errorf("webhook: outbox: event %d: %w", j.seq, err)
	}
	if isEventRec(body) {
		return appendJSONBody(d, b, j.seq, j.id(), body)
	}
	return append(b, body...), nil
}

// storedRec is a record read back from the outbox, or the error that
// reading it met.
type storedRec struct {
	rec []byte
	err error
}

// readBack reads the records of those of jobs whose bodies are not held
// in memory (see Options.MaxMemory) together, with
// store.Segments.ReadMany: a batch of them made one read each. It returns
// nil when fewer than two are missing.
func (d *Dispatcher) readBack(jobs []*job) []storedRec {
	var seqs []uint64
	var at []int
	for i, j := range jobs {
		if j.body == nil {
			seqs, at = append(seqs, j.seq), append(at, i)
		}
	}
	if len(seqs) < 2 {
		return nil
	}
	recs := make([]storedRec, len(jobs))
	d.q.ReadMany(seqs, nil, func(k int, data []byte, err error) {
		recs[at[k]] = storedRec{data, err} // a view of ReadMany's buffer, which is not reused
	})
	return recs
}

// makeRoom returns the events of a commit that fit in the outbox. When
// they do not all fit it logs it (once per episode) and, unless the policy
// drops the new ones (the caller does, one by one), it drops the oldest
// pending deliveries and then, if the commit alone is too big, its own
// oldest events. Those are dropped before anything is added, so no event
// is written after its own deletion (which would bring it back at the next
// start). d.mu must be held.
func (d *Dispatcher) makeRoom(items []item) []item {
	var total int64
	for i := range items {
		total += items[i].size()
	}
	if d.bytes+total <= d.o.MaxBytes {
		return items
	}
	if !d.overflowLog {
		d.overflowLog = true
		policy := "oldest"
		if d.o.DropNewest {
			policy = "newest"
		}
		d.log.Warn("web hook outbox full: dropping events", "max_bytes", d.o.MaxBytes, "drop", policy)
	}
	if d.o.DropNewest {
		return items
	}
	for d.bytes+total > d.o.MaxBytes && d.dropOldest() {
	}
	for len(items) > 0 && d.bytes+total > d.o.MaxBytes {
		total -= items[0].size()
		items[0].ep.counters(items[0].kind).dropped.Add(1)
		items = items[1:]
	}
	d.compact()
	return items
}

// dropOldest drops the oldest pending delivery that is not being
// delivered: the first job of pending or the first spilled event of an
// endpoint, whichever is older. It reports false when there is none. d.mu
// must be held.
func (d *Dispatcher) dropOldest() bool {
	for d.pending.len() > 0 && d.pending.front().done.Load() {
		d.pending.pop()
	}
	var from *endpoint
	oldest := uint64(math.MaxUint64)
	if d.pending.len() > 0 {
		oldest = d.pending.front().seq
	}
	for _, ep := range d.epList {
		if ep.spill.len() > 0 && ep.spill.front().seq < oldest {
			from, oldest = ep, ep.spill.front().seq
		}
	}
	switch {
	case from != nil:
		sp := from.spill.front()
		from.spill.pop()
		d.forget(sp.seq, int64(sp.size))
		from.counters(sp.kind).dropped.Add(1)
	case d.pending.len() > 0:
		old := d.pending.front()
		d.pending.pop()
		if old.done.CompareAndSwap(false, true) { // else acknowledged just now: ack counts it
			d.forgetJob(old)
			old.ep.counters(old.event).dropped.Add(1)
		}
	default:
		return false
	}
	return true
}

// compact forgets done jobs at the front of pending. d.mu must be held.
func (d *Dispatcher) compact() {
	for d.pending.len() > 0 && d.pending.front().done.Load() {
		d.pending.pop()
	}
	if d.overflowLog && d.bytes < d.o.MaxBytes/2 {
		d.overflowLog = false
	}
}

// sysTopic reports whether e is about a $SYS topic, which is never posted.
func sysTopic(e *events.Event) bool {
	switch e.Kind {
	case events.MessagePublish, events.MessageDelivered, events.MessageAcked, events.MessageDropped:
		return strings.HasPrefix(e.Topic, "$SYS/") || e.Topic == "$SYS"
	}
	return false
}

// keptFrames returns the frames of kept, items made in arena in this
// order, without those of the items dropped for room between them.
func keptFrames(arena []byte, kept []item) []byte {
	var out []byte
	for _, it := range kept {
		out = append(out, arena[it.frame[0]:it.frame[1]]...)
	}
	return out
}

// newItem makes record seq of the event of key for ep at the end of arena,
// in its outbox frame: a head, then body, the event's record.
func (d *Dispatcher) newItem(arena []byte, key *eventRecKey, body []byte, ep *endpoint, seq uint64, now time.Time) (item, []byte) {
	id := d.ids.newIDBytes(now)
	client := key.client
	created := key.time
	if created.IsZero() {
		created = now
	}
	frame := len(arena)
	rec := store.AppendPutHead(arena, seq)
	start := len(rec)
	rec = appendRecordHead(rec, ep.num, &id, created)
	bodyAt := len(rec)
	rec = append(rec, body...) // the JSON body is written when it is posted
	store.FinishPut(rec, frame)
	clientAt := -1
	if len(client) > 0 && len(client) <= len(body) { // a view of body (readEventRec)
		at := uintptr(unsafe.Pointer(unsafe.StringData(client))) - uintptr(unsafe.Pointer(unsafe.SliceData(body)))
		if at <= uintptr(len(body)-len(client)) {
			clientAt = int(at)
		}
	}
	return item{seq: seq, id: id, client: client, clientAt: clientAt, kind: key.kind, created: created, ep: ep,
		frame: [2]int{frame, len(rec)}, rec: rec[start:len(rec):len(rec)], body: rec[bodyAt:len(rec):len(rec)]}, rec
}

// forget takes pending delivery seq, of size bytes, out of the outbox's
// counts and queues its deletion for the next commit. d.mu must be held.
func (d *Dispatcher) forget(seq uint64, size int64) {
	d.bytes -= size
	d.count--
	d.delq = append(d.delq, seq)
}

// forgetJob is forget for a job in memory, which also gives back its body's
// memory and its place in its endpoint's window. d.mu must be held.
func (d *Dispatcher) forgetJob(j *job) {
	d.forget(j.seq, j.size)
	d.release(j)
	j.ep.live--
}

// ack removes jobs, those of one request, from the outbox once they are
// delivered or dead-lettered, under one lock and with one wake-up of the
// writer for all of them (a batch is up to its max_size jobs). It returns
// those it removed, in order, in jobs' array: the others were done
// already (dropped when the outbox was full).
func (d *Dispatcher) ack(jobs []*job) []*job {
	acked := jobs[:0]
	for _, j := range jobs {
		if j.done.CompareAndSwap(false, true) {
			acked = append(acked, j)
		}
	}
	if len(acked) == 0 {
		return acked
	}
	d.mu.Lock()
	for _, j := range acked {
		d.forgetJob(j)
	}
	d.compact()
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
	return acked
}

// Stop stops taking events, commits what the bus had queued, waits for the
// requests in flight until ctx ends (then cancels them) and closes the
// outbox. Undelivered events stay in the outbox for the next start.
func (d *Dispatcher) Stop(ctx context.Context) error {
	if !d.stopped.CompareAndSwap(false, true) {
		return nil
	}
	if d.sub != nil {
		d.sub.Close()
		d.writerWG.Wait()
	}
	d.epMu.Lock()
	eps := slices.Collect(maps.Values(d.eps))
	d.epMu.Unlock()
	for _, ep := range eps {
		ep.close()
	}
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		d.cancel()
		<-done
		err = fmt.Errorf("webhook: stop: %w", ctx.Err())
	}
	d.cancel()
	d.commit(nil, 0)
	d.client.CloseIdleConnections()
	d.batchClient.CloseIdleConnections()
	if cerr := d.q.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("webhook: %w", cerr)
	}
	d.mu.Lock()
	for _, ep := range eps {
		ep.spill.release() // the events stay in the outbox, for the next start
	}
	d.mu.Unlock()
	return err
}
