package gateway

import (
	"maps"
	"net/url"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/samtemplate"
)

// TestMatch covers what keygate's own routes do not use: literal segments
// over parameters, greedy parameters and ANY.
func TestMatch(t *testing.T) {
	var routes []samtemplate.Route
	for _, r := range []string{"GET /", "GET /a/{id}", "GET /a/b", "POST /a/{id}", "ANY /files/{path+}", "GET /files/readme"} {
		method, path, _ := strings.Cut(r, " ")
		routes = append(routes, samtemplate.Route{Method: method, Path: path, Function: r})
	}
	resources, err := newResources(routes)
	if err != nil {
		t.Fatal(err)
	}
	g := &Gateway{resources: resources}
	for _, tc := range []struct {
		method, path string
		route        string // "" for none
		params       map[string]string
	}{
		{"GET", "/", "GET /", nil},
		{"GET", "/a/b", "GET /a/b", nil},
		{"GET", "/a/c", "GET /a/{id}", map[string]string{"id": "c"}},
		{"POST", "/a/b", "", nil}, // the literal resource wins, and has no POST
		{"DELETE", "/files/x/y.txt", "ANY /files/{path+}", map[string]string{"path": "x/y.txt"}},
		{"GET", "/files/readme", "GET /files/readme", nil},
		{"GET", "/files", "", nil},
		{"GET", "/a", "", nil},
	} {
		u, err := url.Parse(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		route, params, ok := g.match(tc.method, u)
		if ok != (tc.route != "") || route.Function != tc.route || !maps.Equal(params, tc.params) {
			t.Errorf("%s %s: matched %q %v (%v), want %q %v", tc.method, tc.path, route.Function, params, ok, tc.route, tc.params)
		}
	}
}
