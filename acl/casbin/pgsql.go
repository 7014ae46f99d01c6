package casbin

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"
	"github.com/lib/pq"

	"github.com/mqgate/mqgate/acl"
)

// identRE is what a table or channel name may be: it is written into SQL,
// so only plain lower-case identifiers are accepted.
var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// PGAdapter keeps Casbin rules in a PostgreSQL table of the usual
// casbin_rule layout (id, ptype, v0 to v5), through database/sql and
// lib/pq. It implements persist.Adapter, so that the rules can be loaded
// and also edited through an enforcer.
type PGAdapter struct {
	db    *sql.DB
	table string
}

var _ persist.Adapter = (*PGAdapter)(nil)

// NewPGAdapter returns an adapter on table in db.
func NewPGAdapter(db *sql.DB, table string) (*PGAdapter, error) {
	if !identRE.MatchString(table) {
		return nil, fmt.Errorf("acl/casbin: table name %q: want a lower-case identifier: %w", table, acl.ErrConfig)
	}
	return &PGAdapter{db: db, table: table}, nil
}

// CreateTable creates the table when it is missing, and a trigger that
// announces every change of it on the LISTEN/NOTIFY channel, so that rows
// changed by any client (psql, an admin tool) reach every node.
func (a *PGAdapter) CreateTable(ctx context.Context, channel string) error {
	if !identRE.MatchString(channel) {
		return fmt.Errorf("acl/casbin: channel name %q: want a lower-case identifier: %w", channel, acl.ErrConfig)
	}
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS ` + a.table + ` (
			id bigserial PRIMARY KEY,
			ptype text NOT NULL,
			v0 text NOT NULL DEFAULT '', v1 text NOT NULL DEFAULT '', v2 text NOT NULL DEFAULT '',
			v3 text NOT NULL DEFAULT '', v4 text NOT NULL DEFAULT '', v5 text NOT NULL DEFAULT '')`,
		`CREATE OR REPLACE FUNCTION ` + a.table + `_notify() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_notify('` + channel + `', TG_OP); RETURN NULL; END $$`,
		`DROP TRIGGER IF EXISTS ` + a.table + `_notify ON ` + a.table,
		`CREATE TRIGGER ` + a.table + `_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ` + a.table +
			` FOR EACH STATEMENT EXECUTE FUNCTION ` + a.table + `_notify()`,
	}
	tx, err := a.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("acl/casbin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	// Serialise nodes creating the schema at the same time.
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, a.table); err != nil {
		return fmt.Errorf("acl/casbin: %w", err)
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("acl/casbin: create %s: %w", a.table, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("acl/casbin: %w", err)
	}
	return nil
}

// LoadPolicy implements persist.Adapter: it loads every row, in id order,
// checking each rule.
func (a *PGAdapter) LoadPolicy(m model.Model) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := a.db.QueryContext(ctx, `SELECT id, ptype, v0, v1, v2, v3, v4, v5 FROM `+a.table+` ORDER BY id`)
	if err != nil {
		return fmt.Errorf("acl/casbin: load %s: %w", a.table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var f [7]string
		if err := rows.Scan(&id, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6]); err != nil {
			return fmt.Errorf("acl/casbin: load %s: %w", a.table, err)
		}
		rule := f[:]
		for len(rule) > 1 && rule[len(rule)-1] == "" {
			rule = rule[:len(rule)-1]
		}
		if err := checkRule(rule); err != nil {
			return fmt.Errorf("%s row %d: %w", a.table, id, err)
		}
		if err := persist.LoadPolicyArray(rule, m); err != nil {
			return fmt.Errorf("%s row %d: %w: %w", a.table, id, ErrPolicy, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("acl/casbin: load %s: %w", a.table, err)
	}
	return nil
}

// SavePolicy implements persist.Adapter: it replaces every row with the
// model's rules, in one transaction.
func (a *PGAdapter) SavePolicy(m model.Model) error {
	ctx := context.Background()
	tx, err := a.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("acl/casbin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	if _, err := tx.ExecContext(ctx, `DELETE FROM `+a.table); err != nil {
		return fmt.Errorf("acl/casbin: %w", err)
	}
	for _, sec := range []string{"p", "g"} {
		for ptype, ast := range m[sec] {
			for _, r := range ast.Policy {
				if err := a.insert(ctx, tx, ptype, r); err != nil {
					return err
				}
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("acl/casbin: %w", err)
	}
	return nil
}

// execer is what insert needs of a *sql.DB or *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// insert adds one rule.
func (a *PGAdapter) insert(ctx context.Context, db execer, ptype string, rule []string) error {
	if len(rule) > 6 {
		return fmt.Errorf("acl/casbin: rule of %d fields, at most 6 fit: %w", len(rule), ErrPolicy)
	}
	args := []any{ptype, "", "", "", "", "", ""}
	for i, v := range rule {
		args[i+1] = v
	}
	_, err := db.ExecContext(ctx, `INSERT INTO `+a.table+` (ptype, v0, v1, v2, v3, v4, v5) VALUES ($1, $2, $3, $4, $5, $6, $7)`, args...)
	if err != nil {
		return fmt.Errorf("acl/casbin: insert: %w", err)
	}
	return nil
}

// AddPolicy implements persist.Adapter.
func (a *PGAdapter) AddPolicy(_ string, ptype string, rule []string) error {
	return a.insert(context.Background(), a.db, ptype, rule)
}

// RemovePolicy implements persist.Adapter.
func (a *PGAdapter) RemovePolicy(_ string, ptype string, rule []string) error {
	return a.RemoveFilteredPolicy("", ptype, 0, rule...)
}

// RemoveFilteredPolicy implements persist.Adapter: it deletes the rules of
// type ptype whose fields from fieldIndex on equal fieldValues (an empty
// value matches any).
func (a *PGAdapter) RemoveFilteredPolicy(_ string, ptype string, fieldIndex int, fieldValues ...string) error {
	if fieldIndex < 0 || fieldIndex+len(fieldValues) > 6 {
		return fmt.Errorf("acl/casbin: filter on fields %d to %d: %w", fieldIndex, fieldIndex+len(fieldValues)-1, ErrPolicy)
	}
	q := []string{"ptype = $1"}
	args := []any{ptype}
	for i, v := range fieldValues {
		if v == "" {
			continue
		}
		args = append(args, v)
		q = append(q, fmt.Sprintf("v%d = $%d", fieldIndex+i, len(args)))
	}
	_, err := a.db.Exec(`DELETE FROM `+a.table+` WHERE `+strings.Join(q, " AND "), args...)
	if err != nil {
		return fmt.Errorf("acl/casbin: delete: %w", err)
	}
	return nil
}

// PGWatcher is a persist.Watcher on PostgreSQL LISTEN/NOTIFY: it calls its
// callback whenever the channel is notified (by the table's trigger, or by
// Update on any node), and after a lost connection is back, since changes
// may have been missed meanwhile.
type PGWatcher struct {
	db      *sql.DB
	channel string
	l       *pq.Listener

	mu sync.Mutex
	cb func(string)

	wg   sync.WaitGroup
	done chan struct{}
	once sync.Once
}

var _ persist.Watcher = (*PGWatcher)(nil)

// NewPGWatcher listens on channel with its own connection to dsn; db is
// used by Update to notify.
func NewPGWatcher(dsn string, db *sql.DB, channel string) (*PGWatcher, error) {
	if !identRE.MatchString(channel) {
		return nil, fmt.Errorf("acl/casbin: channel name %q: want a lower-case identifier: %w", channel, acl.ErrConfig)
	}
	w := &PGWatcher{db: db, channel: channel, done: make(chan struct{})}
	w.l = pq.NewListener(dsn, 100*time.Millisecond, 10*time.Second, nil)
	if err := w.l.Listen(channel); err != nil {
		w.l.Close()
		return nil, fmt.Errorf("acl/casbin: listen %s: %w", channel, err)
	}
	w.wg.Add(1)
	go w.run()
	return w, nil
}

// run delivers notifications to the callback until Close.
func (w *PGWatcher) run() {
	defer w.wg.Done()
	ping := time.NewTicker(30 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-w.done:
			return
		case n, ok := <-w.l.Notify:
			if !ok {
				return
			}
			// n is nil after a reconnection: changes may have been missed.
			payload := "reconnected"
			if n != nil {
				payload = n.Extra
			}
			w.mu.Lock()
			cb := w.cb
			w.mu.Unlock()
			if cb != nil {
				cb(payload)
			}
		case <-ping.C:
			_ = w.l.Ping() // notices a dead connection, which then reconnects
		}
	}
}

// SetUpdateCallback implements persist.Watcher.
func (w *PGWatcher) SetUpdateCallback(cb func(string)) error {
	w.mu.Lock()
	w.cb = cb
	w.mu.Unlock()
	return nil
}

// Update implements persist.Watcher: it tells every node, this one
// included, to reload.
func (w *PGWatcher) Update() error {
	if _, err := w.db.Exec(`SELECT pg_notify($1, 'update')`, w.channel); err != nil {
		return fmt.Errorf("acl/casbin: notify: %w", err)
	}
	return nil
}

// Close implements persist.Watcher.
func (w *PGWatcher) Close() {
	w.once.Do(func() {
		close(w.done)
		w.l.Close()
		w.wg.Wait()
	})
}
