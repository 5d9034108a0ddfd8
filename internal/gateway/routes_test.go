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

// A greedy path parameter ({proxy+}) takes the rest of the path, one
// segment or more, and loses to any other resource that matches; a public
// route (Auth: Authorizer: NONE) runs no authorizer, and its function gets
// no authorizer context.
func TestGreedyAndPublicRoutes(t *testing.T) {
	keygate := template(t)
	tpl := &samtemplate.Template{StageName: keygate.StageName, GatewayResponses: keygate.GatewayResponses}
	for _, r := range []samtemplate.Route{
		{Method: "GET", Path: "/site/{proxy+}", Public: true},
		{Method: "GET", Path: "/site/{page}/edit"},
		{Method: "GET", Path: "/site", Public: true},
		{Method: "GET", Path: "/api/{proxy+}"},
	} {
		r.Function = r.Method + " " + r.Path
		tpl.Functions = append(tpl.Functions, samtemplate.Function{Name: r.Function, Routes: []samtemplate.Route{r}, Timeout: time.Second})
	}
	rec := &recorder{}
	auth := &allowing{}
	srv := serveTemplate(t, tpl, auth.authorize, rec, nil)
	for _, tc := range []struct {
		path, function string // "" for no route
		params         map[string]string
		authorized     bool
	}{
		{"/site", "GET /site", nil, false},
		{"/site/a", "GET /site/{proxy+}", map[string]string{"proxy": "a"}, false},
		{"/site/a/b/c", "GET /site/{proxy+}", map[string]string{"proxy": "a/b/c"}, false},
		{"/site/a/edit", "GET /site/{page}/edit", map[string]string{"page": "a"}, true}, // not the greedy one
		{"/api/v1/x", "GET /api/{proxy+}", map[string]string{"proxy": "v1/x"}, true},
		{"/api", "", nil, false}, // a greedy parameter takes at least one segment
	} {
		before := len(auth.events)
		r := do(t, srv, "GET", tc.path, nil, nil)
		if tc.function == "" {
			if r.status != 404 {
				t.Errorf("GET %s: got %d %s, want 404", tc.path, r.status, r.body)
			}
			continue
		}
		var served string
		if r.status != 200 || json.Unmarshal(r.Data, &served) != nil || served != tc.function {
			t.Errorf("GET %s: got %d %s, want function %s", tc.path, r.status, r.body, tc.function)
			continue
		}
		ev := rec.last(t, tc.function)
		if !maps.Equal(ev.PathParameters, tc.params) {
			t.Errorf("GET %s: pathParameters %v, want %v", tc.path, ev.PathParameters, tc.params)
		}
		if ran := len(auth.events) > before; ran != tc.authorized || (ev.RequestContext.Authorizer != nil) != tc.authorized {
			t.Errorf("GET %s: authorizer ran %v, context %v; want authorized %v", tc.path, ran, ev.RequestContext.Authorizer, tc.authorized)
		}
	}
}
