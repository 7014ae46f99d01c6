package webhook

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mqgate/mqgate/store"
)

// EndpointsFile, in Options.Dir, names the endpoints that the outbox's
// records are for. A record carries its endpoint's number in this file
// instead of the endpoint itself (its URL, headers and batch settings), so
// that the events pending for an endpoint are delivered to it after a
// restart even when the rules no longer name it. The header of a record
// thus takes 34 bytes instead of 193 (a 30-byte URL and a batching rule),
// and a message.publish record of the bench's latency load 138 bytes
// instead of 297: an outage fills web.hook.outbox.max_bytes 2.15 times
// later, and the outbox writer encodes and writes that much less per
// event (BenchmarkDispatcherDown: 15% less CPU per event).
const EndpointsFile = "outbox-endpoints.json"

// endpointDecl is what the outbox keeps of an endpoint: the fields of
// record that name it.
type endpointDecl struct {
	URL        string            `json:"url"`
	Headers    map[string]string `json:"headers,omitempty"`
	BatchSize  int               `json:"batch_size,omitempty"`
	BatchDelay int64             `json:"batch_delay_ms,omitempty"` // ms
}

func declOf(ep *endpoint) endpointDecl {
	return endpointDecl{URL: ep.url, Headers: ep.headers, BatchSize: ep.batch.MaxSize, BatchDelay: ep.batch.MaxDelay.Milliseconds()}
}

func (e *endpointDecl) batch() Batch {
	return Batch{MaxSize: e.BatchSize, MaxDelay: time.Duration(e.BatchDelay) * time.Millisecond}
}

// key identifies e's endpoint, to the millisecond of its batch delay.
func (e *endpointDecl) key() string {
	return endpointKey(e.URL, e.Headers, strconv.Itoa(e.BatchSize)+"/"+strconv.FormatInt(e.BatchDelay, 10))
}

// endpointKey identifies an endpoint by its URL, headers (their names are
// case-insensitive) and batch settings.
func endpointKey(url string, headers map[string]string, batch string) string {
	var sb strings.Builder
	sb.WriteString(url)
	for _, k := range slices.Sorted(maps.Keys(headers)) {
		sb.WriteString("\x00" + strings.ToLower(k) + "=" + headers[k])
	}
	sb.WriteString("\x00" + batch)
	return sb.String()
}

// catalog is the content of EndpointsFile: the endpoints by number. A
// number, once written, names its endpoint for as long as a record may
// carry it: it is given to another endpoint only after a start found no
// record naming it (and, if it was in the file, no rule naming its
// endpoint: prune). Used by New only.
type catalog struct {
	path  string
	list  []*endpointDecl // by number; nil: free
	byKey map[string]int
	dirty bool
	// eps are the endpoints of this run that hold a number (give): the
	// ones records or rules name.
	eps map[int]*endpoint
}

type catalogFile struct {
	Endpoints []*endpointDecl `json:"endpoints"`
}

// openCatalog reads the catalog at path; an absent file is an empty one.
func openCatalog(path string) (*catalog, error) {
	c := &catalog{path: path, byKey: map[string]int{}, eps: map[int]*endpoint{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("webhook: outbox endpoints: %w", err)
	}
	var f catalogFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("webhook: outbox endpoints %s: %w (the outbox's records name their endpoints by their number in this file: restore it, or remove it and the outbox directory to drop the pending events)", path, err)
	}
	c.list = f.Endpoints
	for i, e := range c.list {
		if e != nil {
			c.byKey[e.key()] = i
		}
	}
	return c, nil
}

// lookup returns the number of e, if it has one.
func (c *catalog) lookup(e endpointDecl) (int, bool) {
	i, ok := c.byKey[e.key()]
	return i, ok
}

// number returns the number of e, giving it one if it has none: the first
// free one. Only once no record names a free number (after load).
func (c *catalog) number(e endpointDecl) int {
	k := e.key()
	if i, ok := c.byKey[k]; ok {
		return i
	}
	i := slices.Index(c.list, nil)
	if i < 0 {
		i = len(c.list)
		c.list = append(c.list, nil)
	}
	c.list[i] = &e
	c.byKey[k] = i
	c.dirty = true
	return i
}

// get returns endpoint number i, nil when there is none.
func (c *catalog) get(i uint64) *endpointDecl {
	if i >= uint64(len(c.list)) {
		return nil
	}
	return c.list[i]
}

// give gives ep number n, the one its new records carry, unless it has
// one: an endpoint can have two when records of an earlier run name it by
// another.
func (c *catalog) give(ep *endpoint, n int) {
	if ep.num < 0 {
		ep.num = n
	}
	c.eps[n] = ep
}

// prune frees the numbers that no endpoint was given.
func (c *catalog) prune() {
	for i, e := range c.list {
		if e != nil && c.eps[i] == nil {
			delete(c.byKey, e.key())
			c.list[i] = nil
			c.dirty = true
		}
	}
	for len(c.list) > 0 && c.list[len(c.list)-1] == nil {
		c.list = c.list[:len(c.list)-1]
	}
}

// save writes the catalog if it changed, atomically and durably
// (store.WriteFileAtomic): before any record carries a number it gave.
func (c *catalog) save() error {
	if !c.dirty {
		return nil
	}
	data, err := json.Marshal(catalogFile{Endpoints: c.list})
	if err == nil {
		err = store.WriteFileAtomic(c.path, append(data, '\n'))
	}
	if err != nil {
		return fmt.Errorf("webhook: outbox endpoints: %w", err)
	}
	c.dirty = false
	return nil
}

// A stored record is, in this version, recMark, its endpoint's number in
// EndpointsFile as a uvarint, the event id (26 characters), when the event
// was created as varint Unix milliseconds, and the body, an event record
// (which holds the event's kind and client id). Earlier versions wrote a
// JSON header (record) and a newline before the body; such records are
// still read.
const recMark = 0x02 // a JSON header starts with '{'

// appendRecordHead appends the head of a record of endpoint number ep.
func appendRecordHead(b []byte, ep int, id *[26]byte, created time.Time) []byte {
	b = append(b, recMark)
	b = binary.AppendUvarint(b, uint64(ep))
	b = append(b, id[:]...)
	return binary.AppendVarint(b, created.UnixMilli())
}

var errRecordHead = errors.New("truncated record header")

// cutRecordHead splits a record of this version into its endpoint number,
// id, creation time (Unix milliseconds) and body.
func cutRecordHead(data []byte) (ep uint64, id []byte, created int64, body []byte, err error) {
	if len(data) == 0 || data[0] != recMark {
		return 0, nil, 0, nil, errRecordHead
	}
	p := data[1:]
	ep, n := binary.Uvarint(p)
	if n <= 0 || len(p) < n+26 {
		return 0, nil, 0, nil, errRecordHead
	}
	id, p = p[n:n+26], p[n+26:]
	created, n = binary.Varint(p)
	if n <= 0 {
		return 0, nil, 0, nil, errRecordHead
	}
	return ep, id, created, p[n:], nil
}
