// Package pgsql is the authentication backend that looks users up in
// PostgreSQL with EMQX 4's emqx_auth_pgsql queries and password hashes.
// The queries keep EMQX's %u, %c, %a, %C and %d placeholders in the
// config but run as parameterized statements ($1, $2, ...): client input
// is never spliced into SQL text.
package pgsql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	_ "github.com/lib/pq" // the PostgreSQL driver

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/authn"
	"github.com/mqgate/mqgate/authn/passhash"
)

// ErrConfig is wrapped by every error New returns for bad options.
var ErrConfig = errors.New("authn/pgsql: invalid configuration")

// Options configure a Backend.
type Options struct {
	DSN          string // lib/pq connection string
	Pool         int    // most open connections; default 8
	AuthQuery    string // returns password, or password and salt
	SuperQuery   string // first column of the first row true: superuser; empty: never asked
	PasswordHash string // EMQX password_hash, e.g. "sha256", "salt,sha256", "pbkdf2,sha256,1000,20", "bcrypt"
	QueryTimeout time.Duration
}

// Backend checks passwords against PostgreSQL. It is safe for concurrent
// use.
type Backend struct {
	db      *sql.DB
	auth    Query
	super   *Query
	scheme  passhash.Scheme
	timeout time.Duration
}

var _ access.Authenticator = (*Backend)(nil)

// Query is a statement with EMQX placeholders turned into parameters.
type Query struct {
	SQL    string // with $1..$n
	Params []byte // the placeholder letter of each parameter, e.g. "uc"
}

// placeholders are the letters a query may use: username, client id, IP
// address, certificate common name and subject.
const placeholders = "ucaCd"

// ParseQuery turns EMQX placeholders into parameters: '%u' (quoted, as
// EMQX configs write them) and a bare %u alike become $n. Placeholders
// inside a longer string literal (e.g. '%u-x') are not supported and are
// refused rather than left as text.
func ParseQuery(q string) (Query, error) {
	var out strings.Builder
	var params []byte
	inStr := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case !inStr && c == '\'' && i+3 < len(q) && q[i+1] == '%' && strings.IndexByte(placeholders, q[i+2]) >= 0 && q[i+3] == '\'':
			params = append(params, q[i+2])
			out.WriteString("$" + strconv.Itoa(len(params)))
			i += 3
		case c == '\'':
			inStr = !inStr
			out.WriteByte(c)
		case c == '%' && i+1 < len(q) && strings.IndexByte(placeholders, q[i+1]) >= 0:
			if inStr {
				return Query{}, fmt.Errorf("%w: placeholder %%%c inside a string literal; write it alone in quotes, as '%%%c'", ErrConfig, q[i+1], q[i+1])
			}
			params = append(params, q[i+1])
			out.WriteString("$" + strconv.Itoa(len(params)))
			i++
		default:
			out.WriteByte(c)
		}
	}
	if inStr {
		return Query{}, fmt.Errorf("%w: unterminated string literal in %q", ErrConfig, q)
	}
	return Query{SQL: out.String(), Params: params}, nil
}

// args returns the parameter values for a client.
func (q Query) args(id access.Identity) []any {
	a := make([]any, len(q.Params))
	for i, p := range q.Params {
		a[i] = authn.Expand("%"+string(p), id, "")
	}
	return a
}

// New checks the options and opens the connection pool (connections are
// made on first use, so a server that is down at start is an outage, not
// a configuration error).
func New(o Options) (*Backend, error) {
	var errs []error
	auth, err := ParseQuery(o.AuthQuery)
	if err != nil {
		errs = append(errs, fmt.Errorf("auth_query: %w", err))
	} else if strings.TrimSpace(o.AuthQuery) == "" {
		errs = append(errs, fmt.Errorf("%w: empty auth_query", ErrConfig))
	}
	var super *Query
	if strings.TrimSpace(o.SuperQuery) != "" {
		q, err := ParseQuery(o.SuperQuery)
		if err != nil {
			errs = append(errs, fmt.Errorf("super_query: %w", err))
		}
		super = &q
	}
	scheme, err := passhash.ParseScheme(o.PasswordHash)
	if err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrConfig, err))
	}
	if o.Pool < 0 || o.QueryTimeout < 0 {
		errs = append(errs, fmt.Errorf("%w: negative pool or timeout", ErrConfig))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if o.Pool == 0 {
		o.Pool = 8
	}
	if o.QueryTimeout == 0 {
		o.QueryTimeout = 5 * time.Second
	}
	db, err := sql.Open("postgres", o.DSN)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	db.SetMaxOpenConns(o.Pool)
	db.SetMaxIdleConns(o.Pool)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return &Backend{db: db, auth: auth, super: super, scheme: scheme, timeout: o.QueryTimeout}, nil
}

// Close closes the connection pool.
func (b *Backend) Close() error { return b.db.Close() }

// Authenticate runs auth_query. No row means the user is not ours
// (ignore); a row whose password does not match denies; a database error
// is an outage. After an allow, super_query decides the superuser flag.
func (b *Backend) Authenticate(ctx context.Context, id access.Identity) access.Decision {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	rows, err := b.db.QueryContext(ctx, b.auth.SQL, b.auth.args(id)...)
	if err != nil {
		return access.Decision{Verdict: access.Deny, Unavailable: true, Reason: "auth_query: " + err.Error()}
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return access.Decision{Verdict: access.Deny, Unavailable: true, Reason: "auth_query: " + err.Error()}
		}
		return access.Decision{Verdict: access.Ignore, Reason: "auth_query: no such user"}
	}
	cols, err := rows.Columns()
	if err != nil || len(cols) == 0 {
		return access.Decision{Verdict: access.Deny, Unavailable: true, Reason: "auth_query: no columns"}
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return access.Decision{Verdict: access.Deny, Unavailable: true, Reason: "auth_query: " + err.Error()}
	}
	_ = rows.Close()
	pw, salt := column(cols, vals, "password", 0), column(cols, vals, "salt", 1)
	if !pw.Valid || !b.scheme.Verify(pw.String, salt.String, id.Password) {
		return access.Decision{Verdict: access.Deny, Reason: "auth_query: wrong password"}
	}
	d := access.Decision{Verdict: access.Allow, Reason: "auth_query: password matches"}
	if b.super != nil && b.isSuper(ctx, id) {
		d.Superuser = true
		d.Reason += "; super_query: superuser"
	}
	return d
}

// column returns the named column, or the one at index i.
func column(cols []string, vals []sql.NullString, name string, i int) sql.NullString {
	for j, c := range cols {
		if strings.EqualFold(c, name) {
			return vals[j]
		}
	}
	if i < len(vals) {
		return vals[i]
	}
	return sql.NullString{}
}

// isSuper runs super_query; an error means no.
func (b *Backend) isSuper(ctx context.Context, id access.Identity) bool {
	var v sql.NullString
	if err := b.db.QueryRowContext(ctx, b.super.SQL, b.super.args(id)...).Scan(&v); err != nil || !v.Valid {
		return false
	}
	switch strings.ToLower(v.String) {
	case "true", "t", "1", "on", "yes":
		return true
	}
	return false
}
