// Package http is the HTTP backend of the authorization chain: it asks an
// HTTP service whether a client may publish or subscribe, with the request
// of EMQX 4's auth.http.acl_req (parameters such as access=%A, topic=%t in
// a query string, a form or a JSON body) and understands the answers of
// both EMQX 4 (200 allows, 200 with body "ignore" ignores, other statuses
// deny) and EMQX 5 (204 allows, 200 with {"result":"allow|deny|ignore"}).
// A transport error or a timeout ignores, as in EMQX 4: the next backend,
// then acl_nomatch, decides.
package http

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/acl"
)

// Options configure a Backend.
type Options struct {
	URL     string            // auth.http.acl_req.url
	Method  string            // "get" or "post" (default)
	Headers map[string]string // auth.http.acl_req.headers.*; content-type picks form or JSON
	// Params is the parameter template, e.g.
	// "access=%A,username=%u,clientid=%c,ipaddr=%a,topic=%t,mountpoint=%m".
	Params  string
	Timeout time.Duration // whole request, answer included; 0 means 5s
	// Port returns the port of a listener, for %p; nil leaves %p empty.
	Port func(listener string) string
	// Client sends the requests; nil means a client with Timeout.
	Client *http.Client
}

// param is one name=template pair of the parameter template.
type param struct{ name, tmpl string }

// Backend asks the HTTP service.
type Backend struct {
	url     string
	method  string
	headers map[string]string
	json    bool
	params  []param
	port    func(string) string
	client  *http.Client
}

var _ access.Authorizer = (*Backend)(nil)

// New validates opts and returns the backend.
func New(opts Options) (*Backend, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("acl/http: url %q: want http:// or https:// and a host: %w", opts.URL, acl.ErrConfig)
	}
	method := strings.ToUpper(opts.Method)
	switch method {
	case "":
		method = http.MethodPost
	case http.MethodGet, http.MethodPost:
	default:
		return nil, fmt.Errorf("acl/http: method %q: want get or post: %w", opts.Method, acl.ErrConfig)
	}
	b := &Backend{url: opts.URL, method: method, headers: map[string]string{}, port: opts.Port, client: opts.Client}
	for k, v := range opts.Headers {
		b.headers[http.CanonicalHeaderKey(k)] = v
	}
	if ct := b.headers["Content-Type"]; ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return nil, fmt.Errorf("acl/http: content-type %q: %w: %w", ct, acl.ErrConfig, err)
		}
		b.json = mt == "application/json"
	}
	for _, kv := range strings.Split(opts.Params, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("acl/http: params: %q is not name=value: %w", kv, acl.ErrConfig)
		}
		b.params = append(b.params, param{name: strings.TrimSpace(k), tmpl: strings.TrimSpace(v)})
	}
	if b.client == nil {
		t := opts.Timeout
		if t <= 0 {
			t = 5 * time.Second
		}
		b.client = &http.Client{Timeout: t}
	}
	return b, nil
}

// Authorize sends the ACL request for req and maps the answer to a verdict.
func (b *Backend) Authorize(ctx context.Context, req access.Request) access.Decision {
	if strings.HasPrefix(req.Username, "$") {
		// EMQX 4 never asks the service about such usernames.
		return access.Decision{Verdict: access.Ignore, Reason: "username starts with $"}
	}
	hr, err := b.newRequest(ctx, req)
	if err != nil {
		return access.Decision{Verdict: access.Ignore, Reason: "error: " + err.Error()}
	}
	resp, err := b.client.Do(hr)
	if err != nil {
		// EMQX 4: a transport error or timeout ignores.
		return access.Decision{Verdict: access.Ignore, Reason: "error: " + err.Error()}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return access.Decision{Verdict: access.Ignore, Reason: "error: " + err.Error()}
	}
	return answer(resp.StatusCode, resp.Header.Get("Content-Type"), body)
}

// answer maps a response to a decision.
func answer(status int, contentType string, body []byte) access.Decision {
	reason := "http " + strconv.Itoa(status)
	switch status {
	case http.StatusNoContent:
		return access.Decision{Verdict: access.Allow, Reason: reason} // EMQX 5
	case http.StatusOK:
	default:
		return access.Decision{Verdict: access.Deny, Reason: reason}
	}
	text := bytes.TrimSpace(body)
	if string(text) == "ignore" {
		return access.Decision{Verdict: access.Ignore, Reason: reason + " ignore"}
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/json" || (len(text) > 0 && text[0] == '{') {
		var v struct {
			Result *string `json:"result"`
		}
		if json.Unmarshal(text, &v) == nil && v.Result != nil {
			switch *v.Result {
			case "allow":
				return access.Decision{Verdict: access.Allow, Reason: reason + " result allow"}
			case "deny":
				return access.Decision{Verdict: access.Deny, Reason: reason + " result deny"}
			default:
				return access.Decision{Verdict: access.Ignore, Reason: reason + " result " + *v.Result}
			}
		}
	}
	return access.Decision{Verdict: access.Allow, Reason: reason}
}

// newRequest builds the HTTP request: the parameters go in the query string
// for GET, else in a form or a JSON body after the content-type header.
func (b *Backend) newRequest(ctx context.Context, req access.Request) (*http.Request, error) {
	vals := url.Values{}
	obj := make(map[string]string, len(b.params))
	for _, p := range b.params {
		v := b.expand(p.tmpl, req)
		vals.Add(p.name, v)
		obj[p.name] = v
	}
	var hr *http.Request
	var err error
	switch {
	case b.method == http.MethodGet:
		u := b.url
		if q := vals.Encode(); q != "" {
			if strings.Contains(u, "?") {
				u += "&" + q
			} else {
				u += "?" + q
			}
		}
		hr, err = http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	case b.json:
		data, jerr := json.Marshal(obj)
		if jerr != nil {
			return nil, fmt.Errorf("acl/http: %w", jerr)
		}
		hr, err = http.NewRequestWithContext(ctx, http.MethodPost, b.url, bytes.NewReader(data))
	default:
		hr, err = http.NewRequestWithContext(ctx, http.MethodPost, b.url, strings.NewReader(vals.Encode()))
		if err == nil {
			hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("acl/http: %w", err)
	}
	for k, v := range b.headers {
		hr.Header.Set(k, v)
	}
	return hr, nil
}

// expand replaces the EMQX 4 placeholders of a parameter template. Unknown
// placeholders are sent literally.
func (b *Backend) expand(tmpl string, req access.Request) string {
	if strings.IndexByte(tmpl, '%') < 0 {
		return tmpl
	}
	var sb strings.Builder
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '%' || i+1 == len(tmpl) {
			sb.WriteByte(tmpl[i])
			continue
		}
		i++
		switch tmpl[i] {
		case 'u':
			sb.WriteString(req.Username)
		case 'c':
			sb.WriteString(req.ClientID)
		case 'a':
			if req.Peer.IsValid() {
				sb.WriteString(req.Peer.Addr().Unmap().String())
			}
		case 'r':
			if req.Proto == 3 {
				sb.WriteString("MQIsdp")
			} else {
				sb.WriteString("MQTT")
			}
		case 'p':
			if b.port != nil {
				sb.WriteString(b.port(req.Listener))
			}
		case 'C':
			sb.WriteString(req.CertCN)
		case 'd':
			sb.WriteString(req.CertDN)
		case 'A':
			if req.Action == access.Subscribe {
				sb.WriteByte('1')
			} else {
				sb.WriteByte('2')
			}
		case 't':
			sb.WriteString(req.Topic)
		case 'm':
			// No mountpoints: always empty.
		default:
			sb.WriteByte('%')
			sb.WriteByte(tmpl[i])
		}
	}
	return sb.String()
}
