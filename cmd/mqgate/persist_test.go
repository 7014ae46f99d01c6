package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"
)

// serveChild runs mqgate serve in a child process (the test binary, see
// TestMain) with its state in dataDir, and returns the process and the
// address of its MQTT listener once it logs it.
func serveChild(t *testing.T, ctx context.Context, dataDir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], "serve")
	cmd.Env = append(os.Environ(),
		"MQGATE_TEST_MAIN=1",
		"MQGATE__LISTENER__TCP__EXTERNAL=127.0.0.1:0",
		"MQGATE__MANAGEMENT__LISTENER__HTTP=127.0.0.1:0",
		"MQGATE__NODE__DATA_DIR="+dataDir,
		"MQGATE__STORE__SYNC=batch",
		"MQGATE__MQTT__MAX_MQUEUE_LEN=100000",
	)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addrs := make(chan string, 1)
	re := regexp.MustCompile(`msg=listening .*addr=(127\.0\.0\.1:\d+)`)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrs <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case a := <-addrs:
		return cmd, a
	case <-ctx.Done():
		t.Fatal("mqgate did not log its listener")
		return nil, ""
	}
}

// dialPaho3 connects a paho.mqtt.golang 3.1.1 client without clean session;
// its messages go to msgs.
func dialPaho3(t *testing.T, addr, id string, msgs chan<- paho3.Message) paho3.Client {
	t.Helper()
	o := paho3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetProtocolVersion(4).SetCleanSession(false).SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second).SetKeepAlive(30 * time.Second)
	if msgs != nil {
		o.SetDefaultPublishHandler(func(_ paho3.Client, m paho3.Message) { msgs <- m })
	}
	c := paho3.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() {
		if c.IsConnectionOpen() {
			c.Disconnect(100)
		}
	})
	return c
}

// TestServeKill9KeepsAcknowledgedMessages: a persistent subscriber is
// offline, a publisher sends QoS 1 messages and gets every PUBACK, the
// broker is killed with SIGKILL; after a restart on the same data
// directory the subscriber receives every message at least once.
func TestServeKill9KeepsAcknowledgedMessages(t *testing.T) {
	const n = 2000
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dataDir := t.TempDir()
	cmd, addr := serveChild(t, ctx, dataDir)

	sub := dialPaho3(t, addr, "kill9-sub", nil)
	if tok := sub.Subscribe("k9/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	sub.Disconnect(100)

	pub := dialPaho3(t, addr, "kill9-pub", nil)
	toks := make([]paho3.Token, n)
	for i := range n {
		toks[i] = pub.Publish(fmt.Sprintf("k9/%d", i%10), 1, false, strconv.Itoa(i))
	}
	for i, tok := range toks {
		if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: no PUBACK: %v", i, tok.Error())
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()

	_, addr = serveChild(t, ctx, dataDir)
	msgs := make(chan paho3.Message, n*2)
	dialPaho3(t, addr, "kill9-sub", msgs)
	seen := make(map[int]bool, n)
	for len(seen) < n {
		select {
		case m := <-msgs:
			i, err := strconv.Atoi(string(m.Payload()))
			if err != nil || i < 0 || i >= n {
				t.Fatalf("unexpected payload %q", m.Payload())
			}
			seen[i] = true
		case <-ctx.Done():
			t.Fatalf("after kill -9 and restart the subscriber got %d of %d acknowledged messages", len(seen), n)
		}
	}
}
