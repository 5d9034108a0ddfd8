package gateway

import (
	"fmt"
	"net/url"
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

// Ranks of a path segment's match: API Gateway prefers a literal segment to
// a path parameter, and a path parameter to a greedy one ({proxy+}).
const (
	greedyMatch = iota + 1
	paramMatch
	literalMatch
)

// match finds the route for method on u's path, and the path parameters.
// As API Gateway, it picks the most specific resource first and then the
// method on it (or ANY): a method the resource lacks finds no route.
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
	var bestRanks []int
	var bestParams map[string]string
	for _, res := range g.resources {
		ranks, params, ok := res.match(segments)
		if ok && (best == nil || moreSpecific(ranks, bestRanks)) {
			best, bestRanks, bestParams = res, ranks, params
		}
	}
	if best == nil {
		return samtemplate.Route{}, nil, false
	}
	route, ok := best.methods[method]
	if !ok {
		route, ok = best.methods["ANY"]
	}
	return route, bestParams, ok
}

// match matches the resource against a request path's segments, ranking
// each segment's match.
func (res *resource) match(segments []string) (ranks []int, params map[string]string, ok bool) {
	for i, pattern := range res.segments {
		if i >= len(segments) {
			return nil, nil, false
		}
		name, isParam := strings.CutPrefix(pattern, "{")
		name, _ = strings.CutSuffix(name, "}")
		greedyName, isGreedy := strings.CutSuffix(name, "+")
		switch {
		case isParam && isGreedy: // takes the rest of the path
			params = setParam(params, greedyName, strings.Join(segments[i:], "/"))
			return append(ranks, greedyMatch), params, true
		case isParam && segments[i] != "":
			params = setParam(params, name, segments[i])
			ranks = append(ranks, paramMatch)
		case !isParam && pattern == segments[i]:
			ranks = append(ranks, literalMatch)
		default:
			return nil, nil, false
		}
	}
	return ranks, params, len(segments) == len(res.segments)
}

func setParam(params map[string]string, name, value string) map[string]string {
	if params == nil {
		params = map[string]string{}
	}
	params[name] = value
	return params
}

// moreSpecific compares two matches segment by segment, from the left.
func moreSpecific(a, b []int) bool {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return len(a) > len(b)
}
