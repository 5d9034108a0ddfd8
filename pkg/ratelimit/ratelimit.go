// Package ratelimit shows a client its budget the way GitHub's and
// Stripe's clients expect it: the IETF RateLimit header fields
// (draft-ietf-httpapi-ratelimit-headers), written from the context
// keygate's authorizer hands every function behind API Gateway. keygate's
// own functions use it; so can the team's own.
package ratelimit

import (
	"net/http"
	"strconv"
	"time"

	"github.com/awslabs/aws-lambda-go-api-proxy/core"

	"github.com/keygate/keygate/pkg/authorizer"
)

// The header fields.
const (
	HeaderLimit     = "RateLimit-Limit"
	HeaderRemaining = "RateLimit-Remaining"
	// HeaderReset is the number of seconds until the window ends, as the
	// draft defines it (not a Unix time, as GitHub's X-RateLimit-Reset is).
	HeaderReset = "RateLimit-Reset"
)

// SetHeaders sets the RateLimit fields on h from an authorizer context, as
// API Gateway hands it over: a REST API's requestContext.authorizer, or an
// HTTP API's requestContext.authorizer.lambda. The budget is the key's
// tightest limit. A context without one (a key with no limit) sets none.
func SetHeaders(h http.Header, authorizerContext map[string]any, now time.Time) {
	limit, okLimit := number(authorizerContext, authorizer.ContextRateLimitLimit)
	remaining, okRemaining := number(authorizerContext, authorizer.ContextRateLimitRemaining)
	reset, okReset := number(authorizerContext, authorizer.ContextRateLimitReset)
	if !okLimit || !okRemaining || !okReset {
		return
	}
	h.Set(HeaderLimit, strconv.FormatInt(limit, 10))
	h.Set(HeaderRemaining, strconv.FormatInt(remaining, 10))
	h.Set(HeaderReset, strconv.FormatInt(max(0, reset-now.Unix()), 10))
}

// Middleware sets the RateLimit fields on every answer of next, a handler
// served through aws-lambda-go-api-proxy (httpadapter or
// handlerfunc), before next writes anything.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ctx, ok := core.GetAPIGatewayContextFromContext(r.Context()); ok {
			SetHeaders(w.Header(), ctx.Authorizer, time.Now())
		}
		next.ServeHTTP(w, r)
	})
}

// number reads a context value: a string, as the authorizer sets every
// value, or a JSON number, as a test or another authorizer may pass.
func number(c map[string]any, name string) (int64, bool) {
	switch v := c[name].(type) {
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	case float64:
		return int64(v), true
	}
	return 0, false
}
