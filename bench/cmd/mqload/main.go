// Command mqload is a raw MQTT 3.1.1 load generator that measures a broker's
// throughput, latency and memory per idle connection, and charges the broker
// for the CPU it used (from /proc/PID/stat) so that brokers can be compared
// per CPU-second, not only per second, on a machine they share with the load.
//
// Usage:
//
//	mqload -addr 127.0.0.1:1883 -pid 1234 -scenario fanin -duration 5s [-json]
//	mqload -addr 127.0.0.1:8883 -tls -cafile ca.pem ...
//	mqload -addr wss://127.0.0.1:8084/mqtt -insecure ...
//	mqload -table results.jsonl
//
// Scenarios (each bounded in time by -duration and in count by -count):
//
//	fanin    4 QoS 0 publishers on bench/<i>/x → 1 subscriber on bench/+/x
//	fanout   1 QoS 0 publisher → 100 subscribers of bench/fanout
//	qos1     4 QoS 1 publishers (64 unacknowledged each) → 1 QoS 1 subscriber;
//	         latency percentiles; any loss fails the run (exit status 1)
//	latency  1 QoS 0 publisher at -rate msg/s → 1 subscriber; latency percentiles
//	conns    -conns idle connections; broker RSS growth per connection
//
// Each run prints one line; with -json the line goes to standard error and a
// JSON object to standard output, for bench/run.sh. -table reads such JSON
// lines from several runs and prints the side-by-side comparison.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"
)

// config is the command line.
type config struct {
	addr       string
	useTLS     bool
	caFile     string
	insecure   bool
	tr         *transport
	pid        int
	scenario   string
	label      string
	round      int
	duration   time.Duration
	warmup     time.Duration
	count      uint64
	window     uint64
	pubs       int
	subs       int
	inflight   int
	payload    int
	rate       int
	conns      int
	keepAlive  int
	settle     time.Duration
	persistent bool
	jsonOut    bool
	cpuProfile string
	table      string
	procs      int
}

// scenarioDefaults fills what the command line left at zero.
type scenarioDefaults struct {
	run    func(*config, *result) error
	count  uint64 // publishes allowed in one run
	window uint64 // outstanding deliveries allowed
	pubs   int
	subs   int
}

var scenarios = map[string]scenarioDefaults{
	"fanin":   {run: runFanin, count: 50_000_000, window: 20_000, pubs: 4, subs: 1},
	"fanout":  {run: runFanout, count: 2_000_000, window: 20_000, pubs: 1, subs: 100},
	"qos1":    {run: runQoS1, count: 10_000_000, window: 1_000, pubs: 4, subs: 1},
	"latency": {run: runLatency, count: 10_000_000, pubs: 1, subs: 1},
	"conns":   {run: runConns, pubs: 1, subs: 1},
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "mqload:", err)
		return 2
	}
	if cfg.table != "" {
		if err := printTable(cfg.table, stdout); err != nil {
			fmt.Fprintln(stderr, "mqload:", err)
			return 1
		}
		return 0
	}
	if cfg.procs > 0 {
		runtime.GOMAXPROCS(cfg.procs)
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "mqload:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "mqload:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	// A watchdog: whatever a broker does, a run ends.
	limit := cfg.warmup + cfg.duration + cfg.settle + time.Minute
	watchdog := time.AfterFunc(limit, func() {
		fmt.Fprintf(stderr, "mqload: %s did not finish within %v\n", cfg.scenario, limit)
		os.Exit(1)
	})
	defer watchdog.Stop()

	res := &result{Scenario: cfg.scenario, Broker: cfg.label, Round: cfg.round}
	err = scenarios[cfg.scenario].run(cfg, res)
	if err != nil {
		res.Error = err.Error()
	}
	if cfg.jsonOut {
		fmt.Fprintln(stdout, res.json())
		fmt.Fprintln(stderr, res.line())
	} else {
		fmt.Fprintln(stdout, res.line())
	}
	if err != nil {
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("mqload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:1883", "broker `host:port`, or a ws:// or wss:// URL (MQTT over WebSocket)")
	fs.BoolVar(&cfg.useTLS, "tls", false, "connect over TLS (implied by a wss:// -addr)")
	fs.StringVar(&cfg.caFile, "cafile", "", "PEM `file` of the CA that signed the broker's certificate (TLS and wss)")
	fs.BoolVar(&cfg.insecure, "insecure", false, "do not verify the broker's certificate (TLS and wss)")
	fs.IntVar(&cfg.pid, "pid", 0, "broker process id, for its CPU time and RSS (0: do not measure the broker)")
	fs.StringVar(&cfg.scenario, "scenario", "fanin", "fanin, fanout, qos1, latency or conns")
	fs.StringVar(&cfg.label, "label", "", "broker name to put in the result")
	fs.IntVar(&cfg.round, "round", 0, "round number to put in the result")
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "measured interval")
	fs.DurationVar(&cfg.warmup, "warmup", 500*time.Millisecond, "load before the measured interval")
	fs.Uint64Var(&cfg.count, "count", 0, "most messages published in the run (0: the scenario's default)")
	fs.Uint64Var(&cfg.window, "window", 0, "most deliveries outstanding (0: the scenario's default: 20000, 1000 for qos1)")
	fs.IntVar(&cfg.pubs, "pubs", 0, "publishers (0: the scenario's default)")
	fs.IntVar(&cfg.subs, "subs", 0, "subscribers for fanout (0: 100)")
	fs.IntVar(&cfg.inflight, "inflight", 64, "unacknowledged QoS 1 messages per publisher")
	fs.IntVar(&cfg.payload, "payload", 16, "payload bytes (latency and qos1 use at least 16)")
	fs.IntVar(&cfg.rate, "rate", 10_000, "messages per second for latency")
	fs.IntVar(&cfg.conns, "conns", 10_000, "idle connections for conns")
	fs.IntVar(&cfg.keepAlive, "keepalive", -1, "CONNECT keep alive in seconds (-1: 0 for load connections, 300 for conns)")
	fs.DurationVar(&cfg.settle, "settle", 2*time.Second, "wait before reading the broker's RSS in conns")
	fs.BoolVar(&cfg.persistent, "persistent", false, "subscribers connect without clean session: a persistent session, which a broker with persistence writes to disk")
	fs.BoolVar(&cfg.jsonOut, "json", false, "print the result as JSON on standard output")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write the generator's own CPU profile to `file`")
	fs.IntVar(&cfg.procs, "procs", 1, "the generator's GOMAXPROCS (0: Go's default); one keeps its footprint and thread hand-offs small")
	fs.StringVar(&cfg.table, "table", "", "print the comparison table of the JSON results in `file` and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if cfg.table != "" {
		return cfg, nil
	}
	d, ok := scenarios[cfg.scenario]
	if !ok {
		return nil, fmt.Errorf("unknown scenario %q", cfg.scenario)
	}
	if cfg.count == 0 {
		cfg.count = d.count
	}
	if cfg.window == 0 {
		cfg.window = d.window
	}
	if cfg.pubs == 0 {
		cfg.pubs = d.pubs
	}
	if cfg.subs == 0 {
		cfg.subs = d.subs
	}
	if cfg.keepAlive < 0 {
		cfg.keepAlive = 0
		if cfg.scenario == "conns" {
			cfg.keepAlive = 300
		}
	}
	switch {
	case cfg.duration <= 0 || cfg.warmup < 0 || cfg.settle < 0:
		return nil, errors.New("-duration must be positive, -warmup and -settle not negative")
	case cfg.pubs < 1 || cfg.subs < 1 || cfg.inflight < 1 || cfg.rate < 1 || cfg.conns < 1:
		return nil, errors.New("-pubs, -subs, -inflight, -rate and -conns must be at least 1")
	case cfg.keepAlive > 65535:
		return nil, errors.New("-keepalive must fit in 16 bits")
	case cfg.payload < 0 || cfg.payload > 1<<20:
		return nil, errors.New("-payload must be between 0 and 1 MiB")
	case cfg.scenario == "latency" && cfg.rate > 1_000_000:
		return nil, errors.New("-rate above 1,000,000 msg/s is not a latency test")
	case strings.Contains(cfg.addr, "://") && !strings.HasPrefix(cfg.addr, "ws://") && !strings.HasPrefix(cfg.addr, "wss://"):
		return nil, fmt.Errorf("-addr %q: only ws:// and wss:// URLs, or host:port", cfg.addr)
	case strings.HasPrefix(cfg.addr, "ws://") && (cfg.useTLS || cfg.caFile != "" || cfg.insecure):
		return nil, errors.New("-tls, -cafile and -insecure need a host:port or a wss:// -addr, not ws://")
	}
	tr, err := newTransport(cfg.useTLS || strings.HasPrefix(cfg.addr, "wss://"), cfg.caFile, cfg.insecure)
	if err != nil {
		return nil, err
	}
	cfg.tr = tr
	if cfg.scenario == "latency" && cfg.window == 0 {
		cfg.window = uint64(cfg.rate)
	}
	return cfg, nil
}
