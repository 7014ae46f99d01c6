package webhook

import (
	"encoding/json"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mqgate/mqgate/events"
)

// TestBodyGolden checks the exact JSON of every event: EMQX 4.4's field
// names, order and types, then mqgate's id and seq.
func TestBodyGolden(t *testing.T) {
	at := time.UnixMilli(1700000000123)
	conn := time.UnixMilli(1700000000000)
	peer := netip.MustParseAddrPort("[::ffff:10.0.0.7]:51000")
	client := events.Event{ClientID: "c1", Username: "u1", UsernameSet: true, Peer: peer, ProtoVer: 5, KeepAlive: 60,
		ConnectedAt: conn, Time: at}
	msg := events.Event{ClientID: "c2", Username: "u2", UsernameSet: true, FromClientID: "c1", FromUsername: "u1", FromUserSet: true,
		Topic: "t/1", QoS: 1, Retain: true, Payload: []byte("hi \"x\""), MessageTime: conn, Time: at}
	with := func(e events.Event, k events.Kind, edit func(*events.Event)) *events.Event {
		e.Kind = k
		if edit != nil {
			edit(&e)
		}
		return &e
	}
	tests := []struct {
		e    *events.Event
		want string
	}{
		{with(client, events.ClientConnect, nil),
			`{"action":"client_connect","node":"n@h","clientid":"c1","username":"u1","ipaddress":"10.0.0.7","keepalive":60,"proto_ver":5,"id":"ID","seq":7}`},
		{with(client, events.ClientConnack, func(e *events.Event) { e.ConnAck = 0x86; e.ConnectedAt = time.Time{} }),
			`{"action":"client_connack","node":"n@h","clientid":"c1","username":"u1","ipaddress":"10.0.0.7","conn_ack":"bad_username_or_password","keepalive":60,"proto_ver":5,"id":"ID","seq":7}`},
		{with(client, events.ClientConnack, nil),
			`{"action":"client_connack","node":"n@h","clientid":"c1","username":"u1","ipaddress":"10.0.0.7","conn_ack":"success","keepalive":60,"proto_ver":5,"connected_at":1700000000000,"id":"ID","seq":7}`},
		{with(client, events.ClientConnected, func(e *events.Event) { e.UsernameSet = false; e.Username = "" }),
			`{"action":"client_connected","node":"n@h","clientid":"c1","username":null,"ipaddress":"10.0.0.7","keepalive":60,"proto_ver":5,"connected_at":1700000000000,"id":"ID","seq":7}`},
		{with(client, events.ClientDisconnected, func(e *events.Event) { e.Reason = "keepalive_timeout" }),
			`{"action":"client_disconnected","node":"n@h","clientid":"c1","username":"u1","reason":"keepalive_timeout","connected_at":1700000000000,"disconnected_at":1700000000123,"id":"ID","seq":7}`},
		{with(client, events.ClientSubscribe, func(e *events.Event) {
			e.Topic = "a/#"
			e.Opts = events.SubOpts{QoS: 2, RH: 1, RAP: true, NL: true}
		}),
			`{"action":"client_subscribe","node":"n@h","clientid":"c1","username":"u1","topic":"a/#","opts":{"qos":2,"rh":1,"rap":1,"nl":1},"id":"ID","seq":7}`},
		{with(client, events.ClientUnsubscribe, func(e *events.Event) { e.Topic = "a/#" }),
			`{"action":"client_unsubscribe","node":"n@h","clientid":"c1","username":"u1","topic":"a/#","opts":{"qos":0,"rh":0,"rap":0,"nl":0},"id":"ID","seq":7}`},
		{with(client, events.SessionSubscribed, func(e *events.Event) { e.Topic = "a"; e.Opts.QoS = 1 }),
			`{"action":"session_subscribed","node":"n@h","clientid":"c1","username":"u1","topic":"a","opts":{"qos":1,"rh":0,"rap":0,"nl":0},"id":"ID","seq":7}`},
		{with(client, events.SessionUnsubscribed, func(e *events.Event) { e.Topic = "a" }),
			`{"action":"session_unsubscribed","node":"n@h","clientid":"c1","username":"u1","topic":"a","id":"ID","seq":7}`},
		{with(client, events.SessionTerminated, func(e *events.Event) { e.Reason = "normal" }),
			`{"action":"session_terminated","node":"n@h","clientid":"c1","username":"u1","reason":"normal","id":"ID","seq":7}`},
		{with(msg, events.MessagePublish, func(e *events.Event) { e.FromUserSet = false; e.FromUsername = "" }),
			`{"action":"message_publish","node":"n@h","from_client_id":"c1","from_username":null,"topic":"t/1","qos":1,"retain":true,"payload":"hi \"x\"","ts":1700000000000,"id":"ID","seq":7}`},
		{with(msg, events.MessageDelivered, nil),
			`{"action":"message_delivered","node":"n@h","clientid":"c2","username":"u2","from_client_id":"c1","from_username":"u1","topic":"t/1","qos":1,"retain":true,"payload":"hi \"x\"","ts":1700000000000,"id":"ID","seq":7}`},
		{with(msg, events.MessageAcked, nil),
			`{"action":"message_acked","node":"n@h","clientid":"c2","username":"u2","from_client_id":"c1","from_username":"u1","topic":"t/1","qos":1,"retain":true,"payload":"hi \"x\"","ts":1700000000000,"id":"ID","seq":7}`},
		{with(msg, events.MessageDropped, func(e *events.Event) { e.Reason = "queue_full" }),
			`{"action":"message_dropped","node":"n@h","clientid":"c2","username":"u2","from_client_id":"c1","from_username":"u1","topic":"t/1","qos":1,"retain":true,"payload":"hi \"x\"","ts":1700000000000,"reason":"queue_full","id":"ID","seq":7}`},
	}
	for _, tt := range tests {
		t.Run(tt.e.Kind.String(), func(t *testing.T) {
			got, err := Body(tt.e, "n@h", Plain, "ID", 7)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("\ngot  %s\nwant %s", got, tt.want)
			}
		})
	}
	if _, err := Body(&events.Event{Kind: events.SessionCreated}, "n", Plain, "", 0); err == nil {
		t.Error("a body for session.created, which no rule may name")
	}
}

// TestPayloadEncodings checks web.hook.body.encoding_of_payload_field,
// base62 against EMQX's emqx_base62 results.
func TestPayloadEncodings(t *testing.T) {
	tests := []struct {
		enc      Encoding
		in, want string
	}{
		{Plain, "abc", "abc"},
		{Base64, "a", "YQ=="},
		{Base64, "hello", "aGVsbG8="},
		{Base62, "", ""},
		{Base62, "a", "YB"},                  // 011000|01: the last 2 bits unshifted
		{Base62, "ab", "YWC"},                // 011000|010110|0010
		{Base62, "abc", "YWJj"},              // same as base64 for full groups below 61
		{Base62, "\xff\xff\xff", "9C9C9C9C"}, // 63 is written 9C
		{Base62, "\xf7\xdf\x7d", "9A9A9A9A"}, // 61 is written 9A
		{Base62, "\xfb\xef\xbe", "9B9B9B9B"}, // 62 is written 9B
		{Base62, "\xd3\x4d\x34", "0000"},     // 52 is '0'
	}
	for _, tt := range tests {
		if got := tt.enc.encode([]byte(tt.in)); got != tt.want {
			t.Errorf("encoding %d of %q: got %q, want %q", tt.enc, tt.in, got, tt.want)
		}
	}
	for _, s := range []string{"plain", "base64", "base62"} {
		if _, err := ParseEncoding(s); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseEncoding("hex"); err == nil {
		t.Error("hex accepted")
	}
	b, _ := Body(&events.Event{Kind: events.MessagePublish, Payload: []byte("hello")}, "n", Base64, "i", 1)
	if !strings.Contains(string(b), `"payload":"aGVsbG8="`) {
		t.Errorf("base64 body %s", b)
	}
}

// TestClassify checks which answers are retried and how Retry-After is read.
func TestClassify(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		status     int
		retryAfter string
		retry      bool
		wait       time.Duration
		final      bool
	}{
		{200, "", false, 0, false},
		{204, "", false, 0, false},
		{500, "", true, 0, false},
		{503, "7", true, 7 * time.Second, false},
		{429, "Fri, 02 Jan 2026 03:04:35 GMT", true, 30 * time.Second, false},
		{429, "garbage", true, 0, false},
		{408, "", true, 0, false},
		{400, "5", false, 0, true},
		{404, "", false, 0, true},
		{301, "", false, 0, true},
	}
	for _, tt := range tests {
		r := classify(tt.status, tt.retryAfter, now)
		if r.retry != tt.retry || r.retryAfter != tt.wait || (r.err != nil && !r.retry) != tt.final {
			t.Errorf("status %d %q: %+v", tt.status, tt.retryAfter, r)
		}
	}
}

// TestBackoff checks that delays double per attempt, stay within
// [d/2, d] (jitter) and never exceed the maximum.
func TestBackoff(t *testing.T) {
	lo, hi := 100*time.Millisecond, 2*time.Second
	for attempt := 1; attempt < 40; attempt++ {
		full := min(hi, lo<<min(attempt-1, 30))
		for range 20 {
			d := backoff(lo, hi, attempt)
			if d < full/2 || d > full {
				t.Fatalf("attempt %d: %v not in [%v, %v]", attempt, d, full/2, full)
			}
		}
	}
}

// TestNewID checks the ULID form: 26 Crockford characters, sorted by time,
// and monotonic within a millisecond, also when the clock goes back.
func TestNewID(t *testing.T) {
	src := newIDSource()
	a := src.newID(time.UnixMilli(1000))
	b := src.newID(time.UnixMilli(2000))
	if len(a) != 26 || strings.Trim(a, crockford) != "" || a >= b {
		t.Fatalf("ids %q %q", a, b)
	}
	if newIDSource().newID(time.UnixMilli(1000)) == a {
		t.Fatal("two sources made the same id")
	}
	// The same millisecond: each id is the one before plus one.
	prev := b
	for range 100 {
		id := src.newID(time.UnixMilli(2000))
		if id <= prev || id[:10] != b[:10] || !isSuccessor(prev, id) {
			t.Fatalf("after %q: %q", prev, id)
		}
		prev = id
	}
	// A clock that went back keeps the order.
	if id := src.newID(time.UnixMilli(1500)); id <= prev || id[:10] != b[:10] {
		t.Fatalf("clock back: %q after %q", id, prev)
	}
	// A carry runs through the digits at their highest.
	src.last = [26]byte([]byte("01ARZ3NDEK" + "TSV4RRFFQ69G5ZZZ"))
	src.ms = 5000
	if id := src.newID(time.UnixMilli(5000)); id != "01ARZ3NDEK"+"TSV4RRFFQ69G6000" {
		t.Fatalf("carry: %q", id)
	}
	// The random part at its highest gets a new draw, of the same time.
	src.last = [26]byte([]byte("01ARZ3NDEK" + strings.Repeat("Z", 16)))
	if id, at := src.newID(time.UnixMilli(5000)), newIDSource().newID(time.UnixMilli(5000)); id[:10] != at[:10] || id == at {
		t.Fatalf("overflow: %q, want the time of %q", id, at)
	}
}

// isSuccessor reports whether ULID b is a plus one.
func isSuccessor(a, b string) bool {
	x, y := new(big.Int), new(big.Int)
	for i := range 26 {
		x.Lsh(x, 5).Add(x, big.NewInt(int64(strings.IndexByte(crockford, a[i]))))
		y.Lsh(y, 5).Add(y, big.NewInt(int64(strings.IndexByte(crockford, b[i]))))
	}
	return y.Sub(y, x).Cmp(big.NewInt(1)) == 0
}

// TestAppendString checks the hand-written JSON string encoder against
// encoding/json: both must decode to the same text, and the result must be
// valid JSON, for control characters, quotes, invalid UTF-8 and separators.
func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uo\te`, "a\nb\rc\td\b\f\x00\x1f", "<&>", "é中😀", "bad\xff\xfeutf8\xc3",
		"line\u2028sep\u2029", strings.Repeat("x", 300)} {
		checkJSONString(t, s)
	}
	if got := string(appendString(nil, "<&>")); got != `"<&>"` {
		t.Errorf("HTML characters escaped: %s", got)
	}
	// Every byte value at every place of a word, among plain bytes: the
	// word at a time test (plain8) must see each byte that needs care.
	for c := range 256 {
		for at := range 8 {
			w := []byte("abcdefghijkl")
			w[at] = byte(c)
			if plain8(string(w)) != jsonPlain[c] {
				t.Fatalf("plain8(%q) = %v", w, !jsonPlain[c])
			}
			checkJSONString(t, string(w))
		}
	}
	// Random strings of bytes that need care and of plain ones.
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab\"\\\n\x00\x1f\x7f\xc3\xa9\xe2\x80\xa8\xff ~")
	for range 20000 {
		p := make([]byte, rng.IntN(40))
		for i := range p {
			p[i] = alphabet[rng.IntN(len(alphabet))]
		}
		checkJSONString(t, string(p))
	}
	// The edges of UTF-8's multi-byte forms, alone, cut short and among
	// plain bytes: appendString decodes only a lead from 0xc2 to 0xf4
	// followed by a continuation byte.
	for _, s := range []string{"\xc1\xbf", "\xc2", "\xc2\x80", "\xdf\xbf", "\xe0\x80\x80", "\xe0\xa0\x80", "\xed\xa0\x80",
		"\xef\xbf\xbf", "\xf0\x8f\xbf\xbf", "\xf0\x9f\x98", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80"} {
		checkJSONString(t, s)
		checkJSONString(t, "ab"+s+"cd")
		checkJSONString(t, s[:len(s)-1]+"\"")
	}
	// Random bytes of any value, like a binary payload.
	for range 20000 {
		p := make([]byte, rng.IntN(40))
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		checkJSONString(t, string(p))
	}
}

// checkJSONString checks that appendString writes s as valid JSON that
// decodes to what encoding/json's encoding of s decodes to.
func checkJSONString(t *testing.T, s string) {
	t.Helper()
	got := appendString(nil, s)
	if !json.Valid(got) {
		t.Fatalf("%q: invalid JSON %s", s, got)
	}
	var mine, ref string
	std, _ := json.Marshal(s)
	if err := json.Unmarshal(got, &mine); err != nil {
		t.Fatalf("%q: %s: %v", s, got, err)
	}
	if err := json.Unmarshal(std, &ref); err != nil {
		t.Fatal(err)
	}
	if mine != ref {
		t.Fatalf("%q: decodes to %q, encoding/json's to %q", s, mine, ref)
	}
}

// BenchmarkNewID measures an event id at 10 ids per millisecond, as an
// outbox writer taking 10,000 events a second makes them.
func BenchmarkNewID(b *testing.B) {
	src := newIDSource()
	at := time.UnixMilli(1700000000000)
	for i := range b.N {
		id := src.newIDBytes(at.Add(time.Duration(i/10) * time.Millisecond))
		_ = id
	}
}
