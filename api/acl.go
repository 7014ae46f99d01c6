package api

import (
	"context"
	"net/netip"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/acl"
)

// ACL is what the API needs of the authorization chain: an explanation of
// a decision, and a way to drop every cached decision. *acl.Chain is one,
// through ChainACL.
type ACL interface {
	Explain(ctx context.Context, req access.Request) acl.Explanation
	// Reload makes every later decision ask the backends again.
	Reload() error
	// Forget drops the cached decisions of one client.
	Forget(clientID string)
	// Cached returns the decisions cached for one client; false when it
	// has no cache.
	Cached(clientID string) ([]acl.CachedDecision, bool)
}

// ChainACL adapts an *acl.Chain: Reload bumps its generation, which
// invalidates every client's cached decisions (backends that watch their
// policy files reload them on change by themselves).
type ChainACL struct{ *acl.Chain }

// Reload implements ACL.
func (c ChainACL) Reload() error {
	c.Generation().Bump()
	return nil
}

// explainTimeout bounds one explanation (backends may be remote).
const explainTimeout = 10 * time.Second

// decisionObject is one decision as the API reports it.
type decisionObject struct {
	Link    string `json:"link,omitempty"`
	Verdict string `json:"verdict"`
	Source  string `json:"source,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

func decisionOf(link string, d access.Decision) decisionObject {
	return decisionObject{Link: link, Verdict: d.Verdict.String(), Source: d.Source, Reason: d.Reason}
}

// GET /acl/explain?clientid=&username=&ipaddress=&action=publish|subscribe&topic=&qos=&retain=
// runs the ACL chain without its cache and reports every link's answer.
func (s *Server) aclExplain(c echo.Context) error {
	if s.opts.ACL == nil {
		return fail(c, CodeUnknown, "no acl chain is configured")
	}
	q := c.QueryParams()
	topic := q.Get("topic")
	if topic == "" {
		return fail(c, CodeMissingParam, "missing mandatory params: ['topic']")
	}
	req := access.Request{Topic: topic, Action: access.Publish}
	switch a := q.Get("action"); a {
	case "", "publish", "pub":
	case "subscribe", "sub":
		req.Action = access.Subscribe
	default:
		return errConvert(c, a, "publish | subscribe")
	}
	req.ClientID = q.Get("clientid")
	req.Username, req.UsernameSet = qv(q, "username")
	if v, ok := qv(q, "ipaddress"); ok {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return errConvert(c, v, "ip address")
		}
		req.Peer = netip.AddrPortFrom(a, 0)
	}
	if v, ok := qv(q, "qos"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 2 {
			return fail(c, CodeBadQoS, messageBadQoS)
		}
		req.QoS = byte(n)
	}
	if v, ok := qv(q, "retain"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errConvert(c, v, "boolean")
		}
		req.Retain = b
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), explainTimeout)
	defer cancel()
	ex := s.opts.ACL.Explain(ctx, req)
	links := make([]decisionObject, 0, len(ex.Links))
	for _, l := range ex.Links {
		links = append(links, decisionOf(l.Link, l.Decision))
	}
	return reply(c, map[string]any{
		"decision": decisionOf("", ex.Decision),
		"no_match": ex.NoMatch,
		"links":    links,
	})
}

// aclCacheObject is one entry of EMQX 4's GET /clients/{clientid}/acl_cache.
type aclCacheObject struct {
	Access      string `json:"access"`
	Topic       string `json:"topic"`
	Result      string `json:"result"`
	UpdatedTime int64  `json:"updated_time"` // epoch milliseconds
	QoS         byte   `json:"qos"`
	Retain      bool   `json:"retain"`
	Source      string `json:"source,omitempty"`
}

// GET /clients/:clientid/acl_cache: the client's cached decisions; 112
// when the client is not online.
func (s *Server) clientACLCache(c echo.Context) error {
	id, ok := param(c, "clientid")
	if !ok {
		return errConvert(c, c.Param("clientid"), "binary")
	}
	if ci, found := s.opts.Broker.Client(id); !found || !ci.Connected {
		return fail(c, CodeNotOnline, messageNotOnline)
	}
	out := []aclCacheObject{}
	if s.opts.ACL != nil {
		cached, _ := s.opts.ACL.Cached(id)
		for _, d := range cached {
			o := aclCacheObject{Access: d.Action.String(), Topic: d.Topic, Result: d.Decision.Verdict.String(),
				UpdatedTime: d.At.UnixMilli(), QoS: d.QoS, Retain: d.Retain, Source: d.Decision.Source}
			if d.NoMatch {
				o.Source = "acl_nomatch"
			}
			out = append(out, o)
		}
	}
	return reply(c, out)
}

// DELETE /clients/:clientid/acl_cache: 112 when the client is not online.
func (s *Server) clientACLCacheDelete(c echo.Context) error {
	id, ok := param(c, "clientid")
	if !ok {
		return errConvert(c, c.Param("clientid"), "binary")
	}
	if ci, found := s.opts.Broker.Client(id); !found || !ci.Connected {
		return fail(c, CodeNotOnline, messageNotOnline)
	}
	if s.opts.ACL != nil {
		s.opts.ACL.Forget(id)
	}
	return replyOK(c)
}

// POST /acl/reload and DELETE /acl-cache: every cached ACL decision is
// dropped.
func (s *Server) aclReload(c echo.Context) error {
	if s.opts.ACL == nil {
		return replyOK(c)
	}
	if err := s.opts.ACL.Reload(); err != nil {
		return fail(c, CodeUnknown, "%s", err.Error())
	}
	return replyOK(c)
}
