package casbin

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	cb "github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/acl"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/internal/testutil"
)

// openDB opens a fresh database and returns its DSN and a connection pool.
func openDB(t *testing.T) (string, *sql.DB) {
	t.Helper()
	dsn := testutil.PostgresDB(t)
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return dsn, db
}

// TestPGAdapter checks the adapter's writes through an enforcer and its
// loads.
func TestPGAdapter(t *testing.T) {
	_, db := openDB(t)
	a, err := NewPGAdapter(db, "casbin_rule")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.CreateTable(ctx, "casbin_policy"); err != nil {
		t.Fatal(err)
	}
	// Twice is fine (every node runs it at start).
	if err := a.CreateTable(ctx, "casbin_policy"); err != nil {
		t.Fatal(err)
	}
	mtext, err := os.ReadFile("../../policies/model.conf")
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.NewModelFromString(string(mtext))
	if err != nil {
		t.Fatal(err)
	}
	e, err := cb.NewSyncedEnforcer(m, a)
	if err != nil {
		t.Fatal(err)
	}
	e.AddFunction("mqttMatch", mqttMatch)
	steps := []func() (bool, error){
		func() (bool, error) { return e.AddPolicy("writer", "a/#", "publish", "allow") },
		func() (bool, error) { return e.AddPolicy("writer", "a/b", "publish", "deny") },
		func() (bool, error) { return e.AddGroupingPolicy("alice", "writer") },
		func() (bool, error) { return e.RemovePolicy("writer", "a/b", "publish", "deny") },
	}
	for i, s := range steps {
		if ok, err := s(); !ok || err != nil {
			t.Fatalf("step %d: %v %v", i, ok, err)
		}
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM casbin_rule`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows = %d, %v; want 2", n, err)
	}
	// A fresh enforcer on the same table sees the same rules.
	e2, err := cb.NewSyncedEnforcer(m, a)
	if err != nil {
		t.Fatal(err)
	}
	e2.AddFunction("mqttMatch", mqttMatch)
	if ok, _ := e2.Enforce("alice", "client:x", "a/b", "publish"); !ok {
		t.Fatal("alice may not publish a/b after reload")
	}
	if err := e2.SavePolicy(); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM casbin_rule`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows after SavePolicy = %d, %v; want 2", n, err)
	}
	if _, err := NewPGAdapter(db, "x; drop table y"); !errors.Is(err, acl.ErrConfig) {
		t.Errorf("bad table name accepted: %v", err)
	}
}

// TestPGNotifyReachesBroker changes policy rows from another connection
// and sees the new verdict reach a connected client through NOTIFY.
func TestPGNotifyReachesBroker(t *testing.T) {
	dsn, db := openDB(t)
	a, err := NewPGAdapter(db, "casbin_rule")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CreateTable(context.Background(), "casbin_policy"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO casbin_rule (ptype, v0, v1, v2, v3) VALUES ('p', 'alice', 't/#', 'publish', 'allow'), ('p', 'bob', 't/#', 'subscribe', 'allow')`); err != nil {
		t.Fatal(err)
	}
	w, err := NewPGWatcher(dsn, db, "casbin_policy")
	if err != nil {
		t.Fatal(err)
	}
	mtext, err := os.ReadFile("../../policies/model.conf")
	if err != nil {
		t.Fatal(err)
	}
	gen := new(acl.Generation)
	reloaded := make(chan struct{}, 8)
	b, err := New(Options{Model: string(mtext), Adapter: a, Watcher: w, Debounce: 20 * time.Millisecond,
		OnReload: func() { gen.Bump(); reloaded <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	chain, err := acl.New(acl.Options{Links: []acl.Link{{Name: "casbin", Authorizer: b}}, NoMatch: access.Deny,
		Cache: true, CacheMaxSize: 32, CacheTTL: time.Hour, Generation: gen})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chain.Close)
	_, addr := testutil.RunBroker(t, func(o *broker.Options) {
		o.Authorizer = chain
		o.ACLNoMatch = access.Deny
	})
	alice := dial(t, addr, "alice-1", "alice", nil)
	// 0x10: accepted, no matching subscribers.
	if rc := publish(t, alice, "t/1"); rc >= 0x80 {
		t.Fatalf("before: %#x", rc)
	}

	// Another connection, as an administrator's psql would be.
	other, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Exec(`UPDATE casbin_rule SET v3 = 'deny' WHERE v0 = 'alice'`); err != nil {
		t.Fatal(err)
	}
	<-reloaded
	if rc := publish(t, alice, "t/1"); rc != 0x87 {
		t.Fatalf("after the update: %#x, want 0x87", rc)
	}

	// A bad row is refused and the last good policy stays.
	if _, err := other.Exec(`INSERT INTO casbin_rule (ptype, v0, v1, v2, v3) VALUES ('p', 'alice', 't/#', 'publish', 'maybe')`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.Health() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the bad row was not reported")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.Health(); !strings.Contains(err.Error(), "row") {
		t.Errorf("Health = %v, want the row named", err)
	}
	if rc := publish(t, alice, "t/1"); rc != 0x87 {
		t.Fatalf("with a bad row: %#x, want the old deny", rc)
	}
	// Fix it; Update from this node also reaches the watcher.
	if _, err := other.Exec(`DELETE FROM casbin_rule WHERE v3 <> 'allow'`); err != nil {
		t.Fatal(err)
	}
	<-reloaded
	if err := w.Update(); err != nil {
		t.Fatal(err)
	}
	// alice's rules went with the bad row: no rule, acl_nomatch denies.
	if rc := publish(t, alice, "t/1"); rc != 0x87 {
		t.Fatalf("after the fix: %#x", rc)
	}
	if d := b.Authorize(context.Background(), access.Request{Identity: access.Identity{Username: "bob", ClientID: "b"}, Action: access.Subscribe, Topic: "t/x"}); d.Verdict != access.Allow {
		t.Fatalf("bob after the fix: %v", d.Verdict)
	}
	if err := b.Health(); err != nil {
		t.Errorf("Health after the fix = %v", err)
	}
}
