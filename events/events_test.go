package events

import (
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBusDeliversWantedKindsOnly(t *testing.T) {
	b := NewBus()
	defer b.Close()
	if b.Wants(ClientConnected) {
		t.Fatal("empty bus wants nothing")
	}
	s := b.Subscribe("test", 4, ClientConnected)
	if !b.Wants(ClientConnected) || b.Wants(MessagePublish) {
		t.Fatal("mask must follow subscriptions")
	}
	b.Publish(&Event{Kind: MessagePublish})
	b.Publish(&Event{Kind: ClientConnected, ClientID: "c1"})
	e := <-s.C()
	if e.Kind != ClientConnected || e.ClientID != "c1" || e.Time.IsZero() {
		t.Fatalf("got %+v", e)
	}
	select {
	case e := <-s.C():
		t.Fatalf("unwanted event delivered: %v", e.Kind)
	default:
	}
}

func TestBusNeverBlocksAndCountsDrops(t *testing.T) {
	b := NewBus()
	defer b.Close()
	s := b.Subscribe("slow", 2)
	for i := 0; i < 10; i++ {
		b.Publish(&Event{Kind: MessagePublish})
	}
	if got := s.Dropped(); got != 8 {
		t.Fatalf("dropped = %d, want 8", got)
	}
	if len(s.C()) != 2 {
		t.Fatalf("queued = %d, want 2", len(s.C()))
	}
}

func TestBusCloseWhilePublishing(t *testing.T) {
	b := NewBus()
	s := b.Subscribe("x", 1)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				b.Publish(&Event{Kind: ClientConnect})
			}
		}()
	}
	s.Close()
	b.Close()
	wg.Wait()
	for range s.C() {
	}
}

func TestKindNames(t *testing.T) {
	for _, k := range Kinds() {
		got, ok := ParseKind(k.String())
		if !ok || got != k {
			t.Fatalf("round trip of %v failed", k)
		}
	}
	if _, ok := ParseKind("client.bogus"); ok {
		t.Fatal("unknown name parsed")
	}
}

// TestReleaseCountsEveryReference: an event is cleared for reuse only when
// the publisher and every subscription that got it have released it; a
// subscription whose queue was full holds no reference.
func TestReleaseCountsEveryReference(t *testing.T) {
	b := NewBus()
	defer b.Close()
	a := b.Subscribe("a", 1, MessagePublish)
	c := b.Subscribe("c", 1, MessagePublish)
	full := b.Subscribe("full", 1, MessagePublish)
	b.Publish(&Event{Kind: MessagePublish, ClientID: "filler"}) // fills every queue
	<-a.C()
	<-c.C()
	e := New()
	e.Kind, e.ClientID = MessagePublish, "x"
	b.Publish(e) // a and c get it; full drops it
	if full.Dropped() != 1 {
		t.Fatalf("dropped %d, want 1", full.Dropped())
	}
	got := <-a.C()
	got.Release()
	if e.ClientID != "x" {
		t.Fatal("cleared while subscription c still holds it")
	}
	(<-c.C()).Release()
	if e.ClientID != "" || e.Kind != 0 {
		t.Fatalf("not cleared after the last release: %+v", e)
	}
}

// TestNewIsZeroed: New returns a zeroed event, also when it reuses one
// that was released with every field set, through an observer or a
// subscription; the broker sets only the fields of an event's kind on it.
func TestNewIsZeroed(t *testing.T) {
	b := NewBus()
	defer b.Close()
	b.Observe("o", func(*Event) bool { return true }, MessagePublish)
	s := b.Subscribe("s", 1, ClientConnected)
	full := func(k Kind) *Event {
		e := New()
		now := time.Now()
		*e = Event{
			Kind: k, Time: now, ClientID: "c", Username: "u", UsernameSet: true,
			Peer: netip.MustParseAddrPort("127.0.0.1:1883"), Listener: "l", ProtoName: "MQTT",
			ProtoVer: 5, KeepAlive: 60, CleanStart: true, ExpiryInterval: 9, ConnAck: 1,
			ConnectedAt: now, Reason: "r", Topic: "t", Opts: SubOpts{QoS: 1, RH: 1, RAP: true, NL: true},
			QoS: 2, Retain: true, Payload: []byte("p"), FromClientID: "f", FromUsername: "fu",
			FromUserSet: true, MessageID: 7, MessageTime: now,
		}
		return e
	}
	for i := range 100 {
		observed := full(MessagePublish)
		b.Publish(observed)
		subscribed := full(ClientConnected)
		b.Publish(subscribed)
		(<-s.C()).Release()
		for _, e := range []*Event{observed, subscribed, New()} {
			if !reflect.ValueOf(*e).IsZero() {
				t.Fatalf("round %d: a released or new event is not zeroed: %+v", i, e)
			}
		}
	}
}

// TestObserverAndSubscriber: an event that an observer and a subscription
// both want stays whole, after the observer returned, until the
// subscription releases it; one that observers alone want is cleared, back
// in the pool, when Publish returns.
func TestObserverAndSubscriber(t *testing.T) {
	b := NewBus()
	defer b.Close()
	var seen []string
	b.Observe("obs", func(e *Event) bool {
		seen = append(seen, e.ClientID)
		return true
	}, MessagePublish, ClientConnected)
	sub := b.Subscribe("sub", 1, MessagePublish)
	e := New()
	e.Kind, e.ClientID = MessagePublish, "both"
	b.Publish(e)
	got := <-sub.C()
	if got.ClientID != "both" {
		t.Fatalf("the subscription got %q after the observer returned, want both", got.ClientID)
	}
	got.Release()
	if e.ClientID != "" {
		t.Fatal("not cleared after the subscription released it")
	}
	o := New()
	o.Kind, o.ClientID = ClientConnected, "observed"
	b.Publish(o)
	if o.ClientID != "" || o.Kind != 0 {
		t.Fatalf("an event observers alone want is not cleared after Publish: %+v", o)
	}
	if len(seen) != 2 || seen[0] != "both" || seen[1] != "observed" {
		t.Fatalf("observed %q, want both, observed", seen)
	}
}

// TestObserve: an observer is called with the kinds it asked for, in the
// order they are published, before Publish returns; false counts a drop;
// the event goes back to the pool at once (no reference is left for the
// observer); after Close returns it is not called again and Done is
// closed.
func TestObserve(t *testing.T) {
	b := NewBus()
	defer b.Close()
	var mu sync.Mutex
	var got []string
	s := b.Observe("obs", func(e *Event) bool {
		mu.Lock()
		defer mu.Unlock()
		if e.Time.IsZero() {
			t.Error("event without a time")
		}
		got = append(got, e.ClientID)
		return len(got) <= 2
	}, ClientConnected)
	if !b.Wants(ClientConnected) || b.Wants(MessagePublish) {
		t.Fatal("mask must follow observers")
	}
	for _, id := range []string{"a", "b", "c"} {
		e := New()
		e.Kind, e.ClientID = ClientConnected, id
		b.Publish(e)
		if e.refs != 0 {
			t.Fatalf("%d references left after Publish", e.refs)
		}
	}
	b.Publish(&Event{Kind: MessagePublish, ClientID: "unwanted"})
	mu.Lock()
	if len(got) != 3 || got[0] != "a" || got[1] != "b" || got[2] != "c" {
		t.Fatalf("observed %q, want a b c", got)
	}
	mu.Unlock()
	if s.Dropped() != 1 {
		t.Fatalf("dropped %d, want 1", s.Dropped())
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				b.Publish(&Event{Kind: ClientConnected})
			}
		}()
	}
	s.Close()
	<-s.Done()
	mu.Lock()
	n := len(got)
	mu.Unlock()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(got) != n {
		t.Fatalf("called %d times after Close returned", len(got)-n)
	}
}

// BenchmarkPublishToObserver measures handing an event from the pool to
// one observer, as the broker does with each message that a web hook rule
// posts.
func BenchmarkPublishToObserver(b *testing.B) {
	bus := NewBus()
	defer bus.Close()
	bus.Observe("obs", func(e *Event) bool { return e.ClientID != "" }, MessagePublish)
	b.ReportAllocs()
	for range b.N {
		e := New()
		e.Kind, e.ClientID, e.Topic = MessagePublish, "pub", "bench/lat"
		bus.Publish(e)
	}
}

// msg is a Message.
type msg struct {
	topic   string
	payload []byte
	from    string
}

func (m *msg) Fields() MessageFields {
	return MessageFields{Topic: m.topic, Payload: m.payload, FromClientID: m.from, QoS: 1, MessageID: 9}
}
func (m *msg) Topic() string { return m.topic }
func (m *msg) Size() int     { return len(m.topic) + len(m.payload) }

// TestPublishMessage: PublishMessage hands an observer with a Messages
// function the reference itself, with its time set, and builds an event
// from it, with the reference's fields and the message's, for the
// subscriptions and the observers without one, which it does not call
// again by reference; Publish calls both kinds of observers with events;
// false from Messages counts a drop; a closed bus calls no one.
func TestPublishMessage(t *testing.T) {
	b := NewBus()
	var refs []MessageRef
	var refEvents, events []string
	ok := true
	refObs := b.ObserveWith("refs", Observer{
		Event: func(e *Event) bool { refEvents = append(refEvents, e.Topic); return true },
		Messages: func(r MessageRef) bool {
			refs = append(refs, r)
			return ok
		},
	}, MessagePublish, MessageDropped)
	b.Observe("events", func(e *Event) bool {
		events = append(events, e.Kind.String()+" "+e.Topic+" "+e.ClientID+" "+e.Username+" "+e.Reason+" "+e.FromClientID)
		return true
	}, MessageDropped)
	sub := b.Subscribe("sub", 4, MessageDropped)

	m := &msg{topic: "t", payload: []byte("p"), from: "pub"}
	b.PublishMessage(&MessageRef{Kind: MessagePublish, Msg: m, ClientID: "pub"})
	if len(refs) != 1 || refs[0].Msg != m || refs[0].Time.IsZero() || refs[0].ClientID != "pub" {
		t.Fatalf("observer got %+v, want the reference with a time", refs)
	}
	if len(events) != 0 || len(sub.C()) != 0 {
		t.Fatal("an event built for a kind that only a Messages function wants")
	}

	at := time.UnixMilli(5)
	b.PublishMessage(&MessageRef{Kind: MessageDropped, Msg: m, ClientID: "rcv", Username: "u", UsernameSet: true, Reason: "queue_full", Time: at})
	if len(refs) != 2 || refs[1].Reason != "queue_full" || !refs[1].Time.Equal(at) {
		t.Fatalf("observer got %+v", refs)
	}
	if want := []string{"message.dropped t rcv u queue_full pub"}; !slices.Equal(events, want) {
		t.Fatalf("observer without Messages got %q, want %q", events, want)
	}
	e := <-sub.C()
	if e.Kind != MessageDropped || e.Topic != "t" || string(e.Payload) != "p" || e.QoS != 1 || e.MessageID != 9 ||
		e.ClientID != "rcv" || e.Username != "u" || !e.UsernameSet || e.Reason != "queue_full" || !e.Time.Equal(at) || e.FromClientID != "pub" {
		t.Fatalf("subscription got %+v", e)
	}
	e.Release()
	if len(refEvents) != 0 {
		t.Fatalf("the observer with Messages got events %q too", refEvents)
	}

	b.Publish(&Event{Kind: MessagePublish, Topic: "by event"})
	if len(refEvents) != 1 || refEvents[0] != "by event" || len(refs) != 2 {
		t.Fatalf("Publish: events %q, %d references", refEvents, len(refs))
	}

	ok = false
	b.PublishMessage(&MessageRef{Kind: MessagePublish, Msg: m})
	if refObs.Dropped() != 1 {
		t.Fatalf("dropped %d, want 1", refObs.Dropped())
	}
	b.Close()
	b.PublishMessage(&MessageRef{Kind: MessagePublish, Msg: m})
	if len(refs) != 3 {
		t.Fatalf("called after Close: %d references", len(refs))
	}
}

// TestObserveWithoutEvent: an observer must take events too.
func TestObserveWithoutEvent(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	NewBus().ObserveWith("o", Observer{Messages: func(MessageRef) bool { return true }})
}

// BenchmarkPublishMessageToObserver measures handing a message event by
// reference to one observer, as the broker does with each message that a
// web hook rule posts.
func BenchmarkPublishMessageToObserver(b *testing.B) {
	bus := NewBus()
	defer bus.Close()
	n := 0
	bus.ObserveWith("obs", Observer{Event: func(*Event) bool { return true }, Messages: func(r MessageRef) bool {
		n += len(r.ClientID)
		return true
	}}, MessagePublish)
	m := &msg{topic: "bench/lat", from: "pub"}
	b.ReportAllocs()
	for range b.N {
		bus.PublishMessage(&MessageRef{Kind: MessagePublish, Msg: m, ClientID: "pub", Time: time.UnixMilli(1)})
	}
}
