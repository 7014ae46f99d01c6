package jwt

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/authn"
)

// granted parses a claim the way the authentication chain does.
func granted(t *testing.T, claim string, id access.Identity) []access.Rule {
	t.Helper()
	rules, err := authn.ParseACL(json.RawMessage(claim), id)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

func TestAuthorize(t *testing.T) {
	id := access.Identity{Username: "u1", ClientID: "c1"}
	v4 := `{"pub": ["up/%u/#"], "sub": ["down/%c/+", "eq all/#"], "all": ["shared/#"]}`
	v5 := `[{"permission": "deny", "action": "publish", "topic": "shared/locked"},
	        {"permission": "allow", "action": "all", "topic": "shared/#"},
	        {"permission": "allow", "action": "subscribe", "topic": "${username}/in"}]`
	P, S := access.Publish, access.Subscribe
	tests := []struct {
		name    string
		claim   string
		noMatch access.Verdict
		action  access.Action
		topic   string
		want    access.Verdict
	}{
		{"v4 pub", v4, access.Ignore, P, "up/u1/x", access.Allow},
		{"v4 pub of another user", v4, access.Ignore, P, "up/u2/x", access.Deny},
		{"v4 sub with %c", v4, access.Ignore, S, "down/c1/y", access.Allow},
		// [MQTT-4.7.1-2] down/%c/+ does not grant down/c1/# (which also
		// matches down/c1/y/z).
		{"v4 sub wider than the rule", v4, access.Ignore, S, "down/c1/#", access.Deny},
		{"v4 eq is literal", v4, access.Ignore, S, "all/#", access.Allow},
		{"v4 eq does not match below", v4, access.Ignore, S, "all/x", access.Deny},
		{"v4 all", v4, access.Ignore, P, "shared/a", access.Allow},
		{"v4 sub list does not grant publish", v4, access.Ignore, P, "down/c1/y", access.Deny},
		{"v5 first match: deny", v5, access.Ignore, P, "shared/locked", access.Deny},
		{"v5 allow", v5, access.Ignore, P, "shared/open", access.Allow},
		{"v5 placeholder", v5, access.Ignore, S, "u1/in", access.Allow},
		{"v5 no match falls through", v5, access.Ignore, P, "other", access.Ignore},
		{"v5 no match denied when configured", v5, access.Deny, P, "other", access.Deny},
		{"no claim", "", access.Deny, P, "other", access.Ignore},
		// [MQTT-4.7.2-1] shared/# in "all" does not reach $SYS.
		{"$SYS untouched", `[{"permission": "allow", "action": "all", "topic": "#"}]`, access.Ignore, S, "$SYS/#", access.Ignore},
	}
	for _, tt := range tests {
		b, err := New(Options{NoMatch: tt.noMatch})
		if err != nil {
			t.Fatal(err)
		}
		req := access.Request{Identity: id, Action: tt.action, Topic: tt.topic, Granted: granted(t, tt.claim, id), GrantedBy: "jwt"}
		d := b.Authorize(context.Background(), req)
		if d.Verdict != tt.want {
			t.Errorf("%s: %v %q = %v (%s), want %v", tt.name, tt.action, tt.topic, d.Verdict, d.Reason, tt.want)
		}
	}
	if _, err := New(Options{NoMatch: access.Allow}); err == nil {
		t.Error("New accepted an allow no-match verdict")
	}
}
