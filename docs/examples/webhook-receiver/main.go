// Command webhook-receiver is an example receiver of mqgate's web hooks, for
// the web hook guide (docs/webhooks.md): it checks the Standard Webhooks
// signature, drops events it has already processed (by id), notes events
// older than the newest of their client (by seq), and appends each new
// event as one JSON line to a file.
//
//	webhook-receiver [-listen 127.0.0.1:9000] [-path /mqtt/events] [-secret S] [-out events.jsonl]
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// event holds the fields every body has that the receiver needs.
type event struct {
	Action       string `json:"action"`
	ID           string `json:"id"`
	Seq          uint64 `json:"seq"`
	ClientID     string `json:"clientid"`
	FromClientID string `json:"from_client_id"`
}

// client is the client id the event belongs to (message_publish bodies
// name only the sender).
func (e *event) client() string {
	if e.ClientID != "" {
		return e.ClientID
	}
	return e.FromClientID
}

type receiver struct {
	key []byte // nil: signatures are not checked

	mu      sync.Mutex
	out     io.Writer
	seen    map[string]bool   // ids processed
	order   []string          // ids in the order seen, to forget the oldest
	lastSeq map[string]uint64 // per client id
}

// maxSeen bounds the ids remembered for deduplication.
const maxSeen = 100000

// verify checks the webhook-signature header: one or more "v1,<base64>"
// separated by spaces, each an HMAC-SHA256 of "<id>.<timestamp>.<body>";
// one must match, and the timestamp must be within 5 minutes of now.
func (r *receiver) verify(h http.Header, body []byte) error {
	id, ts := h.Get("Webhook-Id"), h.Get("Webhook-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("no webhook-timestamp")
	}
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return errors.New("webhook-timestamp too far from now")
	}
	mac := hmac.New(sha256.New, r.key)
	fmt.Fprintf(mac, "%s.%s.", id, ts)
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(h.Get("Webhook-Signature")) {
		v, b64, ok := strings.Cut(sig, ",")
		got, err := base64.StdEncoding.DecodeString(b64)
		if ok && v == "v1" && err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no valid webhook-signature")
}

// parseSecret returns the HMAC key of a signing secret: the base64-decoded
// part of "whsec_<base64>", or else the text itself (as mqgate does).
func parseSecret(secret string) ([]byte, error) {
	if b64, ok := strings.CutPrefix(secret, "whsec_"); ok {
		return base64.StdEncoding.DecodeString(b64)
	}
	return []byte(secret), nil
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.key != nil {
		if err := r.verify(req.Header, body); err != nil {
			log.Printf("refused: %v", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
	}
	// One event is a JSON object; a batching rule sends an array.
	var raws []json.RawMessage
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '[' {
		err = json.Unmarshal(t, &raws)
	} else {
		raws = []json.RawMessage{t}
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, raw := range raws {
		var e event
		if err := json.Unmarshal(raw, &e); err != nil || e.ID == "" {
			http.Error(w, "not an mqgate event", http.StatusBadRequest)
			return
		}
		// At least once: a retry after a lost answer brings an event again,
		// with the same id.
		if r.seen[e.ID] {
			log.Printf("duplicate %s %s", e.ID, e.Action)
			continue
		}
		// seq increases per client id. An older one is a dead letter sent
		// again by mqgate webhook replay: new to this receiver, but older
		// than what it has of that client (keep the newest state).
		if e.Seq <= r.lastSeq[e.client()] {
			log.Printf("late %s %s seq %d, have %d", e.ID, e.Action, e.Seq, r.lastSeq[e.client()])
		}
		if _, err := fmt.Fprintf(r.out, "%s\n", raw); err != nil {
			// Not stored: answer 500 and mqgate retries.
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		r.seen[e.ID] = true
		r.order = append(r.order, e.ID)
		if len(r.order) > maxSeen {
			delete(r.seen, r.order[0])
			r.order = r.order[1:]
		}
		r.lastSeq[e.client()] = max(r.lastSeq[e.client()], e.Seq)
	}
	w.WriteHeader(http.StatusNoContent)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address to listen on")
	path := flag.String("path", "/mqtt/events", "URL path of the hook; other paths answer 404")
	secret := flag.String("secret", "", "web.hook.signing_secret (whsec_<base64> or text); empty: no check")
	out := flag.String("out", "", "file the events are appended to, one JSON object a line; empty: standard output")
	flag.Parse()

	r := &receiver{out: os.Stdout, seen: map[string]bool{}, lastSeq: map[string]uint64{}}
	if *secret != "" {
		k, err := parseSecret(*secret)
		if err != nil {
			log.Fatalf("-secret: %v", err)
		}
		r.key = k
	}
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		r.out = f
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+*path, r)
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("listening on %s%s", *listen, *path)
	select {
	case err := <-errc:
		log.Fatal(err)
	case <-stop:
	}
	if err := srv.Close(); err != nil {
		log.Print(err)
	}
	<-errc
}
