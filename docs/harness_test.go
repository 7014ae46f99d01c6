package docs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMatchOutput(t *testing.T) {
	got := "request:  publish \"a\"\nverdict:  deny\ndecided:  casbin (x)\n01ABC message.publish status=404\n3 dead letters\n"
	for _, c := range []struct {
		want string
		ok   bool
	}{
		{"verdict: deny", true}, // blanks squeezed
		{"verdict:  deny\ndecided:  casbin (x)", true},
		{"decided:  casbin (x)\nverdict:  deny", false}, // order matters
		{"...\n3 dead letters", true},
		{"... message.publish status=404", true}, // ... inside a line
		{"... message.publish status=500", false},
		{"verdict: allow", false},
		{"verdict:", false}, // whole lines, not prefixes
		{"", true},
	} {
		if err := matchOutput(c.want, got); (err == nil) != c.ok {
			t.Errorf("matchOutput(%q): %v, want ok=%v", c.want, err, c.ok)
		}
	}
}

func TestParseBlocks(t *testing.T) {
	md := "# t\n\n```sh tested exit=3\nfalse\n```\n\n```output\nx\n```\n\ntext\n\n```output\nnot attached\n```\n\n" +
		stopMarker + "\n\n```conf tested file=a.conf\nk = v\n```\n\n```sh untested\nmake test\n```\n"
	p := filepath.Join(t.TempDir(), "g.md")
	if err := os.WriteFile(p, []byte(md), 0o600); err != nil {
		t.Fatal(err)
	}
	bs, err := parseBlocks(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 5 {
		t.Fatalf("%d blocks: %v", len(bs), bs)
	}
	if b := bs[0]; !b.tested || b.lang != "sh" || b.attrs["exit"] != "3" || b.body != "false\n" || b.output == nil || b.output.body != "x\n" {
		t.Errorf("first block: %+v", b)
	}
	if b := bs[1]; b.lang != "output" || b.tested {
		t.Errorf("an output block after text is a block of its own: %+v", b)
	}
	if b := bs[2]; b.lang != "stop" || !b.tested {
		t.Errorf("stop marker: %+v", b)
	}
	if b := bs[3]; b.attrs["file"] != "a.conf" || b.line != 19 {
		t.Errorf("conf block: %+v", b)
	}
	if _, ok := bs[4].attrs["untested"]; !ok || bs[4].tested {
		t.Errorf("untested block: %+v", bs[4])
	}
	if err := os.WriteFile(p, []byte("  ```sh tested\nx\n  ```\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := parseBlocks(p); err == nil {
		t.Error("an indented tested block was accepted")
	}
}

func TestPorts(t *testing.T) {
	p := newPorts(t)
	in := "listener.tcp.external = 127.0.0.1:1883 # not 11883x or 18830; 8081 and 5432"
	out := p.apply(in)
	if out == in || p.revert(out) != in {
		t.Errorf("apply %q, revert %q", out, p.revert(out))
	}
	for _, w := range []string{":1883 ", " 8081 "} {
		if strings.Contains(out, w) {
			t.Errorf("%q still holds %q", out, w)
		}
	}
	if !strings.Contains(out, "5432") {
		t.Errorf("5432 mapped without a database: %q", out)
	}
}
