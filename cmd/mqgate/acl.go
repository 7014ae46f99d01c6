package main

import (
	"log/slog"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/config"
)

// buildAuthorizer builds the authorization chain from the config. It
// returns nil when no chain is configured: acl_nomatch then decides. The
// returned close function stops its watchers.
func buildAuthorizer(cfg *config.Config, log *slog.Logger) (access.Authorizer, func(), error) {
	return nil, func() {}, nil
}
