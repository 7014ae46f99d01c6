package docs_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/mqgate/mqgate/config"
)

// notKeys are dotted names in the guides that look like config keys and
// are metric names or file names.
var notKeys = map[string]bool{
	"acl.conf":             true,
	"acl.casbin.policy_ok": true,
	"acl.file.policy_ok":   true,
}

// placeholders stand for the <...> segments the guides write in key names.
var placeholders = strings.NewReplacer("<kind>", "tcp", "<name>", "external", "<backend>", "http",
	"<AppID>", "app1", "<event>", "client.connected", "<n>", "1", "<claim>", "sub", "<...>", "client.connected.1")

// inlineCodeRE finds `code` within one line.
var inlineCodeRE = regexp.MustCompile("`([^`\n]+)`")

// prose returns a Markdown text without its fenced blocks.
func prose(md string) string {
	var b strings.Builder
	in := false
	for l := range strings.SplitSeq(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			in = !in
			continue
		}
		if !in {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// TestKeysInProse checks that every config key the guides name in
// backquotes, outside the EMQX 4 guide (whose tables TestMigrationKeys
// checks, and which names EMQX keys mqgate does not have), is a key that
// the configuration loader knows.
func TestKeysInProse(t *testing.T) {
	first := map[string]bool{}
	for _, k := range config.Schema {
		first[strings.SplitN(k.Name, ".", 2)[0]] = true
	}
	looksLikeKey := regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-zA-Z0-9_<>.-]+)?$`)
	checked := 0
	for _, f := range guides(t) {
		if f == "migrating-from-emqx4.md" || f == "LOCKING.md" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range inlineCodeRE.FindAllStringSubmatch(prose(string(b)), -1) {
			tok := strings.TrimSpace(m[1])
			if i := strings.IndexAny(tok, " ="); i > 0 && strings.Contains(tok, " = ") {
				tok = tok[:i] // `key = value`
			}
			if !looksLikeKey.MatchString(tok) || !first[strings.SplitN(tok, ".", 2)[0]] || notKeys[tok] {
				continue
			}
			if !strings.Contains(tok, ".") && !strings.Contains(tok, "_") {
				continue // a word such as `deny`, not a bare key
			}
			key := placeholders.Replace(tok)
			conf := key + " = x\n"
			if strings.HasPrefix(key, "listener.tcp.external.") {
				conf = "listener.tcp.external = 1883\n" + conf
			}
			_, err := config.Parse(f, []byte(conf), nil)
			checked++
			if err != nil && strings.Contains(err.Error(), "unknown key") {
				t.Errorf("%s names `%s`, which is not a config key: %v", f, tok, err)
			}
		}
	}
	if checked < 80 {
		t.Errorf("%d key names checked", checked)
	}
}
