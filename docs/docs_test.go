package docs_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqgate/mqgate/config"
	"github.com/mqgate/mqgate/internal/testutil"
	"go.uber.org/goleak"
)

// binDir holds the mqgate and webhook-receiver binaries built by
// TestMain; the tested shell blocks find them first in PATH.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mqgate-docs-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	// The broker, and the example web hook receiver of webhooks.md.
	build := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "./cmd/mqgate", "./docs/examples/webhook-receiver")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	// A throwaway PostgreSQL for the guides that use one (see postgresFor).
	code := testutil.RunWithPostgres(m)
	_ = os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// block is one fenced code block of a guide.
type block struct {
	file   string
	line   int               // line of the opening fence
	lang   string            // first word of the info string
	tested bool              // the info string has the word "tested"
	attrs  map[string]string // the key=value words of the info string (background has "")
	body   string
	output *block // the ```output block right after a tested sh block
}

func (b *block) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// stopMarker, alone on a line, stops the background processes started so
// far (SIGTERM; each must exit 0), where the guide tells the reader to stop
// the broker.
const stopMarker = "<!-- tested: stop -->"

// parseBlocks reads the fenced blocks of a Markdown file. A block whose
// info string is "output" directly after a block (blank lines between
// allowed) becomes that block's expected output.
func parseBlocks(path string) ([]*block, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var (
		blocks    []*block
		cur       *block
		body      strings.Builder
		lastEnd   = -10 // line of the closing fence of the last block
		lastBlock *block
	)
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		n := i + 1
		if cur == nil {
			if strings.TrimSpace(l) == stopMarker {
				blocks = append(blocks, &block{file: filepath.Base(path), line: n, lang: "stop", tested: true})
				lastEnd = -10
				continue
			}
			info, ok := strings.CutPrefix(l, "```")
			if t := strings.TrimSpace(l); !ok && strings.HasPrefix(t, "```") && strings.Contains(t, "tested") {
				return nil, fmt.Errorf("%s:%d: a tested block must start at the beginning of the line", filepath.Base(path), n)
			}
			if !ok {
				if strings.TrimSpace(l) != "" {
					lastEnd = -10
				}
				continue
			}
			words := strings.Fields(info)
			cur = &block{file: filepath.Base(path), line: n, attrs: map[string]string{}}
			for j, w := range words {
				switch {
				case j == 0:
					cur.lang = w
				case w == "tested":
					cur.tested = true
				default:
					k, v, _ := strings.Cut(w, "=")
					cur.attrs[k] = v
				}
			}
			body.Reset()
			continue
		}
		if strings.HasPrefix(l, "```") {
			cur.body = body.String()
			if cur.lang == "output" && lastBlock != nil && lastEnd >= 0 {
				if lastBlock.output != nil {
					return nil, fmt.Errorf("%s: two output blocks", cur)
				}
				lastBlock.output = cur
			} else {
				blocks = append(blocks, cur)
				lastBlock = cur
			}
			lastEnd = n
			cur = nil
			continue
		}
		body.WriteString(l)
		body.WriteByte('\n')
	}
	if cur != nil {
		return nil, fmt.Errorf("%s: unclosed block", cur)
	}
	return blocks, nil
}

// wellKnownPorts are the ports the guides use. Each guide runs with each
// of them replaced by a free port, so that the guides can show the real
// defaults while their test runs next to anything else.
var wellKnownPorts = []string{"1883", "8883", "8083", "8084", "8081", "8090", "11883", "9000"}

// portRE matches the well-known ports and PostgreSQL's 5432, which a guide
// maps only when it uses the database (postgresFor).
var portRE = regexp.MustCompile(`\b(` + strings.Join(wellKnownPorts, "|") + `|5432)\b`)

// ports maps the well-known ports to free ones and back.
type ports struct{ to, back map[string]string }

func newPorts(t *testing.T) ports {
	t.Helper()
	p := ports{to: map[string]string{}, back: map[string]string{}}
	var ls []net.Listener
	for _, w := range wellKnownPorts {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		free := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		p.to[w], p.back[free] = free, w
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return p
}

func (p ports) apply(s string) string {
	return portRE.ReplaceAllStringFunc(s, func(w string) string {
		if f, ok := p.to[w]; ok {
			return f
		}
		return w
	})
}

func (p ports) revert(s string) string {
	if len(p.back) == 0 {
		return s
	}
	var alt []string
	for f := range p.back {
		alt = append(alt, f)
	}
	re := regexp.MustCompile(`\b(` + strings.Join(alt, "|") + `)\b`)
	return re.ReplaceAllStringFunc(s, func(f string) string { return p.back[f] })
}

// tools are the programs outside mqgate that tested blocks may call; a
// guide that needs one that is missing is skipped, or fails in CI.
var tools = []string{"mosquitto_pub", "mosquitto_sub", "curl", "openssl", "psql"}

func guides(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"README.md", "getting-started.md", "migrating-from-emqx4.md", "auth-and-acl.md",
		"webhooks.md", "operations.md", "security.md"} {
		if !slices.Contains(files, want) {
			t.Errorf("docs/%s is missing", want)
		}
	}
	return files
}

// freeLangs are the languages of blocks that show data rather than
// commands or configuration, which need no test.
var freeLangs = []string{"json", "text", "output"}

// TestGuides runs every tested block of every guide, each guide in its
// own directory with its own ports, in the order of the guide. A block
// that is not tested must say so (the word untested) unless it only shows
// data, so that leaving a command untested is a decision.
func TestGuides(t *testing.T) {
	total := 0
	for _, f := range guides(t) {
		blocks, err := parseBlocks(f)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, b := range blocks {
			_, untested := b.attrs["untested"]
			switch {
			case b.tested && untested:
				t.Errorf("%s: both tested and untested", b)
			case b.tested:
				n++
			case b.lang == "":
				t.Errorf("%s: a block needs a language (and tested, or untested)", b)
			case !untested && !slices.Contains(freeLangs, b.lang):
				t.Errorf("%s: a %s block must be tested, or marked untested", b, b.lang)
			}
		}
		total += n
		if n == 0 {
			continue
		}
		t.Run(strings.TrimSuffix(f, ".md"), func(t *testing.T) {
			t.Parallel()
			runGuide(t, blocks)
		})
	}
	if total < 30 {
		t.Errorf("%d tested blocks in all guides, want at least 30", total)
	}
}

// guide is the state of one guide's run.
type guide struct {
	t     *testing.T
	dir   string
	env   []string
	ports ports
	bg    []*background
}

// background is a process started by a "background" block.
type background struct {
	b    *block
	cmd  *exec.Cmd
	out  *testutil.SyncBuffer
	done chan error // receives cmd.Wait's result once
}

func runGuide(t *testing.T, blocks []*block) {
	for _, b := range blocks {
		if !b.tested {
			continue
		}
		for _, tool := range tools {
			if b.lang == "sh" && regexp.MustCompile(`\b`+tool+`\b`).MatchString(b.body) {
				if _, err := exec.LookPath(tool); err != nil {
					if os.Getenv("CI") != "" || os.Getenv("MQGATE_REQUIRE_MOSQUITTO") != "" {
						t.Fatalf("%s: %s missing (make test installs the test dependencies)", b, tool)
					}
					t.Skipf("%s: %s missing", b, tool)
				}
			}
		}
	}
	g := &guide{t: t, dir: t.TempDir(), ports: newPorts(t)}
	for _, b := range blocks {
		if b.tested && strings.Contains(b.body, "5432") {
			g.ports.to["5432"] = postgresFor(t)
			g.ports.back[g.ports.to["5432"]] = "5432"
			break
		}
	}
	g.env = []string{
		"PATH=" + binDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + g.dir,
		"LC_ALL=C",
		"TZ=UTC",
		// mqgate ctl's default address, with the guide's port.
		"MQGATE_CTL_URL=http://127.0.0.1:" + g.ports.to["8081"],
	}
	t.Cleanup(g.stopAll)
	for _, b := range blocks {
		if !b.tested {
			continue
		}
		switch b.lang {
		case "sh":
			if _, ok := b.attrs["background"]; ok {
				g.start(b)
			} else {
				g.run(b)
			}
		case "conf":
			g.conf(b)
		case "stop":
			g.stopAll()
		default:
			if b.attrs["file"] == "" {
				t.Fatalf("%s: a tested %q block needs file=NAME", b, b.lang)
			}
			g.write(b, b.body)
		}
		if t.Failed() {
			return
		}
	}
}

// write puts a block's text, ports mapped, into the guide's directory.
func (g *guide) write(b *block, text string) {
	name := b.attrs["file"]
	if name == "" {
		return
	}
	if filepath.IsAbs(name) || strings.Contains(name, "..") {
		g.t.Fatalf("%s: file=%s must be relative, inside the working directory", b, name)
	}
	p := filepath.Join(g.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		g.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(g.ports.apply(text)), 0o600); err != nil {
		g.t.Fatal(err)
	}
}

// conf checks a config snippet with the real loader, then writes it when
// the block names a file.
func (g *guide) conf(b *block) {
	if _, err := config.Parse(b.String(), []byte(b.body), nil); err != nil {
		g.t.Errorf("%s: config does not load:\n%v", b, err)
		return
	}
	g.write(b, b.body)
}

// run runs a shell block with bash -eo pipefail and checks its exit code
// (0, or the block's exit=N) and its output block.
func (g *guide) run(b *block) {
	want := 0
	if s, ok := b.attrs["exit"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil {
			g.t.Fatalf("%s: exit=%s", b, s)
		}
		want = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-eo", "pipefail", "-c", g.ports.apply(b.body))
	cmd.Dir, cmd.Env = g.dir, g.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	start := time.Now()
	raw, err := cmd.CombinedOutput()
	out := g.ports.revert(string(raw))
	code := 0
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		g.t.Errorf("%s: %v\n%s", b, err, out)
		return
	}
	if ctx.Err() != nil {
		g.t.Errorf("%s: still running after 30 s\n%s", b, out)
		return
	}
	if code != want {
		g.t.Errorf("%s: exit status %d, want %d\n--- block\n%s--- output\n%s%s", b, code, want, b.body, out, g.backgroundLogs())
		return
	}
	g.t.Logf("%s: ok in %v", b, time.Since(start).Round(time.Millisecond))
	if b.output != nil {
		if err := matchOutput(b.output.body, out); err != nil {
			g.t.Errorf("%s: %v\n--- output\n%s", b.output, err, out)
		}
	}
}

// matchOutput checks that every non-blank line of want, but "...", is a
// line of got, in the same order; "..." inside a line stands for any text. Runs of spaces and tabs compare equal
// to one space, so column widths do not matter.
func matchOutput(want, got string) error {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(got))
	for sc.Scan() {
		lines = append(lines, squeeze(sc.Text()))
	}
	i := 0
	for w := range strings.SplitSeq(want, "\n") {
		w = squeeze(w)
		if w == "" || w == "..." {
			continue
		}
		j := slices.IndexFunc(lines[i:], func(l string) bool { return lineMatch(w, l) })
		if j < 0 {
			return fmt.Errorf("expected line %q not in the output (after line %d)", w, i)
		}
		i += j + 1
	}
	return nil
}

// lineMatch reports whether line matches want, where "..." in want stands
// for any text (an id, a time).
func lineMatch(want, line string) bool {
	parts := strings.Split(want, "...")
	if len(parts) == 1 {
		return want == line
	}
	rest, ok := strings.CutPrefix(line, parts[0])
	if !ok {
		return false
	}
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(rest, p)
		if i < 0 {
			return false
		}
		rest = rest[i+len(p):]
	}
	return strings.HasSuffix(rest, parts[len(parts)-1])
}

// squeeze trims a line and turns each run of spaces and tabs into one
// space.
func squeeze(s string) string { return strings.Join(strings.Fields(s), " ") }

// start starts a background block (one command, run with exec so that
// SIGTERM reaches it) and waits until the ports of its wait= attribute
// accept connections.
func (g *guide) start(b *block) {
	line := strings.TrimSpace(b.body)
	if line == "" || strings.Contains(line, "\n") {
		g.t.Fatalf("%s: a background block holds one command", b)
	}
	cmd := exec.Command("bash", "-c", "exec "+g.ports.apply(line))
	cmd.Dir, cmd.Env = g.dir, g.env
	out := &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		g.t.Fatalf("%s: %v", b, err)
	}
	bg := &background{b: b, cmd: cmd, out: out, done: make(chan error, 1)}
	go func() { bg.done <- cmd.Wait() }()
	g.bg = append(g.bg, bg)
	var want []string
	for p := range strings.SplitSeq(b.attrs["wait"], ",") {
		if p != "" {
			want = append(want, g.ports.apply(p))
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, p := range want {
		for {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+p, time.Second)
			if err == nil {
				_ = c.Close()
				break
			}
			select {
			case err := <-bg.done:
				bg.done <- err
				g.t.Fatalf("%s: exited before port %s opened: %v\n%s", b, g.ports.revert(p), err, g.ports.revert(out.String()))
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				g.t.Fatalf("%s: port %s not open after 15 s\n%s", b, g.ports.revert(p), g.ports.revert(out.String()))
			}
		}
	}
}

// backgroundLogs returns the output of the background processes, to show
// next to a failed block.
func (g *guide) backgroundLogs() string {
	var s strings.Builder
	for _, bg := range g.bg {
		fmt.Fprintf(&s, "--- %s (background) output\n%s", bg.b, g.ports.revert(bg.out.String()))
	}
	return s.String()
}

// stopAll sends SIGTERM to each background process, last started first,
// and expects it to exit 0 within 20 s (it is killed otherwise).
func (g *guide) stopAll() {
	for _, bg := range slices.Backward(g.bg) {
		_ = bg.cmd.Process.Signal(syscall.SIGTERM)
		var err error
		select {
		case err = <-bg.done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-bg.cmd.Process.Pid, syscall.SIGKILL)
			err = <-bg.done
			g.t.Errorf("%s: did not stop within 20 s of SIGTERM", bg.b)
		}
		if err != nil {
			g.t.Errorf("%s: after SIGTERM: %v\n%s", bg.b, err, g.ports.revert(bg.out.String()))
		}
	}
	g.bg = nil
}

// TestLinks checks that every relative link of the guides and of the
// top-level README names a file or directory of the repository.
func TestLinks(t *testing.T) {
	files := append(guides(t), "../README.md")
	re := regexp.MustCompile(`\]\(([^)#\s]+)(#[^)\s]*)?\)`)
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			n++
			if _, err := os.Stat(filepath.Join(filepath.Dir(f), target)); err != nil {
				t.Errorf("%s: link to %s: %v", f, target, err)
			}
		}
	}
	if n < 30 {
		t.Errorf("%d relative links checked", n)
	}
}

// postgresFor gives a guide that uses PostgreSQL on port 5432 what a
// database administrator would: the role mqgate (password change-me) owning
// an empty database mqtt, on the test's throwaway server. It returns the
// server's port, which replaces 5432 in the guide's blocks. Only one guide
// at a time can use it (database and role names are server-wide).
func postgresFor(t *testing.T) string {
	t.Helper()
	dsn := testutil.PostgresDB(t)
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"CREATE ROLE mqgate LOGIN PASSWORD 'change-me'",
		"CREATE DATABASE mqtt OWNER mqgate",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		db, err := sql.Open("postgres", dsn)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec("DROP DATABASE IF EXISTS mqtt WITH (FORCE)")
		_, _ = db.Exec("DROP ROLE IF EXISTS mqgate")
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}
