package webhook

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// DeadLetter is one event that its endpoint refused (a status other than
// 2xx, 408, 429 or 5xx). Dead letters are kept, one JSON object a line, in
// the dead-letter file until `mqgate webhook replay` sends them again.
type DeadLetter struct {
	URL      string            `json:"url"`
	Headers  map[string]string `json:"headers,omitempty"`
	Batch    bool              `json:"batch,omitempty"` // post as a one-element JSON array
	ID       string            `json:"id"`
	Event    string            `json:"event"`
	ClientID string            `json:"clientid"`
	Status   int               `json:"status"`
	Error    string            `json:"error,omitempty"`
	FailedAt int64             `json:"failed_at"` // ms
	Body     json.RawMessage   `json:"body"`
}

// deadLetters appends to the dead-letter file. The file is opened for each
// write (dead letters are rare) under an advisory lock shared with Replay,
// so that a replay can run while the broker does.
type deadLetters struct {
	path string
	mu   sync.Mutex
}

func (dl *deadLetters) add(ep *endpoint, jobs []*job, res result) {
	var buf bytes.Buffer
	now := time.Now().UnixMilli()
	for _, j := range jobs {
		body, err := ep.d.appendBody(nil, j)
		if err != nil {
			if !j.done.Load() {
				ep.d.log.Error("web hook: cannot write the body of a refused event; it is lost", "id", j.id(), "err", err)
			}
			continue
		}
		l := DeadLetter{URL: ep.url, Headers: ep.headers, Batch: ep.batch.MaxSize > 0, ID: j.id(), Event: j.event.String(),
			ClientID: j.client, Status: res.status, FailedAt: now, Body: body}
		if res.err != nil {
			l.Error = res.err.Error()
		}
		b, err := json.Marshal(&l)
		if err != nil {
			continue
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	dl.mu.Lock()
	defer dl.mu.Unlock()
	if err := appendLocked(dl.path, buf.Bytes()); err != nil {
		ep.d.log.Error("web hook: cannot write dead letters", "path", dl.path, "err", err)
	}
}

// withLock runs fn holding the advisory lock of the dead-letter file path.
func withLock(path string, fn func() error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	lf, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("webhook: lock %s: %w", path, err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing releases it too
	return fn()
}

func appendLocked(path string, data []byte) error {
	return withLock(path, func() error {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("webhook: %w", err)
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return fmt.Errorf("webhook: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("webhook: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("webhook: %w", err)
		}
		return nil
	})
}

// ReadDeadLetters returns the dead letters stored in dir.
func ReadDeadLetters(dir string) ([]DeadLetter, error) {
	path := filepath.Join(dir, DeadFile)
	var out []DeadLetter
	err := withLock(path, func() error {
		var err error
		out, err = readDead(path)
		return err
	})
	return out, err
}

func readDead(path string) ([]DeadLetter, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	var out []DeadLetter
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<30)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var l DeadLetter
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("webhook: %s:%d: %w", path, n, err)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("webhook: %s: %w", path, err)
	}
	return out, nil
}

// ReplayOptions configures Replay.
type ReplayOptions struct {
	Client         *http.Client // nil = a client with default settings
	Signer         *Signer      // nil = no signature headers
	RequestTimeout time.Duration
}

// ReplayResult counts what Replay did.
type ReplayResult struct {
	Sent   int // accepted with a 2xx
	Failed int // refused or unreachable again; still in the dead-letter file
}

// Replay sends the dead letters kept in dir once more, in order, each to the
// URL and with the headers it had, and a fresh signature. Those accepted are
// removed from the file; the others stay. It may run while the broker runs:
// it takes the letters out of the file under its lock, and puts back the
// ones that fail.
func Replay(ctx context.Context, dir string, o ReplayOptions) (ReplayResult, error) {
	if o.Client == nil {
		o.Client = &http.Client{Transport: newTransport(4, nil, 0)}
		defer o.Client.CloseIdleConnections()
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 5 * time.Second
	}
	path := filepath.Join(dir, DeadFile)
	work := path + ".replay"
	// Move the letters aside (adding to any left by an interrupted replay).
	err := withLock(path, func() error {
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("webhook: %w", err)
		}
		f, err := os.OpenFile(work, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("webhook: %w", err)
		}
		_, err = f.Write(data)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("webhook: %w", err)
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("webhook: %w", err)
		}
		return nil
	})
	if err != nil {
		return ReplayResult{}, err
	}
	letters, err := readDead(work)
	if err != nil {
		return ReplayResult{}, err
	}
	var res ReplayResult
	var keep bytes.Buffer
	for _, l := range letters {
		if ctx.Err() == nil && replayOne(ctx, o, l) == nil {
			res.Sent++
			continue
		}
		res.Failed++
		b, _ := json.Marshal(&l) // it was decoded from JSON
		keep.Write(b)
		keep.WriteByte('\n')
	}
	if keep.Len() > 0 {
		if err := appendLocked(path, keep.Bytes()); err != nil {
			return res, err
		}
	}
	if err := os.Remove(work); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("webhook: %w", err)
	}
	return res, ctx.Err()
}

func replayOne(ctx context.Context, o ReplayOptions, l DeadLetter) error {
	body := []byte(l.Body)
	if l.Batch {
		body = append(append([]byte{'['}, body...), ']')
	}
	ctx, cancel := context.WithTimeout(ctx, o.RequestTimeout)
	defer cancel()
	open := func() io.ReadCloser { return io.NopCloser(bytes.NewReader(body)) }
	req, err := newRequest(ctx, l.URL, l.Headers, l.ID, body, open, o.Signer, time.Now())
	if err != nil {
		return err
	}
	resp, err := o.Client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return fmt.Errorf("webhook: status %d", resp.StatusCode)
	}
	return nil
}
