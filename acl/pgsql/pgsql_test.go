package pgsql

import (
	"context"
	"database/sql"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	_ "github.com/lib/pq"
	"go.uber.org/goleak"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/acl"
	"github.com/mqgate/mqgate/internal/testutil"
)

func TestMain(m *testing.M) {
	code := testutil.RunWithPostgres(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// The mqtt_acl table and rows of the EMQX 4 documentation, plus rows of
// our own.
const schema = `
CREATE TABLE mqtt_acl (
  id SERIAL primary key,
  allow integer,
  ipaddr character varying(60),
  username character varying(100),
  clientid character varying(100),
  access  integer,
  topic character varying(100)
);
INSERT INTO mqtt_acl (id, allow, ipaddr, username, clientid, access, topic) VALUES
  (1, 0, NULL, 'locked', NULL, 3, '#'),
  (2, 1, NULL, 'alice', 'c1', 2, 'users/%u/#'),
  (3, 1, NULL, 'alice', NULL, 1, 'in/%c/+'),
  (4, 1, '10.0.0.0/8', NULL, NULL, 2, 'lan/#'),
  (10, 0, NULL, '$all', NULL, 1, '$SYS/#'),
  (11, 0, NULL, '$all', NULL, 1, 'eq #'),
  (12, 1, '127.0.0.1', NULL, NULL, 2, '$SYS/#'),
  (13, 1, NULL, 'dashboard', NULL, 1, '$SYS/#'),
  (20, 1, NULL, '$all', NULL, 2, 'open/#');
`

// query is EMQX 4's default acl_query with an order, so that the rows
// come in id order.
const query = "select allow, ipaddr, username, clientid, access, topic from mqtt_acl where ipaddr = '%a' or username = '%u' or username = '$all' or clientid = '%c' or ipaddr like '%/%' order by id"

func TestAuthorize(t *testing.T) {
	dsn := testutil.PostgresDB(t)
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(schema); err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{DB: db, Query: query})
	if err != nil {
		t.Fatal(err)
	}
	P, S := access.Publish, access.Subscribe
	tests := []struct {
		user, client, ip string
		action           access.Action
		topic            string
		want             access.Verdict
		row              string
	}{
		{"locked", "x", "192.0.2.1", P, "open/1", access.Deny, "row 1"},
		{"alice", "c1", "192.0.2.1", P, "users/alice/x", access.Allow, "row 1"},
		// Row 2 names username and clientid: both must match.
		{"alice", "c2", "192.0.2.1", P, "users/alice/x", access.Ignore, ""},
		{"alice", "c2", "192.0.2.1", S, "in/c2/x", access.Allow, ""},
		// in/%c/+ does not cover in/c2/#.
		{"alice", "c2", "192.0.2.1", S, "in/c2/#", access.Ignore, ""},
		{"bob", "b", "10.1.2.3", P, "lan/x", access.Allow, ""},
		{"bob", "b", "192.0.2.1", P, "lan/x", access.Ignore, ""},
		{"bob", "b", "192.0.2.1", S, "$SYS/brokers", access.Deny, ""},
		{"bob", "b", "192.0.2.1", S, "#", access.Deny, ""},
		{"bob", "b", "192.0.2.1", S, "a/#", access.Ignore, ""},
		{"bob", "b", "127.0.0.1", P, "$SYS/x", access.Allow, ""},
		{"bob", "b", "192.0.2.1", P, "open/x", access.Allow, ""},
		// A quote in the username is a parameter value, not SQL.
		{"x' or '1'='1", "b", "192.0.2.1", P, "users/x/y", access.Ignore, ""},
	}
	for _, tt := range tests {
		req := access.Request{
			Identity: access.Identity{Username: tt.user, ClientID: tt.client, Peer: netip.AddrPortFrom(netip.MustParseAddr(tt.ip), 1)},
			Action:   tt.action, Topic: tt.topic,
		}
		d := b.Authorize(context.Background(), req)
		if d.Verdict != tt.want || !strings.Contains(d.Reason, tt.row) {
			t.Errorf("%s/%s@%s %v %q: %v (%s), want %v", tt.user, tt.client, tt.ip, tt.action, tt.topic, d.Verdict, d.Reason, tt.want)
		}
	}
	// A database error ignores.
	bad, err := New(Options{DB: db, Query: "select allow from no_such_table where username = %u"})
	if err != nil {
		t.Fatal(err)
	}
	if d := bad.Authorize(context.Background(), access.Request{Action: P, Topic: "t"}); d.Verdict != access.Ignore || !strings.Contains(d.Reason, "error") {
		t.Errorf("error: %v (%s), want ignore", d.Verdict, d.Reason)
	}
}

func TestCompile(t *testing.T) {
	tests := []struct {
		in, want string
		args     string
	}{
		{"select 1 where u = '%u' or c = '%c' or u2 = %u", "select 1 where u = $1 or c = $2 or u2 = $1", "uc"},
		{"select 1 where u = '$all' and a = '%a'", "select 1 where u = '$all' and a = $1", "a"},
		{"select 1 where t like '%/%'", "select 1 where t like '%/%'", ""},
	}
	for _, tt := range tests {
		got, args, err := Compile(tt.in)
		if err != nil || got != tt.want || string(args) != tt.args {
			t.Errorf("Compile(%q) = %q, %q, %v; want %q, %q", tt.in, got, args, err, tt.want, tt.args)
		}
	}
	if _, err := New(Options{DB: &sql.DB{}, Query: " "}); !errors.Is(err, acl.ErrConfig) {
		t.Errorf("empty query: %v", err)
	}
}
