package api

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"
)

// opDoc documents one operation of /api/v4 for the OpenAPI document.
type opDoc struct {
	method, path, summary string
	query                 []string // query parameters
	body                  string   // request body description; "" = none
}

// operations is the documentation of every /api/v4 route. A test checks it
// against the routes actually registered, both ways.
var operations = []opDoc{
	{method: "GET", path: "", summary: "List the routes of the API."},
	{method: "GET", path: "/", summary: "List the routes of the API."},
	{method: "GET", path: "/brokers", summary: "The node's broker: version, uptime, status."},
	{method: "GET", path: "/brokers/{node}", summary: "The broker of one node."},
	{method: "GET", path: "/nodes", summary: "The node's runtime figures: memory, goroutines, connections, load."},
	{method: "GET", path: "/nodes/{node}", summary: "The runtime figures of one node."},
	{method: "GET", path: "/stats", summary: "Gauges by EMQX 4 stats name (connections.count, ...)."},
	{method: "GET", path: "/nodes/{node}/stats", summary: "Gauges of one node."},
	{method: "GET", path: "/metrics", summary: "Counters by EMQX 4 metrics name (packets.publish.received, ...)."},
	{method: "GET", path: "/nodes/{node}/metrics", summary: "Counters of one node."},
	{method: "GET", path: "/listeners", summary: "The MQTT listeners and the management listener."},
	{method: "GET", path: "/nodes/{node}/listeners", summary: "The listeners of one node."},
	{method: "GET", path: "/clients", summary: "Clients, paged and filtered.", query: []string{
		"_page", "_limit", "clientid", "username", "zone", "ip_address", "conn_state", "clean_start", "proto_name", "proto_ver",
		"_like_clientid", "_like_username", "_gte_created_at", "_lte_created_at", "_gte_connected_at", "_lte_connected_at",
		"_gte_mqueue_len", "_lte_mqueue_len", "_gte_mqueue_dropped", "_lte_mqueue_dropped"}},
	{method: "GET", path: "/clients/{clientid}", summary: "One client, as an array of at most one."},
	{method: "DELETE", path: "/clients/{clientid}", summary: "Disconnect a client (MQTT 5: reason 0x98) and end its session."},
	{method: "GET", path: "/clients/username/{username}", summary: "The clients with a username."},
	{method: "GET", path: "/subscriptions", summary: "Subscriptions, paged and filtered.", query: []string{"_page", "_limit", "clientid", "topic", "qos", "share", "_match_topic"}},
	{method: "GET", path: "/subscriptions/{clientid}", summary: "The subscriptions of one client."},
	{method: "GET", path: "/routes", summary: "Topic filters with subscribers, paged.", query: []string{"_page", "_limit"}},
	{method: "GET", path: "/routes/{topic}", summary: "The route of one URL-encoded topic filter."},
	{method: "POST", path: "/mqtt/publish", summary: "Publish a message.", body: "topic or topics, payload, encoding (plain|base64), qos, retain, clientid, properties, return"},
	{method: "POST", path: "/mqtt/publish_batch", summary: "Publish several messages.", body: "an array of publish bodies"},
	{method: "POST", path: "/mqtt/subscribe", summary: "Subscribe an online client.", body: "clientid, topic or topics, qos"},
	{method: "POST", path: "/mqtt/subscribe_batch", summary: "Subscribe several clients.", body: "an array of subscribe bodies"},
	{method: "POST", path: "/mqtt/unsubscribe", summary: "Unsubscribe an online client.", body: "clientid, topic"},
	{method: "POST", path: "/mqtt/unsubscribe_batch", summary: "Unsubscribe several clients.", body: "an array of unsubscribe bodies"},
	{method: "GET", path: "/acl/explain", summary: "Explain the ACL decision for a request, link by link, without the cache.", query: []string{"clientid", "username", "ipaddress", "action", "topic", "qos", "retain"}},
	{method: "POST", path: "/acl/reload", summary: "Drop every cached ACL decision."},
	{method: "DELETE", path: "/acl-cache", summary: "Drop every cached ACL decision."},
	{method: "GET", path: "/clients/{clientid}/acl_cache", summary: "The cached ACL decisions of one online client: access, topic, result, updated_time (ms)."},
	{method: "DELETE", path: "/clients/{clientid}/acl_cache", summary: "Drop the cached ACL decisions of one online client."},
	{method: "GET", path: "/banned", summary: "Bans in force, paged.", query: []string{"_page", "_limit"}},
	{method: "POST", path: "/banned", summary: "Ban a client id, username or peer address.", body: "who, as (clientid|username|peerhost), by, reason, at, until"},
	{method: "DELETE", path: "/banned/{as}/{who}", summary: "Lift a ban."},
	{method: "GET", path: "/openapi.json", summary: "This document."},
	{method: "GET", path: "/webhooks", summary: "Web hook outbox (pending, size, oldest) and per endpoint counts by event."},
	{method: "GET", path: "/apps", summary: "Applications allowed to use the API (never their secrets)."},
	{method: "POST", path: "/apps", summary: "Add an application; the answer holds its generated secret.", body: "app_id, name, desc"},
	{method: "DELETE", path: "/apps/{appid}", summary: "Remove an application added at run time."},
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// openAPIPath turns an echo route path ("/clients/:clientid") into the
// OpenAPI form ("/clients/{clientid}").
func openAPIPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if name, ok := strings.CutPrefix(s, ":"); ok {
			parts[i] = "{" + name + "}"
		}
	}
	return strings.Join(parts, "/")
}

// openAPI builds the OpenAPI 3 document of /api/v4 from operations.
func (s *Server) openAPI() map[string]any {
	paths := map[string]map[string]any{}
	for _, op := range operations {
		var params []map[string]any
		for _, m := range pathParam.FindAllStringSubmatch(op.path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]string{"type": "string"}})
		}
		for _, q := range op.query {
			params = append(params, map[string]any{"name": q, "in": "query", "required": false, "schema": map[string]string{"type": "string"}})
		}
		o := map[string]any{
			"summary": op.summary,
			"responses": map[string]any{
				"200": map[string]any{"description": "The EMQX 4 envelope: {\"code\":0,\"data\":...,\"meta\":...}, or {\"code\":N,\"message\":...} for an error."},
				"401": map[string]any{"description": "Bad or missing credentials."},
			},
		}
		if len(params) > 0 {
			o["parameters"] = params
		}
		if op.body != "" {
			o["requestBody"] = map[string]any{
				"required":    true,
				"description": op.body,
				"content":     map[string]any{"application/json": map[string]any{"schema": map[string]string{"type": "object"}}},
			}
		}
		p := op.path
		if p == "" {
			p = "/"
			if _, dup := paths[p]; dup {
				continue
			}
		}
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		paths[p][strings.ToLower(op.method)] = o
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":   "mqgate management API",
			"version": s.opts.Broker.Version(),
			"description": "EMQX 4 compatible HTTP API v4. Business errors are answered with HTTP 200 and a code: " +
				"101 unknown node, 102 unknown error, 107 missing parameter, 108 parameter type, 109 body not JSON, " +
				"112 client not online, 115 bad topic, 116 bad QoS.",
		},
		"servers":    []map[string]string{{"url": "/api/v4"}},
		"security":   []map[string][]string{{"basic": {}}},
		"components": map[string]any{"securitySchemes": map[string]any{"basic": map[string]string{"type": "http", "scheme": "basic"}}},
		"paths":      paths,
	}
}

// GET /openapi.json.
func (s *Server) openAPIDoc(c echo.Context) error {
	return c.JSON(http.StatusOK, s.openAPI())
}
