package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	paho3 "github.com/eclipse/paho.mqtt.golang"
)

// serveChild runs mqgate serve in a child process (the test binary, see
// TestMain) with its state in dataDir, and returns the process and the
// address of its MQTT listener once it logs it.
func serveChild(t *testing.T, ctx context.Context, dataDir string) (*exec.Cmd, string) {
	t.Helper()
	cmd, addrs := startChild(t, ctx, []string{"serve"}, []string{
		"MQGATE__LISTENER__TCP__EXTERNAL=127.0.0.1:0",
		"MQGATE__MANAGEMENT__LISTENER__HTTP=127.0.0.1:0",
		"MQGATE__NODE__DATA_DIR=" + dataDir,
		"MQGATE__STORE__SYNC=batch",
		"MQGATE__MQTT__MAX_MQUEUE_LEN=100000",
	}, listenRE)
	return cmd, addrs[0]
}

// startChild runs mqgate with args in a child process (the test binary,
// see TestMain) with env added to the test's environment, killed when the
// test ends. It returns the process once its log has matched every one of
// want, with the first submatch of each, in want's order.
func startChild(t *testing.T, ctx context.Context, args, env []string, want ...*regexp.Regexp) (*exec.Cmd, []string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "MQGATE_TEST_MAIN=1"), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	found := make(chan []string, 1)
	go func() {
		got := make([]string, len(want))
		left := len(want)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() { // to the end: the pipe is drained while the child runs
			for i, re := range want {
				if m := re.FindStringSubmatch(sc.Text()); m != nil && got[i] == "" {
					got[i] = m[1]
					if left--; left == 0 {
						found <- got // buffered, sent once
					}
				}
			}
		}
	}()
	select {
	case got := <-found:
		return cmd, got
	case <-ctx.Done():
		t.Fatalf("mqgate %v did not log %v", args, want)
		return nil, nil
	}
}

// k9Client is a persistent MQTT client of the kill -9 test, 3.1.1
// (paho.mqtt.golang) or 5.0 (paho.golang); the payloads it receives go to
// the msgs channel given to dialK9.
type k9Client struct {
	subscribe func(filter string, qos byte) error
	// publish sends one message and returns a function that waits for
	// its acknowledgement (PUBACK, or PUBREC then PUBCOMP).
	publish func(topic string, qos byte, payload string) (wait func() error)
	close   func()
}

// dialK9 connects a client that keeps its session (3.1.1: clean session 0;
// 5.0: session expiry one hour).
func dialK9(t *testing.T, v5 bool, addr, id string, msgs chan<- string) k9Client {
	t.Helper()
	if v5 {
		return dialPaho5(t, addr, id, msgs)
	}
	o := paho3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetProtocolVersion(4).SetCleanSession(false).SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second).SetKeepAlive(30 * time.Second)
	if msgs != nil {
		o.SetDefaultPublishHandler(func(_ paho3.Client, m paho3.Message) { msgs <- string(m.Payload()) })
	}
	c := paho3.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	closeFn := func() {
		if c.IsConnectionOpen() {
			c.Disconnect(100)
		}
	}
	t.Cleanup(closeFn)
	wait := func(tok paho3.Token) error {
		if !tok.WaitTimeout(20 * time.Second) {
			return fmt.Errorf("no acknowledgement in 20 s")
		}
		return tok.Error()
	}
	return k9Client{
		subscribe: func(filter string, qos byte) error { return wait(c.Subscribe(filter, qos, nil)) },
		publish: func(topic string, qos byte, payload string) func() error {
			tok := c.Publish(topic, qos, false, payload)
			return func() error { return wait(tok) }
		},
		close: closeFn,
	}
}

// dialPaho5 is dialK9 for MQTT 5.0. Its publish waits for the
// acknowledgement before it returns.
func dialPaho5(t *testing.T, addr, id string, msgs chan<- string) k9Client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{
		Conn: nc,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				if msgs != nil {
					msgs <- string(pr.Packet.Payload)
				}
				return true, nil
			},
		},
		PacketTimeout: 20 * time.Second,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	expiry := uint32(3600)
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: id, KeepAlive: 30,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry}}); err != nil {
		t.Fatalf("connect %s: %v", id, err)
	}
	closeFn := func() {
		select {
		case <-c.Done():
		default:
			_ = c.Disconnect(&paho.Disconnect{ReasonCode: 0})
		}
	}
	t.Cleanup(closeFn)
	call := func(f func(ctx context.Context) error) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return f(ctx)
	}
	return k9Client{
		subscribe: func(filter string, qos byte) error {
			return call(func(ctx context.Context) error {
				_, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: qos}}})
				return err
			})
		},
		publish: func(topic string, qos byte, payload string) func() error {
			err := call(func(ctx context.Context) error {
				r, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: qos, Payload: []byte(payload)})
				if err == nil && r != nil && r.ReasonCode >= 0x80 {
					err = fmt.Errorf("reason code %#x", r.ReasonCode)
				}
				return err
			})
			return func() error { return err }
		},
		close: closeFn,
	}
}

// TestServeKill9KeepsAcknowledgedMessages: a persistent subscriber is
// offline, a publisher sends QoS 1 or QoS 2 messages (MQTT 3.1.1 and 5.0)
// and gets every acknowledgement, the broker is killed with SIGKILL; after
// a restart on the same data directory the subscriber receives every
// message, at least once for QoS 1 and exactly once for QoS 2 (checked up
// to a marker published after the restart, which comes after every queued
// message).
func TestServeKill9KeepsAcknowledgedMessages(t *testing.T) {
	for _, tc := range []struct {
		name string
		v5   bool
		qos  byte
		n    int
	}{
		{"3.1.1 QoS 1", false, 1, 2000},
		{"3.1.1 QoS 2", false, 2, 1000},
		{"5.0 QoS 1", true, 1, 300},
		{"5.0 QoS 2", true, 2, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			dataDir := t.TempDir()
			cmd, addr := serveChild(t, ctx, dataDir)

			sub := dialK9(t, tc.v5, addr, "kill9-sub", nil)
			if err := sub.subscribe("k9/#", tc.qos); err != nil {
				t.Fatalf("subscribe: %v", err)
			}
			sub.close()

			pub := dialK9(t, tc.v5, addr, "kill9-pub", nil)
			waits := make([]func() error, tc.n)
			for i := range tc.n {
				waits[i] = pub.publish(fmt.Sprintf("k9/%d", i%10), tc.qos, strconv.Itoa(i))
			}
			for i, wait := range waits {
				if err := wait(); err != nil {
					t.Fatalf("publish %d: %v", i, err)
				}
			}
			if err := cmd.Process.Kill(); err != nil { // SIGKILL
				t.Fatal(err)
			}
			_ = cmd.Wait()

			_, addr = serveChild(t, ctx, dataDir)
			msgs := make(chan string, tc.n*2+1)
			dialK9(t, tc.v5, addr, "kill9-sub", msgs)
			marker := dialK9(t, tc.v5, addr, "kill9-marker", nil)
			if err := marker.publish("k9/0", tc.qos, "marker")(); err != nil {
				t.Fatalf("marker: %v", err)
			}
			seen := make(map[int]int, tc.n)
			for {
				select {
				case p := <-msgs:
					if p == "marker" {
						if len(seen) != tc.n {
							t.Fatalf("after kill -9 and restart the subscriber got %d of %d acknowledged messages", len(seen), tc.n)
						}
						if tc.qos == 2 {
							for i, k := range seen {
								if k != 1 {
									t.Fatalf("QoS 2 message %d delivered %d times", i, k)
								}
							}
						}
						return
					}
					i, err := strconv.Atoi(p)
					if err != nil || i < 0 || i >= tc.n {
						t.Fatalf("unexpected payload %q", p)
					}
					seen[i]++
				case <-ctx.Done():
					t.Fatalf("after kill -9 and restart the subscriber got %d of %d acknowledged messages and no marker", len(seen), tc.n)
				}
			}
		})
	}
}
