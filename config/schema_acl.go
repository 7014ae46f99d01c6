package config

// aclKeys are the keys of the authorization chain (acl.*); titles for their documentation groups go in
// aclGroupTitles. The EMQX 4 names of the ACL keys of the HTTP and PostgreSQL plugins
// (auth.http.acl_req.*, auth.pgsql.acl_query) and of the ACL cache are kept.
var aclKeys = []Key{
	// chain
	{Name: "acl.chain", Kind: String, Default: "",
		Doc: "Authorization backends asked in order, comma-separated, from jwt, casbin, http, pgsql and file; the first that allows or denies decides; empty = none, acl_nomatch decides."},
	{Name: "enable_acl_cache", Kind: Bool, Default: "true",
		Doc: "Cache authorization decisions per connection; every policy reload invalidates the cache at once."},
	{Name: "acl_cache_max_size", Kind: Int, Default: "32", Min: 1,
		Doc: "Most authorization decisions cached per connection; the oldest is dropped first."},
	{Name: "acl_cache_ttl", Kind: Duration, Default: "1m",
		Doc: "How long a cached authorization decision is used."},

	// casbin
	{Name: "acl.casbin.model", Kind: String, Default: "policies/model.conf",
		Doc: "Casbin model file; when the default file is missing, the model built into the binary is used."},
	{Name: "acl.casbin.policy", Kind: String, Default: "policies/policy.csv",
		Doc: "Casbin policy file (p, subject, topic filter, publish|subscribe|all, allow|deny and g, member, role lines) when acl.casbin.adapter = file."},
	{Name: "acl.casbin.adapter", Kind: Enum, Default: "file", Enum: []string{"file", "pgsql"},
		Doc: "Where Casbin policies live: the policy file, or the PostgreSQL table acl.casbin.pgsql.table."},
	{Name: "acl.casbin.watch", Kind: Bool, Default: "true",
		Doc: "Reload the model and policy when their files change (their directories are watched), or when PostgreSQL notifies a change."},
	{Name: "acl.casbin.reload_delay", Kind: Duration, Default: "100ms",
		Doc: "Quiet time after a change before the policy is reloaded, so that a burst of changes gives one reload."},
	{Name: "acl.casbin.pgsql.dsn", Kind: String, Default: "",
		Doc: "PostgreSQL connection string for Casbin policies, e.g. postgres://user:pass@host:5432/db?sslmode=disable; empty = built from auth.pgsql.*."},
	{Name: "acl.casbin.pgsql.table", Kind: String, Default: "casbin_rule",
		Doc: "Table of Casbin policy rules (ptype, v0 to v5); created, with a change notification trigger, when missing."},
	{Name: "acl.casbin.pgsql.channel", Kind: String, Default: "casbin_policy",
		Doc: "PostgreSQL LISTEN/NOTIFY channel on which policy changes are announced to every node."},

	// jwt
	{Name: "acl.jwt.nomatch", Kind: Enum, Default: "ignore", Enum: []string{"ignore", "deny"},
		Doc: "Verdict when a client's token or HTTP authentication answer carries ACL rules and none matches: ignore (ask the next backend, EMQX 5) or deny; EMQX 4 pub/sub/all claims always end in a deny."},

	// http (EMQX 4 names)
	{Name: "auth.http.acl_req.url", Kind: String, Default: "",
		Doc: "URL of the HTTP ACL request; 200 allows, 200 with body ignore or {\"result\":\"ignore\"} ignores, {\"result\":\"deny\"} and other statuses deny, a transport error ignores."},
	{Name: "auth.http.acl_req.method", Kind: Enum, Default: "post", Enum: []string{"get", "post"},
		Doc: "Method of the HTTP ACL request; get puts the params in the query string."},
	{Name: "auth.http.acl_req.headers.<name>", Kind: String, Default: "",
		Doc: "A header of the HTTP ACL request."},
	{Name: "auth.http.acl_req.headers.content-type", Kind: String, Default: "application/x-www-form-urlencoded",
		Doc: "Content type of the HTTP ACL request: application/x-www-form-urlencoded or application/json."},
	{Name: "auth.http.acl_req.params", Kind: String, Default: "access=%A,username=%u,clientid=%c,ipaddr=%a,topic=%t,mountpoint=%m",
		Doc: "Parameters of the HTTP ACL request: %A access (1 subscribe, 2 publish), %u username, %c client ID, %a address, %t topic, %m mountpoint, %r protocol, %p port, %C and %d certificate CN and subject."},

	// pgsql (EMQX 4 name)
	{Name: "auth.pgsql.acl_query", Kind: String,
		Default: "select allow, ipaddr, username, clientid, access, topic from mqtt_acl where ipaddr = '%a' or username = '%u' or username = '$all' or clientid = '%c'",
		Doc:     "Query returning the ACL rows of a client (allow, ipaddr, username, clientid, access, topic); %u, %c and %a become query parameters."},

	// file (EMQX 4 name)
	{Name: "acl_file", Kind: String, Default: "etc/acl.conf",
		Doc: "EMQX 4 acl.conf file of Erlang-term rules, used by the file backend; reloaded when it changes."},
}

// aclGroupTitles names the documentation groups of aclKeys.
var aclGroupTitles = map[string]string{
	"acl": "Authorization chain",
}
