package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthCommand(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.Error(w, "broker not started", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	}))
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	defer srv.Close()
	for _, c := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"--url", srv.URL + "/healthz"}, 0, "ok"},
		{[]string{"--url", srv.URL + "/readyz"}, 1, "HTTP 503 broker not started"},
		{[]string{"--url", down.URL + "/healthz", "--timeout", "1s"}, 1, "connection refused"},
		{[]string{"extra"}, 2, ""},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"healthcheck"}, c.args...), nil, &stdout, &stderr)
		if code != c.code || !strings.Contains(stdout.String()+stderr.String(), c.out) {
			t.Errorf("%v: exit %d, output %q %q; want %d and %q", c.args, code, stdout.String(), stderr.String(), c.code, c.out)
		}
	}
}
