package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	_ "github.com/lib/pq" // the PostgreSQL driver

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/acl"
	aclcasbin "github.com/mqgate/mqgate/acl/casbin"
	aclfile "github.com/mqgate/mqgate/acl/file"
	aclhttp "github.com/mqgate/mqgate/acl/http"
	acljwt "github.com/mqgate/mqgate/acl/jwt"
	aclpgsql "github.com/mqgate/mqgate/acl/pgsql"
	"github.com/mqgate/mqgate/config"
	"github.com/mqgate/mqgate/policies"
)

// buildAuthorizer builds the authorization chain from the config. It
// returns nil when no chain is configured: acl_nomatch then decides. The
// returned close function stops its watchers.
func buildAuthorizer(cfg *config.Config, log *slog.Logger) (access.Authorizer, func(), error) {
	c, closeFn, err := buildACLChain(cfg, log, true)
	if err != nil || c == nil {
		return nil, func() {}, err
	}
	return c, closeFn, nil
}

// aclBackend is a link of the chain with what it needs to stop.
type aclBackend struct {
	authz access.Authorizer
	close func()
}

// aclBuilders makes each backend acl.chain may name. watch is false for a
// one-shot use such as acl explain.
var aclBuilders = map[string]func(cfg *config.Config, log *slog.Logger, gen *acl.Generation, watch bool) (aclBackend, error){
	"casbin": newCasbinACL,
	"jwt":    newJWTACL,
	"http":   newHTTPACL,
	"pgsql":  newPgsqlACL,
	"file":   newFileACL,
}

// buildACLChain builds the chain named by acl.chain, or returns nil when it
// is empty.
func buildACLChain(cfg *config.Config, log *slog.Logger, watch bool) (*acl.Chain, func(), error) {
	names := aclList(cfg.String("acl.chain"))
	if len(names) == 0 {
		return nil, func() {}, nil
	}
	gen := new(acl.Generation)
	var links []acl.Link
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	for _, name := range names {
		build, ok := aclBuilders[name]
		if !ok {
			closeAll()
			return nil, nil, fmt.Errorf("acl.chain: unknown backend %q (want jwt, casbin, http, pgsql or file)", name)
		}
		b, err := build(cfg, log, gen, watch)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("acl.chain: %s: %w", name, err)
		}
		links = append(links, acl.Link{Name: name, Authorizer: b.authz})
		if b.close != nil {
			closers = append(closers, b.close)
		}
	}
	noMatch := access.Allow
	if cfg.String("acl_nomatch") == "deny" {
		noMatch = access.Deny
	}
	c, err := acl.New(acl.Options{
		Links:        links,
		NoMatch:      noMatch,
		Cache:        cfg.Bool("enable_acl_cache"),
		CacheMaxSize: int(cfg.Int("acl_cache_max_size")),
		CacheTTL:     cfg.Duration("acl_cache_ttl"),
		Generation:   gen,
	})
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	closers = append(closers, c.Close)
	return c, closeAll, nil
}

// aclList splits a comma-separated list, dropping blanks.
func aclList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// shippedFile returns the path to read for key, or "" with the built-in
// text when key keeps its default and the default file is missing.
func shippedFile(cfg *config.Config, log *slog.Logger, key, builtIn string) (path, text string, err error) {
	path = cfg.String(key)
	if cfg.Source(key) != "default" {
		return path, "", nil
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		log.Warn("file missing, using the built-in one", "key", key, "path", path)
		return "", builtIn, nil
	} else if err != nil {
		return "", "", fmt.Errorf("%s: %w", key, err)
	}
	return path, "", nil
}

// newCasbinACL builds the Casbin backend from acl.casbin.*.
func newCasbinACL(cfg *config.Config, log *slog.Logger, gen *acl.Generation, watch bool) (aclBackend, error) {
	opts := aclcasbin.Options{
		Debounce: cfg.Duration("acl.casbin.reload_delay"),
		OnReload: gen.Bump,
		Logger:   log,
	}
	var err error
	opts.ModelPath, opts.Model, err = shippedFile(cfg, log, "acl.casbin.model", policies.Model)
	if err != nil {
		return aclBackend{}, err
	}
	watch = watch && cfg.Bool("acl.casbin.watch")
	var closeDB func()
	switch cfg.String("acl.casbin.adapter") {
	case "pgsql":
		closeDB, err = casbinPG(cfg, &opts, watch)
		if err != nil {
			return aclBackend{}, err
		}
	default:
		opts.PolicyPath, opts.Policy, err = shippedFile(cfg, log, "acl.casbin.policy", policies.Policy)
		if err != nil {
			return aclBackend{}, err
		}
	}
	opts.Watch = watch && (opts.ModelPath != "" || opts.PolicyPath != "")
	b, err := aclcasbin.New(opts)
	if err != nil {
		if closeDB != nil {
			closeDB()
		}
		return aclBackend{}, err
	}
	return aclBackend{authz: b, close: func() {
		b.Close()
		if closeDB != nil {
			closeDB()
		}
	}}, nil
}

// casbinPG points the Casbin backend at the PostgreSQL table of
// acl.casbin.pgsql.*, creating it (and its change trigger) when missing, and
// with watch, at a LISTEN/NOTIFY watcher. It returns what closes the pool.
func casbinPG(cfg *config.Config, opts *aclcasbin.Options, watch bool) (func(), error) {
	dsn := cfg.String("acl.casbin.pgsql.dsn")
	if dsn == "" {
		dsn = aclPgDSN(cfg)
	}
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return nil, fmt.Errorf("acl.casbin.pgsql.dsn: %w", err)
	}
	a, err := aclcasbin.NewPGAdapter(db, cfg.String("acl.casbin.pgsql.table"))
	if err != nil {
		db.Close()
		return nil, err
	}
	channel := cfg.String("acl.casbin.pgsql.channel")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.CreateTable(ctx, channel); err != nil {
		db.Close()
		return nil, err
	}
	opts.Adapter = a
	if watch {
		w, err := aclcasbin.NewPGWatcher(dsn, db, channel)
		if err != nil {
			db.Close()
			return nil, err
		}
		opts.Watcher = w // closed by the backend
	}
	return func() { db.Close() }, nil
}

// aclPgDSN builds a lib/pq URL from auth.pgsql.*.
func aclPgDSN(cfg *config.Config) string {
	host := cfg.String("auth.pgsql.server")
	if !strings.Contains(host, ":") {
		host = net.JoinHostPort("127.0.0.1", host)
	}
	u := url.URL{
		Scheme: "postgres",
		User:   url.UserPassword(cfg.String("auth.pgsql.username"), cfg.String("auth.pgsql.password")),
		Host:   host,
		Path:   "/" + cfg.String("auth.pgsql.database"),
	}
	q := url.Values{}
	if cfg.Bool("auth.pgsql.ssl") {
		q.Set("sslmode", "verify-full")
	} else {
		q.Set("sslmode", "disable")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// newJWTACL builds the backend for rules granted at authentication.
func newJWTACL(cfg *config.Config, _ *slog.Logger, _ *acl.Generation, _ bool) (aclBackend, error) {
	noMatch := access.Ignore
	if cfg.String("acl.jwt.nomatch") == "deny" {
		noMatch = access.Deny
	}
	b, err := acljwt.New(acljwt.Options{NoMatch: noMatch})
	return aclBackend{authz: b}, err
}

// newHTTPACL builds the HTTP backend from auth.http.acl_req.*.
func newHTTPACL(cfg *config.Config, _ *slog.Logger, _ *acl.Generation, _ bool) (aclBackend, error) {
	hdr := map[string]string{}
	for _, name := range cfg.Instances("auth.http.acl_req.headers.<name>") {
		if v := cfg.String("auth.http.acl_req.headers." + name); v != "" {
			hdr[name] = v
		}
	}
	b, err := aclhttp.New(aclhttp.Options{
		URL:     cfg.String("auth.http.acl_req.url"),
		Method:  cfg.String("auth.http.acl_req.method"),
		Headers: hdr,
		Params:  cfg.String("auth.http.acl_req.params"),
		Timeout: cfg.Duration("auth.http.timeout"),
		Port:    aclListenerPort(cfg),
	})
	return aclBackend{authz: b}, err
}

// aclListenerPort maps a listener identity ("tcp:external") to its port.
func aclListenerPort(cfg *config.Config) func(string) string {
	ports := map[string]string{}
	for _, name := range cfg.Instances("listener.tcp.<name>") {
		if _, port, err := net.SplitHostPort(cfg.String("listener.tcp." + name)); err == nil {
			ports["tcp:"+name] = port
		}
	}
	return func(l string) string { return ports[l] }
}

// newPgsqlACL builds the PostgreSQL backend from auth.pgsql.*.
func newPgsqlACL(cfg *config.Config, _ *slog.Logger, _ *acl.Generation, _ bool) (aclBackend, error) {
	db, err := sql.Open("postgres", aclPgDSN(cfg))
	if err != nil {
		return aclBackend{}, err
	}
	db.SetMaxOpenConns(int(cfg.Int("auth.pgsql.pool")))
	b, err := aclpgsql.New(aclpgsql.Options{DB: db, Query: cfg.String("auth.pgsql.acl_query"), Timeout: cfg.Duration("auth.pgsql.query_timeout")})
	if err != nil {
		db.Close()
		return aclBackend{}, err
	}
	return aclBackend{authz: b, close: func() { db.Close() }}, nil
}

// newFileACL builds the acl.conf backend from acl_file.
func newFileACL(cfg *config.Config, log *slog.Logger, gen *acl.Generation, watch bool) (aclBackend, error) {
	b, err := aclfile.New(aclfile.Options{
		Path:     cfg.String("acl_file"),
		Watch:    watch,
		Debounce: cfg.Duration("acl.casbin.reload_delay"),
		OnReload: gen.Bump,
		Logger:   log,
	})
	if err != nil {
		return aclBackend{}, err
	}
	return aclBackend{authz: b, close: func() { b.Close() }}, nil
}
