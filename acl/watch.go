package acl

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// WatchFiles calls onChange on every change in the directories holding
// paths. Directories, not files, are watched: editors, mv and Kubernetes
// ConfigMap updates replace a file by another, which a watch on the old
// file never reports. onChange runs on the watching goroutine and must not
// block; pair it with a Debouncer. The returned function stops the watching
// and waits for it to end.
func WatchFiles(paths []string, onChange func(), log *slog.Logger) (func(), error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("acl: watch: %w", err)
	}
	dirs := map[string]bool{}
	for _, p := range paths {
		if p == "" {
			continue
		}
		d := filepath.Dir(p)
		if dirs[d] {
			continue
		}
		dirs[d] = true
		if err := w.Add(d); err != nil {
			w.Close()
			return nil, fmt.Errorf("acl: watch %s: %w", d, err)
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Op != fsnotify.Chmod {
					onChange()
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				if log != nil {
					log.Warn("policy watch error", "err", err)
				}
			}
		}
	}()
	return func() {
		w.Close()
		wg.Wait()
	}, nil
}

// Debouncer runs a function once a burst of triggers has been quiet for a
// delay. It is safe for concurrent use.
type Debouncer struct {
	delay time.Duration
	fn    func()

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
	pending sync.WaitGroup // runs scheduled and not yet finished
}

// NewDebouncer returns a Debouncer that runs fn delay after the last
// Trigger.
func NewDebouncer(delay time.Duration, fn func()) *Debouncer {
	return &Debouncer{delay: delay, fn: fn}
}

// Trigger (re)starts the delay.
func (d *Debouncer) Trigger() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	if d.timer != nil && d.timer.Stop() {
		d.pending.Done()
	}
	d.pending.Add(1)
	d.timer = time.AfterFunc(d.delay, func() {
		defer d.pending.Done()
		d.fn()
	})
}

// Stop cancels a pending run, waits for a run in progress and makes later
// triggers do nothing.
func (d *Debouncer) Stop() {
	d.mu.Lock()
	d.stopped = true
	if d.timer != nil && d.timer.Stop() {
		d.pending.Done()
	}
	d.mu.Unlock()
	d.pending.Wait()
}
