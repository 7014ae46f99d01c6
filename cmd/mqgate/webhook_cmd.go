package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/signal"
	"syscall"

	"github.com/mqgate/mqgate/config"
	"github.com/mqgate/mqgate/webhook"
)

// webhookCommand runs `mqgate webhook replay|list [-c FILE]`: replay sends
// the dead letters (events an endpoint refused) again, list prints them. It
// can run while the broker runs.
func webhookCommand(args []string, environ []string, stdout, stderr io.Writer) int {
	usage := func() int {
		fmt.Fprintln(stderr, "usage: mqgate webhook replay|list [-c FILE]")
		return 2
	}
	if len(args) == 0 {
		return usage()
	}
	sub := args[0]
	if sub != "replay" && sub != "list" {
		return usage()
	}
	fs := flag.NewFlagSet("webhook "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file (key = value); embedded defaults when empty")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	cfg, err := config.Load(*path, environ)
	if err != nil {
		fmt.Fprintf(stderr, "mqgate: invalid configuration:\n%v\n", err)
		return 2
	}
	dir := webhookDir(cfg)
	if sub == "list" {
		dead, err := webhook.ReadDeadLetters(dir)
		if err != nil {
			fmt.Fprintf(stderr, "mqgate: %v\n", err)
			return 1
		}
		for _, d := range dead {
			fmt.Fprintf(stdout, "%s %s %s client=%s status=%d %s\n", d.ID, d.Event, d.URL, d.ClientID, d.Status, d.Error)
		}
		fmt.Fprintf(stdout, "%d dead letters in %s\n", len(dead), dir)
		return 0
	}
	o, err := webhookOptions(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintf(stderr, "mqgate: %v\n", err)
		return 2
	}
	tr := &http.Transport{TLSClientConfig: o.TLS, MaxIdleConnsPerHost: 4}
	defer tr.CloseIdleConnections()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := webhook.Replay(ctx, dir, webhook.ReplayOptions{Client: &http.Client{Transport: tr}, Signer: o.Signer,
		RequestTimeout: o.RequestTimeout})
	fmt.Fprintf(stdout, "replayed %d dead letters, %d failed and kept in %s\n", res.Sent, res.Failed, dir)
	if err != nil {
		fmt.Fprintf(stderr, "mqgate: %v\n", err)
		return 1
	}
	if res.Failed > 0 {
		return 1
	}
	return 0
}
