package listener

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchSettle is how long the files must stay unchanged before a reload:
// a certificate and its key are rarely replaced in one step.
const watchSettle = 250 * time.Millisecond

// Watch reloads c whenever something changes in the directories that hold
// its files (directories, not files, are watched, so that files replaced by
// rename or by a symbolic link swap are seen), until ctx ends. report, if
// not nil, gets the result of every reload: nil, or the error for which
// the configuration in use was kept. Watch returns when ctx ends, or at
// once if the directories cannot be watched.
func (c *Certs) Watch(ctx context.Context, report func(error)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("listener: watch tls files: %w", err)
	}
	defer w.Close()
	dirs := map[string]bool{}
	for _, f := range []string{c.files.CertFile, c.files.KeyFile, c.files.CACertFile} {
		if f == "" {
			continue
		}
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
		case _, ok := <-w.Events:
			if !ok {
				return nil
			}
			settle.Reset(watchSettle)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			if report != nil {
				report(fmt.Errorf("listener: watch tls files: %w", err))
			}
		case <-settle.C:
			err := c.Reload()
			if report != nil {
				report(err)
			}
		}
	}
}
