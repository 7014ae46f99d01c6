// Package pgsql is the PostgreSQL backend of the authorization chain, with
// EMQX 4's auth.pgsql.acl_query semantics: the query returns the client's
// rules from a table such as mqtt_acl (allow 1|0, ipaddr, username,
// clientid, access 1 subscribe|2 publish|3 both, topic with %u and %c).
// A row applies to the clients its non-empty ipaddr, username and clientid
// all name; username "$all" names everyone. Rows are tried in the order
// the query returns them and the first that applies decides; none
// ignores. The query's %u, %c, %a, %C and %d placeholders become query
// parameters, never text substituted into SQL. A database error ignores,
// as in EMQX 4.
package pgsql

import (
	"context"
	"database/sql"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/acl"
)

// Options configure a Backend.
type Options struct {
	DB *sql.DB
	// Query is the ACL query with placeholders, e.g. "select allow, ipaddr,
	// username, clientid, access, topic from mqtt_acl where username =
	// '%u'". A placeholder may stand quoted ('%u') or bare.
	Query   string
	Timeout time.Duration // per query; 0 means 5s
}

// Backend runs the ACL query for each request.
type Backend struct {
	db      *sql.DB
	query   string
	args    []byte // placeholder letter of each $n
	timeout time.Duration
}

var _ access.Authorizer = (*Backend)(nil)

// New compiles the query and returns the backend.
func New(opts Options) (*Backend, error) {
	if opts.DB == nil {
		return nil, fmt.Errorf("acl/pgsql: a database is required: %w", acl.ErrConfig)
	}
	q, args, err := Compile(opts.Query)
	if err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	return &Backend{db: opts.DB, query: q, args: args, timeout: opts.Timeout}, nil
}

// Compile turns a query with EMQX placeholders into a parameterized one:
// each distinct placeholder ('%u' quoted or %u bare) becomes $1, $2, ...
// It returns the placeholder letter of each parameter.
func Compile(query string) (string, []byte, error) {
	if strings.TrimSpace(query) == "" {
		return "", nil, fmt.Errorf("acl/pgsql: empty acl_query: %w", acl.ErrConfig)
	}
	var sb strings.Builder
	var args []byte
	param := func(c byte) string {
		for i, a := range args {
			if a == c {
				return "$" + strconv.Itoa(i+1)
			}
		}
		args = append(args, c)
		return "$" + strconv.Itoa(len(args))
	}
	for i := 0; i < len(query); i++ {
		c := query[i]
		if c == '\'' && i+3 < len(query) && query[i+1] == '%' && isPlaceholder(query[i+2]) && query[i+3] == '\'' {
			sb.WriteString(param(query[i+2]))
			i += 3
			continue
		}
		if c == '%' && i+1 < len(query) && isPlaceholder(query[i+1]) {
			sb.WriteString(param(query[i+1]))
			i++
			continue
		}
		sb.WriteByte(c)
	}
	return sb.String(), args, nil
}

func isPlaceholder(c byte) bool {
	return c == 'u' || c == 'c' || c == 'a' || c == 'C' || c == 'd'
}

// value returns the request's value of placeholder c.
func value(c byte, req access.Request) string {
	switch c {
	case 'u':
		return req.Username
	case 'c':
		return req.ClientID
	case 'a':
		if req.Peer.IsValid() {
			return req.Peer.Addr().Unmap().String()
		}
	case 'C':
		return req.CertCN
	case 'd':
		return req.CertDN
	}
	return ""
}

// Authorize runs the query and returns the verdict of the first row that
// applies to req.
func (b *Backend) Authorize(ctx context.Context, req access.Request) access.Decision {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	args := make([]any, len(b.args))
	for i, c := range b.args {
		args[i] = value(c, req)
	}
	rows, err := b.db.QueryContext(ctx, b.query, args...)
	if err != nil {
		return access.Decision{Verdict: access.Ignore, Reason: "error: " + err.Error()}
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return access.Decision{Verdict: access.Ignore, Reason: "error: " + err.Error()}
	}
	idx := map[string]int{}
	for i, c := range cols {
		idx[strings.ToLower(c)] = i
	}
	for _, need := range []string{"allow", "access", "topic"} {
		if _, ok := idx[need]; !ok {
			return access.Decision{Verdict: access.Ignore, Reason: "error: acl_query returns no " + need + " column"}
		}
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	get := func(name string) string {
		if i, ok := idx[name]; ok && vals[i].Valid {
			return vals[i].String
		}
		return ""
	}
	topic := acl.RequestTopic(req)
	n := 0
	for rows.Next() {
		n++
		if err := rows.Scan(ptrs...); err != nil {
			return access.Decision{Verdict: access.Ignore, Reason: "error: " + err.Error()}
		}
		r := row{allow: get("allow"), ipaddr: get("ipaddr"), username: get("username"), clientid: get("clientid"), access: get("access"), topic: get("topic")}
		if v, ok := r.decide(req, topic); ok {
			return access.Decision{Verdict: v, Reason: fmt.Sprintf("row %d: %s", n, r)}
		}
	}
	if err := rows.Err(); err != nil {
		return access.Decision{Verdict: access.Ignore, Reason: "error: " + err.Error()}
	}
	return access.Decision{Verdict: access.Ignore, Reason: "no row matched"}
}

// row is one mqtt_acl row.
type row struct {
	allow, ipaddr, username, clientid, access, topic string
}

func (r row) String() string {
	return fmt.Sprintf("allow=%s ipaddr=%q username=%q clientid=%q access=%s topic=%q", r.allow, r.ipaddr, r.username, r.clientid, r.access, r.topic)
}

// decide returns the row's verdict if it applies to req.
func (r row) decide(req access.Request, topic string) (access.Verdict, bool) {
	var v access.Verdict
	switch r.allow {
	case "1":
		v = access.Allow
	case "0":
		v = access.Deny
	default:
		return 0, false
	}
	switch r.access {
	case "1":
		if req.Action != access.Subscribe {
			return 0, false
		}
	case "2":
		if req.Action != access.Publish {
			return 0, false
		}
	case "3":
	default:
		return 0, false
	}
	if !r.names(req.Identity) {
		return 0, false
	}
	if lit, ok := strings.CutPrefix(r.topic, "eq "); ok {
		return v, lit == topic
	}
	f, ok := acl.Expand(r.topic, req.Username, req.ClientID)
	if !ok || f == "" {
		return 0, false
	}
	return v, acl.RuleApplies(req.Action, v == access.Deny, f, topic)
}

// names reports whether the row's who columns name the client: username
// "$all" names everyone, else every non-empty column must match.
func (r row) names(id access.Identity) bool {
	if r.username == "$all" {
		return true
	}
	if r.ipaddr == "" && r.username == "" && r.clientid == "" {
		return false
	}
	if r.ipaddr != "" {
		if !id.Peer.IsValid() {
			return false
		}
		a := id.Peer.Addr().Unmap()
		if p, err := netip.ParsePrefix(r.ipaddr); err == nil {
			if !p.Contains(a) {
				return false
			}
		} else if ip, err := netip.ParseAddr(r.ipaddr); err != nil || ip.Unmap() != a {
			return false
		}
	}
	if r.username != "" && r.username != id.Username {
		return false
	}
	if r.clientid != "" && r.clientid != id.ClientID {
		return false
	}
	return true
}
