package listener

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchSettle is how long the files must stay unchanged before a reload:
// a certificate and its key are rarely replaced in one step.
const watchSettle = 250 * time.Millisecond

// Watch reloads c whenever its files change, until ctx ends. It watches
// the directories that hold them (so that files replaced by rename or by a
// symbolic link swap, as in a Kubernetes Secret volume, are seen), keeps
// only the events about the files themselves or about ".."-prefixed names
// (the volume's ..data link), and reloads once the files have settled and
// only if their contents differ from what the last reload read: other
// files written in the same directory, such as a log, cause nothing.
// report, if not nil, gets the result of every reload: nil, or the error
// for which the configuration in use was kept. Watch returns when ctx
// ends, or at once if the directories cannot be watched.
func (c *Certs) Watch(ctx context.Context, report func(error)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("listener: watch tls files: %w", err)
	}
	defer w.Close()
	dirs := map[string]bool{}
	names := map[string]bool{}
	for _, f := range []string{c.files.CertFile, c.files.KeyFile, c.files.CACertFile} {
		if f == "" {
			continue
		}
		names[filepath.Base(f)] = true
		d := filepath.Dir(f)
		if dirs[d] {
			continue
		}
		dirs[d] = true
		if err := w.Add(d); err != nil {
			return fmt.Errorf("listener: watch %s: %w", d, err)
		}
	}
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if base := filepath.Base(ev.Name); names[base] || strings.HasPrefix(base, "..") {
				settle.Reset(watchSettle)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			if report != nil {
				report(fmt.Errorf("listener: watch tls files: %w", err))
			}
		case <-settle.C:
			if last := c.read.Load(); last != nil && *last == c.files.digest() {
				continue // touched, or written back as it was
			}
			err := c.Reload()
			if report != nil {
				report(err)
			}
		}
	}
}
