// Package api serves mqgate's management HTTP API: the EMQX 4 HTTP API v4
// (paths, parameters, JSON envelope and error codes under /api/v4), the
// Prometheus metrics at /metrics, and the /status, /healthz and /readyz
// probes.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/webhook"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultSecret is EMQX 4's default AppSecret. It is refused on a listener
// that is reachable from other hosts.
const DefaultSecret = "public"

// Options configure a Server.
type Options struct {
	// Broker is the broker the API manages. Required.
	Broker *broker.Broker
	// Addr is the listen address, e.g. "127.0.0.1:8081".
	Addr string
	// Apps maps each AppID to its AppSecret (HTTP Basic user and
	// password), from the configuration.
	Apps map[string]string
	// AppsFile keeps the applications added through /apps (mqgate ctl
	// mgmt insert); "" keeps them in memory. At least one application,
	// configured or saved, is required.
	AppsFile string
	// MaxRowLimit is the default and largest _limit of a paged list;
	// 0 means 10000.
	MaxRowLimit int
	// Registry, when set, is served at /metrics; the server registers its
	// own collectors (the broker's families and its failed logins) in it.
	Registry *prometheus.Registry
	// Ready reports whether the node can serve; nil means ready. /readyz
	// answers 503 with the error text when it fails.
	Ready func() error
	// Bans is the banned list that /banned manages; wrap the broker's
	// authenticator with Bans.Wrap so that banned clients are refused at
	// CONNECT. Nil: a new, unwired list.
	Bans *BanList
	// ACL, when set, answers /acl/explain, /acl/reload and /acl-cache.
	ACL ACL
	// Webhooks, when set, reports the web hook dispatcher's state for
	// /webhooks and /metrics (webhook.Dispatcher.Stats).
	Webhooks func() webhook.Stats
	// Logger receives request errors; nil discards.
	Logger *slog.Logger
}

// Server is the management HTTP server.
type Server struct {
	opts  Options
	e     *echo.Echo
	log   *slog.Logger
	apps  *AppStore
	bans  *BanList
	srv   *http.Server
	ln    net.Listener
	start time.Time

	authFailures atomic.Uint64
	done         chan struct{}
	serveErr     error
}

// New validates o and builds the server, without listening. It refuses the
// default secret when Addr is not a loopback address.
func New(o Options) (*Server, error) {
	if o.Broker == nil {
		return nil, errors.New("api: broker is required")
	}
	if o.MaxRowLimit <= 0 {
		o.MaxRowLimit = 10000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	apps, err := NewAppStore(o.Apps, o.AppsFile)
	if err != nil {
		return nil, err
	}
	if apps.Len() == 0 {
		return nil, errors.New("api: at least one application (AppID and AppSecret) is required")
	}
	if id, ok := apps.usesSecret(DefaultSecret); ok && !loopback(o.Addr) {
		return nil, fmt.Errorf("api: application %q uses the default secret %q on %s, which is reachable from other hosts: set management.default_application.secret (or bind management.listener.http to 127.0.0.1)", id, DefaultSecret, o.Addr)
	}
	if o.Bans == nil {
		o.Bans = NewBanList()
	}
	s := &Server{opts: o, log: o.Logger.With("component", "api"), apps: apps, bans: o.Bans, done: make(chan struct{})}
	s.e = s.routes()
	if o.Registry != nil {
		if err := o.Registry.Register(newCollector(o.Broker, &s.authFailures)); err != nil {
			return nil, fmt.Errorf("api: register metrics: %w", err)
		}
		if o.Webhooks != nil {
			if err := o.Registry.Register(webhookCollector{stats: o.Webhooks}); err != nil {
				return nil, fmt.Errorf("api: register web hook metrics: %w", err)
			}
		}
	}
	return s, nil
}

// loopback reports whether addr (host:port) binds only a loopback address.
// A bare port or an empty host binds every interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Handler returns the HTTP handler of every route.
func (s *Server) Handler() http.Handler { return s.e }

// AuthFailures returns how many requests were refused for bad credentials.
func (s *Server) AuthFailures() uint64 { return s.authFailures.Load() }

// Start listens on Options.Addr and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("api: listen on %s: %w", s.opts.Addr, err)
	}
	s.ln = ln
	s.start = time.Now()
	s.srv = &http.Server{Handler: s.e, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.serveErr = err
			s.log.Error("management api stopped", "err", err)
		}
	}()
	s.log.Info("management api listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the bound address after Start, or nil.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Shutdown stops accepting, waits for requests in progress until ctx ends,
// and returns once the server goroutine has exited.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	<-s.done
	if err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	return s.serveErr
}

// authenticate is the HTTP Basic check of /api/v4: the AppID must exist and
// the AppSecret match (AppStore.Check, constant time).
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, secret, ok := c.Request().BasicAuth()
		if ok && s.apps.Check(id, secret) {
			return next(c)
		}
		s.authFailures.Add(1)
		s.log.Warn("management api: authentication failed", "app_id", id, "peer", c.RealIP())
		c.Response().Header().Set("WWW-Authenticate", `Basic Realm="minirest-server"`)
		return c.String(http.StatusUnauthorized, "UNAUTHORIZED")
	}
}

// errorHandler answers errors that no handler turned into an envelope:
// unknown routes get EMQX's 404 "Not found.", and everything else a JSON
// error code, never a stack.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound, http.StatusMethodNotAllowed:
			_ = c.String(http.StatusNotFound, "Not found.")
			return
		case http.StatusBadRequest:
			_ = c.JSON(http.StatusBadRequest, envelope{Code: CodeNotJSON, Message: fmt.Sprint(he.Message)})
			return
		}
		if he.Code < 500 {
			_ = c.JSON(he.Code, envelope{Code: CodeUnknown, Message: fmt.Sprint(he.Message)})
			return
		}
	}
	s.log.Error("management api: request failed", "method", c.Request().Method, "path", c.Path(), "err", err)
	_ = c.JSON(http.StatusInternalServerError, envelope{Code: CodeUnknown, Message: "internal error"})
}

// recoverPanics turns a handler panic into a 500 with a JSON error code.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if re, ok := r.(error); ok && errors.Is(re, http.ErrAbortHandler) {
					panic(r)
				}
				err = fmt.Errorf("api: panic in %s %s: %v", c.Request().Method, c.Path(), r)
			}
		}()
		return next(c)
	}
}

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = s.errorHandler
	e.Use(s.recoverPanics)

	e.GET("/status", s.status)
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET("/readyz", s.readyz)
	if s.opts.Registry != nil {
		h := promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{Registry: s.opts.Registry})
		e.GET("/metrics", echo.WrapHandler(h))
	}

	g := e.Group("/api/v4", s.authenticate)
	g.GET("", s.index)
	g.GET("/", s.index)
	g.GET("/brokers", s.brokers)
	g.GET("/brokers/:node", s.brokers)
	g.GET("/nodes", s.nodes)
	g.GET("/nodes/:node", s.nodes)
	g.GET("/stats", s.stats)
	g.GET("/nodes/:node/stats", s.stats)
	g.GET("/metrics", s.metrics)
	g.GET("/nodes/:node/metrics", s.metrics)
	g.GET("/listeners", s.listeners)
	g.GET("/nodes/:node/listeners", s.listeners)

	g.GET("/clients", s.clients)
	g.GET("/clients/:clientid", s.client)
	g.DELETE("/clients/:clientid", s.kick)
	g.GET("/clients/username/:username", s.clientsByUsername)

	g.GET("/subscriptions", s.subscriptions)
	g.GET("/subscriptions/:clientid", s.clientSubscriptions)
	g.GET("/routes", s.routesList)
	g.GET("/routes/:topic", s.route)

	g.POST("/mqtt/publish", s.publish)
	g.POST("/mqtt/publish_batch", s.publishBatch)
	g.POST("/mqtt/subscribe", s.subscribe)
	g.POST("/mqtt/subscribe_batch", s.subscribeBatch)
	g.POST("/mqtt/unsubscribe", s.unsubscribe)
	g.POST("/mqtt/unsubscribe_batch", s.unsubscribeBatch)

	g.GET("/acl/explain", s.aclExplain)
	g.POST("/acl/reload", s.aclReload)
	g.DELETE("/acl-cache", s.aclReload)
	g.GET("/clients/:clientid/acl_cache", s.clientACLCache)
	g.DELETE("/clients/:clientid/acl_cache", s.clientACLCacheDelete)

	g.GET("/openapi.json", s.openAPIDoc)
	g.GET("/webhooks", s.webhooks)
	g.GET("/apps", s.appsList)
	g.POST("/apps", s.appsInsert)
	g.DELETE("/apps/:appid", s.appsDelete)
	g.GET("/banned", s.bannedList)
	g.POST("/banned", s.bannedAdd)
	g.DELETE("/banned/:as/:who", s.bannedDelete)
	return e
}

// status is EMQX's /status: text, no authentication.
func (s *Server) status(c echo.Context) error {
	node := s.opts.Broker.NodeName()
	if s.opts.Broker.Ready() != nil {
		return c.String(http.StatusServiceUnavailable, fmt.Sprintf("Node %s is started\nmqgate is not_running", node))
	}
	return c.String(http.StatusOK, fmt.Sprintf("Node %s is started\nmqgate is running", node))
}

// readyz answers 200 when the broker's listeners are up and Options.Ready
// (policy sources loaded, web hook outbox writable) passes; 503 with the
// reason otherwise.
func (s *Server) readyz(c echo.Context) error {
	if err := s.opts.Broker.Ready(); err != nil {
		return c.String(http.StatusServiceUnavailable, err.Error()+"\n")
	}
	if s.opts.Ready != nil {
		if err := s.opts.Ready(); err != nil {
			return c.String(http.StatusServiceUnavailable, err.Error()+"\n")
		}
	}
	return c.String(http.StatusOK, "ok\n")
}

// index lists every registered /api/v4 route, as EMQX's GET /api/v4.
func (s *Server) index(c echo.Context) error {
	type route struct {
		Name   string `json:"name"`
		Method string `json:"method"`
		Path   string `json:"path"`
		Descr  string `json:"descr"`
	}
	var out []route
	for _, r := range s.e.Routes() {
		p, ok := strings.CutPrefix(r.Path, "/api/v4")
		if !ok || p == "" || p == "/" || r.Method == echo.RouteNotFound {
			continue
		}
		out = append(out, route{Name: r.Name, Method: r.Method, Path: p, Descr: r.Method + " " + p})
	}
	return reply(c, out)
}
