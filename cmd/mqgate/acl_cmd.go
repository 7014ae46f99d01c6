package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"text/tabwriter"
	"time"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/authn"
	"github.com/mqgate/mqgate/config"
)

// aclCommand runs "mqgate acl explain": it builds the authorization chain
// from the config (without watchers or cache), asks it the question given
// by the flags and prints the verdict, the backend and rule that decided
// it, and what each link of the chain said. Exit status: 0 when explained,
// 1 when the chain cannot be built, 2 on bad usage.
func aclCommand(args []string, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "explain" {
		fmt.Fprintln(stderr, "usage: mqgate acl explain --username U --clientid C --topic T --action publish|subscribe [--ipaddr IP] [--qos Q] [--retain] [--acl CLAIM] [-c FILE]")
		return 2
	}
	fs := flag.NewFlagSet("acl explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file (key = value); embedded defaults when empty")
	username := fs.String("username", "", "the client's username")
	clientID := fs.String("clientid", "", "the client's client identifier")
	topic := fs.String("topic", "", "topic name (publish) or topic filter (subscribe)")
	action := fs.String("action", "publish", "publish or subscribe")
	ipaddr := fs.String("ipaddr", "127.0.0.1", "the client's IP address")
	qos := fs.Uint("qos", 0, "QoS of the publish or subscription")
	retain := fs.Bool("retain", false, "the publish sets the retain flag")
	claim := fs.String("acl", "", `ACL rules the client's authentication carried, as a JWT "acl" claim in JSON (EMQX 4 or 5 form)`)
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	req := access.Request{
		Identity: access.Identity{ClientID: *clientID, Username: *username, UsernameSet: *username != "", Listener: "tcp:external", Proto: 5},
		Topic:    *topic,
		QoS:      byte(min(*qos, 2)),
		Retain:   *retain,
	}
	switch *action {
	case "publish":
		req.Action = access.Publish
	case "subscribe":
		req.Action = access.Subscribe
	default:
		fmt.Fprintf(stderr, "mqgate acl explain: --action %q: want publish or subscribe\n", *action)
		return 2
	}
	if *topic == "" {
		fmt.Fprintln(stderr, "mqgate acl explain: --topic is required")
		return 2
	}
	addr, err := netip.ParseAddr(*ipaddr)
	if err != nil {
		fmt.Fprintf(stderr, "mqgate acl explain: --ipaddr: %v\n", err)
		return 2
	}
	req.Peer = netip.AddrPortFrom(addr, 0)
	if *claim != "" {
		req.Granted, err = authn.ParseACL(json.RawMessage(*claim), req.Identity)
		if err != nil {
			fmt.Fprintf(stderr, "mqgate acl explain: --acl: %v\n", err)
			return 2
		}
		req.GrantedBy = "jwt"
	}

	cfg, err := config.Load(*path, environ)
	if err != nil {
		fmt.Fprintf(stderr, "mqgate: invalid configuration:\n%v\n", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	chain, closeFn, err := buildACLChain(cfg, log, false)
	if err != nil {
		fmt.Fprintf(stderr, "mqgate: %v\n", err)
		return 1
	}
	defer closeFn()

	fmt.Fprintf(stdout, "request:  %s %q by username %q, client ID %q\n", req.Action, req.Topic, req.Username, req.ClientID)
	if chain == nil {
		fmt.Fprintf(stdout, "verdict:  %s\ndecided:  acl_nomatch (acl.chain is empty)\n", cfg.String("acl_nomatch"))
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ex := chain.Explain(ctx, req)
	fmt.Fprintf(stdout, "verdict:  %s\n", ex.Decision.Verdict)
	fmt.Fprintf(stdout, "decided:  %s", ex.Decision.Source)
	if ex.Decision.Reason != "" {
		fmt.Fprintf(stdout, " (%s)", ex.Decision.Reason)
	}
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, "chain:")
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	asked := map[string]bool{}
	for i, l := range ex.Links {
		asked[l.Link] = true
		fmt.Fprintf(tw, "  %d. %s\t%s\t%s\n", i+1, l.Link, l.Decision.Verdict, l.Decision.Reason)
	}
	n := len(ex.Links)
	for _, name := range aclList(cfg.String("acl.chain")) {
		if !asked[name] {
			n++
			fmt.Fprintf(tw, "  %d. %s\t-\tnot asked\n", n, name)
		}
	}
	tw.Flush()
	return 0
}
