package webhook

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/store"
)

// recEvents are events of every kind with every field a body uses set, and
// unset, to odd values.
func recEvents() []*events.Event {
	at := time.UnixMilli(1733300000123).Add(456 * time.Microsecond)
	var out []*events.Event
	for k := events.Kind(1); int(k) < events.NumKinds; k++ {
		out = append(out,
			&events.Event{Kind: k, Time: at},
			&events.Event{
				Kind: k, Time: at, ClientID: "dev-ü-1", Username: "u\"ser", UsernameSet: true,
				Peer: netip.MustParseAddrPort("[::ffff:10.1.2.3]:5555"), ProtoVer: 5, KeepAlive: 65535,
				ConnAck: 0x87, ConnectedAt: at.Add(-time.Hour), Reason: "keepalive_timeout",
				Topic: "a/b/#", Opts: events.SubOpts{QoS: 2, RH: 2, RAP: true, NL: true},
				QoS: 1, Retain: true, Payload: []byte{0, 0xff, '"', '\n', 0xe2, 0x80, 0xa8},
				FromClientID: "pub", FromUsername: "", FromUserSet: true, MessageTime: at.Add(-time.Second),
			},
			&events.Event{Kind: k, Time: at, ClientID: "c", Peer: netip.MustParseAddrPort("[fe80::1%eth0]:1"),
				Topic: "t", Payload: bytes.Repeat([]byte("x"), 300)})
	}
	return out
}

// TestEventRecordBodies: the body of an event read back from its event
// record, and the body a dispatcher writes from the record, is the body
// of the event, byte for byte, for every kind and encoding.
func TestEventRecordBodies(t *testing.T) {
	for _, e := range recEvents() {
		if _, err := Body(e, "n", Plain, "x", 1); err != nil {
			continue // a kind that no rule posts
		}
		rec := appendEventRec([]byte("head\n"), e)[len("head\n"):]
		got := new(events.Event)
		if err := readEventRec(got, rec); err != nil {
			t.Fatalf("%s: %v", e.Kind, err)
		}
		for _, enc := range []Encoding{Plain, Base64, Base62} {
			want, err := Body(e, "mqgate@host", enc, "01J00000000000000000000000", 42)
			if err != nil {
				t.Fatal(err)
			}
			body, err := Body(got, "mqgate@host", enc, "01J00000000000000000000000", 42)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body, want) {
				t.Fatalf("%s, encoding %d: body from the record\n%s\nwant\n%s", e.Kind, enc, body, want)
			}
			// As a dispatcher writes it: the head of the kind's bodies
			// made once, the rest from the record.
			d := &Dispatcher{o: Options{Node: "mqgate@host", Encoding: enc}, heads: newBodyHeads("mqgate@host")}
			if body, err = appendJSONBody(d, []byte("["), 42, "01J00000000000000000000000", rec); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body[1:], want) {
				t.Fatalf("%s, encoding %d: body written by a dispatcher\n%s\nwant\n%s", e.Kind, enc, body[1:], want)
			}
		}
		if e.Kind >= events.MessagePublish && len(rec) >= len(mustBody(t, e)) {
			t.Errorf("%s: event record of %d bytes, its JSON body %d", e.Kind, len(rec), len(mustBody(t, e)))
		}
	}
}

func mustBody(t *testing.T, e *events.Event) []byte {
	t.Helper()
	b, err := Body(e, "n", Plain, "01J00000000000000000000000", 1)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEventRecordDamaged: a cut record, or one with a byte too many, is an
// error; an altered one never panics (the outbox's CRC of each record
// catches altered bytes before they are parsed).
func TestEventRecordDamaged(t *testing.T) {
	for _, e := range recEvents() {
		rec := appendEventRec(nil, e)
		for n := range len(rec) {
			if err := readEventRec(new(events.Event), rec[:n]); err == nil {
				t.Fatalf("%s: record cut to %d of %d bytes read without an error", e.Kind, n, len(rec))
			}
		}
		if err := readEventRec(new(events.Event), append(bytes.Clone(rec), 0)); err == nil {
			t.Fatalf("%s: a record with a byte too many read without an error", e.Kind)
		}
		for i := range rec {
			for _, x := range []byte{0x01, 0x80, 0xff} {
				bad := bytes.Clone(rec)
				bad[i] ^= x
				_ = readEventRec(new(events.Event), bad) // must not panic
			}
		}
	}
	if err := readEventRec(new(events.Event), []byte(`{"action":"client_connected"}`)); err == nil {
		t.Fatal("a JSON body read as an event record")
	}
}

// TestInboxKey: the key an inbox entry carries, which the outbox writer
// reads instead of its event record, is the kind, time and lane's client
// id of the event readEventRec reads from the record, for every kind, an
// event without a time and one without a client id; the client id is a
// view of the record that follows the key, which is the event's record.
func TestInboxKey(t *testing.T) {
	evs := append(recEvents(), &events.Event{Kind: events.ClientConnected, ClientID: "no-time"},
		&events.Event{Kind: events.MessagePublish, Time: time.Now(), Topic: "t"})
	for _, e := range evs {
		entry := appendInboxEntry([]byte("earlier entries"), []byte{3}, e)[len("earlier entries"):]
		posting, keyed, rest := nextInbox(entry)
		if !bytes.Equal(posting, []byte{3}) || len(rest) != 0 {
			t.Fatalf("%s: posting %v and %d bytes after the entry, want [3] and none", e.Kind, posting, len(rest))
		}
		got, rec := inboxKey(keyed)
		if want := appendEventRec(nil, e); !bytes.Equal(rec, want) {
			t.Fatalf("%s: record %x, want %x", e.Kind, rec, want)
		}
		var full events.Event
		if err := readEventRec(&full, rec); err != nil {
			t.Fatalf("%s: %v", e.Kind, err)
		}
		client := strings.Clone(full.ClientID) // full's strings are views of rec too
		if full.Kind == events.MessagePublish {
			client = strings.Clone(full.FromClientID)
		}
		if want := (eventRecKey{kind: full.Kind, time: full.Time, client: client}); got != want {
			t.Fatalf("%s: key %+v, want %+v", e.Kind, got, want)
		}
		if clear(rec); got.client != "" && got.client == client {
			t.Fatalf("%s: the key's client id is not a view of the record", e.Kind)
		}
	}
}

// TestEventRecordBodyAllocs: writing the JSON body of a message event from
// its event record, as an endpoint's worker does for each event it posts,
// allocates nothing when the request buffer has room: the event read from
// the record is a view of it on the stack.
func TestEventRecordBodyAllocs(t *testing.T) {
	d := &Dispatcher{o: Options{Node: "mqgate@host", Encoding: Plain}, heads: newBodyHeads("mqgate@host")}
	e := &events.Event{Kind: events.MessagePublish, Time: time.Now(), FromClientID: "pub-1", FromUsername: "u",
		FromUserSet: true, Topic: "bench/a", QoS: 1, Payload: []byte("0123456789abcdef"), MessageTime: time.Now()}
	rec := appendEventRec(nil, e)
	id := []byte("01J00000000000000000000000")
	want, err := Body(e, d.o.Node, Plain, string(id), 7)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if dst, err = appendJSONBody(d, dst[:0], 7, id, rec); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per body, want 0", allocs)
	}
	if !bytes.Equal(dst, want) {
		t.Errorf("body %s, want %s", dst, want)
	}
}

// TestRecordHead: a record made by newItem reads back as its endpoint's
// number, the event's id, creation time, kind and client id, and its body;
// a damaged head, or an earlier version's record with a damaged body, is an
// error, not a panic.
func TestRecordHead(t *testing.T) {
	d := &Dispatcher{ids: newIDSource()}
	at := time.UnixMilli(1733300000123)
	for _, num := range []int{0, 300} {
		for _, e := range recEvents() {
			arena := []byte("an earlier record's frame")
			_, keyed, _ := nextInbox(appendInboxEntry(nil, []byte{0}, e))
			key, rec := inboxKey(keyed)
			it, arena := d.newItem(arena, &key, rec, &endpoint{num: num}, 7, at)
			r, gotNum, body, err := parseRecord(7, it.rec)
			if err != nil {
				t.Fatalf("%s: %v", e.Kind, err)
			}
			frame := store.AppendPutHead(nil, 7)
			frame = append(frame, it.rec...)
			store.FinishPut(frame, 0)
			if it.seq != 7 || !bytes.Equal(arena[it.frame[0]:it.frame[1]], frame) || it.frame[1] != len(arena) {
				t.Fatalf("%s: seq %d, frame %x, want 7 and the outbox's frame of the record, %x", e.Kind, it.seq, arena[it.frame[0]:it.frame[1]], frame)
			}
			client := e.ClientID
			if e.Kind == events.MessagePublish {
				client = e.FromClientID
			}
			if gotNum != num || r.ID != string(it.id[:]) || r.Time != e.Time.UnixMilli() || r.Event != e.Kind.String() ||
				r.ClientID != client || !bytes.Equal(body, it.body) {
				t.Fatalf("%s: read back %d %+v, want endpoint %d, id %s, client %q and the body", e.Kind, gotNum, r, num, it.id, client)
			}
			// As commit makes a job: from the key read from the inbox, its
			// client id a view of the record, held or not.
			entry := appendInboxEntry(nil, []byte{0}, e)
			_, keyed, _ = nextInbox(entry)
			inbox, raw := inboxKey(keyed)
			it2, _ := d.newItem(nil, &inbox, raw, &endpoint{num: num}, 7, at)
			for _, held := range []bool{true, false} {
				it2.j = &job{}
				if held {
					it2.j.body = bytes.Clone(it2.body)
				}
				got := it2.jobClient()
				clear(raw) // the inbox is reused
				if got != client {
					t.Fatalf("%s: job client %q (body held %v), want %q", e.Kind, got, held, client)
				}
				raw = appendEventRec(raw[:0], e)
			}
			// An earlier version's record: a JSON header before the event
			// record, which must read as well.
			legacy := append([]byte(`{"url":"http://h/x","clientid":"c","event":"x","id":"i","time":1}`+"\n"), it.body...)
			if _, n, _, err := parseRecord(7, legacy); err != nil || n != -1 {
				t.Fatalf("%s: legacy record: endpoint %d, %v", e.Kind, n, err)
			}
			if _, _, _, err := parseRecord(7, legacy[:len(legacy)-1]); err == nil {
				t.Fatalf("%s: legacy record with a cut event record read back", e.Kind)
			}
			for n := range len(it.rec) - len(it.body) {
				if _, _, _, err := parseRecord(7, it.rec[:n]); err == nil {
					t.Fatalf("%s: a head cut to %d bytes read back", e.Kind, n)
				}
			}
		}
	}
}

// BenchmarkEventRecordBody measures writing the JSON body of a
// message.publish event from its event record, as an endpoint's worker
// does for each event it posts: a 16-byte binary payload (the load
// generator's stamp: a time, a publisher and a sequence number, little
// endian) and a 64-byte JSON text one, in plain encoding.
func BenchmarkEventRecordBody(b *testing.B) {
	stamp := make([]byte, 16)
	binary.LittleEndian.PutUint64(stamp, uint64(time.Now().UnixNano()))
	binary.LittleEndian.PutUint32(stamp[8:], 3)
	binary.LittleEndian.PutUint32(stamp[12:], 123456)
	for _, p := range []struct {
		name    string
		payload []byte
	}{{"stamp16", stamp}, {"json64", []byte(`{"temp":21.5,"hum":40,"ts":1733300000000,"dev":"sensor-0001"}`)}} {
		b.Run(p.name, func(b *testing.B) {
			d := &Dispatcher{o: Options{Node: "mqgate@127.0.0.1", Encoding: Plain}, heads: newBodyHeads("mqgate@127.0.0.1")}
			e := &events.Event{Kind: events.MessagePublish, Time: time.Now(), FromClientID: "mqload-lat-pub-0",
				Topic: "bench/lat", Payload: p.payload, MessageTime: time.Now()}
			rec := appendEventRec(nil, e)
			id := newIDSource().newIDBytes(time.Now())
			dst := make([]byte, 0, 4096)
			b.ReportAllocs()
			for i := range b.N {
				var err error
				if dst, err = appendJSONBody(d, dst[:0], uint64(i), id[:], rec); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(dst)))
		})
	}
}

// TestEventRecordLeavesOut: a record leaves out what no body of its kind
// writes: a message.publish event's client id (its publisher's, again)
// and the peer's address of events other than the connection events.
func TestEventRecordLeavesOut(t *testing.T) {
	peer := netip.MustParseAddrPort("10.9.8.7:1234")
	pub := &events.Event{Kind: events.MessagePublish, ClientID: "publisher-7", FromClientID: "publisher-7", Topic: "t", Peer: peer}
	rec := appendEventRec(nil, pub)
	if n := bytes.Count(rec, []byte("publisher-7")); n != 1 {
		t.Errorf("message.publish record holds the client id %d times, want once", n)
	}
	ip := peer.Addr().AsSlice()
	for _, k := range []events.Kind{events.MessagePublish, events.ClientSubscribe, events.ClientDisconnected} {
		e := *pub
		e.Kind = k
		if rec := appendEventRec(nil, &e); bytes.Contains(rec, ip) {
			t.Errorf("%s record holds the peer's address", k)
		}
	}
	e := *pub
	e.Kind = events.ClientConnected
	if rec := appendEventRec(nil, &e); !bytes.Contains(rec, ip) || bytes.Count(rec, []byte("publisher-7")) != 2 {
		t.Errorf("client.connected record lacks the peer's address or a client id")
	}
}
