package config

import (
	"os"
	"testing"
)

func BenchmarkParseDeployConf(b *testing.B) {
	data, err := os.ReadFile(deployConf)
	if err != nil {
		b.Fatal(err)
	}
	environ := []string{"MQGATE__LOG__LEVEL=debug", "PATH=/bin"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("mqgate.conf", data, environ); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetInt(b *testing.B) {
	c, err := Load("", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if c.Int("mqtt.max_inflight") != 32 {
			b.Fatal("wrong value")
		}
	}
}

// BenchmarkGetIntPatternDefault reads an instance key that falls back to
// its pattern's default, the slowest lookup path.
func BenchmarkGetIntPatternDefault(b *testing.B) {
	c, err := Load("", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if c.Int("listener.tcp.external.max_connections") != 1024000 {
			b.Fatal("wrong value")
		}
	}
}
