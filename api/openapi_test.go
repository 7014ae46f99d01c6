package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/mqgate/mqgate/internal/testutil"
)

// TestOpenAPIMatchesRoutes checks the document against the routes echo
// actually serves under /api/v4, both ways.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	b, _ := testutil.RunBroker(t, nil)
	s, err := New(Options{Broker: b, Addr: "127.0.0.1:0", Apps: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	var registered []string
	for _, r := range s.e.Routes() {
		p, ok := strings.CutPrefix(r.Path, "/api/v4")
		// Echo registers a catch-all "route not found" entry per group.
		if !ok || strings.HasSuffix(r.Path, "/*") || r.Method == echo.RouteNotFound {
			continue
		}
		registered = append(registered, r.Method+" "+openAPIPath(p))
	}
	var documented []string
	for _, op := range operations {
		documented = append(documented, op.method+" "+op.path)
	}
	slices.Sort(registered)
	slices.Sort(documented)
	for _, r := range registered {
		if _, ok := slices.BinarySearch(documented, r); !ok {
			t.Errorf("route %s is not in the OpenAPI document", r)
		}
	}
	for _, d := range documented {
		if _, ok := slices.BinarySearch(registered, d); !ok {
			t.Errorf("documented %s is not a registered route", d)
		}
	}
	doc := s.openAPI()
	paths := doc["paths"].(map[string]map[string]any)
	if op, ok := paths["/clients/{clientid}"]["delete"].(map[string]any); !ok || op["parameters"] == nil {
		t.Errorf("DELETE /clients/{clientid} lacks its path parameter: %v", paths["/clients/{clientid}"])
	}
	if doc["openapi"] != "3.0.3" {
		t.Errorf("openapi = %v", doc["openapi"])
	}
}

// TestServedOpenAPIDocument reads /api/v4/openapi.json as a client does and
// checks it against the OpenAPI 3.0 rules it relies on and against the
// routes actually registered: every route has an operation, every
// operation a route, every templated path parameter a required "in: path"
// parameter, and every operation responses.
func TestServedOpenAPIDocument(t *testing.T) {
	b, _ := testutil.RunBroker(t, nil)
	s, err := New(Options{Broker: b, Addr: "127.0.0.1:0", Apps: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/api/v4/openapi.json", nil)
	req.SetBasicAuth("a", "b")
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("HTTP %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
		Info    struct {
			Title   string `json:"title"`
			Version string `json:"version"`
		} `json:"info"`
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
		Paths map[string]map[string]struct {
			Summary    string `json:"summary"`
			Parameters []struct {
				Name     string         `json:"name"`
				In       string         `json:"in"`
				Required bool           `json:"required"`
				Schema   map[string]any `json:"schema"`
			} `json:"parameters"`
			Responses map[string]struct {
				Description string `json:"description"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") || doc.Info.Title == "" || doc.Info.Version == "" || len(doc.Servers) != 1 || doc.Servers[0].URL != "/api/v4" {
		t.Errorf("document head: %s %+v %+v", doc.OpenAPI, doc.Info, doc.Servers)
	}
	methods := map[string]bool{"get": true, "post": true, "put": true, "delete": true}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		if !strings.HasPrefix(path, "/") {
			t.Errorf("path %q does not start with /", path)
		}
		templated := map[string]bool{}
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			templated[m[1]] = true
		}
		for method, op := range ops {
			if !methods[method] {
				t.Errorf("%s: unknown method %q", path, method)
			}
			documented[strings.ToUpper(method)+" "+path] = true
			if op.Summary == "" || len(op.Responses) == 0 {
				t.Errorf("%s %s: no summary or no responses", method, path)
			}
			for code, r := range op.Responses {
				if r.Description == "" {
					t.Errorf("%s %s: response %s has no description", method, path, code)
				}
			}
			inPath := map[string]bool{}
			for _, p := range op.Parameters {
				if p.Name == "" || (p.In != "path" && p.In != "query") || p.Schema["type"] == nil {
					t.Errorf("%s %s: bad parameter %+v", method, path, p)
				}
				if p.In == "path" {
					if !p.Required || !templated[p.Name] {
						t.Errorf("%s %s: path parameter %s not required or not in the path", method, path, p.Name)
					}
					inPath[p.Name] = true
				}
			}
			for name := range templated {
				if !inPath[name] {
					t.Errorf("%s %s: {%s} has no parameter", method, path, name)
				}
			}
		}
	}
	for _, r := range s.e.Routes() {
		p, ok := strings.CutPrefix(r.Path, "/api/v4")
		if !ok || strings.HasSuffix(r.Path, "/*") || r.Method == echo.RouteNotFound {
			continue
		}
		if p == "" {
			p = "/"
		}
		key := r.Method + " " + openAPIPath(p)
		if _, ok := documented[key]; !ok {
			t.Errorf("route %s is not in the served document", key)
		}
		documented[key] = false // matched
	}
	for k, unmatched := range documented {
		if unmatched {
			t.Errorf("served document has %s, which is not a route", k)
		}
	}
}
