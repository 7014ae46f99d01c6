package mqtt

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the decoder for a 3.1, 3.1.1 or 5.0
// connection (chosen by vb). Decoding must never panic and fail only with
// ErrIncomplete or a *Error; whatever decodes must encode, decode again to an
// equal packet, and encode to the same bytes the second time. Decoded values
// must not alias the body, and ReadPacket must agree with Decode.
func FuzzDecode(f *testing.F) {
	for _, fx := range validFixtures {
		f.Add(byte(fx.v), fx.raw)
	}
	for _, fx := range invalidFixtures {
		f.Add(byte(fx.v), fx.raw)
	}
	f.Fuzz(func(t *testing.T, vb byte, raw []byte) {
		v := Version(3 + vb%3)
		h, n, err := ParseFixedHeader(raw)
		if err != nil {
			var e *Error
			if !errors.Is(err, ErrIncomplete) && !errors.As(err, &e) {
				t.Fatalf("ParseFixedHeader error %v (%T) is neither ErrIncomplete nor *Error", err, err)
			}
			return
		}
		if len(raw)-n < h.Remaining {
			return
		}
		raw = raw[:n+h.Remaining]
		body := bytes.Clone(raw[n:])
		p, err := Decode(h, body, v)

		// DecodePublish and DecodeAck, into a packet that holds one already.
		var into Packet
		var ierr error
		switch h.Type {
		case PUBLISH:
			scratch := &Publish{Dup: true, QoS: 2, PacketID: 7, Topic: "old", Payload: []byte("old"),
				Props: Properties{Present: 1 << PropContentType, ContentType: "old", User: []UserProperty{{"k", "v"}}}}
			into, ierr = scratch, DecodePublish(h, bytes.Clone(body), v, scratch)
		case PUBACK, PUBREC, PUBREL, PUBCOMP:
			scratch := &Ack{PacketType: PUBREC, PacketID: 9, ReasonCode: UnspecifiedError,
				Props: Properties{Present: 1 << PropReasonString, ReasonString: "old"}}
			into, ierr = scratch, DecodeAck(h, bytes.Clone(body), v, scratch)
		}
		if into != nil && ((ierr == nil) != (err == nil) || (err == nil && !reflect.DeepEqual(into, p))) {
			t.Fatalf("Decode = %#v, %v; into a used packet: %#v, %v", p, err, into, ierr)
		}
		rp, rerr := ReadPacket(bytes.NewReader(raw), v, 0)
		if (err == nil) != (rerr == nil) || !reflect.DeepEqual(p, rp) {
			t.Fatalf("Decode = %#v, %v; ReadPacket = %#v, %v", p, err, rp, rerr)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode error %v (%T) is not a *Error", err, err)
			}
			if p != nil && !errors.Is(err, UnsupportedProtocolVersion) {
				t.Fatalf("Decode returned %#v with error %v", p, err)
			}
			return
		}

		// Overwriting the body must not change the decoded packet.
		for i := range body {
			body[i] ^= 0xFF
		}
		if !reflect.DeepEqual(p, rp) {
			t.Fatalf("packet changed when its body was overwritten:\n %#v\n %#v", p, rp)
		}

		ev := encodeVersion(p, v)
		enc, err := p.Encode(nil, ev)
		if err != nil {
			t.Fatalf("decoded %#v does not encode: %v", p, err)
		}
		h2, n2, err := ParseFixedHeader(enc)
		if err != nil || n2+h2.Remaining != len(enc) {
			t.Fatalf("encoded % X: header %+v, %d, %v", enc, h2, n2, err)
		}
		p2, err := Decode(h2, enc[n2:], ev)
		if err != nil {
			t.Fatalf("re-decode of % X (from % X): %v", enc, raw, err)
		}
		if !reflect.DeepEqual(p, p2) {
			t.Fatalf("round trip of % X:\n first  %#v\n second %#v", raw, p, p2)
		}
		enc2, err := p2.Encode(nil, ev)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: % X then % X (%v)", enc, enc2, err)
		}
	})
}
