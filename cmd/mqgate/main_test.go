package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqgate/mqgate/internal/testutil"
	"github.com/mqgate/mqgate/mqtt"
	"go.uber.org/goleak"
)

// The test binary doubles as mqgate when MQGATE_TEST_MAIN is set, so that
// serve runs in a child process that can receive real signals.
func TestMain(m *testing.M) {
	if os.Getenv("MQGATE_TEST_MAIN") == "1" {
		main()
		return
	}
	// Tests that serve without node.data_dir keep the broker's state in
	// the default ./data: remove it unless it was there before.
	_, err := os.Stat("data")
	keep := err == nil
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if !keep {
			_ = os.RemoveAll("data")
		}
		os.Exit(code)
	}))
}

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.HasPrefix(out.String(), "mqgate ") {
		t.Fatalf("version output %q", out.String())
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"frobnicate"}, nil, &out, &errb); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Fatalf("stderr %q", errb.String())
	}
}

// TestServeRejectsBadConfig checks that a bad config stops the start with
// the file, line and key named, and that no listener is opened.
func TestServeRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mqgate.conf")
	conf := "# test\nlistener.tcp.external = 127.0.0.1:0\nmqtt.max_pakcet_size = 1MB\nmqtt.max_qos_allowed = 3\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"serve", "-c", path}, nil, &out, &errb)
	if code != 2 {
		t.Fatalf("exit %d, want 2; stderr: %s", code, errb.String())
	}
	msg := errb.String()
	for _, want := range []string{"mqgate.conf:3", `"mqtt.max_pakcet_size"`, `did you mean "mqtt.max_packet_size"`, "mqgate.conf:4", "mqtt.max_qos_allowed"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error output lacks %q:\n%s", want, msg)
		}
	}
}

func TestServeRejectsBadEnv(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"serve"}, []string{"MQGATE__MQTT__MAX_PACKET_SIZE=12XB"}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "MQGATE__MQTT__MAX_PACKET_SIZE") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

func TestServePortInUse(t *testing.T) {
	_, addr := testutil.RunBroker(t, nil)
	var out, errb bytes.Buffer
	code := run([]string{"serve"}, []string{"MQGATE__LISTENER__TCP__EXTERNAL=" + addr, "MQGATE__MANAGEMENT__LISTENER__HTTP=127.0.0.1:0", "MQGATE__LOG__LEVEL=error"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "listener tcp.external") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

var listenRE = regexp.MustCompile(`msg=listening .*addr=(127\.0\.0\.1:\d+)`)

// apiListenRE matches the management API's listening line.
var apiListenRE = regexp.MustCompile(`msg="management api listening" .*addr=(127\.0\.0\.1:\d+)`)

// TestServeGracefulShutdown runs mqgate serve -cpuprofile in a child
// process, connects a v5 client, sends SIGTERM and expects DISCONNECT 0x8B,
// exit status 0 and a CPU profile written out.
func TestServeGracefulShutdown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	cmd := exec.CommandContext(ctx, os.Args[0], "serve", "-cpuprofile", prof)
	cmd.Env = append(os.Environ(),
		"MQGATE_TEST_MAIN=1",
		"MQGATE__LISTENER__TCP__EXTERNAL=127.0.0.1:0",
		"MQGATE__MANAGEMENT__LISTENER__HTTP=127.0.0.1:0",
		"MQGATE__NODE__DATA_DIR="+t.TempDir(),
	)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stderr)
	addr := ""
	for lines.Scan() {
		if m := listenRE.FindStringSubmatch(lines.Text()); m != nil {
			addr = m[1]
			break
		}
	}
	if addr == "" {
		_ = cmd.Process.Kill()
		t.Fatal("broker did not report its address")
	}
	go func() {
		for lines.Scan() {
		}
	}()

	c := testutil.Dial(t, addr, mqtt.V5)
	if ack := c.Connect(&mqtt.Connect{ClientID: "x", CleanStart: true}); ack.ReasonCode != 0 {
		t.Fatalf("connack %v", ack.ReasonCode)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	got := c.ExpectClosed()
	if len(got) != 1 {
		t.Fatalf("want one DISCONNECT before close, got %d packets", len(got))
	}
	if d, ok := got[0].(*mqtt.Disconnect); !ok || d.ReasonCode != mqtt.ServerShuttingDown {
		t.Fatalf("want DISCONNECT 0x8B, got %#v", got[0])
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mqgate exit: %v", err)
	}
	// A profile is gzip-compressed protobuf: it starts with the gzip magic.
	if b, err := os.ReadFile(prof); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("CPU profile: %d bytes, %v", len(b), err)
	}
}

// TestServeSIGHUPReloadsCertificates runs mqgate serve with an ssl
// listener in a child process, replaces the certificate on disk, sends
// SIGHUP and expects the new certificate to be served. mqgate ctl, talking
// to the child's management API, sees the listener.
func TestServeSIGHUPReloadsCertificates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	cert, key, _ := testutil.SelfSigned(t, dir)
	cmd := exec.CommandContext(ctx, os.Args[0], "serve")
	cmd.Env = append(os.Environ(),
		"MQGATE_TEST_MAIN=1",
		"MQGATE__LISTENER__TCP__EXTERNAL=off",
		"MQGATE__LISTENER__SSL__EXTERNAL=127.0.0.1:0",
		"MQGATE__LISTENER__SSL__EXTERNAL__CERTFILE="+cert,
		"MQGATE__LISTENER__SSL__EXTERNAL__KEYFILE="+key,
		"MQGATE__MANAGEMENT__LISTENER__HTTP=127.0.0.1:0",
		"MQGATE__NODE__DATA_DIR="+t.TempDir(),
	)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody waits for more lines; drop them
			}
		}
	}()
	waitLine := func(re *regexp.Regexp) []string {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("mqgate exited before logging %v", re)
				}
				if m := re.FindStringSubmatch(l); m != nil {
					return m
				}
			case <-ctx.Done():
				t.Fatalf("no log line matching %v", re)
			}
		}
	}
	addr := waitLine(regexp.MustCompile(`msg=listening .*addr=(127\.0\.0\.1:\d+)`))[1]
	apiAddr := waitLine(apiListenRE)[1]
	var out, errb bytes.Buffer
	if code := run([]string{"ctl", "listeners"}, []string{"MQGATE_CTL_URL=http://" + apiAddr}, &out, &errb); code != 0 {
		t.Fatalf("mqgate ctl listeners: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "ssl:external") || !strings.Contains(out.String(), addr) {
		t.Fatalf("mqgate ctl listeners does not show the ssl listener at %s:\n%s", addr, out.String())
	}
	served := func() []byte {
		t.Helper()
		nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		return nc.ConnectionState().PeerCertificates[0].Raw
	}
	before := served()
	testutil.SelfSigned(t, dir) // a new key pair in the same files
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLine(regexp.MustCompile(`SIGHUP: tls files reloaded`))
	if after := served(); bytes.Equal(before, after) {
		t.Fatal("the old certificate is still served after SIGHUP")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mqgate exit: %v", err)
	}
}
