package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheck runs mqgate check on good and bad configurations: exit 0 and
// "configuration ok", or exit 2 and a message naming the key (and the file
// line where there is one), as serve would print before listening. It
// binds nothing (a port in use is no error) and writes no state.
func TestCheck(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.WriteFile(filepath.Join(dir, "acl.conf"), []byte("{allow, {user, \"x\"}, publish\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		lines []string
		code  int
		want  []string
	}{
		{"defaults", nil, 0, []string{"configuration ok: 1 listener(s)"}},
		{"port in use is not checked", []string{"listener.tcp.external = " + busy.Addr().String()}, 0, []string{"configuration ok"}},
		{"bad value", []string{"listener.tcp.external = 127.0.0.1:0", "mqtt.max_packet_size = 12XB"}, 2,
			[]string{"mqgate.conf:2:", "mqtt.max_packet_size"}},
		{"missing certificate", []string{"listener.ssl.dev = 127.0.0.1:0", "listener.ssl.dev.certfile = " + filepath.Join(dir, "none.pem"),
			"listener.ssl.dev.keyfile = " + filepath.Join(dir, "none.key")}, 2, []string{"listener.ssl.dev", "certfile"}},
		{"bad web hook rule", []string{`web.hook.rule.client.nope.1 = {"action": "on_client_nope"}`}, 2,
			[]string{"mqgate.conf:1:", "web.hook.rule.client.nope.1", "unknown event"}},
		{"default API secret off loopback", []string{"management.listener.http = 0.0.0.0:0"}, 2,
			[]string{"management.listener.http", "default secret"}},
		{"broken acl.conf", []string{"acl.chain = file", "acl_file = " + filepath.Join(dir, "acl.conf")}, 2,
			[]string{"acl.chain", "acl.conf", "unexpected end of file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := filepath.Join(dir, "mqgate.conf")
			lines := append(tt.lines, "node.data_dir = "+data)
			if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code := run([]string{"check", "-c", conf}, nil, &out, &errb)
			got := out.String() + errb.String()
			if code != tt.code {
				t.Fatalf("exit %d, want %d; output:\n%s", code, tt.code, got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("check wrote %s (%v)", data, err)
			}
		})
	}
}
