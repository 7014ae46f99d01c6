package docs_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqgate/mqgate/config"
	"github.com/mqgate/mqgate/internal/testutil"
)

// section returns the lines of a Markdown file from the heading that
// starts with from up to the next heading of the same level.
func section(t *testing.T, file, from string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	level := from[:strings.IndexByte(from, ' ')+1]
	var out []string
	in := false
	for l := range strings.SplitSeq(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, from):
			in = true
		case in && strings.HasPrefix(l, level):
			return out
		case in:
			out = append(out, l)
		}
	}
	if !in {
		t.Fatalf("%s: no section %q", file, from)
	}
	return out
}

// cells splits a Markdown table row into trimmed cells; nil for lines that
// are not rows or are separator rows.
func cells(l string) []string {
	if !strings.HasPrefix(l, "|") || strings.HasPrefix(l, "|---") {
		return nil
	}
	l = strings.ReplaceAll(l, `\|`, "\x00")
	var cs []string
	for c := range strings.SplitSeq(strings.Trim(l, "|"), "|") {
		cs = append(cs, strings.ReplaceAll(strings.TrimSpace(c), "\x00", "|"))
	}
	return cs
}

var codeRE = regexp.MustCompile("`([^`]+)`")

// TestMigrationKeys checks that the key tables of the EMQX 4 guide name
// every key of the schema, and no key the schema does not have.
func TestMigrationKeys(t *testing.T) {
	schema := map[string]bool{}
	for _, k := range config.Schema {
		schema[k.Name] = true
	}
	documented := map[string]bool{}
	for _, l := range section(t, "migrating-from-emqx4.md", "## Configuration keys") {
		cs := cells(l)
		if len(cs) < 2 || !strings.HasPrefix(cs[0], "`") {
			continue
		}
		for _, m := range codeRE.FindAllStringSubmatch(cs[0], -1) {
			key := m[1]
			names := []string{key}
			if strings.Contains(key, "<kind>") {
				names = nil
				for kind := range strings.SplitSeq(cs[1], ",") {
					names = append(names, strings.Replace(key, "<kind>", strings.TrimSpace(kind), 1))
				}
			}
			for _, n := range names {
				if !schema[n] {
					t.Errorf("migrating-from-emqx4.md documents %q, which is not a key of config.Schema", n)
				}
				documented[n] = true
			}
		}
	}
	for _, k := range config.Schema {
		if !documented[k.Name] {
			t.Errorf("key %q is missing from the tables of migrating-from-emqx4.md (## Configuration keys): add a row", k.Name)
		}
	}
	if len(documented) < 150 {
		t.Errorf("%d keys documented", len(documented))
	}
}

// TestMigrationAPI starts the broker and checks the API table of the EMQX
// 4 guide against the routes it serves (GET /api/v4 lists them), and that
// the paths outside /api/v4 answer 200.
func TestMigrationAPI(t *testing.T) {
	base := startBroker(t)
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v4", nil)
	req.SetBasicAuth("admin", "public")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var index struct {
		Data []struct{ Method, Path string } `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&index)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{"GET /api/v4": true}
	for _, r := range index.Data {
		served[r.Method+" /api/v4"+r.Path] = true
	}
	if len(served) < 30 {
		t.Fatalf("%d routes served", len(served))
	}
	documented := map[string]bool{}
	for _, l := range section(t, "migrating-from-emqx4.md", "## Management API") {
		cs := cells(l)
		if len(cs) < 2 || !regexp.MustCompile(`^[A-Z]+$`).MatchString(cs[0]) || cs[0] == "method" {
			continue
		}
		for _, m := range codeRE.FindAllStringSubmatch(cs[1], -1) {
			route := cs[0] + " " + m[1]
			documented[route] = true
			if strings.HasPrefix(m[1], "/api/v4") {
				if !served[route] {
					t.Errorf("migrating-from-emqx4.md lists %s, which the API does not serve", route)
				}
				continue
			}
			r, err := http.Get(base + m[1])
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
			if r.StatusCode != http.StatusOK {
				t.Errorf("%s: HTTP %d", route, r.StatusCode)
			}
		}
	}
	for r := range served {
		if !documented[r] {
			t.Errorf("the API serves %s, missing from the table of migrating-from-emqx4.md (## Management API)", r)
		}
	}
}

// startBroker runs the built mqgate with the management API on a free
// port of 127.0.0.1 and returns the API's base URL; the broker gets
// SIGTERM when the test ends and must exit 0.
func startBroker(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	free := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	conf := fmt.Sprintf("node.data_dir = data\nlistener.tcp.external = 127.0.0.1:%d\nmanagement.listener.http = 127.0.0.1:%d\n", free(), free())
	api := "http://" + regexp.MustCompile(`management.listener.http = (\S+)`).FindStringSubmatch(conf)[1]
	if err := os.WriteFile(filepath.Join(dir, "mqgate.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, "mqgate"), "serve", "-c", "mqgate.conf")
	cmd.Dir = dir
	out := &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("mqgate serve: %v\n%s", err, out)
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("mqgate serve did not stop within 20 s of SIGTERM\n%s", out)
		}
	})
	for deadline := time.Now().Add(15 * time.Second); ; {
		r, err := http.Get(api + "/readyz")
		if err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return api
			}
		}
		if time.Now().After(deadline) || len(done) > 0 {
			t.Fatalf("broker not ready: %v\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
