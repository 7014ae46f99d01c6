package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

const ctlUsage = `usage: mqgate ctl [--url URL] [--app ID] [--secret SECRET] [--json] COMMAND
  status                               node status (no credentials needed)
  broker [stats|metrics]               broker info, gauges or counters
  listeners                            MQTT and management listeners
  clients list [FILTER=VALUE ...]      clients (EMQX filters: username=, _like_clientid=, ...)
  clients show CLIENTID                one client
  clients kick CLIENTID                disconnect a client and end its session
  subscriptions list [FILTER=VALUE ...]
  subscriptions show CLIENTID
  subscriptions add CLIENTID TOPIC [QOS]
  subscriptions del CLIENTID TOPIC
  routes list | routes show TOPIC
  banned list | banned add AS WHO [REASON] | banned del AS WHO
  acl reload                           drop every cached ACL decision
  acl explain TOPIC [action=publish|subscribe] [username=U] [clientid=C] [ipaddress=IP] [qos=N]
  publish TOPIC PAYLOAD [QOS [RETAIN]]
  mgmt list | mgmt insert APPID [NAME] | mgmt delete APPID
The API address and credentials also come from MQGATE_CTL_URL, MQGATE_CTL_APP and
MQGATE_CTL_SECRET.
`

// ctl is one run of mqgate ctl: an HTTP client of the management API.
type ctl struct {
	base         string
	app, secret  string
	asJSON       bool
	hc           *http.Client
	stdout       io.Writer
	stderr       io.Writer
	lastEnvelope ctlEnvelope
}

// ctlEnvelope is the API's response body.
type ctlEnvelope struct {
	Code    int             `json:"code"`
	Data    json.RawMessage `json:"data"`
	Meta    json.RawMessage `json:"meta"`
	Message string          `json:"message"`
}

// errUsage marks a command line mistake (exit code 2).
var errUsage = errors.New("usage")

// ctlCommand runs mqgate ctl: it talks to the management API like
// emqx_ctl. People get tables and "key: value" lines; --json prints the
// API's data as is.
func ctlCommand(args, environ []string, stdout, stderr io.Writer) int {
	env := func(k, def string) string {
		for _, kv := range environ {
			if v, ok := strings.CutPrefix(kv, k+"="); ok && v != "" {
				return v
			}
		}
		return def
	}
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, ctlUsage) }
	c := &ctl{stdout: stdout, stderr: stderr, hc: &http.Client{Timeout: 30 * time.Second}}
	fs.StringVar(&c.base, "url", env("MQGATE_CTL_URL", "http://127.0.0.1:8081"), "management API address")
	fs.StringVar(&c.app, "app", env("MQGATE_CTL_APP", "admin"), "AppID")
	fs.StringVar(&c.secret, "secret", env("MQGATE_CTL_SECRET", "public"), "AppSecret")
	fs.BoolVar(&c.asJSON, "json", false, "print the API's JSON data")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	defer c.hc.CloseIdleConnections()
	c.base = strings.TrimRight(c.base, "/")
	err := c.run(fs.Args())
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprint(stderr, ctlUsage)
		return 2
	default:
		fmt.Fprintf(stderr, "mqgate ctl: %v\n", err)
		return 1
	}
}

func (c *ctl) run(a []string) error {
	arg := func(i int) string {
		if i < len(a) {
			return a[i]
		}
		return ""
	}
	need := func(n int) error {
		if len(a) < n {
			return errUsage
		}
		return nil
	}
	if len(a) == 0 {
		return errUsage
	}
	esc := url.PathEscape
	switch a[0] {
	case "status":
		return c.status()
	case "broker":
		switch arg(1) {
		case "":
			return c.show(c.get("/brokers", nil))
		case "stats":
			return c.nodeMap("stats")(c.get("/stats", nil))
		case "metrics":
			return c.nodeMap("metrics")(c.get("/metrics", nil))
		}
	case "listeners":
		data, err := c.get("/listeners", nil)
		if err != nil || c.asJSON {
			return c.raw(data, err)
		}
		var nodes []struct {
			Listeners []map[string]any `json:"listeners"`
		}
		if err := json.Unmarshal(data, &nodes); err != nil {
			return fmt.Errorf("decode listeners: %w", err)
		}
		var rows []map[string]any
		for _, n := range nodes {
			rows = append(rows, n.Listeners...)
		}
		return c.table(rows, "identifier", "listen_on", "current_conns", "max_conns")
	case "clients":
		switch arg(1) {
		case "list":
			return c.rows(c.get("/clients", query(a[2:])))("clientid", "username", "ip_address", "connected", "proto_ver", "subscriptions_cnt", "connected_at")
		case "show":
			if err := need(3); err != nil {
				return err
			}
			return c.show(c.get("/clients/"+esc(a[2]), nil))
		case "kick":
			if err := need(3); err != nil {
				return err
			}
			return c.done(c.call(http.MethodDelete, "/clients/"+esc(a[2]), nil, nil))
		}
	case "subscriptions":
		switch arg(1) {
		case "list":
			return c.rows(c.get("/subscriptions", query(a[2:])))("clientid", "topic", "qos")
		case "show":
			if err := need(3); err != nil {
				return err
			}
			return c.rows(c.get("/subscriptions/"+esc(a[2]), nil))("clientid", "topic", "qos")
		case "add":
			if err := need(4); err != nil {
				return err
			}
			qos := 0
			if q := arg(4); q != "" {
				n, err := strconv.Atoi(q)
				if err != nil {
					return fmt.Errorf("qos %q: %w", q, err)
				}
				qos = n
			}
			return c.done(c.call(http.MethodPost, "/mqtt/subscribe", nil, map[string]any{"clientid": a[2], "topic": a[3], "qos": qos}))
		case "del":
			if err := need(4); err != nil {
				return err
			}
			return c.done(c.call(http.MethodPost, "/mqtt/unsubscribe", nil, map[string]any{"clientid": a[2], "topic": a[3]}))
		}
	case "routes":
		switch arg(1) {
		case "list":
			return c.rows(c.get("/routes", query(a[2:])))("topic", "node")
		case "show":
			if err := need(3); err != nil {
				return err
			}
			return c.rows(c.get("/routes/"+esc(a[2]), nil))("topic", "node")
		}
	case "banned":
		switch arg(1) {
		case "list":
			return c.rows(c.get("/banned", nil))("as", "who", "reason", "by", "until")
		case "add":
			if err := need(4); err != nil {
				return err
			}
			return c.done(c.call(http.MethodPost, "/banned", nil, map[string]any{"as": a[2], "who": a[3], "reason": arg(4)}))
		case "del":
			if err := need(4); err != nil {
				return err
			}
			return c.done(c.call(http.MethodDelete, "/banned/"+esc(a[2])+"/"+esc(a[3]), nil, nil))
		}
	case "acl":
		switch arg(1) {
		case "reload":
			return c.done(c.call(http.MethodPost, "/acl/reload", nil, nil))
		case "explain":
			if err := need(3); err != nil {
				return err
			}
			q := query(a[3:])
			q.Set("topic", a[2])
			return c.explain(c.get("/acl/explain", q))
		}
	case "mgmt":
		switch arg(1) {
		case "list":
			return c.rows(c.get("/apps", nil))("app_id", "name", "desc", "static")
		case "insert":
			if err := need(3); err != nil {
				return err
			}
			return c.show(c.call(http.MethodPost, "/apps", nil, map[string]any{"app_id": a[2], "name": cmp.Or(arg(3), a[2])}))
		case "delete":
			if err := need(3); err != nil {
				return err
			}
			return c.done(c.call(http.MethodDelete, "/apps/"+esc(a[2]), nil, nil))
		}
	case "publish":
		if err := need(3); err != nil {
			return err
		}
		body := map[string]any{"topic": a[1], "payload": a[2]}
		if q := arg(3); q != "" {
			n, err := strconv.Atoi(q)
			if err != nil {
				return fmt.Errorf("qos %q: %w", q, err)
			}
			body["qos"] = n
		}
		if r := arg(4); r != "" {
			v, err := strconv.ParseBool(r)
			if err != nil {
				return fmt.Errorf("retain %q: %w", r, err)
			}
			body["retain"] = v
		}
		return c.done(c.call(http.MethodPost, "/mqtt/publish", nil, body))
	}
	return errUsage
}

// query turns KEY=VALUE arguments into a query string.
func query(args []string) url.Values {
	q := url.Values{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		q.Set(k, v)
	}
	return q
}

// status prints GET /status as is.
func (c *ctl) status() error {
	resp, err := c.hc.Get(c.base + "/status")
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	text := strings.TrimSpace(string(body))
	if c.asJSON {
		out, err := json.MarshalIndent(map[string]any{"running": resp.StatusCode == http.StatusOK, "status": text}, "", "  ")
		if err != nil {
			return fmt.Errorf("status: %w", err)
		}
		fmt.Fprintln(c.stdout, string(out))
	} else {
		fmt.Fprintln(c.stdout, text)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status: HTTP %d", resp.StatusCode)
	}
	return nil
}

// call sends one request and returns the envelope's data; a non-zero code
// is an error carrying the API's message.
func (c *ctl) call(method, path string, q url.Values, body any) (json.RawMessage, error) {
	u := c.base + "/api/v4" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.SetBasicAuth(c.app, c.secret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, fmt.Errorf("%s %s: bad AppID or AppSecret (--app, --secret)", method, path)
	}
	var env ctlEnvelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
	}
	c.lastEnvelope = env
	if env.Code != 0 {
		return nil, fmt.Errorf("%s %s: code %d: %s", method, path, env.Code, env.Message)
	}
	return env.Data, nil
}

func (c *ctl) get(path string, q url.Values) (json.RawMessage, error) {
	return c.call(http.MethodGet, path, q, nil)
}

// raw prints data as JSON.
func (c *ctl) raw(data json.RawMessage, err error) error {
	if err != nil {
		return err
	}
	if len(data) == 0 {
		data = json.RawMessage(`{"code":0}`)
	}
	var buf bytes.Buffer
	if json.Indent(&buf, data, "", "  ") != nil {
		buf.Write(data)
	}
	fmt.Fprintln(c.stdout, buf.String())
	return nil
}

// done reports a command without data.
func (c *ctl) done(data json.RawMessage, err error) error {
	if err != nil || c.asJSON {
		return c.raw(data, err)
	}
	if len(data) > 0 && string(data) != "null" {
		return c.show(data, nil)
	}
	fmt.Fprintln(c.stdout, "ok")
	return nil
}

// show prints an object, or each object of an array, as "key: value"
// lines in key order.
func (c *ctl) show(data json.RawMessage, err error) error {
	if err != nil || c.asJSON {
		return c.raw(data, err)
	}
	var objs []map[string]any
	if json.Unmarshal(data, &objs) != nil {
		var one map[string]any
		if err := json.Unmarshal(data, &one); err != nil {
			return c.raw(data, nil)
		}
		objs = []map[string]any{one}
	}
	if len(objs) == 0 {
		fmt.Fprintln(c.stdout, "(none)")
	}
	for i, o := range objs {
		if i > 0 {
			fmt.Fprintln(c.stdout)
		}
		keys := make([]string, 0, len(o))
		for k := range o {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		for _, k := range keys {
			fmt.Fprintf(tw, "%s:\t%s\n", k, text(o[k]))
		}
		_ = tw.Flush()
	}
	return nil
}

// explain prints GET /acl/explain: the decision, then each link's answer.
func (c *ctl) explain(data json.RawMessage, err error) error {
	if err != nil || c.asJSON {
		return c.raw(data, err)
	}
	type answer struct {
		Link    string `json:"link"`
		Verdict string `json:"verdict"`
		Source  string `json:"source"`
		Reason  string `json:"reason"`
	}
	var ex struct {
		Decision answer   `json:"decision"`
		NoMatch  bool     `json:"no_match"`
		Links    []answer `json:"links"`
	}
	if err := json.Unmarshal(data, &ex); err != nil {
		return fmt.Errorf("decode explanation: %w", err)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "verdict:\t%s\n", ex.Decision.Verdict)
	fmt.Fprintf(tw, "source:\t%s\n", ex.Decision.Source)
	fmt.Fprintf(tw, "reason:\t%s\n", ex.Decision.Reason)
	fmt.Fprintf(tw, "no_match:\t%t\n", ex.NoMatch)
	if err := tw.Flush(); err != nil {
		return err
	}
	rows := make([]map[string]any, 0, len(ex.Links))
	for _, l := range ex.Links {
		rows = append(rows, map[string]any{"link": l.Link, "verdict": l.Verdict, "reason": l.Reason})
	}
	fmt.Fprintln(c.stdout)
	return c.table(rows, "link", "verdict", "reason")
}

// nodeMap prints the map under key of each node ([{node, key: {..}}]) as
// sorted "name value" lines.
func (c *ctl) nodeMap(key string) func(data json.RawMessage, err error) error {
	return func(data json.RawMessage, err error) error {
		return c.printNodeMap(key, data, err)
	}
}

func (c *ctl) printNodeMap(key string, data json.RawMessage, err error) error {
	if err != nil || c.asJSON {
		return c.raw(data, err)
	}
	var nodes []map[string]json.RawMessage
	if err := json.Unmarshal(data, &nodes); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	for _, n := range nodes {
		var m map[string]json.Number
		if err := json.Unmarshal(n[key], &m); err != nil {
			return fmt.Errorf("decode %s: %w", key, err)
		}
		names := make([]string, 0, len(m))
		for k := range m {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			fmt.Fprintf(tw, "%s\t%s\n", k, m[k])
		}
	}
	return tw.Flush()
}

// rows prints an array of objects as a table of the given columns, with
// the paging meta when there is one.
func (c *ctl) rows(data json.RawMessage, err error) func(cols ...string) error {
	return func(cols ...string) error {
		if err != nil || c.asJSON {
			return c.raw(data, err)
		}
		var objs []map[string]any
		if err := json.Unmarshal(data, &objs); err != nil {
			return fmt.Errorf("decode list: %w", err)
		}
		if err := c.table(objs, cols...); err != nil {
			return err
		}
		var meta struct {
			Page    int   `json:"page"`
			HasNext *bool `json:"hasnext"`
			Count   int   `json:"count"`
		}
		if json.Unmarshal(c.lastEnvelope.Meta, &meta) == nil && meta.Page > 0 {
			line := fmt.Sprintf("page %d", meta.Page)
			if meta.Count >= 0 {
				line += fmt.Sprintf(", %d in all", meta.Count)
			}
			if meta.HasNext != nil && *meta.HasNext {
				line += ", more: _page=" + strconv.Itoa(meta.Page+1)
			}
			fmt.Fprintln(c.stdout, line)
		}
		return nil
	}
}

// table prints objs as aligned columns.
func (c *ctl) table(objs []map[string]any, cols ...string) error {
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(cols, "\t")))
	for _, o := range objs {
		vals := make([]string, len(cols))
		for i, col := range cols {
			vals[i] = text(o[col])
		}
		fmt.Fprintln(tw, strings.Join(vals, "\t"))
	}
	return tw.Flush()
}

// text writes one JSON value for people.
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
