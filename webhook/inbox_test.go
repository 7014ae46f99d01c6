package webhook

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mqgate/mqgate/events"
)

// testMsg is an events.Message.
type testMsg struct {
	topic   string
	payload []byte
	from    string
}

func (m *testMsg) Fields() events.MessageFields {
	return events.MessageFields{Topic: m.topic, Payload: m.payload, FromClientID: m.from, QoS: 1}
}
func (m *testMsg) Topic() string { return m.topic }
func (m *testMsg) Size() int     { return len(m.topic) + len(m.payload) }

// TestInboxKeepsOrder: the inbox entries observe makes, through the stage
// or, for big events, straight into the inbox, and the references that
// observeMessage leaves between them, come out of inbox.take once each, in
// the order they came, with the rules that post them; a take leaves
// nothing behind for the next, and a full inbox refuses events.
func TestInboxKeepsOrder(t *testing.T) {
	for _, mode := range []string{"entries", "references", "both"} {
		t.Run(mode, func(t *testing.T) { testInboxKeepsOrder(t, mode) })
	}
}

func testInboxKeepsOrder(t *testing.T, mode string) {
	d := &Dispatcher{in: newInbox(1 << 20)}
	d.rules[events.MessagePublish] = []ruleRT{{Rule: Rule{Event: events.MessagePublish, Topic: "a/#"}}, {Rule: Rule{Event: events.MessagePublish}}}
	d.filtered[events.MessagePublish] = true
	n := 0
	// byRef tells whether event n goes by reference.
	byRef := func() bool {
		switch mode {
		case "entries":
			return false
		case "references":
			return true
		}
		return n%3 != 0 // runs of two references between entries
	}
	observe := func(topic string, payload []byte) bool {
		if byRef() {
			return d.observeMessage(events.MessageRef{Kind: events.MessagePublish, Msg: &testMsg{topic: topic, payload: payload, from: "c"}, ClientID: "c", Time: time.UnixMilli(int64(n))})
		}
		return d.observe(&events.Event{Kind: events.MessagePublish, Topic: topic, Payload: payload, FromClientID: "c", ClientID: "c", QoS: 1, Time: time.UnixMilli(int64(n))})
	}
	publish := func(topic string, size int) {
		t.Helper()
		payload := fmt.Appendf(nil, "%06d", n)
		payload = append(payload, bytes.Repeat([]byte{'x'}, size-len(payload))...)
		if !observe(topic, payload) {
			t.Fatalf("event %d refused", n)
		}
		n++
	}
	// check takes the inbox and wants events from to n in it, each posted
	// by rules 0 and 1 on a/ topics and by rule 1 alone on others.
	check := func(from int) {
		t.Helper()
		got := takeEntries(t, d)
		if d.in.len() != 0 {
			t.Fatalf("%d events left after a take", d.in.len())
		}
		if len(got) != n-from {
			t.Fatalf("%d entries in the inbox, want events %d..%d", len(got), from, n-1)
		}
		for k, ev := range got {
			i, e, key := from+k, &ev.e, ev.key
			if got := string(e.Payload[:6]); got != fmt.Sprintf("%06d", i) {
				t.Fatalf("entry of event %d holds event %s", i, got)
			}
			if key.time.UnixMilli() != int64(i) || key.client != "c" || e.FromClientID != "c" || e.QoS != 1 {
				t.Fatalf("event %d: time %d, client %q, from %q, QoS %d", i, key.time.UnixMilli(), key.client, e.FromClientID, e.QoS)
			}
			want := []uint64{1}
			if e.Topic[0] == 'a' {
				want = []uint64{0, 1}
			}
			if !slices.Equal(ev.rules, want) {
				t.Fatalf("event %d on %s posted by rules %v, want %v", i, e.Topic, ev.rules, want)
			}
		}
	}

	// Small events fill the stage several times over; big ones (payload
	// over half the stage) come between them.
	for i := range 300 {
		switch {
		case i%97 == 50:
			publish("a/big", stageSize)
		case i%2 == 0:
			publish("a/b", 16+i)
		default:
			publish("b", 100)
		}
	}
	check(0)
	// A take with only the stage filled (fewer bytes than stageSize).
	from := n
	publish("a/b", 20)
	publish("b", 20)
	if mode == "entries" && (len(d.in.stage) == 0 || len(d.in.entries) != 0) {
		t.Fatalf("two small events: stage %d bytes, inbox %d, want them in the stage", len(d.in.stage), len(d.in.entries))
	}
	check(from)
	// A big event first.
	from = n
	publish("a/big", 3*stageSize)
	publish("b", 20)
	check(from)

	// Full: QueueSize events, whether in the stage or the inbox.
	d.in.limit = 3
	from = n
	for range 3 {
		publish("b", 20)
	}
	if observe("b", []byte("refused")) {
		t.Fatal("a fourth event taken into an inbox of three")
	}
	check(from)
	d.in.limit = 1 << 20

	// Full: maxInbox bytes, whether of entries or of the messages that
	// references keep.
	from = n
	publish("b", maxInbox/2)
	publish("b", maxInbox/2)
	if observe("b", []byte("refused")) {
		t.Fatalf("an event taken into an inbox of %d bytes", d.in.bytesLocked())
	}
	check(from)
}

// TestObserveMessage: a reference to an event that no rule posts takes no
// room in the inbox when a rule filters topics (and room until the writer
// drops it otherwise), and the writer makes no entry of it, nor of a
// message on a $SYS topic.
func TestObserveMessage(t *testing.T) {
	d := &Dispatcher{in: newInbox(16)}
	d.rules[events.MessagePublish] = []ruleRT{{Rule: Rule{Event: events.MessagePublish, Topic: "a/#"}}}
	d.rules[events.MessageDelivered] = []ruleRT{{Rule: Rule{Event: events.MessageDelivered}}}
	d.filtered[events.MessagePublish] = true
	ref := func(k events.Kind, topic string) events.MessageRef {
		return events.MessageRef{Kind: k, Msg: &testMsg{topic: topic, payload: []byte("p"), from: "c"}, ClientID: "r", Time: time.UnixMilli(1)}
	}
	for _, r := range []events.MessageRef{ref(events.MessagePublish, "b"), ref(events.MessagePublish, "$SYS/x")} {
		if !d.observeMessage(r) {
			t.Fatal("refused")
		}
	}
	if n := d.in.len(); n != 0 {
		t.Fatalf("%d events in the inbox that no rule posts", n)
	}
	for _, r := range []events.MessageRef{ref(events.MessageDelivered, "$SYS/x"), ref(events.MessageDelivered, "$SYS"), ref(events.MessagePublish, "a/b"), ref(events.MessageDelivered, "d")} {
		if !d.observeMessage(r) {
			t.Fatal("refused")
		}
	}
	if n := d.in.len(); n != 4 {
		t.Fatalf("%d events in the inbox, want 4", n)
	}
	var got []string
	for _, ev := range takeEntries(t, d) {
		got = append(got, ev.key.kind.String()+" "+ev.e.Topic+" "+ev.key.client)
	}
	// The lane of a message.publish event is its publisher's, of the
	// others their receiver's.
	if want := []string{"message.publish a/b c", "message.delivered d r"}; !slices.Equal(got, want) {
		t.Fatalf("entries %q, want %q", got, want)
	}
}

// TestInboxCopiesBeyondMaxRefs: the inbox keeps maxRefs references; the
// events observeMessage takes beyond them are copied, and all come out of
// the take in the order they came.
func TestInboxCopiesBeyondMaxRefs(t *testing.T) {
	d := &Dispatcher{in: newInbox(1 << 20)}
	d.rules[events.MessagePublish] = []ruleRT{{Rule: Rule{Event: events.MessagePublish}}}
	const n = maxRefs + 100
	for i := range n {
		if !d.observeMessage(events.MessageRef{Kind: events.MessagePublish, Msg: &testMsg{topic: "t", payload: fmt.Appendf(nil, "%06d", i), from: "c"}, ClientID: "c", Time: time.UnixMilli(1)}) {
			t.Fatalf("event %d refused", i)
		}
	}
	if len(d.in.refs) != maxRefs || d.in.len() != n {
		t.Fatalf("%d references, %d events, want %d and %d", len(d.in.refs), d.in.len(), maxRefs, n)
	}
	got := takeEntries(t, d)
	if len(got) != n {
		t.Fatalf("%d entries, want %d", len(got), n)
	}
	for i, ev := range got {
		if p := string(ev.e.Payload); p != fmt.Sprintf("%06d", i) || ev.e.QoS != 1 {
			t.Fatalf("entry %d holds event %s (QoS %d)", i, p, ev.e.QoS)
		}
	}
}

// inboxEvent is an entry of the inbox, read back.
type inboxEvent struct {
	rules []uint64 // the indexes of the rules that post it
	key   eventRecKey
	e     events.Event
}

// takeEntries takes d's inbox, makes the entries of its references
// (refRecords, which must leave no reference behind), and reads them back.
func takeEntries(t *testing.T, d *Dispatcher) []inboxEvent {
	t.Helper()
	tk := d.in.take(nil, nil)
	refs := tk.refs
	recs := d.refRecords(nil, tk)
	for _, r := range refs {
		if r != (events.MessageRef{}) {
			t.Fatalf("a reference left after refRecords: %+v", r)
		}
	}
	var out []inboxEvent
	for len(recs) > 0 {
		var posting, keyed, rec []byte
		posting, keyed, recs = nextInbox(recs)
		var ev inboxEvent
		ev.key, rec = inboxKey(keyed)
		if err := readEventRec(&ev.e, rec); err != nil {
			t.Fatalf("entry %d: %v", len(out), err)
		}
		for len(posting) > 0 {
			r, k := binary.Uvarint(posting)
			ev.rules, posting = append(ev.rules, r), posting[k:]
		}
		out = append(out, ev)
	}
	return out
}

// TestReuse: the writer keeps a commit's buffer, emptied, for the next,
// unless a burst grew it past maxReused.
func TestReuse(t *testing.T) {
	small := make([]byte, 10, 1<<10)
	if got := reuse(small); len(got) != 0 || cap(got) != cap(small) {
		t.Fatalf("reuse of a 1 KB buffer: len %d cap %d, want it emptied and kept", len(got), cap(got))
	}
	if got := reuse(make([]byte, 0, maxReused+1)); got != nil {
		t.Fatalf("a burst's buffer kept: cap %d", cap(got))
	}
}
