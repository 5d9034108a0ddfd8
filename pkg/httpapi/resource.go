package httpapi

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/awslabs/aws-lambda-go-api-proxy/core"
)

// byResource routes a request on the resource API Gateway matched, not on
// the path the client sent. Behind a custom domain with a base path
// mapping, the proxy event's path carries the base path
// (/keygate/v1/api-keys/key_1) and would match no route; the resource
// (requestContext.resourcePath, /v1/api-keys/{id}) never carries it. It is
// also what the authorizer decided on, so the function serves the very
// route that was authorized. Without API Gateway's context (local tests,
// tools) the request passes unchanged.
func byResource(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gw, ok := core.GetAPIGatewayContextFromContext(r.Context()); ok {
			if path, rawPath, ok := resourcePath(gw.ResourcePath, r.URL.EscapedPath()); ok {
				r = withPath(r, path, rawPath)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// withPath is a shallow copy of r with another path, as http.StripPrefix
// makes one: a handler must not change the request it was given.
func withPath(r *http.Request, path, rawPath string) *http.Request {
	u := *r.URL
	u.Path, u.RawPath = path, rawPath
	r2 := new(http.Request)
	*r2 = *r
	r2.URL = &u
	return r2
}

// resourcePath fills resource's {parameters} in with the segments of
// escapedPath that API Gateway matched them to: its last ones, as many as
// the resource has, whatever precedes them (a base path). The adapter hands
// over neither the event's resource nor its pathParameters, only its
// requestContext; the path holds the parameters as the client escaped
// them. ok is false when the path does not end in the resource, or there is
// no resource.
func resourcePath(resource, escapedPath string) (path, rawPath string, ok bool) {
	rest, rooted := strings.CutPrefix(resource, "/")
	want := strings.Split(rest, "/")
	got := strings.Split(escapedPath, "/")
	// got[0] is what precedes the path's first "/": "" for any path.
	if !rooted || len(got)-1 < len(want) {
		return "", "", false
	}
	got = got[len(got)-len(want):]
	decoded := make([]string, len(want))
	escaped := make([]string, len(want))
	for i, seg := range want {
		value, err := url.PathUnescape(got[i])
		switch {
		case err != nil:
			return "", "", false
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}"):
			// API Gateway matches a parameter to one segment, never an empty one.
			if value == "" {
				return "", "", false
			}
			decoded[i], escaped[i] = value, escapeSegment(value)
		case value != seg:
			return "", "", false
		default:
			decoded[i], escaped[i] = seg, seg
		}
	}
	return "/" + strings.Join(decoded, "/"), "/" + strings.Join(escaped, "/"), true
}

// escapeSegment escapes a parameter so that it stays one segment: '/' as
// %2F, and a dot segment as %2E, which http.ServeMux would otherwise clean
// away with a redirect to another route.
func escapeSegment(value string) string {
	if value == "." || value == ".." {
		return strings.Repeat("%2E", len(value))
	}
	return url.PathEscape(value)
}
