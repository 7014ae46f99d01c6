package api

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/mqgate/mqgate/broker"
)

// client is EMQX 4's client object (format_channel_info), with the fields
// mqgate can answer.
type client struct {
	Node             string  `json:"node"`
	ClientID         string  `json:"clientid"`
	Username         *string `json:"username"`
	IPAddress        *string `json:"ip_address"`
	Port             int     `json:"port,omitempty"`
	Zone             string  `json:"zone"`
	Listener         string  `json:"listener,omitempty"`
	Connected        bool    `json:"connected"`
	ProtoName        string  `json:"proto_name"`
	ProtoVer         int     `json:"proto_ver"`
	CleanStart       bool    `json:"clean_start"`
	Keepalive        int     `json:"keepalive"`
	ExpiryInterval   int64   `json:"expiry_interval"`
	IsBridge         bool    `json:"is_bridge"`
	ConnectedAt      string  `json:"connected_at,omitempty"`
	DisconnectedAt   string  `json:"disconnected_at,omitempty"`
	CreatedAt        string  `json:"created_at"`
	SubscriptionsCnt int     `json:"subscriptions_cnt"`
	MaxSubscriptions int     `json:"max_subscriptions"`
	Inflight         int     `json:"inflight"`
	MaxInflight      int     `json:"max_inflight"`
	AwaitingRel      int     `json:"awaiting_rel"`
	MaxAwaitingRel   int     `json:"max_awaiting_rel"`
	MqueueLen        int     `json:"mqueue_len"`
	MaxMqueue        int     `json:"max_mqueue"`
	MqueueDropped    uint64  `json:"mqueue_dropped"`
}

func (s *Server) clientObject(ci broker.ClientInfo) client {
	out := client{
		Node:             s.opts.Broker.NodeName(),
		ClientID:         ci.ClientID,
		Zone:             zone(ci.Listener),
		Listener:         ci.Listener,
		Connected:        ci.Connected,
		ProtoName:        ci.ProtoName,
		ProtoVer:         int(ci.ProtoVer),
		CleanStart:       ci.CleanStart,
		Keepalive:        int(ci.KeepAlive),
		ExpiryInterval:   int64(ci.ExpiryInterval / time.Second),
		CreatedAt:        ci.CreatedAt.Format(dateTimeFormat),
		SubscriptionsCnt: ci.Subscriptions,
		MaxSubscriptions: ci.MaxSubscriptions,
		Inflight:         ci.Inflight,
		MaxInflight:      ci.MaxInflight,
		AwaitingRel:      ci.AwaitingRel,
		MaxAwaitingRel:   ci.MaxAwaitingRel,
		MqueueLen:        ci.MqueueLen,
		MaxMqueue:        ci.MaxMqueue,
		MqueueDropped:    ci.MqueueDropped,
	}
	if ci.NeverExpires {
		out.ExpiryInterval = 0xFFFFFFFF
	}
	if ci.UsernameSet {
		u := ci.Username
		out.Username = &u
	}
	if ci.Peer.IsValid() {
		ip := ci.Peer.Addr().Unmap().String()
		out.IPAddress = &ip
		out.Port = int(ci.Peer.Port())
	}
	if !ci.ConnectedAt.IsZero() {
		out.ConnectedAt = ci.ConnectedAt.Format(dateTimeFormat)
	}
	if !ci.DisconnectedAt.IsZero() {
		out.DisconnectedAt = ci.DisconnectedAt.Format(dateTimeFormat)
	}
	return out
}

// zone is the EMQX zone of a listener identifier "tcp:<name>": its name.
func zone(listener string) string {
	_, name, ok := strings.Cut(listener, ":")
	if !ok {
		return listener
	}
	return name
}

// clientFilter is the parsed query of GET /clients (EMQX 4 §1.4). Unknown
// keys are ignored, as EMQX does.
type clientFilter struct {
	preds []func(broker.ClientInfo) bool
}

func (f *clientFilter) add(p func(broker.ClientInfo) bool) { f.preds = append(f.preds, p) }

func (f *clientFilter) match(ci broker.ClientInfo) bool {
	for _, p := range f.preds {
		if !p(ci) {
			return false
		}
	}
	return true
}

// parseClientFilter reads the filters of q. On a bad value it returns the
// key's value and the type it should have had.
func parseClientFilter(q url.Values) (f clientFilter, bad, typ string) {
	if v, ok := qv(q, "clientid"); ok {
		f.add(func(ci broker.ClientInfo) bool { return ci.ClientID == v })
	}
	if v, ok := qv(q, "username"); ok {
		f.add(func(ci broker.ClientInfo) bool { return ci.UsernameSet && ci.Username == v })
	}
	if v, ok := qv(q, "_like_clientid"); ok {
		f.add(func(ci broker.ClientInfo) bool { return strings.Contains(ci.ClientID, v) })
	}
	if v, ok := qv(q, "_like_username"); ok {
		f.add(func(ci broker.ClientInfo) bool { return ci.UsernameSet && strings.Contains(ci.Username, v) })
	}
	if v, ok := qv(q, "zone"); ok {
		f.add(func(ci broker.ClientInfo) bool { return zone(ci.Listener) == v })
	}
	if v, ok := qv(q, "ip_address"); ok {
		f.add(func(ci broker.ClientInfo) bool { return ci.Peer.IsValid() && ci.Peer.Addr().Unmap().String() == v })
	}
	if v, ok := qv(q, "conn_state"); ok {
		switch v {
		case "connected":
			f.add(func(ci broker.ClientInfo) bool { return ci.Connected })
		case "disconnected":
			f.add(func(ci broker.ClientInfo) bool { return !ci.Connected })
		case "idle":
			// A connection is only listed once CONNECT was accepted, so no
			// listed client is idle.
			f.add(func(broker.ClientInfo) bool { return false })
		default:
			return f, v, "atom"
		}
	}
	if v, ok := qv(q, "clean_start"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, v, "atom"
		}
		f.add(func(ci broker.ClientInfo) bool {
			return ci.CleanStart == b && (ci.Connected || !ci.ConnectedAt.IsZero())
		})
	}
	if v, ok := qv(q, "proto_name"); ok {
		f.add(func(ci broker.ClientInfo) bool { return ci.ProtoName == v })
	}
	if v, ok := qv(q, "proto_ver"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return f, v, "integer"
		}
		f.add(func(ci broker.ClientInfo) bool { return int(ci.ProtoVer) == n })
	}
	times := []struct {
		key string
		get func(broker.ClientInfo) time.Time
	}{
		{"created_at", func(ci broker.ClientInfo) time.Time { return ci.CreatedAt }},
		{"connected_at", func(ci broker.ClientInfo) time.Time { return ci.ConnectedAt }},
	}
	for _, t := range times {
		for _, bound := range []string{"_gte_", "_lte_"} {
			v, ok := qv(q, bound+t.key)
			if !ok {
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return f, v, "integer"
			}
			get, gte := t.get, bound == "_gte_"
			f.add(func(ci broker.ClientInfo) bool {
				at := get(ci)
				if at.IsZero() {
					return false
				}
				// Epoch seconds: a bound compares with the second of at.
				if gte {
					return at.Unix() >= n
				}
				return at.Unix() <= n
			})
		}
	}
	ints := []struct {
		key string
		get func(broker.ClientInfo) int64
	}{
		{"mqueue_len", func(ci broker.ClientInfo) int64 { return int64(ci.MqueueLen) }},
		{"mqueue_dropped", func(ci broker.ClientInfo) int64 { return int64(ci.MqueueDropped) }},
	}
	for _, t := range ints {
		for _, bound := range []string{"_gte_", "_lte_"} {
			v, ok := qv(q, bound+t.key)
			if !ok {
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return f, v, "integer"
			}
			get, gte := t.get, bound == "_gte_"
			f.add(func(ci broker.ClientInfo) bool {
				if gte {
					return get(ci) >= n
				}
				return get(ci) <= n
			})
		}
	}
	return f, "", ""
}

// qv returns the value of key when it is present.
func qv(q url.Values, key string) (string, bool) {
	if !q.Has(key) {
		return "", false
	}
	return q.Get(key), true
}

// GET /clients: paged and filtered; count is -1 when a filter is given.
func (s *Server) clients(c echo.Context) error {
	page, limit, err := s.paging(c)
	if err != nil {
		return answer(c, err)
	}
	f, bad, typ := parseClientFilter(c.QueryParams())
	if typ != "" {
		return errConvert(c, bad, typ)
	}
	all := s.opts.Broker.Clients()
	matched := all
	count := len(all)
	if len(f.preds) > 0 {
		matched = slices.DeleteFunc(slices.Clone(all), func(ci broker.ClientInfo) bool { return !f.match(ci) })
		count = -1
	}
	items, next := pageOf(matched, page, limit)
	out := make([]client, 0, len(items))
	for _, ci := range items {
		out = append(out, s.clientObject(ci))
	}
	return c.JSON(200, envelope{Code: CodeOK, Data: out, Meta: queryMeta{Page: page, Limit: limit, HasNext: next, Count: count}})
}

// param returns the URL-decoded path parameter name.
func param(c echo.Context, name string) (string, bool) {
	v, err := url.PathUnescape(c.Param(name))
	return v, err == nil
}

// GET /clients/:clientid: an array of at most one client.
func (s *Server) client(c echo.Context) error {
	id, ok := param(c, "clientid")
	if !ok {
		return errConvert(c, c.Param("clientid"), "binary")
	}
	out := []client{}
	if ci, ok := s.opts.Broker.Client(id); ok {
		out = append(out, s.clientObject(ci))
	}
	return reply(c, out)
}

// GET /clients/username/:username: every client with that username.
func (s *Server) clientsByUsername(c echo.Context) error {
	u, ok := param(c, "username")
	if !ok {
		return errConvert(c, c.Param("username"), "binary")
	}
	out := []client{}
	for _, ci := range s.opts.Broker.Clients() {
		if ci.UsernameSet && ci.Username == u {
			out = append(out, s.clientObject(ci))
		}
	}
	return reply(c, out)
}

// DELETE /clients/:clientid: disconnects the client and ends its session;
// 112 when the client id has no session.
func (s *Server) kick(c echo.Context) error {
	id, ok := param(c, "clientid")
	if !ok {
		return errConvert(c, c.Param("clientid"), "binary")
	}
	if !s.opts.Broker.Kick(id) {
		return fail(c, CodeNotOnline, messageNotOnline)
	}
	return replyOK(c)
}
