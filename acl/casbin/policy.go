package casbin

import (
	"encoding/csv"
	"errors"
	"fmt"
	"strings"

	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"

	"github.com/mqgate/mqgate/mqtt"
)

// errReadOnly is returned by the write methods of the policy adapters that
// only load.
var errReadOnly = errors.New("policy source is read-only")

// ParsePolicy parses policy text: one rule a line, fields separated by
// commas, blank lines and lines starting with '#' skipped. Each rule is
// checked (see the package documentation for the line formats); the error
// names the line. Every returned rule starts with its type, "p" or "g".
func ParsePolicy(name, text string) ([][]string, error) {
	var rules [][]string
	var errs []error
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		r := csv.NewReader(strings.NewReader(line))
		r.TrimLeadingSpace = true
		r.LazyQuotes = true
		fields, err := r.Read()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w: %w", name, i+1, ErrPolicy, err))
			continue
		}
		for j := range fields {
			fields[j] = strings.TrimSpace(fields[j])
		}
		if err := checkRule(fields); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", name, i+1, err))
			continue
		}
		rules = append(rules, fields)
	}
	return rules, errors.Join(errs...)
}

// checkRule checks one rule, its type first: p, subject, topic filter,
// publish|subscribe|all, allow|deny; or g, member, role.
func checkRule(r []string) error {
	switch r[0] {
	case "p":
		if len(r) != 5 {
			return fmt.Errorf("%w: want p, subject, topic filter, action, effect; got %d fields", ErrPolicy, len(r))
		}
		if r[1] == "" {
			return fmt.Errorf("%w: empty subject", ErrPolicy)
		}
		// Placeholders stand for one level; check the filter with a
		// stand-in value.
		f := strings.NewReplacer("%u", "u", "%c", "c").Replace(r[2])
		if err := mqtt.ValidTopicFilter(f); err != nil {
			return fmt.Errorf("%w: topic filter %q: %w", ErrPolicy, r[2], err)
		}
		switch r[3] {
		case "publish", "subscribe", "all":
		default:
			return fmt.Errorf("%w: action %q: want publish, subscribe or all", ErrPolicy, r[3])
		}
		switch r[4] {
		case "allow", "deny":
		default:
			return fmt.Errorf("%w: effect %q: want allow or deny", ErrPolicy, r[4])
		}
	case "g":
		if len(r) != 3 {
			return fmt.Errorf("%w: want g, member, role; got %d fields", ErrPolicy, len(r))
		}
		if r[1] == "" || r[2] == "" {
			return fmt.Errorf("%w: empty member or role", ErrPolicy)
		}
		if r[1] == r[2] {
			return fmt.Errorf("%w: %q is given its own name as role", ErrPolicy, r[1])
		}
	default:
		return fmt.Errorf("%w: unknown rule type %q (want p or g)", ErrPolicy, r[0])
	}
	return nil
}

// rulesAdapter loads rules parsed by ParsePolicy into a model.
type rulesAdapter [][]string

// LoadPolicy implements persist.Adapter.
func (a rulesAdapter) LoadPolicy(m model.Model) error {
	for _, r := range a {
		if err := persist.LoadPolicyArray(r, m); err != nil {
			return fmt.Errorf("%w: %w", ErrPolicy, err)
		}
	}
	return nil
}

// SavePolicy implements persist.Adapter; policies are edited in the file.
func (rulesAdapter) SavePolicy(model.Model) error { return errReadOnly }

// AddPolicy implements persist.Adapter.
func (rulesAdapter) AddPolicy(string, string, []string) error { return errReadOnly }

// RemovePolicy implements persist.Adapter.
func (rulesAdapter) RemovePolicy(string, string, []string) error { return errReadOnly }

// RemoveFilteredPolicy implements persist.Adapter.
func (rulesAdapter) RemoveFilteredPolicy(string, string, int, ...string) error { return errReadOnly }
