package broker_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqgate/mqgate/internal/testutil"
)

// mosquittoTools returns the paths of Debian's mosquitto_sub and
// mosquitto_pub. It skips the test when they are missing outside CI, and
// fails it in CI, where `make test` installs them.
func mosquittoTools(t *testing.T) (sub, pub string) {
	t.Helper()
	sub, errSub := exec.LookPath("mosquitto_sub")
	pub, errPub := exec.LookPath("mosquitto_pub")
	if err := errors.Join(errSub, errPub); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mosquitto clients missing in CI (Debian package mosquitto-clients): %v", err)
		}
		t.Skipf("mosquitto clients not installed (apt-get install mosquitto-clients): %v", err)
	}
	return sub, pub
}

// TestMosquittoClients runs mosquitto_sub on "x/#" and publishes to it with
// mosquitto_pub at several QoS and protocol versions: every message arrives
// once, intact, and both tools exit 0.
func TestMosquittoClients(t *testing.T) {
	subPath, pubPath := mosquittoTools(t)
	_, addr := testutil.RunBroker(t, nil)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	type pub struct {
		version, qos, topic, payload string
	}
	tests := []struct {
		subVersion string
		pubs       []pub
	}{
		{"mqttv5", []pub{
			{"mqttv5", "1", "x/a", "one"},
			{"mqttv311", "2", "x/b/c", "two words"},
			{"mqttv5", "2", "x", "parent level ü"},
		}},
		{"mqttv311", []pub{
			{"mqttv311", "1", "x/a", "one"},
			{"mqttv5", "2", "x/b", "two"},
			{"mqttv31", "0", "x/c", "three"},
		}},
	}
	for i, tt := range tests {
		t.Run("sub_"+tt.subVersion, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ready := fmt.Sprintf("x/ready%d", i)
			// A retained message tells when mosquitto_sub has subscribed:
			// it is the first line it prints.
			runMosquitto(ctx, t, pubPath, "-h", host, "-p", port, "-t", ready, "-m", "ready", "-r", "-q", "1")
			sub := exec.CommandContext(ctx, subPath, "-h", host, "-p", port, "-V", tt.subVersion,
				"-t", "x/#", "-q", "2", "-v", "-C", fmt.Sprint(len(tt.pubs)+1))
			out, err := sub.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			sub.Stderr = &stderr
			if err := sub.Start(); err != nil {
				t.Fatalf("start mosquitto_sub: %v", err)
			}
			t.Cleanup(func() { _ = sub.Process.Kill(); _ = sub.Wait() })
			lines := bufio.NewScanner(out)
			if !lines.Scan() || lines.Text() != ready+" ready" {
				t.Fatalf("mosquitto_sub first printed %q, want the retained %q (stderr %q)", lines.Text(), ready+" ready", stderr.String())
			}
			var want []string
			for _, p := range tt.pubs {
				runMosquitto(ctx, t, pubPath, "-h", host, "-p", port, "-V", p.version, "-q", p.qos, "-t", p.topic, "-m", p.payload)
				want = append(want, p.topic+" "+p.payload)
			}
			var got []string
			for lines.Scan() {
				got = append(got, lines.Text())
			}
			if err := sub.Wait(); err != nil {
				t.Fatalf("mosquitto_sub: %v (stderr %q)", err, stderr.String())
			}
			if !slices.Equal(got, want) {
				t.Fatalf("mosquitto_sub printed %q, want %q", got, want)
			}
			runMosquitto(ctx, t, pubPath, "-h", host, "-p", port, "-t", ready, "-n", "-r")
		})
	}
}

// runMosquitto runs a mosquitto client to its end and fails the test
// unless it exits 0.
func runMosquitto(ctx context.Context, t *testing.T, path string, args ...string) {
	t.Helper()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v: %s", path, args, err, out)
	}
}
