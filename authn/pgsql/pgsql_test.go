package pgsql

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/authn/passhash"
	"github.com/mqgate/mqgate/internal/testutil"
)

func TestMain(m *testing.M) {
	code := testutil.RunWithPostgres(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// emqxSchema is the mqtt_user table of EMQX 4's mqtt.sql, with a password
// column wide enough for a sha512 hex digest (128 characters).
const emqxSchema = `CREATE TABLE mqtt_user (id SERIAL primary key, is_superuser boolean, username character varying(100),
  password character varying(160), salt character varying(40))`

func setup(t *testing.T, users [][4]any) string {
	t.Helper()
	dsn := testutil.PostgresDB(t)
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(emqxSchema); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if _, err := db.Exec(`INSERT INTO mqtt_user (username, password, salt, is_superuser) VALUES ($1, $2, $3, $4)`, u[0], u[1], u[2], u[3]); err != nil {
			t.Fatal(err)
		}
	}
	return dsn
}

func newBackend(t *testing.T, o Options) *Backend {
	t.Helper()
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func hash(t *testing.T, scheme, pw, salt string) string {
	t.Helper()
	if scheme == "bcrypt" {
		// A low cost keeps the test fast under the race detector.
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	s, err := passhash.ParseScheme(scheme)
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.Hash([]byte(pw), salt)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

const (
	defaultAuth  = "select password from mqtt_user where username = '%u' limit 1"
	saltedAuth   = "select password, salt from mqtt_user where username = '%u' limit 1"
	defaultSuper = "select is_superuser from mqtt_user where username = '%u' limit 1"
)

// TestPasswordHashes checks each EMQX password_hash form against rows in a
// real PostgreSQL.
func TestPasswordHashes(t *testing.T) {
	tests := []struct {
		scheme, query string
		salt          string
	}{
		{"plain", defaultAuth, ""},
		{"md5", defaultAuth, ""},
		{"sha", defaultAuth, ""},
		{"sha256", defaultAuth, ""},
		{"sha512", defaultAuth, ""},
		{"salt,sha256", saltedAuth, "s4lt"},
		{"sha256,salt", saltedAuth, "s4lt"},
		{"salt,md5", saltedAuth, "s4lt"},
		{"pbkdf2,sha256,1000,20", saltedAuth, "s4lt"},
		{"bcrypt", defaultAuth, ""},
	}
	// One database, one row per scheme (user "emqx-<scheme>").
	var rows [][4]any
	for _, tt := range tests {
		rows = append(rows, [4]any{"emqx-" + tt.scheme, hash(t, tt.scheme, "public", tt.salt), tt.salt, false})
	}
	dsn := setup(t, rows)
	for _, tt := range tests {
		t.Run(tt.scheme, func(t *testing.T) {
			b := newBackend(t, Options{DSN: dsn, AuthQuery: tt.query, PasswordHash: tt.scheme})
			ctx := context.Background()
			cases := []struct {
				user, pw string
				want     access.Verdict
			}{
				{"emqx-" + tt.scheme, "public", access.Allow},
				{"emqx-" + tt.scheme, "Public", access.Deny},
				{"someone", "public", access.Ignore},
			}
			for _, c := range cases {
				d := b.Authenticate(ctx, access.Identity{Username: c.user, UsernameSet: true, Password: []byte(c.pw)})
				if d.Verdict != c.want || d.Unavailable {
					t.Errorf("%s/%s: %+v, want %v", c.user, c.pw, d, c.want)
				}
			}
		})
	}
}

func TestSuperQueryAndPlaceholders(t *testing.T) {
	dsn := setup(t, [][4]any{
		{"admin", hash(t, "sha256", "pw", ""), "", true},
		{"user", hash(t, "sha256", "pw", ""), "", false},
		{"dev-7", hash(t, "sha256", "pw", ""), "", nil},
	})
	b := newBackend(t, Options{DSN: dsn, AuthQuery: defaultAuth, SuperQuery: defaultSuper, PasswordHash: "sha256"})
	for user, want := range map[string]bool{"admin": true, "user": false, "dev-7": false} {
		d := b.Authenticate(context.Background(), access.Identity{Username: user, Password: []byte("pw")})
		if d.Verdict != access.Allow || d.Superuser != want {
			t.Errorf("%s: %+v, want superuser %v", user, d, want)
		}
	}
	// %c and a bare placeholder, used twice.
	b2 := newBackend(t, Options{DSN: dsn, AuthQuery: "select password from mqtt_user where username = '%c' and (%u = '' or username = %c)", PasswordHash: "sha256"})
	if d := b2.Authenticate(context.Background(), access.Identity{ClientID: "dev-7", Username: "", Password: []byte("pw")}); d.Verdict != access.Allow {
		t.Errorf("client id lookup: %+v", d)
	}
}

// TestInjection checks that a username crafted as SQL is only ever a
// value: it matches no row, and the table survives.
func TestInjection(t *testing.T) {
	dsn := setup(t, [][4]any{{"alice", hash(t, "plain", "pw", ""), "", false}})
	b := newBackend(t, Options{DSN: dsn, AuthQuery: defaultAuth, PasswordHash: "plain"})
	for _, evil := range []string{
		"' OR '1'='1",
		"alice' --",
		"x'; DROP TABLE mqtt_user; --",
		`alice\' OR 1=1 --`,
	} {
		d := b.Authenticate(context.Background(), access.Identity{Username: evil, UsernameSet: true, Password: []byte("pw")})
		if d.Verdict != access.Ignore || d.Unavailable {
			t.Errorf("username %q: %+v, want ignore (no such user)", evil, d)
		}
	}
	if d := b.Authenticate(context.Background(), access.Identity{Username: "alice", Password: []byte("pw")}); d.Verdict != access.Allow {
		t.Fatalf("the table did not survive: %+v", d)
	}
}

// TestOutage checks that an unreachable server is an outage, not a deny.
func TestOutage(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	_ = l.Close()
	b := newBackend(t, Options{DSN: fmt.Sprintf("host=127.0.0.1 port=%d user=x dbname=x sslmode=disable connect_timeout=2", addr.Port), AuthQuery: defaultAuth, PasswordHash: "sha256"})
	d := b.Authenticate(context.Background(), access.Identity{Username: "u", Password: []byte("p")})
	if !d.Unavailable {
		t.Fatalf("got %+v, want unavailable", d)
	}
}

func TestParseQuery(t *testing.T) {
	tests := []struct {
		in, sql, params string
		ok              bool
	}{
		{defaultAuth, "select password from mqtt_user where username = $1 limit 1", "u", true},
		{"select 1 where a = '%u' and b = '%c' and c = '%a' and d = '%C' and e = '%d'", "select 1 where a = $1 and b = $2 and c = $3 and d = $4 and e = $5", "ucaCd", true},
		{"select 1 where a = %u and b = 'lit%x'", "select 1 where a = $1 and b = 'lit%x'", "u", true},
		{"select 1 where a like '%u%'", "", "", false},
		{"select 'oops", "", "", false},
	}
	for _, tt := range tests {
		q, err := ParseQuery(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		if tt.ok && (q.SQL != tt.sql || string(q.Params) != tt.params) {
			t.Errorf("%q: got %q %q, want %q %q", tt.in, q.SQL, q.Params, tt.sql, tt.params)
		}
	}
	for _, o := range []Options{
		{AuthQuery: "", PasswordHash: "sha256"},
		{AuthQuery: defaultAuth, PasswordHash: "sha3"},
		{AuthQuery: defaultAuth, PasswordHash: "sha256", SuperQuery: "select '%u"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted it", o)
		}
	}
}
