// Package webhook posts the broker's lifecycle events to HTTP endpoints as
// JSON, with the rules (web.hook.rule.<event>.<n>), bodies and config keys of
// EMQX 4's emqx_web_hook, and delivers them reliably: each event is committed
// to a durable outbox before it is posted, retried with backoff on failure,
// posted in order per client id, and kept as a dead letter when its endpoint
// refuses it. The broker is never blocked: it hands events to an events.Bus.
package webhook
