package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/mqgate/mqgate/mqtt"
)

// TestBadRequestsNeverFail sends malformed requests to every route that
// GET /api/v4 lists: bodies that are not JSON or of the wrong shape, bad
// paging values, path parameters that are not URL-encoded properly. Each
// answer must be a documented one (HTTP 200 with a code and a message,
// 400 with code 109, 404 "Not found.", 413), never a 500 or a stack.
func TestBadRequestsNeverFail(t *testing.T) {
	f := newFixture(t, nil)
	connect(t, f.addr, "c1", "u", mqtt.V5)
	type route struct {
		Method string `json:"method"`
		Path   string `json:"path"`
	}
	routes := decode[[]route](t, f.call(http.MethodGet, "/api/v4", "").Data)
	if len(routes) < 35 {
		t.Fatalf("GET /api/v4 lists %d routes", len(routes))
	}
	bodies := []string{"", "{", "null", "[]", "{}", `"text"`, "12", `[1,"a",null]`, `[{}]`, `[[]]`,
		`{"topic":1,"clientid":[],"qos":"x","payload":{},"encoding":5,"retain":"no","properties":[],"who":{},"as":1,"until":"x","at":-1e300,"app_id":false}`,
		`{"topic":"t","qos":1e400}`, `{"topic":"t","qos":-1}`, `{"topic":"t","qos":2.5}`, `{"topics":",,,"}`,
		`[{"topic":"t","clientid":"c1","qos":9}]`, `{"clientid":"c1","topic":"` + strings.Repeat("a/", 40000) + `"}`,
		`{"topic":"t","payload":"x","encoding":"base64"}`, `{"topic":"t","properties":{"message_expiry_interval":-5,"user_properties":[1]}}`,
	}
	queries := []string{"", "?_page=0", "?_page=-3", "?_limit=0", "?_page=9223372036854775807&_limit=2", "?_page=1e9",
		"?_limit=99999999999999999999", "?qos=x&clientid=%25zz", "?topic=%23&_match_topic=%2B%2B", "?action=x&topic=", "?topic=a&qos=-1&retain=maybe&ipaddress=nope",
		"?conn_state=x&proto_ver=x&clean_start=x&_gte_created_at=x&_lte_mqueue_len=x"}
	params := []string{"x", "c1", "%25zz", "%25", "%2F%2F", strings.Repeat("z", 5000), "%00", "$share", "a%2F%2Bb"}
	requests := 0
	for _, r := range routes {
		paths := []string{r.Path}
		if strings.Contains(r.Path, ":") {
			paths = nil
			for _, p := range params {
				parts := strings.Split(r.Path, "/")
				for i, s := range parts {
					if strings.HasPrefix(s, ":") {
						parts[i] = p
					}
				}
				paths = append(paths, strings.Join(parts, "/"))
			}
		}
		for _, p := range paths {
			target := "/api/v4" + p
			if r.Method == http.MethodDelete && (p == "/clients/c1" || p == "/acl-cache") {
				continue // would kick the fixture's client, or is covered elsewhere
			}
			for _, q := range queries {
				for _, body := range bodies {
					if r.Method == http.MethodGet && body != "" {
						continue
					}
					requests++
					w := f.do(r.Method, target+q, body)
					out := w.Body.String()
					if strings.Contains(out, "goroutine ") || strings.Contains(out, "panic") || strings.Contains(out, ".go:") {
						t.Fatalf("%s %s%s %.60q: a stack in the answer: %.300s", r.Method, target, q, body, out)
					}
					switch w.Code {
					case http.StatusOK:
						if p == "/openapi.json" {
							if !json.Valid(w.Body.Bytes()) {
								t.Errorf("openapi.json is not JSON")
							}
							continue
						}
						var env struct {
							Code    *int   `json:"code"`
							Message string `json:"message"`
						}
						if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || env.Code == nil {
							t.Fatalf("%s %s%s %.60q: HTTP 200 without an envelope: %.300s", r.Method, target, q, body, out)
						}
						if *env.Code != 0 && env.Message == "" {
							t.Errorf("%s %s%s %.60q: code %d without a message", r.Method, target, q, body, *env.Code)
						}
					case http.StatusBadRequest:
						if !strings.Contains(out, `"code":109`) {
							t.Errorf("%s %s%s %.60q: 400 without code 109: %.300s", r.Method, target, q, body, out)
						}
					case http.StatusNotFound:
						if out != "Not found." {
							t.Errorf("%s %s%s: 404 %q", r.Method, target, q, out)
						}
					case http.StatusRequestEntityTooLarge:
					default:
						t.Fatalf("%s %s%s %.60q: HTTP %d %.300s", r.Method, target, q, body, w.Code, out)
					}
				}
			}
		}
	}
	t.Logf("%d requests", requests)
}
