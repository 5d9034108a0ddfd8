package authorizer

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
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

// RouteCosts maps a route, as RouteScopes does, to the credits a request of
// it spends; a route not in the map costs DefaultCost.
type RouteCosts map[string]int64

// DefaultCost is the cost of a route RouteCosts does not list.
const DefaultCost = 1

// ParseRouteCosts reads "METHOD /resource=N;METHOD /resource=N", N from 0
// (free) to keys.MaxCost.
func ParseRouteCosts(spec string) (RouteCosts, error) {
	costs := RouteCosts{}
	for entry := range strings.SplitSeq(spec, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		route, n, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want METHOD /resource=N", entry)
		}
		route = normalizeRoute(route)
		if !routePattern.MatchString(route) {
			return nil, fmt.Errorf("route %q: want METHOD /resource, such as POST /v1/reports", route)
		}
		if _, dup := costs[route]; dup {
			return nil, fmt.Errorf("route %q listed twice", route)
		}
		cost, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
		if err != nil || cost < 0 || cost > keys.MaxCost {
			return nil, fmt.Errorf("route %q: cost %q: want 0-%d", route, n, keys.MaxCost)
		}
		costs[route] = cost
	}
	return costs, nil
}

// Cost is what a request of method to resource spends.
func (c RouteCosts) Cost(method, resource string) int64 {
	if n, ok := c[method+" "+resource]; ok {
		return n
	}
	if n, ok := c["ANY "+resource]; ok {
		return n
	}
	return DefaultCost
}
