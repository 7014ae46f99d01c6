package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/mqgate/mqgate/config"
	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/webhook"
)

// startWebhooks starts the web hook dispatcher on bus when rules are
// configured; the dispatcher is nil when none are. The returned stop
// function drains and stops it.
func startWebhooks(cfg *config.Config, bus *events.Bus, log *slog.Logger) (*webhook.Dispatcher, func(context.Context) error, error) {
	o, err := webhookOptions(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	if len(o.Rules) == 0 {
		return nil, func(context.Context) error { return nil }, nil
	}
	d, err := webhook.New(o)
	if err != nil {
		return nil, nil, err
	}
	d.Start(bus)
	log.Info("web hooks started", "rules", len(o.Rules), "outbox", o.Dir)
	return d, d.Stop, nil
}

// webhookDir is where the outbox and the dead letters live.
func webhookDir(cfg *config.Config) string {
	return filepath.Join(cfg.String("node.data_dir"), "webhook")
}

// webhookOptions reads the web.hook.* keys. A bad rule is reported with the
// key and where it was set.
func webhookOptions(cfg *config.Config, log *slog.Logger) (webhook.Options, error) {
	o := webhook.Options{
		Node:             cfg.String("node.name"),
		URL:              cfg.String("web.hook.url"),
		Headers:          map[string]string{},
		PoolSize:         int(cfg.Int("web.hook.pool_size")),
		RequestTimeout:   cfg.Duration("web.hook.request_timeout"),
		Dir:              webhookDir(cfg),
		MaxBytes:         cfg.Bytes("web.hook.outbox.max_bytes"),
		MaxMemory:        cmp.Or(cfg.Bytes("web.hook.outbox.max_memory"), -1), // 0: none in memory
		DropNewest:       cfg.String("web.hook.outbox.overflow") == "drop_new",
		CommitInterval:   cmp.Or(cfg.Duration("web.hook.outbox.commit_interval"), -1), // 0s: no wait
		SyncInterval:     cmp.Or(cfg.Duration("web.hook.outbox.sync_interval"), -1),   // 0s: every commit
		MinBackoff:       cfg.Duration("web.hook.retry.min_interval"),
		MaxBackoff:       cfg.Duration("web.hook.retry.max_interval"),
		BreakerThreshold: int(cfg.Int("web.hook.breaker.failures")),
		Logger:           log.With("component", "webhook"),
	}
	var errs []error
	for _, name := range cfg.Instances("web.hook.rule.<...>") {
		key := "web.hook.rule." + name
		v := cfg.String(key)
		if v == "" {
			continue
		}
		r, err := webhook.ParseRule(key, v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", cfg.Source(key), key, err))
			continue
		}
		o.Rules = append(o.Rules, r)
	}
	for _, name := range cfg.Instances("web.hook.headers.<name>") {
		o.Headers[name] = cfg.String("web.hook.headers." + name)
	}
	if u := cfg.String("web.hook.api.url"); u != "" {
		o.URL = u
	}
	encKey := "web.hook.body.encoding_of_payload_field"
	if cfg.String("web.hook.encode_payload") != "" {
		encKey = "web.hook.encode_payload"
	}
	enc, err := webhook.ParseEncoding(cfg.String(encKey))
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %s: %w", cfg.Source(encKey), encKey, err))
	}
	o.Encoding = enc
	o.Signer, err = webhook.NewSigner(cfg.String("web.hook.signing_secret"), cfg.String("web.hook.signing_secret.previous"))
	if err != nil {
		errs = append(errs, fmt.Errorf("web.hook.signing_secret: %w", err))
	}
	o.TLS, err = webhookTLS(cfg)
	if err != nil {
		errs = append(errs, err)
	}
	return o, errors.Join(errs...)
}

// webhookTLS builds the client TLS settings from web.hook.ssl.*.
func webhookTLS(cfg *config.Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: !cfg.Bool("web.hook.ssl.verify")} //nolint:gosec // the operator's choice, off by default
	if f := cfg.String("web.hook.ssl.cacertfile"); f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("web.hook.ssl.cacertfile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("web.hook.ssl.cacertfile: no PEM certificate in %s", f)
		}
		tc.RootCAs = pool
	}
	cert, key := cfg.String("web.hook.ssl.certfile"), cfg.String("web.hook.ssl.keyfile")
	if cert != "" || key != "" {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("web.hook.ssl.certfile/keyfile: %w", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	switch sni := cfg.String("web.hook.ssl.server_name_indication"); sni {
	case "":
	case "disable":
		// The host name is not checked against the certificate (the chain
		// still is); Go's HTTP client still sends the URL host as SNI.
		if !tc.InsecureSkipVerify {
			roots := tc.RootCAs
			tc.InsecureSkipVerify = true
			tc.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
				return verifyChain(raw, roots)
			}
		}
	default:
		tc.ServerName = sni
	}
	return tc, nil
}

// verifyChain checks that raw (leaf first) chains to roots, without a host
// name check.
func verifyChain(raw [][]byte, roots *x509.CertPool) error {
	if len(raw) == 0 {
		return errors.New("web hook: no server certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, b := range raw {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return fmt.Errorf("web hook: %w", err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
		return fmt.Errorf("web hook: %w", err)
	}
	return nil
}
