package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// healthCommand runs "mqgate healthcheck [--url URL] [--timeout D]": one GET
// of the management API's /healthz, for container health checks (the image
// has no shell or curl). Exit status: 0 when it answers 200, 1 otherwise, 2
// on bad usage.
func healthCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8081/healthz", "URL to GET")
	timeout := fs.Duration("timeout", 2*time.Second, "longest the request may take")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return 2
	}
	hc := &http.Client{Timeout: *timeout}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(*url)
	if err != nil {
		fmt.Fprintf(stderr, "mqgate healthcheck: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "mqgate healthcheck: %s: HTTP %d %s\n", *url, resp.StatusCode, strings.TrimSpace(string(body)))
		return 1
	}
	fmt.Fprintln(stdout, strings.TrimSpace(string(body)))
	return 0
}
