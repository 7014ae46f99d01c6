package broker

import (
	"encoding/binary"
	"testing"
)

// TestDecodeHeaderLastConnection: a session header written before headers
// carried the last connection decodes without one, and a trailer this
// version cannot read is ignored rather than dropping the session.
func TestDecodeHeaderLastConnection(t *testing.T) {
	v := []byte{1, 2, 4} // version 1, username set, MQTT 3.1.1
	v = binary.AppendVarint(v, 3600e9)
	v = binary.AppendVarint(v, 1)
	v = binary.AppendVarint(v, 2)
	v = appendString(v, "alice")
	h, err := decodeHeader(v)
	if err != nil || h.username != "alice" || !h.last.connectedAt.IsZero() {
		t.Fatalf("old header: %+v, %v", h, err)
	}
	h, err = decodeHeader(append(v, 1, 0, 200)) // a cut trailer
	if err != nil || h.username != "alice" || !h.last.connectedAt.IsZero() {
		t.Fatalf("header with a bad trailer: %+v, %v", h, err)
	}
	h, err = decodeHeader(append(v, 9, 9, 9)) // a trailer of a later version
	if err != nil || h.username != "alice" {
		t.Fatalf("header with an unknown trailer: %+v, %v", h, err)
	}
}
