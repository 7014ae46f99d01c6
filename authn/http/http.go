// Package http is the authentication backend that asks an HTTP service,
// with the requests and answers of EMQX 4's emqx_auth_http (auth_req and
// super_req) and, in the same backend, EMQX 5's JSON answer.
package http

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/authn"
	"github.com/mqgate/mqgate/internal/rawconn"
)

// ErrConfig is wrapped by every error New returns for bad options.
var ErrConfig = errors.New("authn/http: invalid configuration")

// Param is one request parameter: a name and a template with EMQX
// placeholders (%u, %c, %a, %r, %P, %p, %C, %d).
type Param struct {
	Name, Template string
}

// ParseParams parses EMQX's params syntax, e.g.
// "clientid=%c,username=%u,password=%P".
func ParseParams(s string) ([]Param, error) {
	var ps []Param
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		name, tmpl, ok := strings.Cut(f, "=")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("%w: param %q is not name=value", ErrConfig, f)
		}
		ps = append(ps, Param{Name: strings.TrimSpace(name), Template: strings.TrimSpace(tmpl)})
	}
	return ps, nil
}

// Request describes one of the HTTP requests (auth_req, super_req).
type Request struct {
	URL     string
	Method  string            // GET or POST (any case)
	Headers map[string]string // a content-type of application/json sends a POST body as JSON
	Params  []Param
}

// Options configure a Backend.
type Options struct {
	Auth Request
	// Super, when it has a URL, is asked after an allow to learn whether
	// the client is a superuser (a 200 says yes).
	Super          Request
	Timeout        time.Duration // the whole request; default 5s
	ConnectTimeout time.Duration // default 5s
	PoolSize       int           // kept-alive connections per host; default 32
	TLS            *tls.Config   // for https URLs; nil = system defaults
	// ListenerPort returns the port of a listener (for %p); nil = "".
	ListenerPort func(listener string) string
}

// Backend asks an HTTP service whether a client may connect.
type Backend struct {
	auth, super *request
	client      *http.Client
	transport   *http.Transport
	port        func(string) string
}

var _ access.Authenticator = (*Backend)(nil)

type request struct {
	url    *url.URL
	method string
	header http.Header
	json   bool
	params []Param
}

// maxBody bounds how much of an answer is read.
const maxBody = 64 << 10

// retries is how many times a request that failed in transport is sent
// again (EMQX 4's HTTP client default).
const retries = 2

// New checks the options and builds a backend with its own pool of
// kept-alive connections.
func New(o Options) (*Backend, error) {
	var errs []error
	auth, err := newRequest("auth_req", o.Auth)
	if err != nil {
		errs = append(errs, err)
	}
	var super *request
	if o.Super.URL != "" {
		if super, err = newRequest("super_req", o.Super); err != nil {
			errs = append(errs, err)
		}
	}
	if o.Timeout < 0 || o.ConnectTimeout < 0 || o.PoolSize < 0 {
		errs = append(errs, fmt.Errorf("%w: negative timeout or pool size", ErrConfig))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.PoolSize == 0 {
		o.PoolSize = 32
	}
	if o.ListenerPort == nil {
		o.ListenerPort = func(string) string { return "" }
	}
	d := &net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext:         rawconn.DialContext(d), // see package rawconn
		TLSClientConfig:     o.TLS,
		TLSHandshakeTimeout: o.ConnectTimeout,
		MaxIdleConns:        o.PoolSize,
		MaxIdleConnsPerHost: o.PoolSize,
		MaxConnsPerHost:     o.PoolSize,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   o.TLS != nil,
	}
	return &Backend{
		auth:      auth,
		super:     super,
		transport: tr,
		client:    &http.Client{Transport: tr, Timeout: o.Timeout},
		port:      o.ListenerPort,
	}, nil
}

func newRequest(name string, r Request) (*request, error) {
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: %s.url %q is not an http(s) URL", ErrConfig, name, r.URL)
	}
	m := strings.ToUpper(r.Method)
	if m == "" {
		m = http.MethodPost
	}
	if m != http.MethodGet && m != http.MethodPost {
		return nil, fmt.Errorf("%w: %s.method %q (want get or post)", ErrConfig, name, r.Method)
	}
	h := http.Header{}
	for k, v := range r.Headers {
		h.Set(k, v)
	}
	isJSON := false
	if ct := h.Get("Content-Type"); strings.HasPrefix(strings.ToLower(ct), "application/json") {
		isJSON = true
	} else if m == http.MethodPost && ct == "" {
		h.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return &request{url: u, method: m, header: h, json: isJSON, params: r.Params}, nil
}

// TLSConfig builds the client TLS settings of the ssl.* keys: a CA file to
// verify the server (system roots when empty), a client certificate and
// key (both or neither), whether to verify the server, and the server
// name to send (the URL's host when empty).
func TLSConfig(caFile, certFile, keyFile string, verify bool, serverName string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: !verify, ServerName: serverName}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("authn/http: ssl.cacertfile: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: ssl.cacertfile %s holds no PEM certificate", ErrConfig, caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("%w: ssl.certfile and ssl.keyfile go together", ErrConfig)
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("authn/http: ssl.certfile: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Close releases the kept-alive connections.
func (b *Backend) Close() error {
	b.transport.CloseIdleConnections()
	return nil
}

// answer is an EMQX 5 JSON answer; EMQX 4 answers may also carry
// is_superuser and acl.
type answer struct {
	Result      *string         `json:"result"`
	IsSuperuser json.RawMessage `json:"is_superuser"`
	ACL         json.RawMessage `json:"acl"`
	ExpireAt    *int64          `json:"expire_at"`
}

// Authenticate sends auth_req and maps the answer as EMQX 4 does: 200
// allows (a body of exactly "ignore" ignores), 400 and 401 deny as bad
// credentials, 403 denies as not authorized, 429 denies as banned, and any
// other status, a timeout or a transport error is an outage. A 200 with an
// EMQX 5 JSON body ({"result": "allow"|"deny"|"ignore", "is_superuser",
// "acl", "expire_at"}) is read as EMQX 5 does, and 204 allows as in EMQX 5.
func (b *Backend) Authenticate(ctx context.Context, id access.Identity) access.Decision {
	status, body, err := b.do(ctx, b.auth, id)
	if err != nil {
		return access.Decision{Unavailable: true, Verdict: access.Deny, Reason: "auth_req: " + err.Error()}
	}
	var d access.Decision
	switch status {
	case http.StatusOK:
		d = b.parseOK(body, id)
	case http.StatusNoContent:
		d = access.Decision{Verdict: access.Allow, Reason: "auth_req: 204"}
	case http.StatusBadRequest, http.StatusUnauthorized:
		return access.Decision{Verdict: access.Deny, Reason: fmt.Sprintf("auth_req: %d bad username or password", status)}
	case http.StatusForbidden:
		return access.Decision{Verdict: access.Deny, Refusal: access.NotAuthorized, Reason: "auth_req: 403 not authorized"}
	case http.StatusTooManyRequests:
		return access.Decision{Verdict: access.Deny, Refusal: access.Banned, Reason: "auth_req: 429 banned"}
	default:
		return access.Decision{Unavailable: true, Verdict: access.Deny, Reason: fmt.Sprintf("auth_req: status %d", status)}
	}
	if d.Verdict == access.Allow && !d.Superuser && b.super != nil {
		// EMQX 4: a 200 from super_req makes a superuser; anything else,
		// an error included, does not.
		if st, _, err := b.do(ctx, b.super, id); err == nil && st == http.StatusOK {
			d.Superuser = true
			d.Reason += "; super_req: 200 superuser"
		}
	}
	return d
}

// parseOK reads the body of a 200.
func (b *Backend) parseOK(body []byte, id access.Identity) access.Decision {
	t := strings.TrimSpace(string(body))
	if t == "ignore" {
		return access.Decision{Verdict: access.Ignore, Reason: "auth_req: 200 ignore"}
	}
	if !strings.HasPrefix(t, "{") {
		return access.Decision{Verdict: access.Allow, Reason: "auth_req: 200"}
	}
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		// EMQX 4 allows on any 200 body.
		return access.Decision{Verdict: access.Allow, Reason: "auth_req: 200"}
	}
	d := access.Decision{Verdict: access.Allow, Reason: "auth_req: 200"}
	if a.Result != nil {
		switch *a.Result {
		case "allow":
			d.Reason = "auth_req: 200 result allow"
		case "deny":
			return access.Decision{Verdict: access.Deny, Reason: "auth_req: 200 result deny"}
		case "ignore":
			return access.Decision{Verdict: access.Ignore, Reason: "auth_req: 200 result ignore"}
		default:
			return access.Decision{Unavailable: true, Verdict: access.Deny, Reason: fmt.Sprintf("auth_req: 200 with unknown result %q", *a.Result)}
		}
	}
	d.Superuser = truthy(a.IsSuperuser)
	if a.ExpireAt != nil && *a.ExpireAt > 0 {
		d.ExpiresAt = time.Unix(*a.ExpireAt, 0)
	}
	rules, err := authn.ParseACL(a.ACL, id)
	if err != nil {
		// EMQX 5: a bad acl refuses the client.
		return access.Decision{Verdict: access.Deny, Reason: "auth_req: " + err.Error()}
	}
	d.ACL = rules
	return d
}

// truthy reads is_superuser as EMQX 5 does: true, "true", 1 or "1".
func truthy(raw json.RawMessage) bool {
	switch strings.Trim(strings.TrimSpace(string(raw)), `"`) {
	case "true", "1":
		return true
	}
	return false
}

// do sends one request and returns the status and (bounded) body.
func (b *Backend) do(ctx context.Context, r *request, id access.Identity) (int, []byte, error) {
	port := b.port(id.Listener)
	vals := url.Values{}
	obj := make(map[string]string, len(r.params))
	for _, p := range r.params {
		v := authn.Expand(p.Template, id, port)
		vals.Add(p.Name, v)
		obj[p.Name] = v
	}
	u := *r.url
	var body io.Reader
	if r.method == http.MethodGet {
		q := u.Query()
		for k, vs := range vals {
			for _, v := range vs {
				q.Add(k, v)
			}
		}
		u.RawQuery = q.Encode()
	} else if r.json {
		j, err := json.Marshal(obj)
		if err != nil {
			return 0, nil, err
		}
		body = strings.NewReader(string(j))
	} else {
		body = strings.NewReader(vals.Encode())
	}
	var payload []byte
	if body != nil {
		payload, _ = io.ReadAll(body)
	}
	var resp *http.Response
	for attempt := 0; ; attempt++ {
		var rd io.Reader
		if payload != nil {
			rd = bytes.NewReader(payload)
		}
		req, err := http.NewRequestWithContext(ctx, r.method, u.String(), rd)
		if err != nil {
			return 0, nil, err
		}
		req.Header = r.header.Clone()
		resp, err = b.client.Do(req)
		if err == nil {
			break
		}
		// As EMQX 4 does, a transport error (a refused or dropped
		// connection) is retried up to retries times; a timeout is not.
		var ne net.Error
		if attempt == retries || ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()) {
			// The error names the URL, never the body with the password.
			return 0, nil, redact(err)
		}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	// Drain what is left so the connection can be kept alive.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, data, nil
}

// redact strips the query string (which may hold %P) from a transport
// error's URL.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery = ""
			return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
		}
	}
	return err
}
