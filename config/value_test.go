package config

import (
	"errors"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"500ms", 500 * time.Millisecond, true},
		{"15s", 15 * time.Second, true},
		{"1m", time.Minute, true},
		{"2h", 2 * time.Hour, true},
		{"1d", 24 * time.Hour, true},
		{"300", 300 * time.Second, true}, // bare number: seconds
		{"0", 0, true},
		{"0s", 0, true},
		{"", 0, false},
		{"s", 0, false},
		{"-1s", 0, false},
		{"1.5s", 0, false},
		{"1h30m", 0, false},
		{"15S", 0, false},
		{"15 s", 0, false},
		{"1w", 0, false},
		{"9223372036854775807d", 0, false}, // overflows
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidValue) {
			t.Errorf("parseDuration(%q): error %v does not wrap ErrInvalidValue", tt.in, err)
		}
	}
}

func TestParseBytesize(t *testing.T) {
	tests := []struct {
		in     string
		lo, hi int64
		want   int64
		ok     bool
	}{
		{"1MB", 0, 0, 1 << 20, true},
		{"64KB", 0, 0, 64 << 10, true},
		{"1GB", 0, 0, 1 << 30, true},
		{"2TB", 0, 0, 2 << 40, true},
		{"1kb", 0, 0, 1024, true},
		{"100B", 0, 0, 100, true},
		{"4096", 0, 0, 4096, true}, // bare number: bytes
		{"0", 0, 0, 0, true},
		{"12XB", 0, 0, 0, false},
		{"MB", 0, 0, 0, false},
		{"1.5MB", 0, 0, 0, false},
		{"-1KB", 0, 0, 0, false},
		{"1 MB", 0, 0, 0, false},
		{"1M", 0, 0, 0, false},
		{"9223372036854775807KB", 0, 0, 0, false}, // overflows
		{"0", 1, maxPacketSize, 0, false},
		{"256MB", 1, maxPacketSize, 0, false},
		{"268435455", 1, maxPacketSize, maxPacketSize, true},
		{"255MB", 1, maxPacketSize, 255 << 20, true},
		{"1KB", 2048, 0, 0, false},
	}
	for _, tt := range tests {
		got, err := parseBytesize(tt.in, tt.lo, tt.hi)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseBytesize(%q, %d, %d) = %v, %v; want %v, ok %v", tt.in, tt.lo, tt.hi, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseAddr(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"1883", "0.0.0.0:1883", true},
		{":1883", "0.0.0.0:1883", true},
		{"127.0.0.1:1883", "127.0.0.1:1883", true},
		{"127.0.0.1:0", "127.0.0.1:0", true},
		{"0.0.0.0:65535", "0.0.0.0:65535", true},
		{"[::1]:1883", "[::1]:1883", true},
		{"[::]:1883", "[::]:1883", true},
		{"[0:0:0:0:0:0:0:1]:1883", "[::1]:1883", true},
		{"[fe80::1%eth0]:1883", "[fe80::1%eth0]:1883", true},
		{"off", "off", true},
		{"", "", false},
		{"65536", "", false},
		{"1.2.3.4:65536", "", false},
		{"-1", "", false},
		{"1883x", "", false},
		{"1.2.3.4", "", false},
		{"1.2.3.4:", "", false},
		{"localhost:1883", "", false},
		{"::1:1883", "", false},
		{"1.2.3.256:1883", "", false},
		{"OFF", "", false},
	}
	for _, tt := range tests {
		got, err := parseAddr(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseAddr(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseValueKinds(t *testing.T) {
	tests := []struct {
		key  Key
		in   string
		want value
		ok   bool
	}{
		{Key{Kind: String}, "", value{s: ""}, true},
		{Key{Kind: String}, `{"a": "b\\c"}`, value{s: `{"a": "b\\c"}`}, true},
		{Key{Kind: Int}, "42", value{s: "42", i: 42}, true},
		{Key{Kind: Int, Min: -5}, "-5", value{s: "-5", i: -5}, true},
		{Key{Kind: Int}, "-1", value{}, false},
		{Key{Kind: Int, Max: 10}, "11", value{}, false},
		{Key{Kind: Int}, "0x10", value{}, false},
		{Key{Kind: Int}, "1e3", value{}, false},
		{Key{Kind: Bool}, "true", value{s: "true", b: true}, true},
		{Key{Kind: Bool}, "on", value{s: "on", b: true}, true},
		{Key{Kind: Bool}, "false", value{s: "false"}, true},
		{Key{Kind: Bool}, "off", value{s: "off"}, true},
		{Key{Kind: Bool}, "True", value{}, false},
		{Key{Kind: Bool}, "1", value{}, false},
		{Key{Kind: Enum, Enum: []string{"a", "b"}}, "b", value{s: "b"}, true},
		{Key{Kind: Enum, Enum: []string{"a", "b"}}, "B", value{}, false},
		{Key{Kind: Float}, "0.75", value{s: "0.75", f: 0.75}, true},
		{Key{Kind: Float}, "-2", value{s: "-2", f: -2}, true},
		{Key{Kind: Float}, "Inf", value{}, false},
		{Key{Kind: Float}, "x", value{}, false},
		{Key{Kind: Duration}, "2s", value{s: "2s", i: int64(2 * time.Second)}, true},
		{Key{Kind: Bytesize}, "2KB", value{s: "2KB", i: 2048}, true},
		{Key{Kind: Addr}, "1883", value{s: "0.0.0.0:1883"}, true},
		{Key{}, "x", value{}, false},
	}
	for _, tt := range tests {
		got, err := parseValue(&tt.key, tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("%v %q: err %v, want ok %v", tt.key.Kind, tt.in, err, tt.ok)
			continue
		}
		if tt.ok && got != tt.want {
			t.Errorf("%v %q = %+v, want %+v", tt.key.Kind, tt.in, got, tt.want)
		}
	}
}
