package deploy_test

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqgate/mqgate/config"
	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// buildLikeDockerfile builds cmd/mqgate with the exact go build line of the
// Dockerfile, writing the binary into a temporary directory.
func buildLikeDockerfile(t *testing.T) string {
	t.Helper()
	df, err := os.ReadFile("docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(string(df), "\n") {
		if strings.HasPrefix(l, "RUN ") && strings.Contains(l, "go build") {
			line = strings.TrimPrefix(l, "RUN ")
		}
	}
	if line == "" || !strings.Contains(line, "CGO_ENABLED=0") || !strings.Contains(line, "-o /out/mqgate") {
		t.Fatalf("no static go build line in the Dockerfile: %q", line)
	}
	bin := filepath.Join(t.TempDir(), "mqgate")
	line = strings.Replace(line, "-o /out/mqgate", "-o "+bin, 1)
	cmd := exec.Command("sh", "-c", line)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "VERSION=test")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	return bin
}

func TestDockerfileBinaryIsStatic(t *testing.T) {
	bin := buildLikeDockerfile(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("binary has program header %v: not static", p.Type)
		}
	}
	if s := f.Section(".dynamic"); s != nil {
		t.Fatal("binary has a .dynamic section")
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.Contains(string(out), "mqgate test") {
		t.Fatalf("version: %q %v", out, err)
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	if n := strings.Count(df, "\nFROM "); n < 2 {
		t.Errorf("%d FROM stages, want a multi-stage build", n)
	}
	m := regexp.MustCompile(`(?m)^USER (\S+)`).FindStringSubmatch(df)
	if m == nil || strings.HasPrefix(m[1], "0") || strings.HasPrefix(m[1], "root") {
		t.Errorf("USER %v: want a non-root user", m)
	}
	for _, want := range []string{`VOLUME ["/data"]`, "EXPOSE 1883 8883 8083 8084 8081", "HEALTHCHECK"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	conf, err := os.ReadFile("docker/mqgate.conf")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("docker/mqgate.conf", conf, []string{"MQGATE__MANAGEMENT__DEFAULT_APPLICATION__SECRET=x"})
	if err != nil {
		t.Fatal(err)
	}
	if d := cfg.String("node.data_dir"); d != "/data" {
		t.Errorf("node.data_dir = %q, want the /data volume", d)
	}
}

func TestSystemdUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze missing (make deps installs systemd)")
		}
		t.Skip("systemd-analyze missing")
	}
	unit, err := os.ReadFile("systemd/mqgate.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nUser=mqgate\n", "\nProtectSystem=strict\n", "\nStateDirectory=mqgate\n",
		"\nLimitNOFILE=1048576\n", "\nRestart=on-failure\n", "\nKillSignal=SIGTERM\n", "\nTimeoutStopSec=45s\n", "\nNoNewPrivileges=yes\n"} {
		if !bytes.Contains(unit, []byte(want)) {
			t.Errorf("unit lacks %q", strings.TrimSpace(want))
		}
	}
	bin := filepath.Join(t.TempDir(), "mqgate")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	verify := func(text string) string {
		dir := t.TempDir()
		p := filepath.Join(dir, "mqgate.service")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, _ := exec.Command("systemd-analyze", "verify", p).CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	text := strings.Replace(string(unit), "ExecStart=/usr/local/bin/mqgate", "ExecStart="+bin, 1)
	if out := verify(text); out != "" {
		t.Fatalf("systemd-analyze verify:\n%s", out)
	}
	// The check can fail: a bad value is reported.
	if out := verify(strings.Replace(text, "LimitNOFILE=1048576", "LimitNOFILE=lots", 1)); out == "" {
		t.Fatal("systemd-analyze verify accepted LimitNOFILE=lots")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "mqgate.service")
	_ = os.WriteFile(p, []byte(text), 0o644)
	out, _ := exec.Command("systemd-analyze", "security", "--offline=true", p).CombinedOutput()
	if m := regexp.MustCompile(`exposure level for mqgate.service: ([0-9.]+)`).FindSubmatch(out); m != nil {
		t.Logf("systemd-analyze security exposure: %s", m[1])
	}
}

// docs reads every YAML document of the files.
func docs(t *testing.T, files ...string) []map[string]any {
	t.Helper()
	var all []map[string]any
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var m map[string]any
			if err := d.Decode(&m); err != nil {
				if err.Error() == "EOF" {
					break
				}
				t.Fatalf("%s: %v", f, err)
			}
			all = append(all, m)
		}
	}
	return all
}

// get walks a path of map keys and list indexes.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func TestCompose(t *testing.T) {
	d := docs(t, "docker/compose.yaml")[0]
	for _, s := range []string{"mqgate", "postgres", "webhook"} {
		if get(d, "services", s, "image") == nil {
			t.Errorf("service %s has no image", s)
		}
	}
	mq := get(d, "services", "mqgate")
	if get(mq, "read_only") != true || get(mq, "user") != "65532:65532" {
		t.Errorf("mqgate: read_only %v user %v", get(mq, "read_only"), get(mq, "user"))
	}
	if !slices.Contains(get(mq, "cap_drop").([]any), any("ALL")) {
		t.Error("mqgate does not drop capabilities")
	}
	vols, _ := get(mq, "volumes").([]any)
	if !slices.Contains(vols, any("mqgate-data:/data")) {
		t.Errorf("volumes %v lack mqgate-data:/data", vols)
	}
	var env []string
	for k, v := range get(mq, "environment").(map[string]any) {
		s := strings.ReplaceAll(v.(string), "$$", "$")
		s = regexp.MustCompile(`\$\{[A-Z_]+[:?-][^}]*\}`).ReplaceAllString(s, "x")
		env = append(env, k+"="+s)
	}
	conf, _ := os.ReadFile("docker/mqgate.conf")
	cfg, err := config.Parse("docker/mqgate.conf", conf, env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.String("auth.chain") != "pgsql" || len(cfg.Instances("web.hook.rule.<...>")) != 3 {
		t.Errorf("auth.chain %q, rules %v", cfg.String("auth.chain"), cfg.Instances("web.hook.rule.<...>"))
	}
	var hc []string
	for _, a := range get(mq, "healthcheck", "test").([]any) {
		hc = append(hc, a.(string))
	}
	if want := append([]string{"CMD"}, dockerHealthcheck(t)...); !slices.Equal(hc, want) {
		t.Errorf("compose healthcheck %q, want the Dockerfile's %q", hc, want)
	}
	if get(d, "services", "postgres", "healthcheck") == nil {
		t.Error("postgres has no healthcheck")
	}
}

func TestKubernetes(t *testing.T) {
	files, _ := filepath.Glob("kubernetes/*.yaml")
	all := docs(t, files...)
	kinds := map[string]map[string]any{}
	for _, d := range all {
		k, _ := get(d, "kind").(string)
		n, _ := get(d, "metadata", "name").(string)
		kinds[k+"/"+n] = d
	}
	for _, k := range []string{"StatefulSet/mqgate", "PodDisruptionBudget/mqgate", "Service/mqgate", "Service/mqgate-api",
		"ConfigMap/mqgate-config", "ConfigMap/mqgate-policies", "Secret/mqgate-api", "Secret/mqgate-jwt", "Secret/mqgate-tls"} {
		if kinds[k] == nil {
			t.Errorf("no %s", k)
		}
	}
	ss := kinds["StatefulSet/mqgate"]
	c := get(ss, "spec", "template", "spec", "containers", 0)
	if get(c, "readinessProbe", "httpGet", "path") != "/readyz" || get(c, "livenessProbe", "httpGet", "path") != "/healthz" {
		t.Error("probes are not /readyz and /healthz")
	}
	if get(c, "securityContext", "readOnlyRootFilesystem") != true || get(c, "securityContext", "allowPrivilegeEscalation") != false ||
		get(ss, "spec", "template", "spec", "securityContext", "runAsNonRoot") != true {
		t.Error("security context is not hardened")
	}
	if get(ss, "spec", "volumeClaimTemplates", 0, "metadata", "name") != "data" {
		t.Error("no data volume claim")
	}
	mounts := map[string]map[string]any{}
	for _, m := range get(c, "volumeMounts").([]any) {
		mounts[get(m, "name").(string)] = m.(map[string]any)
	}
	if get(mounts["data"], "mountPath") != "/data" {
		t.Error("data not at /data")
	}
	if mounts["policies"] == nil || mounts["policies"]["subPath"] != nil {
		t.Error("policies must be mounted as a directory (no subPath) to hot-reload")
	}
	conf := get(kinds["ConfigMap/mqgate-config"], "data", "mqgate.conf").(string)
	cfg, err := config.Parse("configmap.yaml", []byte(conf), []string{"MQGATE__MANAGEMENT__DEFAULT_APPLICATION__SECRET=x"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cfg.String("acl.casbin.policy"), get(mounts["policies"], "mountPath").(string)+"/") {
		t.Error("acl.casbin.policy is not in the policies mount")
	}
	for _, f := range []string{"model.conf", "policy.csv"} {
		want, _ := os.ReadFile("../policies/" + f)
		got := get(kinds["ConfigMap/mqgate-policies"], "data", f).(string)
		if strings.TrimSpace(got) != strings.TrimSpace(string(want)) {
			t.Errorf("policies ConfigMap %s differs from policies/%s", f, f)
		}
	}
	ports := map[any]bool{}
	for _, p := range get(c, "ports").([]any) {
		ports[get(p, "containerPort")] = true
	}
	for _, p := range []int{1883, 8883, 8083, 8084, 8081} {
		if !ports[p] {
			t.Errorf("container port %d missing", p)
		}
	}
	side := docs(t, "kubernetes/sidecar/emqx-with-mqgate.yaml")
	var sc string
	for _, d := range side {
		if get(d, "metadata", "name") == "mqgate-sidecar-config" {
			sc = get(d, "data", "mqgate.conf").(string)
		}
	}
	scfg, err := config.Parse("sidecar", []byte(sc), []string{"MQGATE__MANAGEMENT__DEFAULT_APPLICATION__SECRET=x"})
	if err != nil {
		t.Fatal(err)
	}
	if scfg.String("sidecar.listener.http") != "127.0.0.1:8090" {
		t.Error("sidecar API not on loopback 8090")
	}
}

// series is one sample line of a Prometheus text exposition: its family
// name and labels.
type series struct {
	name   string
	labels map[string]string
}

var (
	sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? `)
	labelRE  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// parseExposition reads the samples of a Prometheus text exposition.
func parseExposition(text string) []series {
	var out []series
	for l := range strings.SplitSeq(text, "\n") {
		m := sampleRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		s := series{name: m[1], labels: map[string]string{}}
		for _, lm := range labelRE.FindAllStringSubmatch(m[3], -1) {
			s.labels[lm[1]] = lm[2]
		}
		out = append(out, s)
	}
	return out
}

// startLiveBroker starts the binary the Dockerfile builds with every part
// that exports metrics turned on (JWT authentication, Casbin and acl.conf
// authorization, web hooks), on free ports of 127.0.0.1, and waits until
// /metrics answers. It returns the binary, the management API's address and
// what /metrics served first; stop sends SIGTERM and expects exit 0 (it also
// runs when the test ends).
func startLiveBroker(t *testing.T) (bin, api, metrics string, stop func()) {
	t.Helper()
	bin = buildLikeDockerfile(t)
	dir := t.TempDir()
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	api = free()
	hook := free()
	policies, err := filepath.Abs("../policies")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "acl.conf"), []byte("{allow, all}.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := strings.Join([]string{
		"node.data_dir = data",
		"listener.tcp.external = " + free(),
		"management.listener.http = " + api,
		"auth.chain = jwt",
		"auth.jwt.secret = 0123456789abcdef0123456789abcdef",
		"acl.chain = casbin, file",
		"acl.casbin.model = " + filepath.Join(policies, "model.conf"),
		"acl.casbin.policy = " + filepath.Join(policies, "policy.csv"),
		"acl_file = acl.conf",
		"web.hook.url = http://" + hook + "/hook",
		`web.hook.rule.message.publish.1 = {"action": "on_message_publish"}`,
		`web.hook.rule.client.connected.1 = {"action": "on_client_connected"}`,
	}, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "mqgate.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "-c", "mqgate.conf")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("mqgate serve: %v\n%s", err, out.String())
				}
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Errorf("mqgate serve did not stop within 20 s of SIGTERM")
			}
		})
	}
	t.Cleanup(stop)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + api + "/metrics")
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				return bin, api, string(b), stop
			}
		}
		if time.Now().After(deadline) || len(done) > 0 {
			t.Fatalf("no /metrics: %v", err)
		}
	}
}

var (
	// selectorRE finds metric{matchers} and bare metric names in PromQL.
	selectorRE = regexp.MustCompile(`\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?`)
	matcherRE  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")`)
	byRE       = regexp.MustCompile(`\bby\s*\(([^)]*)\)`)
)

// TestMonitoringMetricNames starts a real broker, scrapes /metrics and
// checks every metric of the alert rules and the Grafana dashboard against
// it: each family is exported, each label value an = or =~ matcher asks
// for exists, and each "by" label is a label of the family.
func TestMonitoringMetricNames(t *testing.T) {
	exported := map[string][]series{}
	_, _, metrics, _ := startLiveBroker(t)
	for _, s := range parseExposition(metrics) {
		exported[s.name] = append(exported[s.name], s)
	}
	if len(exported) < 40 {
		t.Fatalf("%d metric families on /metrics", len(exported))
	}
	b, err := os.ReadFile("monitoring/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string } `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, g := range get(docs(t, "monitoring/alerts.yaml")[0], "groups").([]any) {
		for _, r := range get(g, "rules").([]any) {
			exprs = append(exprs, get(r, "expr").(string))
		}
	}
	if len(exprs) < 20 {
		t.Fatalf("%d expressions", len(exprs))
	}
	// Added by Prometheus or by its scrape configuration, not by mqgate.
	external := map[string]bool{"instance": true, "job": true}
	checked := 0
	for _, e := range exprs {
		var families []string
		for _, m := range selectorRE.FindAllStringSubmatch(e, -1) {
			name := m[1]
			if !strings.HasPrefix(name, "mqgate_") && !strings.HasPrefix(name, "process_") && !strings.HasPrefix(name, "go_") {
				continue // functions, keywords, label names, up
			}
			ss := exported[name]
			if ss == nil {
				t.Errorf("%q uses %s, which /metrics does not export", e, name)
				continue
			}
			checked++
			families = append(families, name)
			for _, mm := range matcherRE.FindAllStringSubmatch(m[2], -1) {
				label, op := mm[1], mm[2]
				if external[label] || op == "!=" || op == "!~" {
					continue
				}
				val, err := strconv.Unquote(mm[3])
				if err != nil {
					t.Errorf("%q: matcher %s: %v", e, mm[0], err)
					continue
				}
				match := func(v string) bool { return v == val }
				if op == "=~" {
					re, err := regexp.Compile("^(?:" + val + ")$")
					if err != nil {
						t.Errorf("%q: matcher %s: %v", e, mm[0], err)
						continue
					}
					match = re.MatchString
				}
				if !slices.ContainsFunc(ss, func(s series) bool { return match(s.labels[label]) }) {
					t.Errorf("%q: no series of %s has %s%s%q", e, name, label, op, val)
				}
			}
		}
		for _, m := range byRE.FindAllStringSubmatch(e, -1) {
			for l := range strings.SplitSeq(m[1], ",") {
				l = strings.TrimSpace(l)
				if external[l] {
					continue
				}
				for _, f := range families {
					if !slices.ContainsFunc(exported[f], func(s series) bool { _, ok := s.labels[l]; return ok }) {
						t.Errorf("%q: sums by %s, which %s does not have", e, l, f)
					}
				}
			}
		}
	}
	if checked < 30 {
		t.Errorf("%d metric references checked", checked)
	}
}

// dockerHealthcheck returns the exec form of the Dockerfile's HEALTHCHECK
// CMD.
func dockerHealthcheck(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.ReplaceAll(string(b), "\\\n", " ")
	m := regexp.MustCompile(`(?m)^HEALTHCHECK .*\bCMD (\[.*\])\s*$`).FindStringSubmatch(joined)
	if m == nil {
		t.Fatal("no HEALTHCHECK ... CMD [...] in the Dockerfile")
	}
	var argv []string
	if err := json.Unmarshal([]byte(m[1]), &argv); err != nil {
		t.Fatalf("HEALTHCHECK CMD %s: %v", m[1], err)
	}
	return argv
}

// TestDockerHealthcheck runs the Dockerfile's HEALTHCHECK command against a
// running broker (the image's binary path and API address replaced by the
// test's): it must ask /healthz and succeed, and fail once the broker is
// stopped.
func TestDockerHealthcheck(t *testing.T) {
	argv := dockerHealthcheck(t)
	if argv[0] != "/usr/local/bin/mqgate" || !slices.ContainsFunc(argv, func(a string) bool { return strings.HasSuffix(a, "/healthz") }) {
		t.Fatalf("HEALTHCHECK %q: want /usr/local/bin/mqgate asking /healthz", argv)
	}
	bin, api, _, stop := startLiveBroker(t)
	check := func() (string, error) {
		args := slices.Clone(argv[1:])
		for i, a := range args {
			args[i] = strings.Replace(a, "127.0.0.1:8081", api, 1)
		}
		out, err := exec.Command(bin, args...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := check(); err != nil || out != "ok" {
		t.Fatalf("healthcheck on a running broker: %q %v", out, err)
	}
	stop()
	if out, err := check(); err == nil {
		t.Fatalf("healthcheck on a stopped broker succeeded: %q", out)
	}
}
