package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqgate/mqgate/webhook"
)

// TestVerifyMatchesSigner checks the example's signature check against the
// signer mqgate uses, with secret rotation, a changed body and an old
// timestamp.
func TestVerifyMatchesSigner(t *testing.T) {
	const current, previous = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "old-secret-text"
	body := []byte(`{"action":"client_connected","clientid":"c1","id":"01J","seq":1}`)
	now := time.Now().Unix()
	headers := func(s *webhook.Signer, ts int64, b []byte) http.Header {
		h := http.Header{}
		h.Set("Webhook-Id", "01J")
		h.Set("Webhook-Timestamp", strconv.FormatInt(ts, 10))
		h.Set("Webhook-Signature", s.Sign("01J", ts, b))
		return h
	}
	both, err := webhook.NewSigner(current, previous)
	if err != nil {
		t.Fatal(err)
	}
	onlyOld, _ := webhook.NewSigner(previous)
	other, _ := webhook.NewSigner("another-secret")
	r := &receiver{key: mustKey(t, current)}
	old := &receiver{key: []byte(previous)}
	for _, c := range []struct {
		name string
		r    *receiver
		h    http.Header
		body []byte
		ok   bool
	}{
		{"current secret", r, headers(both, now, body), body, true},
		{"receiver still on the previous secret", old, headers(both, now, body), body, true},
		{"signed with the previous secret only", r, headers(onlyOld, now, body), body, false},
		{"another secret", r, headers(other, now, body), body, false},
		{"body changed", r, headers(both, now, body), append(bytes.Clone(body), ' '), false},
		{"ten minutes old", r, headers(both, now-600, body), body, false},
	} {
		if err := c.r.verify(c.h, c.body); (err == nil) != c.ok {
			t.Errorf("%s: verify = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

func mustKey(t *testing.T, secret string) []byte {
	t.Helper()
	k, err := parseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestServeDeduplicates posts one event twice and a batch: the event is
// stored once, and the batch's events each once.
func TestServeDeduplicates(t *testing.T) {
	var out bytes.Buffer
	r := &receiver{out: &out, seen: map[string]bool{}, lastSeq: map[string]uint64{}}
	post := func(body string) int {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/mqtt/events", strings.NewReader(body)))
		return w.Code
	}
	ev := `{"action":"message_publish","from_client_id":"c1","id":"A","seq":5}`
	for range 2 {
		if code := post(ev); code != http.StatusNoContent {
			t.Fatalf("status %d", code)
		}
	}
	if code := post(`[{"action":"client_connected","clientid":"c1","id":"B","seq":3},` + ev + `]`); code != http.StatusNoContent {
		t.Fatalf("batch: status %d", code)
	}
	if code := post(`{"no":"id"}`); code != http.StatusBadRequest {
		t.Fatalf("not an event: status %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"id":"A"`) || !strings.Contains(lines[1], `"id":"B"`) {
		t.Fatalf("stored %q", lines)
	}
	if r.lastSeq["c1"] != 5 {
		t.Fatalf("last seq %d, want 5 (a late seq 3 does not lower it)", r.lastSeq["c1"])
	}
}
