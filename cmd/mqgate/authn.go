package main

import (
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/authn"
	authnfile "github.com/mqgate/mqgate/authn/file"
	authnhttp "github.com/mqgate/mqgate/authn/http"
	authnjwt "github.com/mqgate/mqgate/authn/jwt"
	authnpgsql "github.com/mqgate/mqgate/authn/pgsql"
	"github.com/mqgate/mqgate/config"
)

// buildAuthenticator builds the authentication chain from the config. It
// returns nil when no chain is configured: allow_anonymous then decides.
// The returned close function releases the chain's resources.
func buildAuthenticator(cfg *config.Config, log *slog.Logger) (access.Authenticator, func(), error) {
	c, err := buildAuthnChain(cfg, log, nil)
	if err != nil || c == nil {
		return nil, func() {}, err
	}
	return c, func() {
		if err := c.Close(); err != nil {
			log.Warn("closing the authentication chain", "err", err)
		}
	}, nil
}

// buildAuthnChain builds the chain named by auth.chain, or returns nil when
// it is empty. metrics may be nil.
func buildAuthnChain(cfg *config.Config, log *slog.Logger, metrics *authn.Metrics) (*authn.Chain, error) {
	names := splitList(cfg.String("auth.chain"))
	if len(names) == 0 {
		return nil, nil
	}
	var links []*authn.Link
	closeAll := func() {
		for _, l := range links {
			if l.Close != nil {
				_ = l.Close()
			}
		}
	}
	for _, name := range names {
		if !slices.Contains([]string{"file", "jwt", "http", "pgsql"}, name) {
			closeAll()
			return nil, fmt.Errorf("auth.chain: unknown backend %q (want file, jwt, http or pgsql)", name)
		}
		onErr, err := authn.ParseOnError(cfg.String("auth." + name + ".on_error"))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("auth.%s.on_error: %w", name, err)
		}
		l := &authn.Link{Name: name, OnError: onErr}
		switch name {
		case "http":
			b, err := newHTTPAuthn(cfg)
			if err != nil {
				closeAll()
				return nil, err
			}
			l.Backend, l.Close = b, b.Close
		case "file":
			path := cfg.String("auth.file.path")
			if path == "" {
				closeAll()
				return nil, errors.New("auth.file.path: empty, but file is in auth.chain")
			}
			b, err := authnfile.New(authnfile.Options{Path: path, Logger: log, Watch: true})
			if err != nil {
				closeAll()
				return nil, fmt.Errorf("auth.file.path: %w", err)
			}
			l.Backend, l.Close = b, b.Close
		case "pgsql":
			b, err := authnpgsql.New(authnpgsql.Options{
				DSN:          pgsqlDSN(cfg),
				Pool:         int(cfg.Int("auth.pgsql.pool")),
				AuthQuery:    cfg.String("auth.pgsql.auth_query"),
				SuperQuery:   cfg.String("auth.pgsql.super_query"),
				PasswordHash: cfg.String("auth.pgsql.password_hash"),
				QueryTimeout: cfg.Duration("auth.pgsql.query_timeout"),
			})
			if err != nil {
				closeAll()
				return nil, fmt.Errorf("auth.pgsql: %w", err)
			}
			l.Backend, l.Close = b, b.Close
		case "jwt":
			b, err := newJWTAuthn(cfg, log)
			if err != nil {
				closeAll()
				return nil, err
			}
			l.Backend, l.Close = b, b.Close
		}
		links = append(links, l)
	}
	c, err := authn.New(authn.Options{
		Links:         links,
		CacheTTL:      cfg.Duration("auth.cache.ttl"),
		NegativeTTL:   cfg.Duration("auth.cache.negative_ttl"),
		Jitter:        cfg.Duration("auth.cache.jitter"),
		CacheSize:     int(cfg.Int("auth.cache.max_size")),
		MaxConcurrent: int(cfg.Int("auth.max_concurrent")),
		Timeout:       cfg.Duration("auth.timeout"),
		Logger:        log,
		Metrics:       metrics,
	})
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("auth.chain: %w", err)
	}
	return c, nil
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// listenerPort returns the port a listener ("tcp:external") is configured
// on, for the %p placeholder.
func listenerPort(cfg *config.Config) func(string) string {
	ports := map[string]string{}
	for _, kind := range []string{"tcp", "ssl", "ws", "wss"} {
		pattern := "listener." + kind + ".<name>"
		names, ok := instances(cfg, pattern)
		if !ok {
			continue
		}
		for _, n := range names {
			if _, p, err := net.SplitHostPort(cfg.String("listener." + kind + "." + n)); err == nil {
				ports[kind+":"+n] = p
			}
		}
	}
	return func(l string) string { return ports[l] }
}

// instances is cfg.Instances for a pattern the schema may not have (not
// every listener kind is a key yet).
func instances(cfg *config.Config, pattern string) ([]string, bool) {
	if !slices.ContainsFunc(config.Schema, func(k config.Key) bool { return k.Name == pattern }) {
		return nil, false
	}
	return cfg.Instances(pattern), true
}

// headers reads the instances of a headers.<name> pattern key.
func headers(cfg *config.Config, prefix string) map[string]string {
	h := map[string]string{}
	for _, n := range cfg.Instances(prefix + ".<name>") {
		if v := cfg.String(prefix + "." + n); v != "" {
			h[n] = v
		}
	}
	return h
}

func newHTTPAuthn(cfg *config.Config) (*authnhttp.Backend, error) {
	var errs []error
	req := func(name string) authnhttp.Request {
		p := "auth.http." + name
		params, err := authnhttp.ParseParams(cfg.String(p + ".params"))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.params: %w", p, err))
		}
		return authnhttp.Request{URL: cfg.String(p + ".url"), Method: cfg.String(p + ".method"), Headers: headers(cfg, p+".headers"), Params: params}
	}
	o := authnhttp.Options{
		Auth:           req("auth_req"),
		Super:          req("super_req"),
		Timeout:        cfg.Duration("auth.http.timeout"),
		ConnectTimeout: cfg.Duration("auth.http.connect_timeout"),
		PoolSize:       int(cfg.Int("auth.http.pool_size")),
		ListenerPort:   listenerPort(cfg),
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if strings.HasPrefix(o.Auth.URL, "https:") || strings.HasPrefix(o.Super.URL, "https:") {
		tc, err := authnhttp.TLSConfig(cfg.String("auth.http.ssl.cacertfile"), cfg.String("auth.http.ssl.certfile"),
			cfg.String("auth.http.ssl.keyfile"), cfg.Bool("auth.http.ssl.verify"), cfg.String("auth.http.ssl.server_name_indication"))
		if err != nil {
			return nil, err
		}
		o.TLS = tc
	}
	return authnhttp.New(o)
}

func newJWTAuthn(cfg *config.Config, log *slog.Logger) (*authnjwt.Backend, error) {
	o := authnjwt.Options{
		Secret:             []byte(cfg.String("auth.jwt.secret")),
		JWKSURL:            cfg.String("auth.jwt.jwks"),
		JWKSRefresh:        cfg.Duration("auth.jwt.jwks.refresh_interval"),
		UnknownKIDInterval: cfg.Duration("auth.jwt.jwks.unknown_kid_interval"),
		HTTPClient:         &http.Client{Timeout: 5 * time.Second},
		FromUsername:       cfg.String("auth.jwt.from") == "username",
		Algorithms:         splitList(cfg.String("auth.jwt.algorithms")),
		ACLClaim:           cfg.String("auth.jwt.acl_claim_name"),
		SuperuserClaim:     cfg.String("auth.jwt.superuser_claim_name"),
		Issuer:             cfg.String("auth.jwt.issuer"),
		Audience:           cfg.String("auth.jwt.audience"),
		Leeway:             cfg.Duration("auth.jwt.leeway"),
		Logger:             log,
	}
	if p := cfg.String("auth.jwt.pubkey"); p != "" {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("auth.jwt.pubkey: %w", err)
		}
		k, err := authnjwt.ParsePublicKeyPEM(data)
		if err != nil {
			return nil, fmt.Errorf("auth.jwt.pubkey %s: %w", p, err)
		}
		o.PublicKeys = []crypto.PublicKey{k}
	}
	if cfg.Bool("auth.jwt.verify_claims") {
		o.VerifyClaims = map[string]string{}
		for _, n := range cfg.Instances("auth.jwt.verify_claims.<name>") {
			o.VerifyClaims[n] = cfg.String("auth.jwt.verify_claims." + n)
		}
	}
	b, err := authnjwt.New(o)
	if err != nil {
		return nil, fmt.Errorf("auth.jwt: %w", err)
	}
	return b, nil
}

// pgsqlDSN builds the lib/pq connection string of the auth.pgsql.* keys.
func pgsqlDSN(cfg *config.Config) string {
	host, port := "127.0.0.1", "5432"
	if srv := cfg.String("auth.pgsql.server"); srv != "" {
		if h, p, err := net.SplitHostPort(srv); err == nil {
			host, port = h, p
		} else if _, err := strconv.Atoi(srv); err == nil {
			port = srv
		} else {
			host = srv
		}
	}
	kv := [][2]string{
		{"host", host}, {"port", port},
		{"user", cfg.String("auth.pgsql.username")},
		{"password", cfg.String("auth.pgsql.password")},
		{"dbname", cfg.String("auth.pgsql.database")},
		{"client_encoding", cfg.String("auth.pgsql.encoding")},
		{"connect_timeout", "5"},
	}
	mode := "disable"
	if cfg.Bool("auth.pgsql.ssl") {
		mode = "require"
		if cfg.Bool("auth.pgsql.ssl.verify") {
			mode = "verify-full"
			if cfg.String("auth.pgsql.ssl.server_name_indication") == "disable" {
				mode = "verify-ca"
			}
		}
		for _, f := range [][2]string{{"sslrootcert", "cacertfile"}, {"sslcert", "certfile"}, {"sslkey", "keyfile"}} {
			if v := cfg.String("auth.pgsql.ssl." + f[1]); v != "" {
				kv = append(kv, [2]string{f[0], v})
			}
		}
	}
	kv = append(kv, [2]string{"sslmode", mode})
	var b strings.Builder
	for _, p := range kv {
		if p[1] == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		// libpq quoting: single quotes, with \ and \' escaped.
		b.WriteString(p[0] + "='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(p[1]) + "'")
	}
	return b.String()
}
