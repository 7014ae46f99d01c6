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
		tk := d.in.take(nil, nil)
		recs := tk.entries
		if len(tk.refs) > 0 {
			refs := tk.refs
			recs = d.refRecords(nil, tk)
			for _, r := range refs {
				if r != (events.MessageRef{}) {
					t.Fatalf("a reference left after refRecords: %+v", r)
				}
			}
		}
		if d.in.len() != 0 {
			t.Fatalf("%d events left after a take", d.in.len())
		}
		for i := from; i < n; i++ {
			if len(recs) == 0 {
				t.Fatalf("the inbox ends before event %d of %d..%d", i, from, n-1)
			}
			var posting, keyed []byte
			posting, keyed, recs = nextInbox(recs)
			key, rec := inboxKey(keyed)
			var e events.Event
			if err := readEventRec(&e, rec); err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
			if got := string(e.Payload[:6]); got != fmt.Sprintf("%06d", i) {
				t.Fatalf("entry of event %d holds event %s", i, got)
			}
			if key.time.UnixMilli() != int64(i) || key.client != "c" || e.FromClientID != "c" || e.QoS != 1 {
				t.Fatalf("event %d: time %d, client %q, from %q, QoS %d", i, key.time.UnixMilli(), key.client, e.FromClientID, e.QoS)
			}
			var rules []uint64
			for len(posting) > 0 {
				r, k := binary.Uvarint(posting)
				rules, posting = append(rules, r), posting[k:]
			}
			want := []uint64{1}
			if e.Topic[0] == 'a' {
				want = []uint64{0, 1}
			}
			if !slices.Equal(rules, want) {
				t.Fatalf("event %d on %s posted by rules %v, want %v", i, e.Topic, rules, want)
			}
		}
		if len(recs) != 0 {
			t.Fatalf("%d bytes in the inbox after events %d..%d", len(recs), from, n-1)
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
	recs := d.refRecords(nil, d.in.take(nil, nil))
	var got []string
	for len(recs) > 0 {
		var keyed []byte
		_, keyed, recs = nextInbox(recs)
		key, rec := inboxKey(keyed)
		var e events.Event
		if err := readEventRec(&e, rec); err != nil {
			t.Fatal(err)
		}
		got = append(got, key.kind.String()+" "+e.Topic+" "+key.client)
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
	recs := d.refRecords(nil, d.in.take(nil, nil))
	for i := range n {
		if len(recs) == 0 {
			t.Fatalf("the entries end before event %d", i)
		}
		var keyed []byte
		_, keyed, recs = nextInbox(recs)
		_, rec := inboxKey(keyed)
		var e events.Event
		if err := readEventRec(&e, rec); err != nil {
			t.Fatal(err)
		}
		if got := string(e.Payload); got != fmt.Sprintf("%06d", i) || e.QoS != 1 {
			t.Fatalf("entry %d holds event %s (QoS %d)", i, got, e.QoS)
		}
	}
	if len(recs) != 0 {
		t.Fatalf("%d bytes left after %d events", len(recs), n)
	}
}
