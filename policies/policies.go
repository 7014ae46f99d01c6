// Package policies holds the Casbin model and example policy that mqgate
// ships: model.conf defines the request (user, client, topic, action), the
// MQTT-aware matcher and deny-overrides; policy.csv is an example that the
// defaults of acl.casbin.model and acl.casbin.policy point to.
package policies

import _ "embed"

// Model is the content of model.conf.
//
//go:embed model.conf
var Model string

// Policy is the content of policy.csv.
//
//go:embed policy.csv
var Policy string
