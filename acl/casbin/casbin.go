// Package casbin is the Casbin backend of the authorization chain. Policies
// (p, <subject>, <topic filter>, <publish|subscribe|all>, <allow|deny>) and
// roles (g, <username or client:<clientid>>, <role>) come from a CSV file or
// from a PostgreSQL table, and are matched by an MQTT-aware function
// registered with the enforcer: wildcards, $ topics, %u/%c placeholders and
// filter-against-filter checks for SUBSCRIBE. Deny overrides allow.
//
// Reloads never stop service: a new policy is loaded into a fresh enforcer,
// validated and swapped in atomically; a policy that fails to load or
// validate leaves the last good one in force and is reported by Health.
package casbin

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cb "github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/acl"
)

// ErrPolicy is wrapped by every error about the content of a model or
// policy.
var ErrPolicy = errors.New("invalid policy")

// clientPrefix marks a client ID subject: "client:<clientid>".
const clientPrefix = "client:"

// Options configure a Backend.
type Options struct {
	// ModelPath is the model file; when empty, Model holds the model text.
	ModelPath string
	Model     string
	// PolicyPath is the policy CSV file; when empty and Adapter is nil,
	// Policy holds the policy text.
	PolicyPath string
	Policy     string
	// Adapter, when set, is where policies come from (e.g. PostgreSQL)
	// instead of PolicyPath or Policy.
	Adapter persist.Adapter
	// Watch reloads when the files change (their directories are watched,
	// so that editors and Kubernetes ConfigMaps that replace files are
	// seen). Only for ModelPath and PolicyPath.
	Watch bool
	// Watcher, when set, triggers a reload when it reports an update (e.g.
	// the PostgreSQL LISTEN/NOTIFY watcher). Close closes it.
	Watcher persist.Watcher
	// Debounce is how long to wait after a change before reloading, so that
	// a burst of file events gives one reload; 0 means 100ms.
	Debounce time.Duration
	// OnReload is called after each reload that changed the policy; the
	// chain passes its Generation's Bump.
	OnReload func()
	// Logger receives reload results; nil discards them.
	Logger *slog.Logger
}

// Stats are the backend's reload counters.
type Stats struct {
	Reloads      uint64    // successful reloads that changed the policy
	ReloadErrors uint64    // reloads that failed; the last good policy stayed
	Rules        int       // p and g rules in force
	LoadedAt     time.Time // when the policy in force was loaded
	LastError    string    // error of the last reload attempt, "" after a success
}

// Backend answers authorization requests from a Casbin enforcer.
type Backend struct {
	opts Options
	log  *slog.Logger

	cur atomic.Pointer[state]

	reloadMu sync.Mutex // serialises reloads

	mu        sync.Mutex // guards the fields below
	lastErr   error
	reloads   uint64
	reloadErr uint64

	debounce  *acl.Debouncer
	stopWatch func()
}

// state is one loaded policy.
type state struct {
	e        *cb.SyncedEnforcer
	sig      [32]byte // hash of the model and policy text; zero for adapters
	rules    int
	loadedAt time.Time
}

var _ access.Authorizer = (*Backend)(nil)

// New loads and validates the model and policy and, with opts.Watch or
// opts.Watcher, starts watching for changes. Close stops the watching.
func New(opts Options) (*Backend, error) {
	if opts.ModelPath == "" && opts.Model == "" {
		return nil, fmt.Errorf("acl/casbin: a model is required: %w", acl.ErrConfig)
	}
	if opts.Adapter == nil && opts.PolicyPath == "" && opts.Policy == "" {
		return nil, fmt.Errorf("acl/casbin: a policy is required: %w", acl.ErrConfig)
	}
	if opts.Watch && opts.ModelPath == "" && opts.PolicyPath == "" {
		return nil, fmt.Errorf("acl/casbin: watch needs a model or policy file: %w", acl.ErrConfig)
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	b := &Backend{opts: opts, log: opts.Logger}
	b.debounce = acl.NewDebouncer(opts.Debounce, func() {
		_ = b.Reload() // the error is logged and kept for Health
	})
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.log = b.log.With("component", "acl", "authorizer", "casbin")
	st, err := b.load()
	if err != nil {
		return nil, err
	}
	st.loadedAt = time.Now()
	b.cur.Store(st)
	if opts.Watch {
		stop, err := acl.WatchFiles([]string{opts.ModelPath, opts.PolicyPath}, b.debounce.Trigger, b.log)
		if err != nil {
			return nil, err
		}
		b.stopWatch = stop
	}
	if opts.Watcher != nil {
		if err := opts.Watcher.SetUpdateCallback(func(string) { b.debounce.Trigger() }); err != nil {
			b.Close()
			return nil, fmt.Errorf("acl/casbin: watcher: %w", err)
		}
	}
	return b, nil
}

// Authorize matches req against the policy in force. It answers Allow when
// an allow rule applies and no deny rule does, Deny when a deny rule
// applies, and Ignore when no rule applies. Reason is the deciding rule.
func (b *Backend) Authorize(_ context.Context, req access.Request) access.Decision {
	st := b.cur.Load()
	user := req.Username
	if strings.HasPrefix(user, clientPrefix) {
		// A username must not pass for a client ID subject.
		user = ""
	}
	ok, explain, err := st.e.EnforceEx(user, clientPrefix+req.ClientID, acl.RequestTopic(req), req.Action.String())
	switch {
	case err != nil:
		return access.Decision{Verdict: access.Ignore, Source: "casbin", Reason: "error: " + err.Error()}
	case ok:
		return access.Decision{Verdict: access.Allow, Source: "casbin", Reason: strings.Join(explain, ", ")}
	case len(explain) > 0:
		return access.Decision{Verdict: access.Deny, Source: "casbin", Reason: strings.Join(explain, ", ")}
	}
	return access.Decision{Verdict: access.Ignore, Source: "casbin", Reason: "no rule matched"}
}

// Reload loads the model and policy again. On success the new policy is in
// force for every request that starts after Reload returns, and OnReload is
// called if it differs from the old one. On error the old policy stays and
// the error is kept for Health.
func (b *Backend) Reload() error {
	b.reloadMu.Lock()
	defer b.reloadMu.Unlock()
	st, err := b.load()
	b.mu.Lock()
	b.lastErr = err
	if err != nil {
		b.reloadErr++
		b.mu.Unlock()
		b.log.Error("policy reload failed, keeping the last good policy", "err", err)
		return err
	}
	old := b.cur.Load()
	if st.sig != ([32]byte{}) && st.sig == old.sig {
		b.mu.Unlock()
		return nil
	}
	b.reloads++
	b.mu.Unlock()
	st.loadedAt = time.Now()
	b.cur.Store(st)
	if b.opts.OnReload != nil {
		b.opts.OnReload()
	}
	b.log.Info("policy reloaded", "rules", st.rules)
	return nil
}

// Health returns the error of the last reload attempt, or nil when the
// policy in force is the latest one.
func (b *Backend) Health() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lastErr != nil {
		return fmt.Errorf("acl/casbin: serving the last good policy: %w", b.lastErr)
	}
	return nil
}

// Stats returns the reload counters.
func (b *Backend) Stats() Stats {
	st := b.cur.Load()
	b.mu.Lock()
	defer b.mu.Unlock()
	s := Stats{Reloads: b.reloads, ReloadErrors: b.reloadErr, Rules: st.rules, LoadedAt: st.loadedAt}
	if b.lastErr != nil {
		s.LastError = b.lastErr.Error()
	}
	return s
}

// Metrics returns the counters under their metric names.
func (b *Backend) Metrics() map[string]uint64 {
	s := b.Stats()
	ok := uint64(1)
	if s.LastError != "" {
		ok = 0
	}
	return map[string]uint64{
		"acl.casbin.reloads":       s.Reloads,
		"acl.casbin.reload_errors": s.ReloadErrors,
		"acl.casbin.rules":         uint64(s.Rules),
		"acl.casbin.policy_ok":     ok,
	}
}

// Close stops watching for changes. The backend keeps answering with the
// policy in force.
func (b *Backend) Close() error {
	if b.stopWatch != nil {
		b.stopWatch()
	}
	if b.opts.Watcher != nil {
		b.opts.Watcher.Close()
	}
	b.debounce.Stop()
	return nil
}

// load builds and validates a fresh enforcer from the current sources.
func (b *Backend) load() (*state, error) {
	mtext := b.opts.Model
	mname := "model"
	if b.opts.ModelPath != "" {
		data, err := os.ReadFile(b.opts.ModelPath)
		if err != nil {
			return nil, fmt.Errorf("acl/casbin: model: %w", err)
		}
		mtext, mname = string(data), b.opts.ModelPath
	}
	m, err := model.NewModelFromString(mtext)
	if err != nil {
		return nil, fmt.Errorf("acl/casbin: %s: %w: %w", mname, ErrPolicy, err)
	}
	h := sha256.New()
	h.Write([]byte(mtext))
	h.Write([]byte{0})
	var adapter persist.Adapter
	var sig [32]byte
	switch {
	case b.opts.Adapter != nil:
		adapter = b.opts.Adapter
	default:
		ptext, pname := b.opts.Policy, "policy"
		if b.opts.PolicyPath != "" {
			data, err := os.ReadFile(b.opts.PolicyPath)
			if err != nil {
				return nil, fmt.Errorf("acl/casbin: policy: %w", err)
			}
			ptext, pname = string(data), b.opts.PolicyPath
		}
		rules, err := ParsePolicy(pname, ptext)
		if err != nil {
			return nil, fmt.Errorf("acl/casbin: %w", err)
		}
		adapter = rulesAdapter(rules)
		h.Write([]byte(ptext))
		copy(sig[:], h.Sum(nil))
	}
	e, err := cb.NewSyncedEnforcer(m, adapter)
	if err != nil {
		return nil, fmt.Errorf("acl/casbin: %w: %w", ErrPolicy, err)
	}
	e.AddFunction("mqttMatch", mqttMatch)
	n, err := validate(e)
	if err != nil {
		return nil, fmt.Errorf("acl/casbin: %w", err)
	}
	return &state{e: e, sig: sig, rules: n}, nil
}

// validate checks every rule an enforcer holds (the adapter may not have)
// and that the model evaluates; it returns the number of rules.
func validate(e *cb.SyncedEnforcer) (int, error) {
	p, err := e.GetPolicy()
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	for _, r := range p {
		if err := checkRule(append([]string{"p"}, r...)); err != nil {
			return 0, err
		}
	}
	g, err := e.GetGroupingPolicy()
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	for _, r := range g {
		if err := checkRule(append([]string{"g"}, r...)); err != nil {
			return 0, err
		}
	}
	// A model whose matcher does not compile or names an unknown function
	// fails here rather than on the first client request.
	if _, err := e.Enforce("", clientPrefix, "a", "publish"); err != nil {
		return 0, fmt.Errorf("%w: model: %w", ErrPolicy, err)
	}
	return len(p) + len(g), nil
}

// mqttMatch is the matcher function registered with the enforcer as
// mqttMatch(r.action, r.topic, p.topic, p.eft, r.user, r.client). It
// expands %u and %c in the policy topic, then applies acl.RuleApplies:
// topic against filter for publish, filter covered by the rule (or, for a
// deny rule, overlapping it) for subscribe.
func mqttMatch(args ...any) (any, error) {
	if len(args) != 6 {
		return false, fmt.Errorf("mqttMatch: want 6 arguments (action, topic, rule, effect, user, client), got %d", len(args))
	}
	var s [6]string
	for i, a := range args {
		v, ok := a.(string)
		if !ok {
			return false, fmt.Errorf("mqttMatch: argument %d is %T, not a string", i+1, a)
		}
		s[i] = v
	}
	action := access.Publish
	if s[0] == "subscribe" {
		action = access.Subscribe
	}
	rule, ok := acl.Expand(s[2], s[4], strings.TrimPrefix(s[5], clientPrefix))
	if !ok {
		return false, nil
	}
	return acl.RuleApplies(action, s[3] == "deny", rule, s[1]), nil
}
