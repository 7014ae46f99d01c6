package api

import (
	"slices"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/mqtt"
)

// subscription is EMQX 4's subscription object.
type subscription struct {
	Node     string `json:"node"`
	ClientID string `json:"clientid"`
	Topic    string `json:"topic"`
	QoS      int    `json:"qos"`
}

// route is EMQX 4's route object.
type route struct {
	Topic string `json:"topic"`
	Node  string `json:"node"`
}

func (s *Server) subObjects(subs []broker.Subscription) []subscription {
	out := make([]subscription, 0, len(subs))
	for _, sub := range subs {
		out = append(out, subscription{Node: s.opts.Broker.NodeName(), ClientID: sub.ClientID, Topic: sub.Topic, QoS: int(sub.QoS)})
	}
	return out
}

// GET /subscriptions: filters clientid, topic, qos, share (exact) and
// _match_topic (the subscription's filter matches that topic name).
func (s *Server) subscriptions(c echo.Context) error {
	page, limit, err := s.paging(c)
	if err != nil {
		return answer(c, err)
	}
	q := c.QueryParams()
	var preds []func(broker.Subscription) bool
	if v, ok := qv(q, "clientid"); ok {
		preds = append(preds, func(sub broker.Subscription) bool { return sub.ClientID == v })
	}
	if v, ok := qv(q, "topic"); ok {
		preds = append(preds, func(sub broker.Subscription) bool { return sub.Topic == v })
	}
	if v, ok := qv(q, "share"); ok {
		preds = append(preds, func(sub broker.Subscription) bool { return sub.Share == v })
	}
	if v, ok := qv(q, "qos"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errConvert(c, v, "integer")
		}
		preds = append(preds, func(sub broker.Subscription) bool { return int(sub.QoS) == n })
	}
	if v, ok := qv(q, "_match_topic"); ok {
		preds = append(preds, func(sub broker.Subscription) bool {
			_, filter, _ := mqtt.ParseShared(sub.Topic)
			return mqtt.Match(filter, v)
		})
	}
	all := s.opts.Broker.AllSubscriptions()
	count := len(all)
	if len(preds) > 0 {
		all = slices.DeleteFunc(all, func(sub broker.Subscription) bool {
			for _, p := range preds {
				if !p(sub) {
					return true
				}
			}
			return false
		})
		count = -1
	}
	items, next := pageOf(all, page, limit)
	return c.JSON(200, envelope{Code: CodeOK, Data: s.subObjects(items), Meta: queryMeta{Page: page, Limit: limit, HasNext: next, Count: count}})
}

// GET /subscriptions/:clientid: the client's subscriptions, no meta.
func (s *Server) clientSubscriptions(c echo.Context) error {
	id, ok := param(c, "clientid")
	if !ok {
		return errConvert(c, c.Param("clientid"), "binary")
	}
	return reply(c, s.subObjects(s.opts.Broker.Subscriptions(id)))
}

// GET /routes: paginate-style meta {page, limit, count}.
func (s *Server) routesList(c echo.Context) error {
	page, limit, err := s.paging(c)
	if err != nil {
		return answer(c, err)
	}
	all := s.opts.Broker.Routes()
	items, _ := pageOf(all, page, limit)
	out := make([]route, 0, len(items))
	for _, t := range items {
		out = append(out, route{Topic: t, Node: s.opts.Broker.NodeName()})
	}
	return c.JSON(200, envelope{Code: CodeOK, Data: out, Meta: pageMeta{Page: page, Limit: limit, Count: len(all)}})
}

// GET /routes/:topic: the route of one URL-encoded topic filter.
func (s *Server) route(c echo.Context) error {
	t, ok := param(c, "topic")
	if !ok {
		return errConvert(c, c.Param("topic"), "binary")
	}
	out := []route{}
	if _, found := slices.BinarySearch(s.opts.Broker.Routes(), t); found {
		out = append(out, route{Topic: t, Node: s.opts.Broker.NodeName()})
	}
	return reply(c, out)
}
