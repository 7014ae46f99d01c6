package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/config"
)

// checkCommand is mqgate check [-c FILE]: it validates a configuration as
// serve does before it listens, so that a change can be checked before a
// restart: the keys (with the file line of a bad one), the listeners and
// their certificate files, the authentication and ACL chains (policy files
// and keys are read and parsed; no backend is asked a question), the web
// hook rules and the management API's applications. Nothing is bound and
// no state is written. Exit status: 0 when the configuration is valid, 2
// when it is not (as serve).
func checkCommand(args, environ []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file (key = value); embedded defaults when empty")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*path, environ)
	if err != nil {
		fmt.Fprintf(stderr, "mqgate: invalid configuration:\n%v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	fail := func(err error) int {
		fmt.Fprintf(stderr, "mqgate: %v\n", err)
		return 2
	}
	opts, _, err := brokerOptions(cfg, log)
	if err != nil {
		return fail(err)
	}
	authn, closeAuthn, err := buildAuthenticator(cfg, log)
	if err != nil {
		return fail(err)
	}
	defer closeAuthn()
	chain, closeChain, err := buildACLChain(cfg, log, false)
	if err != nil {
		return fail(err)
	}
	defer closeChain()
	if _, err := webhookOptions(cfg, log); err != nil {
		return fail(err)
	}
	opts.Authenticator = authn
	if chain != nil {
		opts.Authorizer = chain
	}
	b, err := broker.New(opts)
	if err != nil {
		return fail(err)
	}
	bans, err := openBans(cfg)
	if err != nil {
		return fail(err)
	}
	deps := apiDeps{Bans: bans}
	if chain != nil {
		deps.Authorizer = chain
	}
	if _, err := newAPIServer(cfg, b, deps, log); err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "configuration ok: %d listener(s)\n", len(opts.Listeners))
	return 0
}
