package config

import (
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// atLine returns file contents with text at line n (1-based), after n-1
// comment lines.
func atLine(n int, text string) string {
	return strings.Repeat("# filler\n", n-1) + text + "\n"
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		environ []string
		want    []string // the error lines, in order
		is      error    // the sentinel every error wraps
	}{
		{
			name: "bad size",
			file: atLine(12, "mqtt.max_packet_size = 12XB"),
			want: []string{`mqgate.conf:12: mqtt.max_packet_size: invalid size "12XB" (want e.g. 1MB, 64KB)`},
			is:   ErrInvalidValue,
		},
		{
			name: "size above the MQTT maximum packet size",
			file: "mqtt.max_packet_size = 256MB",
			want: []string{`mqgate.conf:1: mqtt.max_packet_size: 256MB (268435456 bytes) out of range 1..268435455 bytes`},
			is:   ErrInvalidValue,
		},
		{
			name: "unknown key with suggestion",
			file: atLine(7, "mqtt.max_pakcet_size = 1MB"),
			want: []string{`mqgate.conf:7: unknown key "mqtt.max_pakcet_size" (did you mean "mqtt.max_packet_size"?)`},
			is:   ErrUnknownKey,
		},
		{
			name: "unknown key in upper case",
			file: "MQTT.MAX_PACKET_SIZE = 1MB",
			want: []string{`mqgate.conf:1: unknown key "MQTT.MAX_PACKET_SIZE" (did you mean "mqtt.max_packet_size"?)`},
			is:   ErrUnknownKey,
		},
		{
			name: "unknown key of a pattern instance",
			file: "listener.tcp.external.max_conections = 10",
			want: []string{`mqgate.conf:1: unknown key "listener.tcp.external.max_conections" (did you mean "listener.tcp.external.max_connections"?)`},
			is:   ErrUnknownKey,
		},
		{
			name: "unknown key, nothing close",
			file: "foo.bar.baz = 1",
			want: []string{`mqgate.conf:1: unknown key "foo.bar.baz"`},
			is:   ErrUnknownKey,
		},
		{
			name: "pattern name is not a key",
			file: "listener.tcp.<name> = 1883",
			want: []string{`mqgate.conf:1: unknown key "listener.tcp.<name>" (did you mean "listener.ssl.<name>"?)`},
			is:   ErrUnknownKey,
		},
		{
			name: "sub-key of an instance that is not set",
			file: "listener.tcp.extrenal.max_connections = 10",
			want: []string{`mqgate.conf:1: unknown key "listener.tcp.extrenal.max_connections" ("listener.tcp.extrenal" is not set)`},
			is:   ErrUnknownKey,
		},
		{
			name: "sub-key of an instance whose value is invalid",
			file: "listener.tcp.foo = 1.2.3:1\nlistener.tcp.foo.max_connections = 5",
			want: []string{`mqgate.conf:1: listener.tcp.foo: invalid address "1.2.3:1": "1.2.3" is not an IP address (want [IP]:port, port or off)`},
			is:   ErrInvalidValue,
		},
		{
			name: "duplicate key names both lines",
			file: "mqtt.max_inflight = 10\n\nmqtt.max_inflight = 20\n",
			want: []string{`mqgate.conf:3: duplicate key "mqtt.max_inflight" (also set at line 1)`},
			is:   ErrDuplicateKey,
		},
		{
			name: "line without =",
			file: "listener.tcp.external 1883",
			want: []string{`mqgate.conf:1: syntax error: missing "=" in "listener.tcp.external 1883"`},
			is:   ErrSyntax,
		},
		{
			name: "line without key",
			file: " = 5",
			want: []string{`mqgate.conf:1: syntax error: missing key before "=" in "= 5"`},
			is:   ErrSyntax,
		},
		{
			name: "bad boolean",
			file: "allow_anonymous = yes",
			want: []string{`mqgate.conf:1: allow_anonymous: invalid boolean "yes" (want true, false, on or off)`},
			is:   ErrInvalidValue,
		},
		{
			name: "bad enum",
			file: "log.level = verbose",
			want: []string{`mqgate.conf:1: log.level: invalid value "verbose" (want one of debug, info, warn, error)`},
			is:   ErrInvalidValue,
		},
		{
			name: "empty enum",
			file: "log.level =",
			want: []string{`mqgate.conf:1: log.level: invalid value "" (want one of debug, info, warn, error)`},
			is:   ErrInvalidValue,
		},
		{
			name: "bad duration",
			file: "mqtt.idle_timeout = 15x",
			want: []string{`mqgate.conf:1: mqtt.idle_timeout: invalid duration "15x" (want e.g. 500ms, 15s, 1m, 2h, 1d)`},
			is:   ErrInvalidValue,
		},
		{
			name: "host name instead of IP",
			file: "listener.tcp.external = localhost:1883",
			want: []string{`mqgate.conf:1: listener.tcp.external: invalid address "localhost:1883": "localhost" is not an IP address (want [IP]:port, port or off)`},
			is:   ErrInvalidValue,
		},
		{
			name: "port out of range",
			file: "listener.tcp.external = 70000",
			want: []string{`mqgate.conf:1: listener.tcp.external: invalid address "70000": port out of range 0..65535`},
			is:   ErrInvalidValue,
		},
		{
			name: "bad integer",
			file: "mqtt.max_inflight = many",
			want: []string{`mqgate.conf:1: mqtt.max_inflight: invalid integer "many"`},
			is:   ErrInvalidValue,
		},
		{
			name: "integer below minimum, no maximum",
			file: "mqtt.max_topic_levels = -1",
			want: []string{`mqgate.conf:1: mqtt.max_topic_levels: -1 below minimum 0`},
			is:   ErrInvalidValue,
		},
		{
			// [MQTT-3.1.3-5] client identifiers of 1 to 23 bytes must be
			// accepted, so the limit cannot go below 23.
			name: "client ID length below what MQTT requires",
			file: "mqtt.max_clientid_len = 22",
			want: []string{`mqgate.conf:1: mqtt.max_clientid_len: 22 out of range 23..65535`},
			is:   ErrInvalidValue,
		},
		{
			name:    "env out of range",
			environ: []string{"MQGATE__MQTT__MAX_QOS_ALLOWED=3"},
			want:    []string{`env MQGATE__MQTT__MAX_QOS_ALLOWED: mqtt.max_qos_allowed: 3 out of range 0..2`},
			is:      ErrInvalidValue,
		},
		{
			name:    "unknown env key",
			environ: []string{"MQGATE__MQTT__MAX_PAKCET_SIZE=1MB"},
			want:    []string{`env MQGATE__MQTT__MAX_PAKCET_SIZE: unknown key "mqtt.max_pakcet_size" (did you mean "mqtt.max_packet_size"?)`},
			is:      ErrUnknownKey,
		},
		{
			name:    "env prefix without key",
			environ: []string{"MQGATE__=x"},
			want:    []string{`env MQGATE__: syntax error: no key after MQGATE__`},
			is:      ErrSyntax,
		},
		{
			name:    "two variables for one key",
			environ: []string{"MQGATE__log__level=info", "MQGATE__LOG__LEVEL=debug"},
			want:    []string{`env MQGATE__log__level: duplicate key "log.level" (also set by MQGATE__LOG__LEVEL)`},
			is:      ErrDuplicateKey,
		},
		{
			name: "every error is reported, file lines first, then variables",
			file: "mqtt.max_inflight = 0\nlog.level = loud\nnope = 1\n",
			environ: []string{
				"MQGATE__MQTT__RETRY_INTERVAL=soon",
				"MQGATE__BROKER__SYS_INTERVAL=-1s",
			},
			want: []string{
				`mqgate.conf:1: mqtt.max_inflight: 0 out of range 1..65535`,
				`mqgate.conf:2: log.level: invalid value "loud" (want one of debug, info, warn, error)`,
				`mqgate.conf:3: unknown key "nope"`,
				`env MQGATE__BROKER__SYS_INTERVAL: broker.sys_interval: invalid duration "-1s" (want e.g. 500ms, 15s, 1m, 2h, 1d)`,
				`env MQGATE__MQTT__RETRY_INTERVAL: mqtt.retry_interval: invalid duration "soon" (want e.g. 500ms, 15s, 1m, 2h, 1d)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("mqgate.conf", []byte(tt.file), tt.environ)
			if err == nil {
				t.Fatalf("no error; want %q", tt.want)
			}
			if c != nil {
				t.Errorf("Config returned along with an error")
			}
			if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var ce *Error
				if !errors.As(e, &ce) {
					t.Errorf("%v is not a *Error", e)
				}
				if tt.is != nil && !errors.Is(e, tt.is) {
					t.Errorf("%v does not wrap %v", e, tt.is)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.conf")
	_, err := Load(path, nil)
	if err == nil {
		t.Fatal("no error for a missing file")
	}
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q: want a not-exist error naming %s", err, path)
	}
}

func TestPrecedence(t *testing.T) {
	tests := []struct {
		name       string
		file       string
		environ    []string
		key        string
		want       string
		wantSource string
	}{
		{"default", "", nil, "log.level", "info", "default"},
		{"file beats default", "log.level = debug", nil, "log.level", "debug", "mqgate.conf:1"},
		{"env beats default", "", []string{"MQGATE__LOG__LEVEL=warn"}, "log.level", "warn", "env MQGATE__LOG__LEVEL"},
		{"env beats file", "\nlog.level = debug", []string{"MQGATE__LOG__LEVEL=error"}, "log.level", "error", "env MQGATE__LOG__LEVEL"},
		{"env sets a listener", "", []string{"MQGATE__LISTENER__TCP__EXTERNAL=127.0.0.1:0"}, "listener.tcp.external", "127.0.0.1:0", "env MQGATE__LISTENER__TCP__EXTERNAL"},
		{"env sets a pattern instance", "listener.tcp.internal = 11883", []string{"MQGATE__LISTENER__TCP__INTERNAL__MAX_CONNECTIONS=7"}, "listener.tcp.internal.max_connections", "7", "env MQGATE__LISTENER__TCP__INTERNAL__MAX_CONNECTIONS"},
		{"pattern default", "listener.tcp.internal = 11883", nil, "listener.tcp.internal.max_connections", "1024000", "default"},
		{"env value keeps its =", "", []string{"MQGATE__NODE__NAME=a=b"}, "node.name", "a=b", "env MQGATE__NODE__NAME"},
		{"other variables ignored", "", []string{"PATH=/bin", "MQGATE_LOG__LEVEL=loud", "MQGATE=1", "junk"}, "log.level", "info", "default"},
		{"empty string value", "node.name =", nil, "node.name", "", "mqgate.conf:1"},
		{"value with = and #", "node.name = a=b # c", nil, "node.name", "a=b # c", "mqgate.conf:1"},
		{"indented comment", "  # log.level = debug", nil, "log.level", "info", "default"},
		{"BOM and CRLF", "\uFEFFlog.level = debug\r\nlog.format = json\r\n", nil, "log.level", "debug", "mqgate.conf:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("mqgate.conf", []byte(tt.file), tt.environ)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.String(tt.key); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.key, got, tt.want)
			}
			if got := c.Source(tt.key); got != tt.wantSource {
				t.Errorf("Source(%s) = %q, want %q", tt.key, got, tt.wantSource)
			}
		})
	}
}

func TestTypedGetters(t *testing.T) {
	file := `
listener.tcp.internal = 11883
listener.tcp.internal.max_connections = 500
mqtt.max_packet_size = 64KB
mqtt.retain_available = off
mqtt.retry_interval = 500ms
mqtt.session_expiry_interval = 1d
`
	c, err := Parse("mqgate.conf", []byte(file), []string{"MQGATE__MQTT__MAX_QUEUED_BYTES=2MB"})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"Int instance", c.Int("listener.tcp.internal.max_connections"), int64(500)},
		{"Int pattern default", c.Int("listener.tcp.external.max_connections"), int64(1024000)},
		{"Int pattern name", c.Int("listener.tcp.<name>.max_connections"), int64(1024000)},
		{"Int", c.Int("mqtt.max_qos_allowed"), int64(2)},
		{"Bytes file", c.Bytes("mqtt.max_packet_size"), int64(64 << 10)},
		{"Bytes env", c.Bytes("mqtt.max_queued_bytes"), int64(2 << 20)},
		{"Bytes default", c.Bytes("retainer.max_payload_size"), int64(1 << 20)},
		{"Bool off", c.Bool("mqtt.retain_available"), false},
		{"Bool default", c.Bool("allow_anonymous"), true},
		{"Duration ms", c.Duration("mqtt.retry_interval"), 500 * time.Millisecond},
		{"Duration day", c.Duration("mqtt.session_expiry_interval"), 24 * time.Hour},
		{"Duration bare seconds", c.Duration("mqtt.max_session_expiry"), time.Duration(0)},
		{"Duration default", c.Duration("mqtt.await_rel_timeout"), 300 * time.Second},
		{"String enum", c.String("broker.shared_subscription_strategy"), "random"},
		{"String bare port", c.String("listener.tcp.internal"), "0.0.0.0:11883"},
		{"String default instance", c.String("listener.tcp.external"), "127.0.0.1:1883"},
		{"String pattern default", c.String("listener.tcp.nope"), "off"},
		{"Instances", c.Instances("listener.tcp.<name>"), []string{"external", "internal"}},
	}
	for _, ck := range checks {
		if s, ok := ck.want.([]string); ok {
			if !slices.Equal(ck.got.([]string), s) {
				t.Errorf("%s: got %v, want %v", ck.name, ck.got, ck.want)
			}
			continue
		}
		if ck.got != ck.want {
			t.Errorf("%s: got %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

func TestInstances(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		environ []string
		want    []string
	}{
		{"defaults", "", nil, []string{"external"}},
		{"added", "listener.tcp.internal = 127.0.0.1:11883\nlistener.tcp.a-1 = 1884", nil, []string{"a-1", "external", "internal"}},
		{"off excluded", "listener.tcp.spare = off\nlistener.tcp.spare.max_connections = 5", nil, []string{"external"}},
		{"default turned off by env", "listener.tcp.internal = 11883", []string{"MQGATE__LISTENER__TCP__EXTERNAL=off"}, []string{"internal"}},
		{"all off", "listener.tcp.external = off", nil, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("mqgate.conf", []byte(tt.file), tt.environ)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Instances("listener.tcp.<name>"); !slices.Equal(got, tt.want) {
				t.Errorf("Instances = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestGetterPanics(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func()
	}{
		{"unknown key", func() { c.String("no.such.key") }},
		{"unknown source", func() { c.Source("no.such.key") }},
		{"Int of an enum", func() { c.Int("log.level") }},
		{"Bytes of an int", func() { c.Bytes("mqtt.max_inflight") }},
		{"Duration of a size", func() { c.Duration("mqtt.max_packet_size") }},
		{"Bool of an int", func() { c.Bool("mqtt.max_qos_allowed") }},
		{"Float of an int", func() { c.Float("mqtt.max_qos_allowed") }},
		{"Instances of a plain key", func() { c.Instances("listener.tcp.external") }},
		{"Instances of an unknown pattern", func() { c.Instances("listener.quic.<name>") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.call()
		})
	}
}

// hookSchema declares webhook-style keys: a <...> tail whose values are JSON.
var hookSchema = []Key{
	{Name: "web.hook.url", Kind: String, Default: "http://127.0.0.1:8080", Doc: "Endpoint."},
	{Name: "web.hook.rule.<...>", Kind: String, Default: "", Doc: "A rule: event, number, JSON action."},
	{Name: "web.hook.ratio", Kind: Float, Default: "0.5", Doc: "A ratio."},
}

func TestTailPatternValuesVerbatim(t *testing.T) {
	rule1 := `{"action": "on_client_connected", "path": "C:\\dir\n", "note": "#1 a=b"}`
	rule2 := `{"action": "on_message_publish", "topic": "a/#"}`
	file := "web.hook.rule.client.connected.1 = " + rule1 + "\n" +
		"# web.hook.rule.client.connected.2 = {\"action\": \"x\"}\n" +
		"web.hook.rule.message.publish.1 =  " + rule2 + "  \n" +
		"web.hook.ratio = 0.25\n"
	c, err := parse(hookSchema, "hooks.conf", []byte(file), []string{"MQGATE__WEB__HOOK__RULE__CLIENT__DISCONNECTED__1={\"action\": \"on_client_disconnected\"}"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.String("web.hook.rule.client.connected.1"); got != rule1 {
		t.Errorf("rule 1 = %s, want %s", got, rule1)
	}
	if got := c.String("web.hook.rule.message.publish.1"); got != rule2 {
		t.Errorf("rule 2 = %s, want %s", got, rule2)
	}
	if got := c.Float("web.hook.ratio"); got != 0.25 {
		t.Errorf("ratio = %v, want 0.25", got)
	}
	want := []string{"client.connected.1", "client.disconnected.1", "message.publish.1"}
	if got := c.Instances("web.hook.rule.<...>"); !slices.Equal(got, want) {
		t.Errorf("Instances = %q, want %q", got, want)
	}
	if _, err := parse(hookSchema, "hooks.conf", []byte("web.hook.rule = {}"), nil); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("web.hook.rule without a tail: err %v, want %v", err, ErrUnknownKey)
	}
	if _, err := parse(hookSchema, "hooks.conf", []byte("web.hook.ratio = NaN"), nil); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("ratio NaN: err %v, want %v", err, ErrInvalidValue)
	}
}
