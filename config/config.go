// Package config reads mqgate's configuration: an EMQX-4-style file of
// "key = value" lines, checked against a schema of known keys (Schema), with
// defaults embedded in the binary and overrides from MQGATE__* environment
// variables. Environment beats file, file beats defaults.
//
// Keys are stored flat, because a key can be both a value and a parent
// (listener.tcp.external and listener.tcp.external.max_connections). Load
// validates everything and reports every problem at once, each naming its
// key and where it came from, so the typed getters of Config never fail on
// user input; they panic only on a key the schema does not know, which is a
// programming error.
package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix starts the name of an environment variable that overrides a key:
// MQGATE__MQTT__MAX_PACKET_SIZE overrides mqtt.max_packet_size.
const EnvPrefix = "MQGATE__"

// sourceDefault is the Source of a value no file or variable set.
const sourceDefault = "default"

// Config is a loaded, validated configuration. It is immutable and safe for
// concurrent use.
type Config struct {
	x *index
	// vals holds every concrete key that has a value: the non-pattern schema
	// keys with their defaults, and every key set by the file or environment.
	vals map[string]entry
	// named holds the keys the file or environment names, valid or not; it
	// is used only while parsing.
	named map[string]struct{}
}

// entry is the value of one concrete key.
type entry struct {
	key    int    // index of its schema key
	val    value  // parsed value
	source string // "mqgate.conf:12", "env MQGATE__X" or "default"
}

// Load reads the config file at path, applies the overrides found in environ
// (entries like "MQGATE__LOG__LEVEL=debug", as returned by os.Environ) and
// validates the result. An empty path means defaults plus environment only; a
// missing file is an error.
func Load(path string, environ []string) (*Config, error) {
	var data []byte
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	return Parse(path, data, environ)
}

// Parse is Load for file contents already in memory; name is the file name
// used in error messages. All problems are reported, joined with errors.Join;
// each is an *Error.
func Parse(name string, data []byte, environ []string) (*Config, error) {
	return parse(Schema, name, data, environ)
}

// parse builds a Config from schema, the file data (named name) and the
// environment.
func parse(schema []Key, name string, data []byte, environ []string) (*Config, error) {
	x, err := newIndex(schema)
	if err != nil {
		return nil, err
	}
	c := &Config{x: x, vals: make(map[string]entry, len(schema)), named: map[string]struct{}{}}
	for i := range schema {
		if !strings.Contains(schema[i].Name, "<") {
			c.vals[schema[i].Name] = entry{key: i, val: x.defaults[i], source: sourceDefault}
		}
	}
	var errs []error
	errs = c.parseFile(name, data, errs)
	errs = c.parseEnv(environ, errs)
	errs = c.checkInstances(errs)
	c.named = nil
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// parseFile applies the key = value lines of data and appends the problems
// found to errs.
func (c *Config) parseFile(name string, data []byte, errs []error) []error {
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	seen := map[string]int{} // key -> line that set it
	for n, line := range strings.Split(string(data), "\n") {
		n++
		src := name + ":" + strconv.Itoa(n)
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		// Split at the first "=": the value may contain "=" and "#" (JSON).
		key, raw, ok := strings.Cut(line, "=")
		key, raw = strings.TrimSpace(key), strings.TrimSpace(raw)
		switch {
		case !ok:
			errs = append(errs, &Error{Source: src, Err: detailf(ErrSyntax, "syntax error: missing \"=\" in %q", line)})
			continue
		case key == "":
			errs = append(errs, &Error{Source: src, Err: detailf(ErrSyntax, "syntax error: missing key before \"=\" in %q", line)})
			continue
		}
		if first, dup := seen[key]; dup {
			errs = append(errs, &Error{Source: src, Err: detailf(ErrDuplicateKey, "duplicate key %q (also set at line %d)", key, first)})
			continue
		}
		seen[key] = n
		if err := c.set(key, raw, src); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// parseEnv applies the MQGATE__* variables of environ and appends the
// problems found to errs, in variable-name order.
func (c *Config) parseEnv(environ []string, errs []error) []error {
	type variable struct{ name, key, raw string }
	var vars []variable
	for _, kv := range environ {
		name, raw, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		key := strings.ReplaceAll(strings.ToLower(name[len(EnvPrefix):]), "__", ".")
		vars = append(vars, variable{name: name, key: key, raw: strings.TrimSpace(raw)})
	}
	slices.SortStableFunc(vars, func(a, b variable) int { return cmp.Compare(a.name, b.name) })
	seen := map[string]string{} // key -> variable that set it
	for _, v := range vars {
		src := "env " + v.name
		if v.key == "" {
			errs = append(errs, &Error{Source: src, Err: detailf(ErrSyntax, "syntax error: no key after %s", EnvPrefix)})
			continue
		}
		if first, dup := seen[v.key]; dup {
			errs = append(errs, &Error{Source: src, Err: detailf(ErrDuplicateKey, "duplicate key %q (also set by %s)", v.key, first)})
			continue
		}
		seen[v.key] = v.name
		if err := c.set(v.key, v.raw, src); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// set validates raw as the value of the concrete key and stores it, with
// source src.
func (c *Config) set(key, raw, src string) error {
	segs := strings.Split(key, ".")
	i := -1
	if validKey(segs) { // also keeps pattern names like listener.tcp.<name> out
		if j, ok := c.x.lookup(key); ok {
			i = j
		}
	}
	if i < 0 {
		if s := c.x.suggest(key); s != "" {
			return &Error{Source: src, Err: detailf(ErrUnknownKey, "unknown key %q (did you mean %q?)", key, s)}
		}
		return &Error{Source: src, Err: detailf(ErrUnknownKey, "unknown key %q", key)}
	}
	c.named[key] = struct{}{}
	v, err := parseValue(&c.x.keys[i], raw)
	if err != nil {
		return &Error{Source: src, Key: key, Err: err}
	}
	c.vals[key] = entry{key: i, val: v, source: src}
	return nil
}

// checkInstances reports keys set for an instance that has no value of its
// own: listener.tcp.extrenal.max_connections when listener.tcp.extrenal is
// not set (a typo would otherwise be silently ignored). It appends the
// problems to errs in key order.
func (c *Config) checkInstances(errs []error) []error {
	var bad []error
	for key, e := range c.vals {
		name := c.x.keys[e.key].Name
		if e.source == sourceDefault || !strings.Contains(name, "<") {
			continue
		}
		ps, ks := splitName(name), strings.Split(key, ".")
		for i := 0; i < len(ps)-1; i++ {
			if segClass(ps[i]) != segName {
				continue
			}
			if _, ok := c.x.byName[strings.Join(ps[:i+1], ".")]; !ok {
				continue
			}
			parent := strings.Join(ks[:i+1], ".")
			_, named := c.named[parent] // an invalid value is reported already
			if _, ok := c.vals[parent]; !ok && !named {
				bad = append(bad, &Error{Source: e.source, Err: detailf(ErrUnknownKey, "unknown key %q (%q is not set)", key, parent)})
				break
			}
		}
	}
	slices.SortFunc(bad, func(a, b error) int { return cmp.Compare(a.Error(), b.Error()) })
	return append(errs, bad...)
}

// get returns the entry of the concrete key, or of the pattern key it is an
// instance of. It panics if the schema does not know key.
func (c *Config) get(key string, want ...Kind) entry {
	e, ok := c.vals[key]
	if !ok {
		i, found := c.x.lookup(key)
		if !found {
			panic(fmt.Sprintf("config: key %q is not in the schema", key))
		}
		e = entry{key: i, val: c.x.defaults[i], source: sourceDefault}
	}
	if k := c.x.keys[e.key].Kind; len(want) > 0 && !slices.Contains(want, k) {
		panic(fmt.Sprintf("config: key %q has kind %v, not %v", key, k, want[0]))
	}
	return e
}

// String returns the value of key as text, for a key of any kind: an Addr as
// host:port or "off", other kinds as written. It panics if the schema does
// not know key.
func (c *Config) String(key string) string { return c.get(key).val.s }

// Int returns the value of the Int key. It panics if the schema does not know
// key or key is not an Int.
func (c *Config) Int(key string) int64 { return c.get(key, Int).val.i }

// Bool returns the value of the Bool key. It panics if the schema does not
// know key or key is not a Bool.
func (c *Config) Bool(key string) bool { return c.get(key, Bool).val.b }

// Duration returns the value of the Duration key. It panics if the schema
// does not know key or key is not a Duration.
func (c *Config) Duration(key string) time.Duration {
	return time.Duration(c.get(key, Duration).val.i)
}

// Bytes returns the value of the Bytesize key, in bytes. It panics if the
// schema does not know key or key is not a Bytesize.
func (c *Config) Bytes(key string) int64 { return c.get(key, Bytesize).val.i }

// Float returns the value of the Float key. It panics if the schema does not
// know key or key is not a Float.
func (c *Config) Float(key string) float64 { return c.get(key, Float).val.f }

// Source returns where the value of key came from: "mqgate.conf:12",
// "env MQGATE__X", or "default". It panics if the schema does not know key.
func (c *Config) Source(key string) string { return c.get(key).source }

// Instances returns, sorted, the names of the instances of the schema
// pattern key that have a value (defaults included) other than "off":
// Instances("listener.tcp.<name>") returns ["external", "internal"] when
// both listeners are set. The parts of a key matched by several wildcard
// segments, or by <...>, are joined with ".". It panics if pattern is not a
// pattern key of the schema.
func (c *Config) Instances(pattern string) []string {
	i, ok := c.x.byName[pattern]
	if !ok || !strings.Contains(pattern, "<") {
		panic(fmt.Sprintf("config: %q is not a pattern key of the schema", pattern))
	}
	ps := splitName(c.x.keys[i].Name)
	names := []string{}
	for key, e := range c.vals {
		if e.val.s == "off" {
			continue
		}
		if ks := strings.Split(key, "."); matchSegments(ps, ks) {
			names = append(names, captures(ps, ks))
		}
	}
	slices.Sort(names)
	return names
}
