package authorizer

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/keygate/keygate/pkg/keys"
)

// RouteScopes maps a route, "METHOD /resource" with the resource as API
// Gateway names it (/v1/api-keys/{id}; an HTTP API's route key), to the
// scopes a key needs for it. A route not in the map needs a valid key only;
// method ANY applies to any method the route has no entry of its own for.
type RouteScopes map[string][]string

// routePattern is "METHOD /resource"; an HTTP API's catch-all route is
// "ANY $default".
var routePattern = regexp.MustCompile(`^[A-Z]+ (?:/\S*|\$default)$`)

// ParseRouteScopes reads "METHOD /resource=scope1,scope2;METHOD /resource=scope".
// Every scope must be one of cfg's: a route needing a scope no key can hold
// is a configuration mistake, found at startup. "METHOD /resource=" needs a
// valid key only, overriding a default.
func ParseRouteScopes(spec string, cfg keys.Config) (RouteScopes, error) {
	routes := RouteScopes{}
	for entry := range strings.SplitSeq(spec, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		route, list, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want METHOD /resource=scope1,scope2", entry)
		}
		route = normalizeRoute(route)
		if !routePattern.MatchString(route) {
			return nil, fmt.Errorf("route %q: want METHOD /resource, such as GET /v1/orders/{id}", route)
		}
		if _, dup := routes[route]; dup {
			return nil, fmt.Errorf("route %q listed twice", route)
		}
		scopes, err := parseScopeList(list, cfg)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", route, err)
		}
		routes[route] = scopes
	}
	return routes, nil
}

// normalizeRoute upper-cases the method and trims spaces.
func normalizeRoute(route string) string {
	method, resource, ok := strings.Cut(strings.TrimSpace(route), " ")
	if !ok {
		return strings.TrimSpace(route)
	}
	return strings.ToUpper(method) + " " + strings.TrimSpace(resource)
}

func parseScopeList(list string, cfg keys.Config) ([]string, error) {
	scopes := []string{}
	for s := range strings.SplitSeq(list, ",") {
		s = strings.TrimSpace(s)
		if s != "" && !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	return scopes, cfg.CheckScopes(scopes)
}

// Merge returns r with over's routes added, replacing r's entries for the
// same routes. Neither map changes.
func (r RouteScopes) Merge(over RouteScopes) RouteScopes {
	out := maps.Clone(r)
	if out == nil {
		out = RouteScopes{}
	}
	maps.Copy(out, over)
	return out
}

// Required returns the scopes a request of method to resource needs.
func (r RouteScopes) Required(method, resource string) []string {
	if scopes, ok := r[method+" "+resource]; ok {
		return scopes
	}
	return r["ANY "+resource]
}
