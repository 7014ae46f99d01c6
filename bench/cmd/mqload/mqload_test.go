package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqgate/mqgate/bench/procstat"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		check   func(*config) bool
		wantErr bool
	}{
		{
			name:  "fanin defaults",
			args:  []string{"-scenario", "fanin"},
			check: func(c *config) bool { return c.pubs == 4 && c.window == 20000 && c.keepAlive == 0 && c.payload == 16 },
		},
		{
			name:  "fanout defaults",
			args:  []string{"-scenario", "fanout"},
			check: func(c *config) bool { return c.pubs == 1 && c.subs == 100 && c.window == 20000 },
		},
		{
			name:  "qos1 defaults",
			args:  []string{"-scenario", "qos1"},
			check: func(c *config) bool { return c.pubs == 4 && c.inflight == 64 && c.window == 1000 },
		},
		{
			name:  "latency window is a second of messages",
			args:  []string{"-scenario", "latency", "-rate", "500"},
			check: func(c *config) bool { return c.window == 500 },
		},
		{
			name:  "conns keeps connections alive for 300 s",
			args:  []string{"-scenario", "conns"},
			check: func(c *config) bool { return c.keepAlive == 300 && c.conns == 10000 },
		},
		{
			name:  "explicit values win",
			args:  []string{"-scenario", "fanin", "-pubs", "2", "-window", "7", "-keepalive", "30"},
			check: func(c *config) bool { return c.pubs == 2 && c.window == 7 && c.keepAlive == 30 },
		},
		{
			name:  "table needs no scenario",
			args:  []string{"-table", "x.jsonl", "-scenario", "nonsense"},
			check: func(c *config) bool { return c.table == "x.jsonl" },
		},
		{name: "unknown scenario", args: []string{"-scenario", "fanall"}, wantErr: true},
		{name: "zero duration", args: []string{"-duration", "0s"}, wantErr: true},
		{name: "keepalive over 16 bits", args: []string{"-keepalive", "70000"}, wantErr: true},
		{name: "negative payload", args: []string{"-payload", "-1"}, wantErr: true},
		{name: "no connections", args: []string{"-scenario", "conns", "-conns", "0"}, wantErr: true},
		{name: "stray argument", args: []string{"fanin"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseFlags(tt.args, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && !tt.check(cfg) {
				t.Fatalf("unexpected config %+v", *cfg)
			}
		})
	}
}

func TestStamp(t *testing.T) {
	p := make([]byte, 20)
	putStamp(p, 1234567890123, 3, 0xfffffffe)
	ts, pub, seq, ok := readStamp(p)
	if !ok || ts != 1234567890123 || pub != 3 || seq != 0xfffffffe {
		t.Fatalf("got %d %d %d %v", ts, pub, seq, ok)
	}
	if _, _, _, ok := readStamp(p[:15]); ok {
		t.Fatal("a 15-byte payload has no stamp")
	}
}

func TestTracker(t *testing.T) {
	tr := newTracker(2, 100)
	for _, m := range []struct{ pub, seq uint32 }{
		{0, 0}, {0, 1}, {0, 3}, {1, 0}, {0, 1}, // one duplicate
		{2, 0},    // unknown publisher
		{1, 5000}, // beyond the bitmap
	} {
		tr.mark(m.pub, m.seq)
	}
	if tr.unique != 4 || tr.dup != 1 || tr.invalid != 2 {
		t.Fatalf("unique %d dup %d invalid %d, want 4 1 2", tr.unique, tr.dup, tr.invalid)
	}
	if got := tr.missing([]uint32{4, 2}, 5); got != "0/2 1/1" {
		t.Fatalf("missing = %q, want %q", got, "0/2 1/1")
	}
	if got := tr.missing([]uint32{2, 1}, 5); got != "none" {
		t.Fatalf("missing = %q, want none", got)
	}
}

func TestGateAcquire(t *testing.T) {
	g := &gate{factor: 2, window: 10, limit: 8}
	if !g.acquire(5) { // 10 deliveries outstanding: exactly the window
		t.Fatal("first acquire refused")
	}
	done := make(chan bool)
	go func() { done <- g.acquire(1) }()
	select {
	case <-done:
		t.Fatal("acquire went past a full window")
	default:
	}
	g.recv.Add(2)
	if !<-done {
		t.Fatal("acquire refused after deliveries")
	}
	if g.sent.Load() != 6 || g.outstanding() != 10 {
		t.Fatalf("sent %d outstanding %d, want 6 10", g.sent.Load(), g.outstanding())
	}
	g.recv.Add(10)
	if !g.acquire(2) || g.acquire(1) {
		t.Fatal("the count bound of 8 publishes is not enforced")
	}
	g.limit = 100
	g.stop.Store(true)
	if g.acquire(1) {
		t.Fatal("acquire after stop")
	}
}

// A broker that stops delivering has its outstanding messages written off
// after stallTimeout, so that the publishers can go on.
func TestStallWatch(t *testing.T) {
	g := &gate{factor: 1, window: 5, limit: 100}
	g.sent.Store(20)
	g.recv.Store(12)
	var w stallWatch
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at      time.Duration
		recv    uint64
		wantOff bool
	}{
		{0, 12, false},
		{stallTimeout / 2, 12, false},
		{stallTimeout, 13, false}, // progress resets the clock
		{2*stallTimeout - time.Millisecond, 13, false},
		{2 * stallTimeout, 13, true},
		{3*stallTimeout + time.Millisecond, 13, false}, // nothing outstanding any more
	}
	for i, s := range steps {
		g.recv.Store(s.recv)
		if got := w.check(g, t0.Add(s.at)); got != s.wantOff {
			t.Fatalf("step %d: wrote off %v, want %v", i, got, s.wantOff)
		}
	}
	if w.stalls != 1 || g.outstanding() != 0 || g.credit.Load() != 7 {
		t.Fatalf("stalls %d outstanding %d credit %d, want 1 0 7", w.stalls, g.outstanding(), g.credit.Load())
	}
}

func TestResultMeasure(t *testing.T) {
	t0 := time.Unix(0, 0)
	s0 := snapshot{
		at:     t0,
		broker: procstat.Usage{CPU: time.Second, User: 400 * time.Millisecond, System: 600 * time.Millisecond, MinorFaults: 40},
		act:    procstat.Activity{ReadCalls: 10, WriteCalls: 20, Switches: 30, Preemptions: 40, FirstThread: 12, FirstThreadCPU: 25 * time.Millisecond},
		client: 2 * time.Second,
		count:  100,
	}
	s1 := snapshot{
		at:     t0.Add(2 * time.Second),
		broker: procstat.Usage{CPU: 2500 * time.Millisecond, User: 900 * time.Millisecond, System: 1600 * time.Millisecond, MinorFaults: 1040},
		act:    procstat.Activity{ReadCalls: 110, WriteCalls: 70, Switches: 37, Preemptions: 41, FirstThread: 12, FirstThreadCPU: 75 * time.Millisecond},
		client: 2500 * time.Millisecond,
		count:  300100,
	}
	var r result
	r.measure(s0, s1)
	if r.Msgs != 300000 || r.MsgsPerSec != 150000 || r.BrokerCPUSec != 1.5 || r.MsgsPerCPUSec != 200000 ||
		r.BrokerCPUPct != 75 || r.ClientCPUPct != 25 || r.BrokerMinorFaults != 1000 {
		t.Fatalf("got %+v", r)
	}
	if r.BrokerUserCPUSec != 0.5 || r.BrokerSysCPUSec != 1 || r.BrokerReadCalls != 100 || r.BrokerWriteCalls != 50 ||
		r.BrokerSwitches != 7 || r.BrokerPreemptions != 1 || r.BrokerMonitorCPUSec != 0.05 {
		t.Fatalf("got %+v", r)
	}
	// A thread that ended took its context switches with it: no
	// wrap-around below zero.
	ended := s1
	ended.act.Switches, ended.act.Preemptions = 25, 39
	var short result
	short.measure(s0, ended)
	if short.BrokerSwitches != 0 || short.BrokerPreemptions != 0 {
		t.Fatalf("switches %d, preemptions %d after a thread ended, want 0 0", short.BrokerSwitches, short.BrokerPreemptions)
	}
	// Another first thread at the end: its CPU is not the difference.
	other := s1
	other.act.FirstThread = 13
	var moved result
	moved.measure(s0, other)
	if moved.BrokerMonitorCPUSec != 0 {
		t.Fatalf("monitor CPU %v across two threads, want 0", moved.BrokerMonitorCPUSec)
	}
	var none result
	none.measure(s0, snapshot{at: t0.Add(time.Second), count: 100})
	if none.MsgsPerCPUSec != 0 {
		t.Fatalf("no broker CPU must give no msg/CPU-s, got %v", none.MsgsPerCPUSec)
	}
}

func TestThousands(t *testing.T) {
	for _, tt := range []struct {
		in   float64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {1234567.6, "1,234,568"}, {-45000, "-45,000"}} {
		if got := thousands(tt.in); got != tt.want {
			t.Errorf("thousands(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTable(t *testing.T) {
	lines := []string{
		`{"scenario":"fanin","broker":"mosquitto","round":1,"msgs_per_sec":50000,"msgs_per_cpu_sec":60000}`,
		`{"scenario":"fanin","broker":"mqgate","round":1,"msgs_per_sec":400000,"msgs_per_cpu_sec":360000}`,
		`{"scenario":"fanin","broker":"mosquitto","round":2,"msgs_per_sec":52000,"msgs_per_cpu_sec":65000}`,
		`{"scenario":"fanin","broker":"mqgate","round":2,"msgs_per_sec":900000,"msgs_per_cpu_sec":1,"error":"boom"}`,
		`{"scenario":"latency","broker":"mosquitto","round":1,"msgs_per_sec":10000,"latency_us":{"count":9,"p50":200,"p99":900}}`,
		`{"scenario":"latency","broker":"mosquitto","round":2,"msgs_per_sec":10000,"latency_us":{"count":9,"p50":250,"p99":700}}`,
		`{"scenario":"conns","broker":"mqgate","round":1,"conns":10,"alive":10,"bytes_per_conn":4000}`,
		`{"scenario":"conns","broker":"mqgate","round":2,"conns":10,"alive":10,"bytes_per_conn":3000}`,
		`{"scenario":"conns","broker":"mosquitto","round":1,"error":"broker did not start"}`,
		`not json: ignored`,
	}
	c, err := readResults(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.brokers, ",") != "mosquitto,mqgate" || strings.Join(c.scenarios, ",") != "fanin,latency,conns" {
		t.Fatalf("brokers %v scenarios %v", c.brokers, c.scenarios)
	}
	tests := []struct {
		scenario, broker string
		wantRound        int // 0: no usable round
	}{
		{"fanin", "mosquitto", 2}, // highest msg/s
		{"fanin", "mqgate", 1},    // round 2 failed
		{"latency", "mosquitto", 2},
		{"conns", "mqgate", 2}, // fewest bytes per connection
		{"conns", "mosquitto", 0},
	}
	for _, tt := range tests {
		b := best(c.runs[tt.scenario][tt.broker])
		got := 0
		if b != nil {
			got = b.Round
		}
		if got != tt.wantRound {
			t.Errorf("%s %s: best round %d, want %d", tt.scenario, tt.broker, got, tt.wantRound)
		}
	}
	var out bytes.Buffer
	c.write(&out)
	for _, want := range []string{
		"fanin    |          52,000 |      400,000 |              65,000 |          360,000 |              5.54",
		"latency    | mosquitto | 250 | 0.0 | 700 |",
		"conns      | mqgate |    10 |    10 |",
		"fanin mqgate round 2: boom",
		"conns mosquitto round 1: broker did not start",
		"FAILED",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// TestAgainstMosquitto runs every scenario, briefly, against a real broker
// when one is installed.
func TestAgainstMosquitto(t *testing.T) {
	const bin = "/usr/sbin/mosquitto"
	if _, err := os.Stat(bin); err != nil {
		t.Skip("mosquitto is not installed")
	}
	if testing.Short() {
		t.Skip("starts a broker")
	}
	port := freePort(t)
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	err := os.WriteFile(conf, []byte("listener "+port+" 127.0.0.1\nallow_anonymous true\npersistence false\n"+
		"max_queued_messages 1000000\nmax_inflight_messages 0\nsys_interval 0\nlog_dest none\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := "127.0.0.1:" + port
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatal("mosquitto did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	tests := []struct {
		scenario string
		extra    []string
		check    func(*result) bool
	}{
		{"fanin", nil, func(r *result) bool { return r.Msgs > 0 && r.Lost == 0 && r.Received == r.Sent }},
		{"fanout", []string{"-subs", "10"}, func(r *result) bool { return r.Msgs > 0 && r.Lost == 0 && r.Received == 10*r.Sent }},
		// [MQTT-4.3.2-2] every QoS 1 message is acknowledged and delivered once.
		{"qos1", nil, func(r *result) bool { return r.Msgs > 0 && r.Lost == 0 && r.Dup == 0 && r.Latency.Count > 0 }},
		{"latency", []string{"-rate", "2000"}, func(r *result) bool { return r.Lost == 0 && r.Latency.Count > 0 && r.Latency.P50 > 0 }},
		{"conns", []string{"-conns", "200", "-settle", "0s"}, func(r *result) bool {
			return r.Alive == 200 && r.Msgs == 200 && r.RSSAfter > 0
		}},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			args := append([]string{"-addr", addr, "-pid", pid, "-scenario", tt.scenario,
				"-duration", "300ms", "-warmup", "50ms", "-json"}, tt.extra...)
			var stdout, stderr bytes.Buffer
			if rc := realMain(args, &stdout, &stderr); rc != 0 {
				t.Fatalf("exit status %d: %s %s", rc, stdout.String(), stderr.String())
			}
			var r result
			if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
				t.Fatalf("%v: %s", err, stdout.String())
			}
			if r.Error != "" || r.Scenario != tt.scenario || r.BrokerCPUSec < 0 || !tt.check(&r) {
				t.Fatalf("unexpected result %s", stdout.String())
			}
		})
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
