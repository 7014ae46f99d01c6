package api

import (
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
