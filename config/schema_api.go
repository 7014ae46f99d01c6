package config

// apiKeys are the keys of the management HTTP API (management.*), of the
// Prometheus endpoint it serves, and of the sidecar auth API (sidecar.*); titles for their documentation groups go in
// apiGroupTitles. Names and defaults follow EMQX 4.4's emqx_management.conf
// where it has the key.
var apiKeys = []Key{
	{Name: "management.listener.http", Kind: String, Default: "127.0.0.1:8081",
		Doc: "Address (host:port, or a bare port meaning all interfaces) of the management HTTP API, /metrics, /healthz and /readyz; empty disables it."},
	{Name: "management.default_application.id", Kind: String, Default: "admin",
		Doc: "AppID (HTTP Basic user) of the default application of the management API; empty: no default application."},
	{Name: "management.default_application.secret", Kind: String, Default: "public",
		Doc: "AppSecret (HTTP Basic password) of the default application; the default \"public\" is refused unless management.listener.http binds a loopback address."},
	{Name: "management.application.<name>", Kind: String, Default: "",
		Doc: "Further application: management.application.<AppID> = <AppSecret>."},
	{Name: "management.max_row_limit", Kind: Int, Default: "10000", Min: 1, Max: 1000000,
		Doc: "Default and largest _limit of a paged list (clients, subscriptions, routes)."},
	{Name: "management.metrics", Kind: Bool, Default: "true",
		Doc: "Serve Prometheus metrics at /metrics on the management listener, without authentication."},
	{Name: "sidecar.listener.http", Kind: String, Default: "",
		Doc: "Address (host:port) of the sidecar auth API, which answers EMQX 5 HTTP authn/authz (/emqx/authn, /emqx/authz) and mosquitto-go-auth HTTP (/mosquitto/user, /superuser, /acl) requests from auth.chain and acl.chain; no authentication of its own: bind it to loopback or a private network; empty disables it."},
}

// apiGroupTitles names the documentation group of apiKeys.
var apiGroupTitles = map[string]string{
	"management": "Management HTTP API and metrics",
	"sidecar":    "Sidecar auth API for other brokers",
}
