// Package file is the authorization backend for EMQX acl.conf files, so
// that users can bring theirs. Rules are Erlang terms, tried in order; the
// first that applies decides:
//
//	{allow, {user, "dashboard"}, subscribe, ["$SYS/#"]}.
//	{allow, {ipaddr, "127.0.0.1"}, pubsub, ["$SYS/#", "#"]}.
//	{deny, all, subscribe, ["$SYS/#", {eq, "#"}]}.
//	{allow, all}.
//
// Who: all, {user|username, "u"}, {client|clientid, "c"} (either with
// {re, "regex"}), {ipaddr, "cidr"}, {ipaddrs, [...]}, {'and', [...]},
// {'or', [...]}. Action: publish, subscribe, pubsub or all, optionally
// {Action, [{qos, Q}, {retain, Bool}]} (EMQX 5). Topics: filters with %u
// and %c (or ${username} and ${clientid}), or {eq, "t"} for t literally.
// The file is reloaded when it changes; a broken file leaves the last good
// rules in force.
package file

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/acl"
	"github.com/mqgate/mqgate/mqtt"
)

// ErrRules is wrapped by every error about the content of an acl.conf.
var ErrRules = errors.New("invalid acl.conf")

// Options configure a Backend.
type Options struct {
	Path     string        // the acl.conf file
	Watch    bool          // reload when the file changes
	Debounce time.Duration // quiet time before a reload; 0 means 100ms
	OnReload func()        // called after a reload that changed the rules
	Logger   *slog.Logger
}

// Backend answers from the rules of an acl.conf file.
type Backend struct {
	path     string
	onReload func()
	log      *slog.Logger
	rules    atomic.Pointer[ruleSet]
	debounce *acl.Debouncer
	stop     func()

	reloadMu   sync.Mutex
	mu         sync.Mutex // guards the fields below
	lastErr    error
	reloads    uint64
	reloadErrs uint64
}

// ruleSet is one loaded file.
type ruleSet struct {
	rules []rule
	text  string
}

var _ access.Authorizer = (*Backend)(nil)

// New loads the file and, with opts.Watch, watches it.
func New(opts Options) (*Backend, error) {
	if opts.Path == "" {
		return nil, fmt.Errorf("acl/file: a path is required: %w", acl.ErrConfig)
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	b := &Backend{path: opts.Path, onReload: opts.OnReload, log: opts.Logger}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.log = b.log.With("component", "acl", "authorizer", "file")
	rs, err := b.load()
	if err != nil {
		return nil, err
	}
	b.rules.Store(rs)
	b.debounce = acl.NewDebouncer(opts.Debounce, func() { _ = b.Reload() })
	if opts.Watch {
		stop, err := acl.WatchFiles([]string{opts.Path}, b.debounce.Trigger, b.log)
		if err != nil {
			return nil, err
		}
		b.stop = stop
	}
	return b, nil
}

// Authorize returns the verdict of the first rule that applies to req, or
// Ignore when none does.
func (b *Backend) Authorize(_ context.Context, req access.Request) access.Decision {
	topic := acl.RequestTopic(req)
	rs := b.rules.Load()
	for i := range rs.rules {
		r := &rs.rules[i]
		if r.applies(req, topic) {
			return access.Decision{Verdict: r.verdict, Reason: fmt.Sprintf("%s:%d: %s", b.path, r.line, r.text)}
		}
	}
	return access.Decision{Verdict: access.Ignore, Reason: "no rule matched"}
}

// Reload reads the file again; on error the old rules stay and Health
// reports it.
func (b *Backend) Reload() error {
	b.reloadMu.Lock()
	defer b.reloadMu.Unlock()
	rs, err := b.load()
	b.mu.Lock()
	b.lastErr = err
	if err != nil {
		b.reloadErrs++
	}
	b.mu.Unlock()
	if err != nil {
		b.log.Error("acl.conf reload failed, keeping the last good rules", "err", err)
		return err
	}
	if b.rules.Load().text == rs.text {
		return nil
	}
	b.rules.Store(rs)
	b.mu.Lock()
	b.reloads++
	b.mu.Unlock()
	if b.onReload != nil {
		b.onReload()
	}
	b.log.Info("acl.conf reloaded", "rules", len(rs.rules))
	return nil
}

// Health returns the error of the last reload, or nil.
func (b *Backend) Health() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lastErr != nil {
		return fmt.Errorf("acl/file: serving the last good rules: %w", b.lastErr)
	}
	return nil
}

// Metrics returns the reload counters under their metric names.
func (b *Backend) Metrics() map[string]uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	ok := uint64(1)
	if b.lastErr != nil {
		ok = 0
	}
	return map[string]uint64{
		"acl.file.reloads":       b.reloads,
		"acl.file.reload_errors": b.reloadErrs,
		"acl.file.rules":         uint64(len(b.rules.Load().rules)),
		"acl.file.policy_ok":     ok,
	}
}

// Close stops watching the file.
func (b *Backend) Close() error {
	if b.stop != nil {
		b.stop()
	}
	b.debounce.Stop()
	return nil
}

// load reads and compiles the file.
func (b *Backend) load() (*ruleSet, error) {
	data, err := os.ReadFile(b.path)
	if err != nil {
		return nil, fmt.Errorf("acl/file: %w", err)
	}
	rules, err := parse(string(data))
	if err != nil {
		return nil, fmt.Errorf("acl/file: %s: %w", b.path, err)
	}
	return &ruleSet{rules: rules, text: string(data)}, nil
}

// rule is one compiled acl.conf rule.
type rule struct {
	verdict access.Verdict
	who     who
	action  access.Action // 0 = both
	qos     []byte        // allowed QoS; nil = any
	retain  *bool         // required retain flag; nil = any
	topics  []topicRule   // nil = every topic ({allow, all})
	line    int
	text    string
}

// topicRule is one topic of a rule.
type topicRule struct {
	filter string
	eq     bool // match the filter literally
}

// who is the subject part of a rule.
type who struct {
	kind     string // all, user, client, ipaddr, and, or
	value    string
	re       *regexp.Regexp
	prefixes []netip.Prefix
	subs     []who
}

// applies reports whether r decides req.
func (r *rule) applies(req access.Request, topic string) bool {
	if r.action != 0 && r.action != req.Action {
		return false
	}
	if r.qos != nil && !slices.Contains(r.qos, req.QoS) {
		return false
	}
	if r.retain != nil && req.Action == access.Publish && *r.retain != req.Retain {
		return false
	}
	if !r.who.matches(req.Identity) {
		return false
	}
	if r.topics == nil {
		return true
	}
	for _, t := range r.topics {
		if t.eq {
			if t.filter == topic {
				return true
			}
			continue
		}
		f, ok := acl.Expand(t.filter, req.Username, req.ClientID)
		if ok && acl.RuleApplies(req.Action, r.verdict == access.Deny, f, topic) {
			return true
		}
	}
	return false
}

// matches reports whether id is the rule's subject.
func (w *who) matches(id access.Identity) bool {
	switch w.kind {
	case "all":
		return true
	case "user", "client":
		v := id.Username
		if w.kind == "client" {
			v = id.ClientID
		}
		if w.re != nil {
			return w.re.MatchString(v)
		}
		return v != "" && v == w.value
	case "ipaddr":
		if !id.Peer.IsValid() {
			return false
		}
		a := id.Peer.Addr().Unmap()
		for _, p := range w.prefixes {
			if p.Contains(a) {
				return true
			}
		}
		return false
	case "and":
		for i := range w.subs {
			if !w.subs[i].matches(id) {
				return false
			}
		}
		return true
	case "or":
		for i := range w.subs {
			if w.subs[i].matches(id) {
				return true
			}
		}
	}
	return false
}

// parse compiles the rules of an acl.conf.
func parse(src string) ([]rule, error) {
	terms, err := parseTerms(src)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRules, err)
	}
	rules := make([]rule, 0, len(terms))
	for _, t := range terms {
		r, err := compile(t)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrRules, t.line, err)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// compile turns one term into a rule.
func compile(t term) (rule, error) {
	if t.kind != tupleTerm || (len(t.items) != 2 && len(t.items) != 4) {
		return rule{}, errors.New("want {allow|deny, Who, Action, Topics} or {allow|deny, all}")
	}
	r := rule{line: t.line}
	switch v := t.items[0]; {
	case v.kind == atomTerm && v.text == "allow":
		r.verdict = access.Allow
	case v.kind == atomTerm && v.text == "deny":
		r.verdict = access.Deny
	default:
		return rule{}, fmt.Errorf("permission %q: want allow or deny", v.text)
	}
	if len(t.items) == 2 {
		if w := t.items[1]; w.kind != atomTerm || w.text != "all" {
			return rule{}, errors.New("a two-element rule must be {allow, all} or {deny, all}")
		}
		r.who = who{kind: "all"}
		r.text = "{" + r.verdict.String() + ", all}"
		return r, nil
	}
	var err error
	if r.who, err = compileWho(t.items[1]); err != nil {
		return rule{}, err
	}
	if err := r.compileAction(t.items[2]); err != nil {
		return rule{}, err
	}
	ts := t.items[3]
	if ts.kind != listTerm {
		return rule{}, errors.New("topics: want a list")
	}
	r.topics = []topicRule{}
	var names []string
	for _, x := range ts.items {
		tr, err := compileTopic(x)
		if err != nil {
			return rule{}, err
		}
		r.topics = append(r.topics, tr)
		if tr.eq {
			names = append(names, "{eq, "+strconv.Quote(tr.filter)+"}")
		} else {
			names = append(names, strconv.Quote(tr.filter))
		}
	}
	r.text = fmt.Sprintf("{%s, %s, %s, [%s]}", r.verdict, whoText(r.who), actionText(r.action), strings.Join(names, ", "))
	return r, nil
}

// compileAction reads publish, subscribe, pubsub or all, or {Action, Conds}.
func (r *rule) compileAction(t term) error {
	if t.kind == tupleTerm && len(t.items) == 2 && t.items[1].kind == listTerm {
		for _, c := range t.items[1].items {
			if err := r.compileCond(c); err != nil {
				return err
			}
		}
		t = t.items[0]
	}
	if t.kind != atomTerm {
		return errors.New("action: want publish, subscribe, pubsub or all")
	}
	switch t.text {
	case "publish":
		r.action = access.Publish
	case "subscribe":
		r.action = access.Subscribe
	case "pubsub", "all":
	default:
		return fmt.Errorf("action %q: want publish, subscribe, pubsub or all", t.text)
	}
	return nil
}

// compileCond reads {qos, Q}, {qos, [Q, ...]} or {retain, true|false}.
func (r *rule) compileCond(c term) error {
	if c.kind != tupleTerm || len(c.items) != 2 || c.items[0].kind != atomTerm {
		return errors.New("action condition: want {qos, Q} or {retain, Bool}")
	}
	switch c.items[0].text {
	case "qos":
		vals := []term{c.items[1]}
		if c.items[1].kind == listTerm {
			vals = c.items[1].items
		}
		for _, v := range vals {
			q, err := strconv.Atoi(v.text)
			if v.kind != intTerm || err != nil || q > 2 {
				return fmt.Errorf("qos %q: want 0, 1 or 2", v.text)
			}
			r.qos = append(r.qos, byte(q))
		}
	case "retain":
		v := c.items[1]
		if v.kind != atomTerm || (v.text != "true" && v.text != "false") {
			return errors.New("retain: want true or false")
		}
		b := v.text == "true"
		r.retain = &b
	default:
		return fmt.Errorf("action condition %q: want qos or retain", c.items[0].text)
	}
	return nil
}

// compileTopic reads "filter" or {eq, "topic"}.
func compileTopic(t term) (topicRule, error) {
	eq := false
	if t.kind == tupleTerm && len(t.items) == 2 && t.items[0].kind == atomTerm && t.items[0].text == "eq" {
		eq, t = true, t.items[1]
	}
	if t.kind != stringTerm {
		return topicRule{}, errors.New(`topic: want "filter" or {eq, "topic"}`)
	}
	f := strings.NewReplacer("${username}", "%u", "${clientid}", "%c").Replace(t.text)
	if err := mqtt.ValidTopicFilter(strings.NewReplacer("%u", "u", "%c", "c").Replace(f)); err != nil {
		return topicRule{}, fmt.Errorf("topic %q: %w", t.text, err)
	}
	return topicRule{filter: f, eq: eq}, nil
}

// compileWho reads the subject of a rule.
func compileWho(t term) (who, error) {
	if t.kind == atomTerm && t.text == "all" {
		return who{kind: "all"}, nil
	}
	if t.kind != tupleTerm || len(t.items) != 2 || t.items[0].kind != atomTerm {
		return who{}, errors.New("who: want all, {user, ...}, {client, ...}, {ipaddr, ...}, {ipaddrs, [...]}, {'and', [...]} or {'or', [...]}")
	}
	v := t.items[1]
	switch k := t.items[0].text; k {
	case "user", "username", "client", "clientid":
		w := who{kind: "user"}
		if k == "client" || k == "clientid" {
			w.kind = "client"
		}
		switch {
		case v.kind == stringTerm:
			w.value = v.text
		case v.kind == tupleTerm && len(v.items) == 2 && v.items[0].text == "re" && v.items[1].kind == stringTerm:
			re, err := regexp.Compile(v.items[1].text)
			if err != nil {
				return who{}, fmt.Errorf("%s regex: %w", k, err)
			}
			w.re = re
		default:
			return who{}, fmt.Errorf(`%s: want "name" or {re, "regex"}`, k)
		}
		return w, nil
	case "ipaddr", "ipaddrs":
		vals := []term{v}
		if k == "ipaddrs" {
			if v.kind != listTerm {
				return who{}, errors.New("ipaddrs: want a list")
			}
			vals = v.items
		}
		w := who{kind: "ipaddr"}
		for _, x := range vals {
			p, err := parsePrefix(x)
			if err != nil {
				return who{}, err
			}
			w.prefixes = append(w.prefixes, p)
		}
		return w, nil
	case "and", "or":
		if v.kind != listTerm || len(v.items) == 0 {
			return who{}, fmt.Errorf("%s: want a non-empty list", k)
		}
		w := who{kind: k}
		for _, x := range v.items {
			s, err := compileWho(x)
			if err != nil {
				return who{}, err
			}
			w.subs = append(w.subs, s)
		}
		return w, nil
	default:
		return who{}, fmt.Errorf("who %q: unknown", k)
	}
}

// parsePrefix reads "1.2.3.4" or "10.0.0.0/8".
func parsePrefix(t term) (netip.Prefix, error) {
	if t.kind != stringTerm {
		return netip.Prefix{}, errors.New("ipaddr: want a string")
	}
	if strings.Contains(t.text, "/") {
		p, err := netip.ParsePrefix(t.text)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("ipaddr: %w", err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(t.text)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("ipaddr: %w", err)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// whoText writes a subject back in acl.conf syntax, for reasons.
func whoText(w who) string {
	switch w.kind {
	case "all":
		return "all"
	case "user", "client":
		if w.re != nil {
			return fmt.Sprintf("{%s, {re, %q}}", w.kind, w.re.String())
		}
		return fmt.Sprintf("{%s, %q}", w.kind, w.value)
	case "ipaddr":
		var s []string
		for _, p := range w.prefixes {
			s = append(s, strconv.Quote(p.String()))
		}
		return "{ipaddrs, [" + strings.Join(s, ", ") + "]}"
	default:
		var s []string
		for _, x := range w.subs {
			s = append(s, whoText(x))
		}
		return fmt.Sprintf("{'%s', [%s]}", w.kind, strings.Join(s, ", "))
	}
}

// actionText names an action in acl.conf syntax.
func actionText(a access.Action) string {
	if a == 0 {
		return "pubsub"
	}
	return a.String()
}
