package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"

	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/broker/listener"
	"github.com/mqgate/mqgate/config"
)

// listenerOptions builds the broker's listeners from the configuration:
// every listener.tcp.<name>, listener.ssl.<name>, listener.ws.<name> and
// listener.wss.<name> that is set. TLS files are read and checked here, so
// a bad certificate or key stops the start with an error naming the key.
func listenerOptions(cfg *config.Config) ([]broker.Listener, error) {
	ls, _, err := listenersWithCerts(cfg)
	return ls, err
}

// listenerCerts are the live TLS files of the ssl and wss listeners.
type listenerCerts struct {
	certs []*listener.Certs
	keys  []string // the listener key of each, e.g. "listener.ssl.external"
}

// Reload reads the TLS files of every ssl and wss listener again (on
// SIGHUP). A listener whose new files are bad keeps serving the old ones,
// and Reload reports it.
func (lc *listenerCerts) Reload() error {
	var errs []error
	for i, c := range lc.certs {
		if err := c.Reload(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w (the certificate in use is kept)", lc.keys[i], err))
		}
	}
	return errors.Join(errs...)
}

// Watch reloads the TLS files of each listener when they change on disk,
// logging each reload, until ctx ends. It returns when every watch has
// ended.
func (lc *listenerCerts) Watch(ctx context.Context, log *slog.Logger) {
	var wg sync.WaitGroup
	for i, c := range lc.certs {
		key := lc.keys[i]
		wg.Go(func() {
			err := c.Watch(ctx, func(err error) {
				if err != nil {
					log.Error("tls files not reloaded; the certificate in use is kept", "listener", key, "err", err)
					return
				}
				log.Info("tls files reloaded", "listener", key)
			})
			if err != nil {
				log.Error("tls files not watched", "listener", key, "err", err)
			}
		})
	}
	wg.Wait()
}

// listenersWithCerts is listenerOptions that also returns the TLS files of
// the listeners, to reload them on SIGHUP and when they change.
func listenersWithCerts(cfg *config.Config) (ls []broker.Listener, lc *listenerCerts, err error) {
	for _, name := range cfg.Instances("listener.tcp.<name>") {
		key := "listener.tcp." + name
		ls = append(ls, broker.Listener{
			Name:                 name,
			Addr:                 cfg.String(key),
			MaxConnections:       int(cfg.Int(key + ".max_connections")),
			ProxyProtocol:        cfg.Bool(key + ".proxy_protocol"),
			ProxyProtocolTimeout: cfg.Duration(key + ".proxy_protocol_timeout"),
			MaxConnRate:          int(cfg.Int(key + ".max_conn_rate")),
			AllowAnonymous:       allowAnonymous(cfg, key),
		})
	}
	var certs []*listener.Certs
	var keys []string
	var errs []error
	for _, kind := range []listener.Kind{listener.SSL, listener.WS, listener.WSS} {
		for _, name := range cfg.Instances("listener." + string(kind) + ".<name>") {
			key := "listener." + string(kind) + "." + name
			l := broker.Listener{
				Name:                 name,
				Kind:                 kind,
				Addr:                 cfg.String(key),
				MaxConnections:       int(cfg.Int(key + ".max_connections")),
				ProxyProtocol:        cfg.Bool(key + ".proxy_protocol"),
				ProxyProtocolTimeout: cfg.Duration(key + ".proxy_protocol_timeout"),
				MaxConnRate:          int(cfg.Int(key + ".max_conn_rate")),
				AllowAnonymous:       allowAnonymous(cfg, key),
			}
			if kind == listener.WS || kind == listener.WSS {
				l.WSPath = cfg.String(key + ".mqtt_path")
				if !strings.HasPrefix(l.WSPath, "/") {
					errs = append(errs, fmt.Errorf("%s.mqtt_path: %q does not start with /", key, l.WSPath))
				}
				l.ProxyAddressHeader = cfg.String(key + ".proxy_address_header")
				l.ProxyPortHeader = cfg.String(key + ".proxy_port_header")
				ps, err := parsePrefixes(cfg.String(key + ".trusted_proxies"))
				if err != nil {
					errs = append(errs, fmt.Errorf("%s.trusted_proxies: %w", key, err))
				}
				l.TrustedProxies = ps
			}
			if kind == listener.SSL || kind == listener.WSS {
				c, err := listener.LoadTLS(tlsFiles(cfg, key))
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", key, err))
					continue
				}
				certs, keys = append(certs, c), append(keys, key)
				l.TLS = c.Config()
				l.HandshakeTimeout = cfg.Duration(key + ".handshake_timeout")
				l.PeerCertAsUsername = offToEmpty(cfg.String(key + ".peer_cert_as_username"))
				l.PeerCertAsClientID = offToEmpty(cfg.String(key + ".peer_cert_as_clientid"))
			}
			ls = append(ls, l)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	if len(ls) == 0 {
		return nil, nil, errors.New("no listener configured: set listener.tcp.<name> = host:port")
	}
	return ls, &listenerCerts{certs: certs, keys: keys}, nil
}

// tlsFiles reads the TLS settings of the listener key.
func tlsFiles(cfg *config.Config, key string) listener.TLSFiles {
	return listener.TLSFiles{
		CertFile:         cfg.String(key + ".certfile"),
		KeyFile:          cfg.String(key + ".keyfile"),
		CACertFile:       cfg.String(key + ".cacertfile"),
		VerifyPeer:       cfg.String(key+".verify") == "verify_peer",
		FailIfNoPeerCert: cfg.Bool(key + ".fail_if_no_peer_cert"),
		Versions:         splitComma(cfg.String(key + ".tls_versions")),
		Ciphers:          splitComma(cfg.String(key + ".ciphers")),
	}
}

// splitComma splits a comma-separated value, dropping empty items.
func splitComma(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func offToEmpty(s string) string {
	if s == "off" {
		return ""
	}
	return s
}

// parsePrefixes parses a comma-separated list of addresses and CIDR
// prefixes; an address is a prefix of its full length.
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range splitComma(s) {
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, err
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, err
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// allowAnonymous reads the listener's allow_anonymous: nil for inherit.
func allowAnonymous(cfg *config.Config, key string) *bool {
	switch cfg.String(key + ".allow_anonymous") {
	case "true":
		v := true
		return &v
	case "false":
		v := false
		return &v
	}
	return nil
}
