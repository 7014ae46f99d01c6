package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestEncode(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{
			name: "connect clean session keepalive 60",
			got:  AppendConnect(nil, "c1", 60, true),
			want: []byte{
				0x10, 14, // CONNECT, remaining length
				0, 4, 'M', 'Q', 'T', 'T', // protocol name
				4,     // level 4 = 3.1.1 [MQTT-3.1.2-2]
				0x02,  // clean session
				0, 60, // keep alive
				0, 2, 'c', '1', // client identifier
			},
		},
		{
			name: "connect persistent session keepalive 0",
			got:  AppendConnect(nil, "", 0, false),
			want: []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 4, 0, 0, 0, 0, 0},
		},
		{
			// [MQTT-3.8.1-1] flags 0010.
			name: "subscribe",
			got:  AppendSubscribe(nil, 7, "a/+", 1),
			want: []byte{0x82, 8, 0, 7, 0, 3, 'a', '/', '+', 1},
		},
		{
			// [MQTT-2.3.1-5] no packet identifier at QoS 0.
			name: "publish qos 0",
			got:  AppendPublish(nil, "t", 0, 9, []byte("hi")),
			want: []byte{0x30, 5, 0, 1, 't', 'h', 'i'},
		},
		{
			name: "publish qos 1",
			got:  AppendPublish(nil, "t", 1, 0x0102, []byte("hi")),
			want: []byte{0x32, 7, 0, 1, 't', 1, 2, 'h', 'i'},
		},
		{
			name: "puback",
			got:  AppendPuback(nil, 0xabcd),
			want: []byte{0x40, 2, 0xab, 0xcd},
		},
		{name: "pingreq", got: AppendPingreq(nil), want: []byte{0xc0, 0}},
		{name: "disconnect", got: AppendDisconnect(nil), want: []byte{0xe0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Equal(tt.got, tt.want) {
				t.Fatalf("got % x, want % x", tt.got, tt.want)
			}
		})
	}
}

// [MQTT-2.2.3] the remaining length uses one to four bytes.
func TestAppendLength(t *testing.T) {
	tests := []struct {
		n    int
		want []byte
	}{
		{0, []byte{0}},
		{127, []byte{0x7f}},
		{128, []byte{0x80, 0x01}},
		{16383, []byte{0xff, 0x7f}},
		{16384, []byte{0x80, 0x80, 0x01}},
		{2097151, []byte{0xff, 0xff, 0x7f}},
		{2097152, []byte{0x80, 0x80, 0x80, 0x01}},
		{MaxRemaining, []byte{0xff, 0xff, 0xff, 0x7f}},
	}
	for _, tt := range tests {
		if got := appendLength(nil, tt.n); !bytes.Equal(got, tt.want) {
			t.Errorf("appendLength(%d) = % x, want % x", tt.n, got, tt.want)
		}
	}
}

func TestPublishLen(t *testing.T) {
	for _, topic := range []int{0, 1, 100, 200} {
		for _, qos := range []byte{0, 1} {
			for _, payload := range []int{0, 16, 120, 20000} {
				got := PublishLen(topic, qos, payload)
				want := len(AppendPublish(nil, strings.Repeat("t", topic), qos, 1, make([]byte, payload)))
				if got != want {
					t.Errorf("PublishLen(%d, %d, %d) = %d, want %d", topic, qos, payload, got, want)
				}
			}
		}
	}
}

func TestReaderNext(t *testing.T) {
	big := bytes.Repeat([]byte{'x'}, 300)
	tests := []struct {
		name      string
		in        []byte
		size, max int
		wantType  byte
		wantFlags byte
		wantBody  []byte
		wantErr   error
	}{
		{name: "pingresp", in: []byte{0xd0, 0}, wantType: TypePingresp},
		{name: "connack", in: []byte{0x20, 2, 1, 0}, wantType: TypeConnack, wantBody: []byte{1, 0}},
		{
			name: "publish qos 1 retain", in: AppendPublish(nil, "a", 1, 5, []byte("p")),
			wantType: TypePublish, wantFlags: 0x2, wantBody: []byte{0, 1, 'a', 0, 5, 'p'},
		},
		{
			// Larger than the 16-byte buffer: read through the scratch slice.
			name: "body larger than buffer", in: AppendPublish(nil, "t", 0, 0, big), size: 16,
			wantType: TypePublish, wantBody: append([]byte{0, 1, 't'}, big...),
		},
		{
			// [MQTT-2.2.3] five length bytes are malformed.
			name: "five length bytes", in: []byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}, wantErr: ErrMalformed,
		},
		{name: "over the limit", in: AppendPublish(nil, "t", 0, 0, big), max: 100, wantErr: ErrTooLarge},
		{name: "truncated body", in: []byte{0x30, 5, 0, 1}, wantErr: io.ErrUnexpectedEOF},
		{name: "truncated length", in: []byte{0x30, 0x80}, wantErr: io.ErrUnexpectedEOF},
		{name: "empty stream", in: nil, wantErr: io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size := tt.size
			if size == 0 {
				size = 4096
			}
			rd := NewReader(bytes.NewReader(tt.in), size, tt.max)
			p, err := rd.Next()
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Type != tt.wantType || p.Flags != tt.wantFlags || !bytes.Equal(p.Body, tt.wantBody) {
				t.Fatalf("got type %d flags %#x body % x, want %d %#x % x",
					p.Type, p.Flags, p.Body, tt.wantType, tt.wantFlags, tt.wantBody)
			}
		})
	}
}

// A stream of many packets split at every possible point decodes to the same
// packets, whatever the buffer boundaries.
func TestReaderStream(t *testing.T) {
	var stream []byte
	for i := 0; i < 200; i++ {
		stream = AppendPublish(stream, "bench/1/x", byte(i%2), uint16(i+1), bytes.Repeat([]byte{byte(i)}, i))
		stream = AppendPuback(stream, uint16(i+1))
	}
	for _, size := range []int{16, 17, 64, 4096} {
		rd := NewReader(bufio.NewReaderSize(iotestHalf{bytes.NewReader(stream)}, 16), size, 0)
		for i := 0; i < 200; i++ {
			p, err := rd.Next()
			if err != nil {
				t.Fatalf("size %d packet %d: %v", size, i, err)
			}
			pub, err := ParsePublish(p.Flags, p.Body)
			if err != nil {
				t.Fatalf("size %d packet %d: %v", size, i, err)
			}
			if string(pub.Topic) != "bench/1/x" || len(pub.Payload) != i || pub.QoS != byte(i%2) {
				t.Fatalf("size %d packet %d: got %+v", size, i, pub)
			}
			p, err = rd.Next()
			if err != nil || p.Type != TypePuback {
				t.Fatalf("size %d puback %d: %v %+v", size, i, err, p)
			}
			if id, err := ParseID(p.Body); err != nil || id != uint16(i+1) {
				t.Fatalf("size %d puback %d: id %d err %v", size, i, id, err)
			}
		}
		if _, err := rd.Next(); !errors.Is(err, io.EOF) {
			t.Fatalf("size %d: after the last packet err = %v, want EOF", size, err)
		}
	}
}

// iotestHalf returns at most half of what is asked, to split packets.
type iotestHalf struct{ r io.Reader }

func (h iotestHalf) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:len(p)/2]
	}
	return h.r.Read(p)
}

func TestParsePublish(t *testing.T) {
	tests := []struct {
		name    string
		flags   byte
		body    []byte
		want    Publish
		wantErr bool
	}{
		{
			name: "qos 0", flags: 0, body: []byte{0, 2, 'a', 'b', 'x'},
			want: Publish{Topic: []byte("ab"), Payload: []byte("x")},
		},
		{
			name: "qos 1 dup retain", flags: 0x0b, body: []byte{0, 1, 'a', 0, 9},
			want: Publish{QoS: 1, Dup: true, Retain: true, ID: 9, Topic: []byte("a"), Payload: []byte{}},
		},
		{name: "qos 3", flags: 0x06, body: []byte{0, 1, 'a', 0, 1}, wantErr: true},      // [MQTT-3.3.1-4]
		{name: "qos 1 id 0", flags: 0x02, body: []byte{0, 1, 'a', 0, 0}, wantErr: true}, // [MQTT-2.3.1-1]
		{name: "qos 1 no id", flags: 0x02, body: []byte{0, 1, 'a', 0}, wantErr: true},   // truncated identifier
		{name: "topic too long", flags: 0, body: []byte{0, 5, 'a'}, wantErr: true},      // topic past the end
		{name: "no topic length", flags: 0, body: []byte{0}, wantErr: true},             // one byte only
		{name: "empty payload", flags: 0, body: []byte{0, 1, 'a'}, want: Publish{Topic: []byte("a"), Payload: []byte{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePublish(tt.flags, tt.body)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("err = %v, want ErrMalformed", err)
				}
				return
			}
			if got.QoS != tt.want.QoS || got.Dup != tt.want.Dup || got.Retain != tt.want.Retain ||
				got.ID != tt.want.ID || !bytes.Equal(got.Topic, tt.want.Topic) || !bytes.Equal(got.Payload, tt.want.Payload) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseAcks(t *testing.T) {
	// [MQTT-3.2.2] CONNACK: acknowledge flags with only bit 0 used, then the return code.
	if c, err := ParseConnack([]byte{1, 0}); err != nil || !c.SessionPresent || c.Code != 0 {
		t.Errorf("connack 1 0: %+v %v", c, err)
	}
	if c, err := ParseConnack([]byte{0, 5}); err != nil || c.SessionPresent || c.Code != 5 {
		t.Errorf("connack 0 5: %+v %v", c, err)
	}
	for _, bad := range [][]byte{{0}, {2, 0}, {0, 0, 0}} {
		if _, err := ParseConnack(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("connack % x: err = %v, want ErrMalformed", bad, err)
		}
	}
	// [MQTT-3.9.3-1] one return code per filter; [MQTT-3.9.3-2] 0x80 is failure.
	if id, codes, err := ParseSuback([]byte{0, 3, 1, SubackFailure}); err != nil || id != 3 || !bytes.Equal(codes, []byte{1, 0x80}) {
		t.Errorf("suback: %d % x %v", id, codes, err)
	}
	for _, bad := range [][]byte{{0, 1}, {0, 1, 3}} {
		if _, _, err := ParseSuback(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("suback % x: err = %v, want ErrMalformed", bad, err)
		}
	}
	if _, err := ParseID([]byte{1}); !errors.Is(err, ErrMalformed) {
		t.Errorf("puback of one byte: err = %v, want ErrMalformed", err)
	}
}

// The hot path of the load generator: encode a PUBLISH into a buffer and
// decode it again. It must not allocate.
func BenchmarkPublishRoundTrip(b *testing.B) {
	payload := make([]byte, 16)
	var stream []byte
	for i := 0; i < 1000; i++ {
		stream = AppendPublish(stream, "bench/1/x", 0, 0, payload)
	}
	r := bytes.NewReader(stream)
	rd := NewReader(r, 64<<10, 0)
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream) / 1000))
	for i := 0; b.Loop(); i++ {
		buf = AppendPublish(buf[:0], "bench/1/x", 0, 0, payload)
		if i%1000 == 0 {
			r.Reset(stream)
			rd.br.Reset(r)
		}
		p, err := rd.Next()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ParsePublish(p.Flags, p.Body); err != nil {
			b.Fatal(err)
		}
	}
}
