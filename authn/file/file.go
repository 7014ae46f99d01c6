// Package file is the authentication backend that reads users from a
// file of "username:hash" lines (bcrypt, argon2id, PBKDF2 or an EMQX hash
// form; see package passhash), reloaded when the file changes.
package file

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/authn/passhash"
)

// ErrSyntax is wrapped by errors about a malformed users file.
var ErrSyntax = errors.New("authn/file: bad users file")

// Options configure a Backend.
type Options struct {
	Path   string
	Logger *slog.Logger
	// Watch reloads the file when it changes (default in cmd: on).
	Watch bool
}

// Backend checks passwords against a users file. It is safe for
// concurrent use.
type Backend struct {
	path    string
	users   atomic.Pointer[map[string]string] // username → encoded hash
	log     *slog.Logger
	watcher *fsnotify.Watcher
	wg      sync.WaitGroup
	loads   atomic.Int64 // successful loads, for tests
}

var _ access.Authenticator = (*Backend)(nil)

// New reads the users file, which must exist and be well formed, and with
// Watch set starts watching its directory for changes.
func New(o Options) (*Backend, error) {
	if o.Path == "" {
		return nil, fmt.Errorf("%w: no path", ErrSyntax)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Backend{path: o.Path, log: o.Logger.With("component", "authn", "backend", "file", "path", o.Path)}
	if err := b.Reload(); err != nil {
		return nil, err
	}
	if o.Watch {
		w, err := fsnotify.NewWatcher()
		if err != nil {
			return nil, fmt.Errorf("authn/file: watch: %w", err)
		}
		// The directory, not the file: editors and config managers replace
		// files by renaming, which ends a watch on the file itself.
		if err := w.Add(filepath.Dir(o.Path)); err != nil {
			_ = w.Close()
			return nil, fmt.Errorf("authn/file: watch: %w", err)
		}
		b.watcher = w
		b.wg.Add(1)
		go b.watch()
	}
	return b, nil
}

// Close stops watching the file.
func (b *Backend) Close() error {
	if b.watcher == nil {
		return nil
	}
	err := b.watcher.Close()
	b.wg.Wait()
	return err
}

// settle is how long the file must stay unchanged after an event before
// it is read: a file written in place is first truncated, and reading it
// then would load no users.
const settle = 100 * time.Millisecond

func (b *Backend) watch() {
	defer b.wg.Done()
	name := filepath.Clean(b.path)
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		select {
		case ev, ok := <-b.watcher.Events:
			if !ok {
				return
			}
			if filepath.Clean(ev.Name) != name || !ev.Has(fsnotify.Write|fsnotify.Create|fsnotify.Rename) {
				continue
			}
			t.Reset(settle)
		case <-t.C:
			if err := b.Reload(); err != nil {
				// Keep the last good set; the next change is read again.
				b.log.Warn("users file not reloaded; keeping the previous one", "err", err)
			}
		case err, ok := <-b.watcher.Errors:
			if !ok {
				return
			}
			b.log.Warn("watching the users file", "err", err)
		}
	}
}

// Reload reads the file again and swaps it in, or keeps the current users
// and returns the error.
func (b *Backend) Reload() error {
	data, err := os.ReadFile(b.path)
	if err != nil {
		return fmt.Errorf("authn/file: %w", err)
	}
	users, err := Parse(data)
	if err != nil {
		return fmt.Errorf("%s: %w", b.path, err)
	}
	b.users.Store(&users)
	b.loads.Add(1)
	b.log.Info("users file loaded", "users", len(users))
	return nil
}

// Parse reads users file content: one "username:hash" per line; blank
// lines and lines starting with # are skipped. A username may not contain
// ':'; a hash is one of the forms passhash.VerifyEncoded reads.
func Parse(data []byte) (map[string]string, error) {
	users := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" || hash == "" {
			return nil, fmt.Errorf("%w: line %d is not username:hash", ErrSyntax, n)
		}
		if _, dup := users[user]; dup {
			return nil, fmt.Errorf("%w: line %d: user %q listed twice", ErrSyntax, n, user)
		}
		users[user] = hash
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	return users, nil
}

// Authenticate checks the client's password against its username's entry.
// A username the file does not list is ignored (the next backend may know
// it); a wrong password is denied.
func (b *Backend) Authenticate(_ context.Context, id access.Identity) access.Decision {
	users := *b.users.Load()
	enc, ok := users[id.Username]
	if !ok || !id.UsernameSet {
		return access.Decision{Verdict: access.Ignore, Reason: "user not in the users file"}
	}
	match, err := passhash.VerifyEncoded(enc, id.Password)
	switch {
	case err != nil:
		return access.Decision{Verdict: access.Deny, Reason: "unreadable hash for this user: " + err.Error()}
	case !match:
		return access.Decision{Verdict: access.Deny, Reason: "wrong password"}
	}
	return access.Decision{Verdict: access.Allow, Reason: "password matches the users file"}
}
