package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/mqgate/mqgate/access"
)

// SidecarOptions configure a Sidecar.
type SidecarOptions struct {
	// Addr is the listen address of sidecar.listener.http.
	Addr string
	// Authenticator answers the authentication requests; nil answers
	// "ignore" to every one.
	Authenticator access.Authenticator
	// Authorizer answers the authorization requests; nil answers
	// "ignore" to every one.
	Authorizer access.Authorizer
	// Logger; nil discards.
	Logger *slog.Logger
}

// Sidecar answers another broker's authentication and authorization
// requests from mqgate's chains, in the request and response shapes of
// EMQX 5's HTTP authenticator and authorizer (/emqx/authn, /emqx/authz) and
// of mosquitto-go-auth's HTTP backend (/mosquitto/user, /superuser, /acl).
type Sidecar struct {
	opts SidecarOptions
	e    *echo.Echo
	log  *slog.Logger

	// superusers remembers, per username, whether the last successful
	// /mosquitto/user check made it a superuser: mosquitto-go-auth asks
	// /superuser with the username only, right after /user.
	mu         sync.Mutex
	superusers map[string]time.Time // username → until

	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// sidecarTimeout bounds one decision.
const sidecarTimeout = 10 * time.Second

// superuserMemory is how long a /mosquitto/user answer is remembered for
// /mosquitto/superuser.
const superuserMemory = time.Minute

// NewSidecar builds the sidecar, without listening.
func NewSidecar(o SidecarOptions) (*Sidecar, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Sidecar{opts: o, log: o.Logger.With("component", "sidecar"), superusers: map[string]time.Time{}, done: make(chan struct{})}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		code := http.StatusInternalServerError
		var he *echo.HTTPError
		if errors.As(err, &he) {
			code = he.Code
		}
		if !c.Response().Committed {
			_ = c.JSON(code, map[string]string{"error": http.StatusText(code)})
		}
	}
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut} {
		e.Add(m, "/emqx/authn", s.emqxAuthn)
		e.Add(m, "/emqx/authz", s.emqxAuthz)
		e.Add(m, "/mosquitto/user", s.mosqUser)
		e.Add(m, "/mosquitto/superuser", s.mosqSuperuser)
		e.Add(m, "/mosquitto/acl", s.mosqACL)
	}
	s.e = e
	return s, nil
}

// Handler returns the HTTP handler.
func (s *Sidecar) Handler() http.Handler { return s.e }

// Start listens on Addr and serves in the background.
func (s *Sidecar) Start() error {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("sidecar: listen on %s: %w", s.opts.Addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.e, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("sidecar stopped", "err", err)
		}
	}()
	s.log.Info("sidecar auth api listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the bound address after Start, or nil.
func (s *Sidecar) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Shutdown stops the server and waits for its goroutine.
func (s *Sidecar) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	<-s.done
	if err != nil {
		return fmt.Errorf("sidecar: shutdown: %w", err)
	}
	return nil
}

// params reads the request's fields: the query string, then a JSON or form
// body, the body winning. A GET may carry a JSON body: mosquitto-go-auth
// sends one with auth_opt_http_method GET. Non-string JSON values are kept
// as their JSON text. A bearer token (mosquitto-go-auth's JWT remote mode
// sends the MQTT username's token as "Authorization: Bearer") is the
// password, and the username when the body has none.
func params(c echo.Context) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range c.QueryParams() {
		out[k] = v[0]
	}
	r := c.Request()
	if tok, ok := strings.CutPrefix(r.Header.Get(echo.HeaderAuthorization), "Bearer "); ok && tok != "" {
		defer func() {
			if _, set := out["password"]; !set {
				out["password"] = tok
			}
			if out["username"] == "" {
				out["username"] = tok
			}
		}()
	}
	if r.ContentLength == 0 {
		return out, nil
	}
	ct := r.Header.Get(echo.HeaderContentType)
	if len(ct) >= 16 && ct[:16] == echo.MIMEApplicationJSON {
		var body map[string]json.RawMessage
		if err := json.NewDecoder(http.MaxBytesReader(c.Response(), r.Body, 1<<20)).Decode(&body); err != nil {
			return nil, fmt.Errorf("sidecar: body is not a json object: %w", err)
		}
		for k, raw := range body {
			var s string
			if json.Unmarshal(raw, &s) == nil {
				out[k] = s
			} else {
				out[k] = string(raw)
			}
		}
		return out, nil
	}
	if r.Method == http.MethodGet {
		return out, nil
	}
	form, err := c.FormParams()
	if err != nil {
		return nil, fmt.Errorf("sidecar: bad form body: %w", err)
	}
	for k, v := range form {
		out[k] = v[0]
	}
	return out, nil
}

// identity builds the client identity of the request fields.
func identity(p map[string]string) access.Identity {
	id := access.Identity{ClientID: p["clientid"], Listener: "sidecar"}
	id.Username, id.UsernameSet = p["username"], p["username"] != ""
	if pw, ok := p["password"]; ok {
		id.Password = []byte(pw)
	}
	id.CertCN, id.CertDN = p["cert_common_name"], p["cert_subject"]
	if a, err := netip.ParseAddr(p["peerhost"]); err == nil {
		id.Peer = netip.AddrPortFrom(a, 0)
	}
	return id
}

func (s *Sidecar) authenticate(c echo.Context, id access.Identity) access.Decision {
	if s.opts.Authenticator == nil {
		return access.Decision{Verdict: access.Ignore}
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), sidecarTimeout)
	defer cancel()
	return s.opts.Authenticator.Authenticate(ctx, id)
}

func (s *Sidecar) authorize(c echo.Context, req access.Request) access.Decision {
	if s.opts.Authorizer == nil {
		return access.Decision{Verdict: access.Ignore}
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), sidecarTimeout)
	defer cancel()
	return s.opts.Authorizer.Authorize(ctx, req)
}

// result is EMQX 5's "result" value of a verdict.
func result(v access.Verdict) string {
	switch v {
	case access.Allow:
		return "allow"
	case access.Deny:
		return "deny"
	}
	return "ignore"
}

// emqxAuthn answers EMQX 5's HTTP authenticator: 200 with
// {"result":"allow"|"deny"|"ignore","is_superuser":..,"expire_at":..,"acl":[..]}. A
// backend outage is a 503, which EMQX counts as a backend failure rather
// than a deny. The body template should send clientid, username, password
// and optionally peerhost, cert_common_name and cert_subject.
func (s *Sidecar) emqxAuthn(c echo.Context) error {
	p, err := params(c)
	if err != nil {
		return c.JSON(http.StatusBadRequest, map[string]string{"error": err.Error()})
	}
	d := s.authenticate(c, identity(p))
	if d.Unavailable {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"error": "authentication backend unavailable"})
	}
	out := map[string]any{"result": result(d.Verdict)}
	if d.Verdict == access.Allow {
		out["is_superuser"] = d.Superuser
		if !d.ExpiresAt.IsZero() {
			out["expire_at"] = d.ExpiresAt.Unix()
		}
		if len(d.ACL) > 0 {
			out["acl"] = emqxACL(d.ACL)
		}
	}
	return c.JSON(http.StatusOK, out)
}

// emqxRule is one rule of the "acl" list of an EMQX 5.8 HTTP authenticator
// answer (the new ACL format: permission, action, topic).
type emqxRule struct {
	Permission string `json:"permission"`
	Action     string `json:"action"`
	Topic      string `json:"topic"`
}

// emqxACL turns the rules granted at authentication (JWT claims, for
// example) into EMQX's "acl" list, which EMQX checks before its
// authorizers.
func emqxACL(rules []access.Rule) []emqxRule {
	out := make([]emqxRule, 0, len(rules))
	for _, r := range rules {
		action := "all"
		if r.Action != 0 {
			action = r.Action.String()
		}
		out = append(out, emqxRule{Permission: result(r.Verdict), Action: action, Topic: r.Filter})
	}
	return out
}

// parseAction reads EMQX's action placeholder.
func parseAction(a string) (access.Action, bool) {
	switch a {
	case "publish":
		return access.Publish, true
	case "subscribe":
		return access.Subscribe, true
	}
	return 0, false
}

// emqxAuthz answers EMQX 5's HTTP authorizer: 200 with
// {"result":"allow"|"deny"|"ignore"}. The body template should send
// clientid, username, peerhost, action, topic, qos and retain.
func (s *Sidecar) emqxAuthz(c echo.Context) error {
	p, err := params(c)
	if err != nil {
		return c.JSON(http.StatusBadRequest, map[string]string{"error": err.Error()})
	}
	act, ok := parseAction(p["action"])
	if !ok || p["topic"] == "" {
		return c.JSON(http.StatusBadRequest, map[string]string{"error": "action (publish|subscribe) and topic are required"})
	}
	req := access.Request{Identity: identity(p), Action: act, Topic: p["topic"]}
	if q, err := strconv.Atoi(p["qos"]); err == nil && q >= 0 && q <= 2 {
		req.QoS = byte(q)
	}
	req.Retain = p["retain"] == "true" || p["retain"] == "1"
	d := s.authorize(c, req)
	if d.Unavailable {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"error": "authorization backend unavailable"})
	}
	return c.JSON(http.StatusOK, map[string]string{"result": result(d.Verdict)})
}

// mosqAnswer answers mosquitto-go-auth in the way every response mode
// understands: 200 grants (status mode), with {"Ok":true,"Error":""}
// (json mode) or the body "ok" when the URI asks ?mode=text; a refusal is
// a 403, and a backend outage a 500 (an error, retried, never a deny).
func mosqAnswer(c echo.Context, granted bool, unavailable bool, why string) error {
	text := c.QueryParam("mode") == "text"
	switch {
	case unavailable:
		if text {
			return c.String(http.StatusInternalServerError, "error")
		}
		return c.JSON(http.StatusInternalServerError, map[string]any{"Ok": false, "Error": "backend unavailable"})
	case granted:
		if text {
			return c.String(http.StatusOK, "ok")
		}
		return c.JSON(http.StatusOK, map[string]any{"Ok": true, "Error": ""})
	}
	if text {
		return c.String(http.StatusForbidden, "denied")
	}
	return c.JSON(http.StatusForbidden, map[string]any{"Ok": false, "Error": why})
}

// mosqUser answers the user check {"username","password","clientid"}.
func (s *Sidecar) mosqUser(c echo.Context) error {
	p, err := params(c)
	if err != nil {
		return c.JSON(http.StatusBadRequest, map[string]any{"Ok": false, "Error": err.Error()})
	}
	id := identity(p)
	d := s.authenticate(c, id)
	ok := d.Verdict == access.Allow
	if ok {
		s.mu.Lock()
		if d.Superuser {
			s.superusers[id.Username] = time.Now().Add(superuserMemory)
		} else {
			delete(s.superusers, id.Username)
		}
		s.mu.Unlock()
	}
	return mosqAnswer(c, ok, d.Unavailable, "not authorized")
}

// mosqSuperuser answers the superuser check {"username"}: granted when the
// last successful user check of that username, within a minute, made it a
// superuser.
func (s *Sidecar) mosqSuperuser(c echo.Context) error {
	p, err := params(c)
	if err != nil {
		return c.JSON(http.StatusBadRequest, map[string]any{"Ok": false, "Error": err.Error()})
	}
	s.mu.Lock()
	until, ok := s.superusers[p["username"]]
	if ok && time.Now().After(until) {
		delete(s.superusers, p["username"])
		ok = false
	}
	s.mu.Unlock()
	return mosqAnswer(c, ok, false, "not a superuser")
}

// mosqACL answers the ACL check {"username","clientid","topic","acc"}: acc
// 1 (read: receive a message) and 4 (subscribe) are asked as subscribe, 2
// (write) as publish, 3 as both. Only an allow grants: ignore is a deny.
func (s *Sidecar) mosqACL(c echo.Context) error {
	p, err := params(c)
	if err != nil {
		return c.JSON(http.StatusBadRequest, map[string]any{"Ok": false, "Error": err.Error()})
	}
	acc, err := strconv.Atoi(p["acc"])
	if err != nil || acc < 1 || acc > 4 || p["topic"] == "" {
		return c.JSON(http.StatusBadRequest, map[string]any{"Ok": false, "Error": "topic and acc (1..4) are required"})
	}
	var actions []access.Action
	if acc&1 != 0 || acc&4 != 0 {
		actions = append(actions, access.Subscribe)
	}
	if acc&2 != 0 {
		actions = append(actions, access.Publish)
	}
	for _, a := range actions {
		d := s.authorize(c, access.Request{Identity: identity(p), Action: a, Topic: p["topic"]})
		if d.Unavailable || d.Verdict != access.Allow {
			return mosqAnswer(c, false, d.Unavailable, "not authorized")
		}
	}
	return mosqAnswer(c, true, false, "")
}
