package gateway_test

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/samtemplate"
)

// keygate's resources never overlap, but New accepts a template whose
// resources do, such as a literal beside a path parameter; it must pick
// among them as API Gateway does.
func TestLiteralSegmentsWin(t *testing.T) {
	keygate := template(t)
	tpl := &samtemplate.Template{StageName: keygate.StageName, GatewayResponses: keygate.GatewayResponses}
	// The DELETE routes put the less specific resources first, where the
	// first match would win.
	for _, r := range []string{"DELETE /a/{id}", "GET /a/{id}", "GET /a/b", "POST /a/{id}", "DELETE /{x}/c", "GET /b/{y}"} {
		method, path, _ := strings.Cut(r, " ")
		tpl.Functions = append(tpl.Functions, samtemplate.Function{
			Name: r, Routes: []samtemplate.Route{{Method: method, Path: path, Function: r}}, Timeout: time.Second,
		})
	}
	rec := &recorder{}
	srv := serveTemplate(t, tpl, (&allowing{}).authorize, rec, nil)
	for _, tc := range []struct {
		method, path string
		function     string // "" for no route
		params       map[string]string
	}{
		{"GET", "/a/b", "GET /a/b", nil},
		{"GET", "/a/c", "GET /a/{id}", map[string]string{"id": "c"}},
		{"POST", "/a/b", "", nil},                                  // the literal resource wins, and has no POST
		{"GET", "/b/c", "GET /b/{y}", map[string]string{"y": "c"}}, // the leftmost literal wins
		{"DELETE", "/z/c", "DELETE /{x}/c", map[string]string{"x": "z"}},
		{"GET", "/a", "", nil},
	} {
		r := do(t, srv, tc.method, tc.path, nil, nil)
		if tc.function == "" {
			if r.status != 404 {
				t.Errorf("%s %s: got %d %s, want 404", tc.method, tc.path, r.status, r.body)
			}
			continue
		}
		var served string
		if r.status != 200 || json.Unmarshal(r.Data, &served) != nil || served != tc.function {
			t.Errorf("%s %s: got %d %s, want function %s", tc.method, tc.path, r.status, r.body, tc.function)
			continue
		}
		if ev := rec.last(t, tc.function); !maps.Equal(ev.PathParameters, tc.params) {
			t.Errorf("%s %s: pathParameters %v, want %v", tc.method, tc.path, ev.PathParameters, tc.params)
		}
	}
}
