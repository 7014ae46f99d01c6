// Command mqgate is the mqgate MQTT broker.
//
//	mqgate serve [-c FILE]            run the broker (embedded defaults without -c)
//	mqgate passwd ...                 write a users-file entry
//	mqgate acl explain ... [-c FILE]  which link of the ACL chain decides, and why
//	mqgate webhook list|replay        show or resend web hook dead letters
//	mqgate ctl ...                    operate a running broker over its HTTP API
//	mqgate healthcheck [--url URL]    GET /healthz, for container health checks
//	mqgate version                    print the version
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/broker/topics"
	"github.com/mqgate/mqgate/config"
	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/store/wal"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

const usage = `usage:
  mqgate serve [-c FILE]   run the broker; without -c it runs on the embedded defaults
  mqgate check [-c FILE]   validate a configuration as serve would, without starting; exit 2 if invalid
  mqgate passwd ...         write an entry of the authentication users file
  mqgate acl explain --username U --clientid C --topic T --action publish|subscribe [-c FILE]
                           which link of the ACL chain decides, and why
  mqgate webhook list|replay [-c FILE]
                           show or resend the web hook dead letters
  mqgate ctl status|broker|clients|subscriptions|routes|listeners|acl|mgmt|publish ...
                           operate a running broker over its HTTP API (mqgate ctl help)
  mqgate healthcheck [--url URL]
                           GET the management API's /healthz; exit 0 on 200 (container health checks)
  mqgate version           print the version
`

// run is main without the process: it returns the exit code.
func run(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], environ, stderr)
	case "check":
		return checkCommand(args[1:], environ, stdout, stderr)
	case "passwd":
		return passwdCommand(args[1:], stdout, stderr)
	case "acl":
		return aclCommand(args[1:], environ, stdout, stderr)
	case "webhook":
		return webhookCommand(args[1:], environ, stdout, stderr)
	case "ctl":
		return ctlCommand(args[1:], environ, stdout, stderr)
	case "healthcheck":
		return healthCommand(args[1:], stdout, stderr)
	case "version", "-v", "--version":
		fmt.Fprintf(stdout, "mqgate %s\n", buildVersion())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "mqgate: unknown command %q\n%s", args[0], usage)
		return 2
	}
}

// buildVersion returns the version stamped at build time, else the module
// version, else "dev".
func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func serve(args, environ []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file (key = value); embedded defaults when empty")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run (from -cpuprofile-after on) to this file (go tool pprof)")
	cpuprofileAfter := fs.Duration("cpuprofile-after", 0, "start the -cpuprofile this long after the start: a load's warm-up left out")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cpuprofileAfter < 0 {
		fmt.Fprintf(stderr, "mqgate: -cpuprofile-after %v: negative\n", *cpuprofileAfter)
		return 2
	}
	if *cpuprofile != "" {
		stopProfile, err := startCPUProfile(*cpuprofile, *cpuprofileAfter, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "mqgate: -cpuprofile: %v\n", err)
			return 2
		}
		defer stopProfile()
	}
	cfg, err := config.Load(*path, environ)
	if err != nil {
		fmt.Fprintf(stderr, "mqgate: invalid configuration:\n%v\n", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	floor := heapFloor(cfg.Bytes("node.heap_floor"))
	defer runtime.KeepAlive(floor)
	opts, certs, err := brokerOptions(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "mqgate: %v\n", err)
		return 2
	}
	bus := events.NewBus()
	defer bus.Close()
	opts.Events = bus
	authn, closeAuthn, err := buildAuthenticator(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "mqgate: %v\n", err)
		return 2
	}
	defer closeAuthn()
	bans, err := openBans(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "mqgate: %v\n", err)
		return 2
	}
	opts.Authenticator = bans.Wrap(authn)
	authz, closeAuthz, err := buildAuthorizer(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "mqgate: %v\n", err)
		return 2
	}
	defer closeAuthz()
	opts.Authorizer = authz
	reg, err := newRegistry(authn, authz)
	if err != nil {
		fmt.Fprintf(stderr, "mqgate: %v\n", err)
		return 1
	}
	hooks, stopHooks, err := startWebhooks(cfg, bus, log)
	if err != nil {
		fmt.Fprintf(stderr, "mqgate: %v\n", err)
		return 2
	}
	// Each stop below runs once, in reverse order of start, bounded by
	// broker.shutdown_timeout: on a failed start and after a signal alike.
	var stops []func(context.Context) error
	stopAll := func() (failed bool) {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.Duration("broker.shutdown_timeout"))
		defer cancel()
		for i := len(stops) - 1; i >= 0; i-- {
			if err := stops[i](sctx); err != nil {
				log.Error("shutdown", "err", err)
				failed = true
			}
		}
		stops = nil
		return failed
	}
	defer stopAll()
	stops = append(stops, stopHooks)
	b, err := broker.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "mqgate: %v\n", err)
		return 1
	}
	// Catch the signals before the listeners open: a SIGTERM that comes as
	// soon as a client can connect must already mean a graceful stop.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := b.Start(); err != nil {
		fmt.Fprintf(stderr, "mqgate: %v\n", err)
		return 1
	}
	stops = append(stops, b.Shutdown)
	stopAPI, err := startAPI(cfg, b, apiDeps{Registry: reg, Bans: bans, Authorizer: authz, Webhooks: hooks}, log)
	if err != nil {
		fmt.Fprintf(stderr, "mqgate: %v\n", err)
		return 1
	}
	stops = append(stops, stopAPI)
	stopSidecar, err := startSidecar(cfg, authn, authz, log)
	if err != nil {
		fmt.Fprintf(stderr, "mqgate: %v\n", err)
		return 1
	}
	stops = append(stops, stopSidecar)
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		certs.Watch(wctx, log)
	}()
	stops = append(stops, func(context.Context) error {
		stopWatch()
		<-watched
		return nil
	})
	log.Info("mqgate started", "version", opts.Version, "node", opts.NodeName)

	for {
		select {
		case <-hup:
			if err := certs.Reload(); err != nil {
				log.Error("SIGHUP: tls files not reloaded", "err", err)
			} else {
				log.Info("SIGHUP: tls files reloaded")
			}
			continue
		case <-ctx.Done():
		}
		break
	}
	stop()
	log.Info("shutting down")
	if stopAll() {
		return 1
	}
	log.Info("stopped")
	return 0
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	switch cfg.String("log.level") {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	ho := &slog.HandlerOptions{Level: level}
	if cfg.String("log.format") == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// brokerOptions maps the configuration onto broker.Options.
// The returned listenerCerts are the TLS files of the ssl and wss
// listeners, to reload on SIGHUP and when they change on disk.
func brokerOptions(cfg *config.Config, log *slog.Logger) (broker.Options, *listenerCerts, error) {
	o := broker.DefaultOptions()
	o.Logger = log
	o.Version = buildVersion()
	o.NodeName = cfg.String("node.name")
	ls, certs, err := listenersWithCerts(cfg)
	if err != nil {
		return o, nil, err
	}
	o.Listeners = ls
	o.AllowAnonymous = cfg.Bool("allow_anonymous")
	o.ACLNoMatch = access.Allow
	if cfg.String("acl_nomatch") == "deny" {
		o.ACLNoMatch = access.Deny
	}
	o.ACLDenyDisconnect = cfg.String("acl_deny_action") == "disconnect"
	o.MaxPacketSize = int(cfg.Bytes("mqtt.max_packet_size"))
	o.MaxClientIDLen = int(cfg.Int("mqtt.max_clientid_len"))
	o.MaxTopicLevels = int(cfg.Int("mqtt.max_topic_levels"))
	o.MaxQoS = byte(cfg.Int("mqtt.max_qos_allowed"))
	o.MaxTopicAlias = uint16(cfg.Int("mqtt.max_topic_alias"))
	o.RetainAvailable = cfg.Bool("mqtt.retain_available")
	o.WildcardSubscription = cfg.Bool("mqtt.wildcard_subscription")
	o.SharedSubscription = cfg.Bool("mqtt.shared_subscription")
	o.MaxKeepAlive = uint16(cfg.Int("mqtt.max_keepalive"))
	o.MaxSubscriptions = int(cfg.Int("mqtt.max_subscriptions"))
	o.MaxInflight = int(cfg.Int("mqtt.max_inflight"))
	o.ReceiveMaximum = int(cfg.Int("mqtt.receive_maximum"))
	o.MaxMqueueLen = int(cfg.Int("mqtt.max_mqueue_len"))
	o.MqueueStoreQoS0 = cfg.Bool("mqtt.mqueue_store_qos0")
	o.MqueueDropNew = cfg.String("mqtt.mqueue_overflow") == "drop_new"
	o.MaxQueuedBytes = int(cfg.Bytes("mqtt.max_queued_bytes"))
	o.RetryInterval = cfg.Duration("mqtt.retry_interval")
	o.AwaitRelTimeout = cfg.Duration("mqtt.await_rel_timeout")
	o.SessionExpiry = cfg.Duration("mqtt.session_expiry_interval")
	o.MaxSessionExpiry = cfg.Duration("mqtt.max_session_expiry")
	o.IdleTimeout = cfg.Duration("mqtt.idle_timeout")
	o.IgnoreLoopDeliver = cfg.Bool("mqtt.ignore_loop_deliver")
	o.SysInterval = cfg.Duration("broker.sys_interval")
	o.SysHeartbeat = cfg.Duration("broker.sys_heartbeat")
	st, err := topics.ParseStrategy(cfg.String("broker.shared_subscription_strategy"))
	if err != nil {
		return o, nil, fmt.Errorf("broker.shared_subscription_strategy: %w", err)
	}
	o.SharedStrategy = st
	o.ShutdownTimeout = cfg.Duration("broker.shutdown_timeout")
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	o.MaxRetained = int(cfg.Int("retainer.max_retained_messages"))
	o.MaxRetainedPayload = int(cfg.Bytes("retainer.max_payload_size"))
	o.PresenceQoS = byte(cfg.Int("module.presence.qos"))
	if mode := cfg.String("store.sync"); mode != "none" {
		o.StoreDir = cfg.String("node.data_dir")
		if o.StoreSync, err = wal.ParseSync(mode); err != nil {
			return o, nil, fmt.Errorf("store.sync: %w", err)
		}
		o.StoreBatchInterval = cfg.Duration("store.batch_interval")
	}
	return o, certs, nil
}

// startCPUProfile starts writing a CPU profile to path, at once or, when
// after is positive, that long from now (a failure then is written to
// stderr); the returned function stops it and closes the file. A profile
// stopped before it started leaves the file empty.
func startCPUProfile(path string, after time.Duration, stderr io.Writer) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	var (
		mu      sync.Mutex
		started bool
		stopped bool
		t       *time.Timer
	)
	if after <= 0 {
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("start profile: %w", err)
		}
		started = true
	} else {
		t = time.AfterFunc(after, func() {
			mu.Lock()
			defer mu.Unlock()
			if stopped {
				return
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				fmt.Fprintf(stderr, "mqgate: -cpuprofile: start profile: %v\n", err)
				return
			}
			started = true
		})
	}
	return func() {
		if t != nil {
			t.Stop()
		}
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		if started {
			pprof.StopCPUProfile()
		}
		_ = f.Close()
	}, nil
}

// heapFloor returns an allocation of n bytes that is never written: it
// counts toward the heap that the garbage collector's goal is set from, so
// that a broker whose live heap is a few megabytes does not collect every
// few megabytes of allocation (a collection every 6 ms under load, 7-12 %
// of its CPU, was measured). Its own pages are never touched, so they take
// address space, not resident memory, and the collector does not scan
// them (a byte slice holds no pointers); what it costs is the garbage that
// may now pile up to about n bytes between collections. It must stay
// reachable while the broker runs.
func heapFloor(n int64) []byte {
	if n <= 0 {
		return nil
	}
	return make([]byte, n)
}
