package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/acl"
	"github.com/mqgate/mqgate/api"
	"github.com/mqgate/mqgate/authn"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/config"
	"github.com/mqgate/mqgate/webhook"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// newRegistry returns the Prometheus registry that /metrics serves: the Go
// runtime and process collectors, the authentication chain's counters when
// authn is an *authn.Chain, and the ACL chain's counters when authz reports
// them. Either may be nil.
func newRegistry(authnr access.Authenticator, authz access.Authorizer) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if c, ok := authnr.(*authn.Chain); ok && c.Metrics() != nil {
		if err := c.Metrics().Register(reg); err != nil {
			return nil, err
		}
	}
	if m, ok := authz.(interface{ Metrics() map[string]uint64 }); ok {
		c := api.NewMapCollector("mqgate_acl_counter", "ACL chain counters (decisions per backend, cache hits and misses, policy generation), by name.", m.Metrics)
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("acl: register metrics: %w", err)
		}
	}
	return reg, nil
}

// bannedFile is where the banned list is saved, under node.data_dir.
const bannedFile = "banned.json"

// openBans opens the banned list saved under node.data_dir, so that bans
// made over the API survive a restart. It is opened before the listeners,
// so that a banned client is refused from the first connection on.
func openBans(cfg *config.Config) (*api.BanList, error) {
	bans, err := api.OpenBanList(filepath.Join(cfg.String("node.data_dir"), bannedFile))
	if err != nil {
		return nil, fmt.Errorf("node.data_dir: %w", err)
	}
	return bans, nil
}

// apiDeps are what the management API serves besides the broker; every
// field may be nil.
type apiDeps struct {
	// Registry is served at /metrics (see newRegistry).
	Registry *prometheus.Registry
	// Bans is the banned list of /api/v4/banned; the broker's
	// authenticator must be wrapped with Bans.Wrap for bans to refuse
	// clients at CONNECT.
	Bans *api.BanList
	// Authorizer answers /api/v4/acl/* and /readyz when it is an
	// *acl.Chain.
	Authorizer access.Authorizer
	// Webhooks is reported at /api/v4/webhooks and /metrics.
	Webhooks *webhook.Dispatcher
}

// startAPI starts the management HTTP API on management.listener.http
// (Prometheus at /metrics when management.metrics is true). An empty
// listener address disables it. The returned stop function shuts it down.
func startAPI(cfg *config.Config, b *broker.Broker, deps apiDeps, log *slog.Logger) (stop func(context.Context) error, err error) {
	s, err := startAPIServer(cfg, b, deps, log)
	if err != nil || s == nil {
		return func(context.Context) error { return nil }, err
	}
	return s.Shutdown, nil
}

// startAPIServer is startAPI returning the server; nil when disabled.
func startAPIServer(cfg *config.Config, b *broker.Broker, deps apiDeps, log *slog.Logger) (*api.Server, error) {
	s, err := newAPIServer(cfg, b, deps, log)
	if err != nil || s == nil {
		return nil, err
	}
	if err := s.Start(); err != nil {
		return nil, fmt.Errorf("management.listener.http: %w", err)
	}
	return s, nil
}

// newAPIServer builds (and so checks) the management API of the config
// without listening; nil when disabled.
func newAPIServer(cfg *config.Config, b *broker.Broker, deps apiDeps, log *slog.Logger) (*api.Server, error) {
	addr := cfg.String("management.listener.http")
	if addr == "" {
		return nil, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		// EMQX 4 accepts a bare port: every interface.
		addr = net.JoinHostPort("", addr)
	}
	apps := map[string]string{}
	if id := cfg.String("management.default_application.id"); id != "" {
		apps[id] = cfg.String("management.default_application.secret")
	}
	for _, id := range cfg.Instances("management.application.<name>") {
		apps[id] = cfg.String("management.application." + id)
	}
	o := api.Options{
		Broker:      b,
		Addr:        addr,
		Apps:        apps,
		AppsFile:    filepath.Join(cfg.String("node.data_dir"), "mgmt_apps.json"),
		MaxRowLimit: int(cfg.Int("management.max_row_limit")),
		Bans:        deps.Bans,
		Logger:      log,
	}
	chain, _ := deps.Authorizer.(*acl.Chain)
	if chain != nil {
		o.ACL = api.ChainACL{Chain: chain}
	}
	if deps.Webhooks != nil {
		o.Webhooks = deps.Webhooks.Stats
	}
	outbox := ""
	if deps.Webhooks != nil {
		outbox = webhookDir(cfg)
	}
	o.Ready = readiness(chain, outbox)
	if cfg.Bool("management.metrics") {
		o.Registry = deps.Registry
	}
	s, err := api.New(o)
	if err != nil {
		return nil, fmt.Errorf("management.listener.http: %w", err)
	}
	return s, nil
}

// readiness is what /readyz checks besides the broker's listeners: the
// ACL chain's policy sources are loaded (chain may be nil), and the web
// hook outbox directory is writable (outbox "" when web hooks are off).
func readiness(chain *acl.Chain, outbox string) func() error {
	return func() error {
		if chain != nil {
			if err := chain.Health(); err != nil {
				return fmt.Errorf("acl policy not loaded: %w", err)
			}
		}
		if outbox != "" {
			f, err := os.CreateTemp(outbox, ".ready-*")
			if err != nil {
				return fmt.Errorf("web hook outbox not writable: %w", err)
			}
			_ = f.Close()
			if err := os.Remove(f.Name()); err != nil {
				return fmt.Errorf("web hook outbox not writable: %w", err)
			}
		}
		return nil
	}
}

// startSidecar starts the sidecar auth API on sidecar.listener.http,
// answering from authn and authz (either may be nil). An empty address
// disables it. The returned stop function shuts it down.
func startSidecar(cfg *config.Config, authnr access.Authenticator, authz access.Authorizer, log *slog.Logger) (stop func(context.Context) error, err error) {
	s, err := startSidecarServer(cfg, authnr, authz, log)
	if err != nil || s == nil {
		return func(context.Context) error { return nil }, err
	}
	return s.Shutdown, nil
}

// startSidecarServer is startSidecar returning the server; nil when
// disabled.
func startSidecarServer(cfg *config.Config, authnr access.Authenticator, authz access.Authorizer, log *slog.Logger) (*api.Sidecar, error) {
	addr := cfg.String("sidecar.listener.http")
	if addr == "" {
		return nil, nil
	}
	s, err := api.NewSidecar(api.SidecarOptions{Addr: addr, Authenticator: authnr, Authorizer: authz, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("sidecar.listener.http: %w", err)
	}
	if err := s.Start(); err != nil {
		return nil, fmt.Errorf("sidecar.listener.http: %w", err)
	}
	return s, nil
}
