package config

// webhookKeys are the keys of the web hooks (web.hook.*); titles for their documentation groups go in
// webhookGroupTitles. Names and defaults follow EMQX 4.4's emqx_web_hook.conf where it has the key.
var webhookKeys = []Key{
	{Name: "web.hook.url", Kind: String, Default: "http://127.0.0.1:80",
		Doc: "Endpoint that receives the events of every rule without its own \"url\"; path and query are kept."},
	{Name: "web.hook.api.url", Kind: String, Default: "",
		Doc: "EMQX 4.2 and older name of web.hook.url; when set it wins, so an old emqx_web_hook.conf works unchanged."},
	{Name: "web.hook.encode_payload", Kind: String, Default: "",
		Doc: "EMQX 4.2 and older name of web.hook.body.encoding_of_payload_field (base64 or base62); when set it wins."},
	{Name: "web.hook.headers.<name>", Kind: String, Default: "",
		Doc: "Header <name> sent with every web hook request, e.g. web.hook.headers.authorization = Bearer x; content-type is always application/json."},
	{Name: "web.hook.body.encoding_of_payload_field", Kind: Enum, Default: "plain", Enum: []string{"plain", "base64", "base62"},
		Doc: "How the payload field of message events is written: as text, base64, or EMQX's base62."},
	{Name: "web.hook.ssl.cacertfile", Kind: String, Default: "",
		Doc: "PEM file of the CA certificates that verify an https endpoint; empty: the system roots."},
	{Name: "web.hook.ssl.certfile", Kind: String, Default: "",
		Doc: "PEM client certificate presented to an https endpoint (with web.hook.ssl.keyfile)."},
	{Name: "web.hook.ssl.keyfile", Kind: String, Default: "",
		Doc: "PEM private key of web.hook.ssl.certfile."},
	{Name: "web.hook.ssl.verify", Kind: Bool, Default: "true",
		Doc: "Verify the certificate of an https endpoint; false accepts any certificate (EMQX 4's default, unsafe)."},
	{Name: "web.hook.ssl.server_name_indication", Kind: String, Default: "",
		Doc: "Server name sent in the TLS handshake and verified; empty: the URL's host; disable: check the certificate chain but not the host name."},
	{Name: "web.hook.pool_size", Kind: Int, Default: "32", Min: 1, Max: 1024,
		Doc: "Concurrent requests, and kept-alive connections, per endpoint; events of one client are always posted one at a time, in order."},
	{Name: "web.hook.enable_pipelining", Kind: Bool, Default: "true",
		Doc: "Accepted for EMQX 4 compatibility; connections are always kept alive and reused, and events of one client are never pipelined."},
	{Name: "web.hook.request_timeout", Kind: Duration, Default: "5s", Reload: false,
		Doc: "Longest one POST may take before it counts as failed and is retried."},
	{Name: "web.hook.rule.<...>", Kind: String, Default: "",
		Doc: "Rule web.hook.rule.<event>.<n> = {\"action\": \"on_<event with _>\"}, optional \"topic\" (MQTT filter, message and subscribe events), \"url\", \"headers\" and \"batch\": {\"max_size\": 100, \"max_delay\": \"200ms\"} (body is a JSON array)."},
	{Name: "web.hook.signing_secret", Kind: String, Default: "",
		Doc: "Secret that signs each request (HMAC-SHA256, Standard Webhooks headers webhook-id, webhook-timestamp, webhook-signature); whsec_<base64> or plain text; empty: unsigned."},
	{Name: "web.hook.signing_secret.previous", Kind: String, Default: "",
		Doc: "Second secret that also signs each request while receivers move to a new web.hook.signing_secret."},
	{Name: "web.hook.outbox.max_bytes", Kind: Bytesize, Default: "256MB", Min: 1024,
		Doc: "Most disk the pending events (under node.data_dir/webhook) may use, and about as much memory; beyond it events are dropped per web.hook.outbox.overflow, counted and logged."},
	{Name: "web.hook.outbox.overflow", Kind: Enum, Default: "drop_oldest", Enum: []string{"drop_oldest", "drop_new"},
		Doc: "What a full outbox drops: the oldest pending event, or the new one."},
	{Name: "web.hook.retry.min_interval", Kind: Duration, Default: "1s",
		Doc: "Delay before the first retry of a failed delivery (network error, 408, 429 or 5xx); it doubles per attempt, with jitter."},
	{Name: "web.hook.retry.max_interval", Kind: Duration, Default: "2m",
		Doc: "Longest delay between retries; a Retry-After header asking for more is honoured (up to an hour)."},
	{Name: "web.hook.breaker.failures", Kind: Int, Default: "5", Min: 1,
		Doc: "Consecutive failed deliveries that open an endpoint's circuit breaker: it is then probed by one request at a time until it answers."},
}

// webhookGroupTitles names the documentation groups of webhookKeys.
var webhookGroupTitles = map[string]string{
	"web": "Web hooks (EMQX 4 emqx_web_hook keys, plus delivery guarantees)",
}
