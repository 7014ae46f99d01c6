package webhook

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/mqgate/mqgate/events"
)

// TestInboxKeepsOrder: the inbox entries observe makes, through the stage
// or, for big events, straight into the inbox, come out of inbox.take once
// each, in the order they came, with the rules that post them; a take
// leaves nothing behind for the next, and a full inbox refuses events.
func TestInboxKeepsOrder(t *testing.T) {
	d := &Dispatcher{in: newInbox(1 << 20)}
	d.rules[events.MessagePublish] = []ruleRT{{Rule: Rule{Event: events.MessagePublish, Topic: "a/#"}}, {Rule: Rule{Event: events.MessagePublish}}}
	n := 0
	publish := func(topic string, size int) {
		t.Helper()
		payload := fmt.Appendf(nil, "%06d", n)
		payload = append(payload, bytes.Repeat([]byte{'x'}, size-len(payload))...)
		if !d.observe(&events.Event{Kind: events.MessagePublish, Topic: topic, Payload: payload, FromClientID: "c"}) {
			t.Fatalf("event %d refused", n)
		}
		n++
	}
	// check takes the inbox and wants events from to n in it, each posted
	// by rules 0 and 1 on a/ topics and by rule 1 alone on others.
	check := func(from int) {
		t.Helper()
		recs := d.in.take(nil)
		if d.in.len() != 0 {
			t.Fatalf("%d events left after a take", d.in.len())
		}
		for i := from; i < n; i++ {
			if len(recs) == 0 {
				t.Fatalf("the inbox ends before event %d of %d..%d", i, from, n-1)
			}
			var posting, keyed []byte
			posting, keyed, recs = nextInbox(recs)
			_, rec := inboxKey(keyed)
			var e events.Event
			if err := readEventRec(&e, rec); err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
			if got := string(e.Payload[:6]); got != fmt.Sprintf("%06d", i) {
				t.Fatalf("entry of event %d holds event %s", i, got)
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
	if len(d.in.stage) == 0 || len(d.in.entries) != 0 {
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
	if d.observe(&events.Event{Kind: events.MessagePublish, Topic: "b", Payload: []byte("refused"), FromClientID: "c"}) {
		t.Fatal("a fourth event taken into an inbox of three")
	}
	check(from)
}
