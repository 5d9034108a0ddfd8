package gateway

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/keygate/keygate/internal/samtemplate"
)

// resource is a path of the API, such as /v1/api-keys/{id}, with the
// methods defined on it.
type resource struct {
	segments []string
	methods  map[string]samtemplate.Route
}

func newResources(routes []samtemplate.Route) ([]*resource, error) {
	byPath := map[string]*resource{}
	var out []*resource
	for _, r := range routes {
		if what := unsupported(r); what != "" {
			return nil, fmt.Errorf("gateway: route %s: the local gateway does not serve %s", r, what)
		}
		res, ok := byPath[r.Path]
		if !ok {
			res = &resource{segments: strings.Split(strings.TrimPrefix(r.Path, "/"), "/"), methods: map[string]samtemplate.Route{}}
			byPath[r.Path] = res
			out = append(out, res)
		}
		if _, dup := res.methods[r.Method]; dup {
			return nil, fmt.Errorf("gateway: route %s is defined twice", r)
		}
		res.methods[r.Method] = r
	}
	return out, nil
}

// unsupported names what a route needs of API Gateway that template.yaml
// does not use, and so the local gateway leaves out, or is "". Refusing
// such a route beats serving it otherwise than API Gateway would.
func unsupported(r samtemplate.Route) string {
	segments := strings.Split(r.Path, "/")
	switch {
	case r.Method == "ANY":
		return "the ANY method"
	case slices.ContainsFunc(segments[:len(segments)-1], isGreedy):
		return "a greedy path parameter before the path's last segment"
	}
	return ""
}

// match finds the route for method on u's path, and the path parameters.
// As API Gateway, it picks the most specific resource first and then the
// method on it: a method the resource lacks finds no route.
func (g *Gateway) match(method string, u *url.URL) (samtemplate.Route, map[string]string, bool) {
	// Split the escaped path, so that an escaped slash stays inside its
	// segment, then unescape each segment.
	raw := strings.Split(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	segments := make([]string, len(raw))
	for i, s := range raw {
		var err error
		if segments[i], err = url.PathUnescape(s); err != nil {
			return samtemplate.Route{}, nil, false
		}
	}
	var best *resource
	var bestLiteral []bool
	var bestParams map[string]string
	for _, res := range g.resources {
		literal, params, ok := res.match(segments)
		if ok && (best == nil || moreSpecific(res, literal, best, bestLiteral)) {
			best, bestLiteral, bestParams = res, literal, params
		}
	}
	if best == nil {
		return samtemplate.Route{}, nil, false
	}
	route, ok := best.methods[method]
	return route, bestParams, ok
}

// match matches the resource against a request path's segments; literal
// tells which segments matched literally rather than as a path parameter.
// A greedy last parameter ({proxy+}) takes the rest of the path, at least
// one segment, slashes and all.
func (res *resource) match(segments []string) (literal []bool, params map[string]string, ok bool) {
	if res.greedy() {
		n := len(res.segments) - 1
		if len(segments) <= n {
			return nil, nil, false
		}
		rest := strings.Join(segments[n:], "/")
		segments = append(slices.Clone(segments[:n]), rest)
	}
	if len(segments) != len(res.segments) {
		return nil, nil, false
	}
	literal = make([]bool, len(segments))
	for i, pattern := range res.segments {
		name, isParam := strings.CutPrefix(pattern, "{")
		switch {
		case isParam && segments[i] != "":
			if params == nil {
				params = map[string]string{}
			}
			params[strings.TrimSuffix(strings.TrimSuffix(name, "}"), "+")] = segments[i]
		case !isParam && pattern == segments[i]:
			literal[i] = true
		default:
			return nil, nil, false
		}
	}
	return literal, params, true
}

// greedy reports whether the resource ends in a greedy path parameter.
func (res *resource) greedy() bool { return isGreedy(res.segments[len(res.segments)-1]) }

func isGreedy(segment string) bool {
	return strings.HasPrefix(segment, "{") && strings.HasSuffix(segment, "+}")
}

// moreSpecific compares two matches of one path: API Gateway prefers any
// resource to a greedy one, then, from the left, a literal segment to a
// path parameter.
func moreSpecific(a *resource, aLiteral []bool, b *resource, bLiteral []bool) bool {
	if a.greedy() != b.greedy() {
		return b.greedy()
	}
	for i := range min(len(aLiteral), len(bLiteral)) {
		if aLiteral[i] != bLiteral[i] {
			return aLiteral[i]
		}
	}
	return len(aLiteral) > len(bLiteral)
}
