package authorizer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// errUnauthorized is the error a REST API's Lambda authorizer returns for
// API Gateway to answer 401; API Gateway matches its text exactly.
var errUnauthorized = errors.New("Unauthorized")

// codeUnauthorized is the errorCode of an HTTP API refusal of a key that
// did not authenticate: missing, malformed, unknown, revoked or expired
// alike, as the REST API's single 401, so that a refusal tells nothing
// about a key it does not prove.
const codeUnauthorized = "unauthorized"

// Handler answers API Gateway's Lambda authorizer events with the
// Authorizer's decisions: REST API REQUEST authorizers, and HTTP API
// authorizers with payload 2.0 and simple responses.
type Handler struct {
	auth   *Authorizer
	routes RouteScopes
	costs  RouteCosts
	// stageWide answers for every route at once, for API Gateway's result cache.
	stageWide bool
}

// HandlerOption changes a Handler.
type HandlerOption func(*Handler)

// WithRouteCosts makes each request spend its route's cost of credits.
func WithRouteCosts(costs RouteCosts) HandlerOption { return func(h *Handler) { h.costs = costs } }

// ForCachedResults makes REST answers hold for every route of the stage.
// API Gateway reuses a cached answer for whatever route the same identity
// calls next, so an Allow for one method ARN would refuse all others: the
// answer instead allows the whole stage and denies, by explicit Deny
// statements, each configured route whose scopes the key lacks; a refusal
// denies the whole stage. A cached answer is counted once, on the miss.
func ForCachedResults() HandlerOption { return func(h *Handler) { h.stageWide = true } }

// NewHandler builds a Handler requiring the scopes routes lists.
func NewHandler(auth *Authorizer, routes RouteScopes, opts ...HandlerOption) *Handler {
	h := &Handler{auth: auth, routes: routes}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Invoke is the Lambda entry point for both kinds of API: an event with
// version "2.0" is an HTTP API's; any other is a REST API's REQUEST event.
func (h *Handler) Invoke(ctx context.Context, payload json.RawMessage) (any, error) {
	var probe struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(payload, &probe); err != nil {
		return nil, fmt.Errorf("decode authorizer event: %w", err)
	}
	if probe.Version == "2.0" {
		var ev events.APIGatewayV2CustomAuthorizerV2Request
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fmt.Errorf("decode HTTP API authorizer event: %w", err)
		}
		return h.HTTP(ctx, ev)
	}
	var ev events.APIGatewayCustomAuthorizerRequestTypeRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("decode REST API authorizer event: %w", err)
	}
	return h.REST(ctx, ev)
}

// REST answers a REST API REQUEST authorizer event. A key that does not
// authenticate (missing, malformed, unknown, revoked, expired) gets the
// error Unauthorized, which API Gateway answers with 401; a key that
// authenticates but may not make the request gets a Deny policy (403) whose
// context carries errorCode and, when rate limited, retryAfter; an allowed
// one an Allow policy for exactly this method ARN, never a wildcard, since
// another route may need other scopes. A store failure returns its error,
// which API Gateway answers with a 5xx: it never allows.
func (h *Handler) REST(ctx context.Context, ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	d, err := h.authorizeCall(ctx, call{
		headers:  headers{single: ev.Headers, multi: ev.MultiValueHeaders},
		method:   ev.HTTPMethod,
		resource: ev.Resource,
		sourceIP: ev.RequestContext.Identity.SourceIP,
		anyRoute: h.stageWide,
	})
	if err != nil {
		return events.APIGatewayCustomAuthorizerResponse{}, err
	}
	if h.stageWide {
		return h.stagePolicy(d, ev.MethodArn)
	}
	switch {
	case d.Outcome == Allowed:
		return policy(d.KeyID, "Allow", ev.MethodArn, AllowContext(d)), nil
	case authenticatedRefusal(d.Outcome):
		return policy(d.KeyID, "Deny", ev.MethodArn, denyContext(d)), nil
	}
	return events.APIGatewayCustomAuthorizerResponse{}, errUnauthorized
}

// HTTP answers an HTTP API authorizer event (payload 2.0) with a simple
// response. An HTTP API cannot turn a Lambda authorizer's answer into 401,
// so every refusal is isAuthorized false (403) and its context's errorCode
// tells them apart: unauthorized, rate_limited, usage_exceeded,
// insufficient_scope or ip_not_allowed. A store failure returns its error (API Gateway answers
// 500): it never allows.
func (h *Handler) HTTP(ctx context.Context, ev events.APIGatewayV2CustomAuthorizerV2Request) (events.APIGatewayV2CustomAuthorizerSimpleResponse, error) {
	resource := ev.RouteKey // "GET /orders/{id}", or "$default"
	if _, r, ok := strings.Cut(ev.RouteKey, " "); ok {
		resource = r
	}
	d, err := h.authorizeCall(ctx, call{
		headers:  headers{single: ev.Headers},
		method:   ev.RequestContext.HTTP.Method,
		resource: resource,
		sourceIP: ev.RequestContext.HTTP.SourceIP,
	})
	if err != nil {
		return events.APIGatewayV2CustomAuthorizerSimpleResponse{}, err
	}
	if d.Outcome == Allowed {
		return events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: true, Context: AllowContext(d)}, nil
	}
	return events.APIGatewayV2CustomAuthorizerSimpleResponse{Context: denyContext(d)}, nil
}

// stagePolicy is REST's answer under ForCachedResults.
func (h *Handler) stagePolicy(d Decision, methodArn string) (events.APIGatewayCustomAuthorizerResponse, error) {
	stage, ok := stageArn(methodArn)
	switch {
	case !ok:
		return events.APIGatewayCustomAuthorizerResponse{}, fmt.Errorf("method ARN %q: want arn:...:api/stage/METHOD/path", methodArn)
	case d.Outcome == Allowed:
	case authenticatedRefusal(d.Outcome):
		return policy(d.KeyID, "Deny", stage+"/*", denyContext(d)), nil
	default:
		return events.APIGatewayCustomAuthorizerResponse{}, errUnauthorized
	}
	resp := policy(d.KeyID, "Allow", stage+"/*", AllowContext(d))
	var denied []string
	for _, route := range slices.Sorted(maps.Keys(h.routes)) {
		if !d.Key.HoldsScopes(h.routes[route]) {
			denied = append(denied, routeArn(stage, route))
		}
	}
	if len(denied) > 0 {
		resp.PolicyDocument.Statement = append(resp.PolicyDocument.Statement, events.IAMPolicyStatement{
			Action: []string{"execute-api:Invoke"}, Effect: "Deny", Resource: denied,
		})
		// Only a request a Deny statement matches sees this code.
		resp.Context[ContextErrorCode] = string(InsufficientScope)
	}
	return resp, nil
}

// stageArn cuts "arn:aws:execute-api:region:account:api/stage/METHOD/path"
// to "arn:aws:execute-api:region:account:api/stage".
func stageArn(methodArn string) (string, bool) {
	parts := strings.SplitN(methodArn, "/", 3)
	if len(parts) < 3 || !strings.HasPrefix(methodArn, "arn:") {
		return "", false
	}
	return parts[0] + "/" + parts[1], true
}

// routeArn is the ARN pattern of a configured route: each {param} becomes
// *, and method ANY becomes *.
func routeArn(stage, route string) string {
	method, resource, _ := strings.Cut(route, " ")
	if method == "ANY" {
		method = "*"
	}
	segments := strings.Split(strings.TrimPrefix(resource, "/"), "/")
	for i, seg := range segments {
		if strings.HasPrefix(seg, "{") {
			segments[i] = "*"
		}
	}
	return stage + "/" + method + "/" + strings.Join(segments, "/")
}

// call is what an event tells about the request to authorize.
type call struct {
	headers  headers
	method   string
	resource string
	sourceIP string
	// anyRoute decides for the key alone, leaving scopes to the policy.
	anyRoute bool
}

func (h *Handler) authorizeCall(ctx context.Context, c call) (Decision, error) {
	req := Request{
		SourceIP: c.sourceIP,
		Route:    c.method + " " + c.resource,
		Cost:     h.costs.Cost(c.method, c.resource),
	}
	if !c.anyRoute {
		req.Scopes = h.routes.Required(c.method, c.resource)
	}
	key, problem := presentedKey(c.headers)
	if problem != "" {
		return h.auth.refuseUnread(ctx, req, problem), nil
	}
	req.Key = key
	return h.auth.Decide(ctx, req)
}

// authenticatedRefusal reports whether o refuses a key that proved itself:
// those refusals are a Deny policy rather than a 401.
func authenticatedRefusal(o Outcome) bool {
	return o == RateLimited || o == UsageExceeded || o == InsufficientScope || o == IPNotAllowed
}

func policy(principal, effect, methodArn string, context map[string]any) events.APIGatewayCustomAuthorizerResponse {
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: principal,
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17",
			Statement: []events.IAMPolicyStatement{{
				Action:   []string{"execute-api:Invoke"},
				Effect:   effect,
				Resource: []string{methodArn},
			}},
		},
		Context: context,
	}
}

// AllowContext is what the functions behind the gateway read about the
// caller of an allowed decision (httpapi.CallerFrom). Every value is a
// string, as API Gateway hands REST API context values on.
func AllowContext(d Decision) map[string]any {
	c := make(map[string]any, allowContextSize) // sized once: no growth on the hot path
	c[ContextKeyID] = d.KeyID
	c[ContextProject] = d.Key.Project
	c[ContextOwner] = d.Key.Owner
	c[ContextTier] = d.Key.Tier
	c[ContextScopes] = strings.Join(d.Key.Scopes, ",")
	setBudget(c, d)
	if d.Key.ExpiresAt != nil {
		c[ContextExpiresAt] = strconv.FormatInt(d.Key.ExpiresAt.UnixMilli(), 10)
	}
	if len(d.Key.IPAllowlist) > 0 {
		c[ContextIPAllowlist] = strings.Join(d.Key.IPAllowlist, ",")
	}
	return c
}

// allowContextSize is how many values AllowContext can set.
const allowContextSize = 11

// setBudget sets the tightest rate limit and the credits left, which the
// RateLimit-* headers show.
func setBudget(c map[string]any, d Decision) {
	if rl := d.RateLimit; rl != nil {
		c[ContextRateLimitLimit] = strconv.FormatInt(rl.Limit, 10)
		c[ContextRateLimitRemaining] = strconv.FormatInt(rl.Remaining, 10)
		c[ContextRateLimitReset] = strconv.FormatInt(rl.Reset.Unix(), 10)
	}
	if n, ok := d.CreditsRemaining(); ok {
		c[ContextCreditsRemaining] = strconv.FormatInt(n, 10)
	}
}

// denyContext feeds the gateway's error response: its errorCode, the
// Retry-After header when the refusal passes, and the budget headers.
func denyContext(d Decision) map[string]any {
	if !authenticatedRefusal(d.Outcome) {
		return map[string]any{ContextErrorCode: codeUnauthorized}
	}
	c := map[string]any{ContextErrorCode: string(d.Outcome)}
	if d.RetryAfter > 0 && (d.Outcome == RateLimited || d.Outcome == UsageExceeded) {
		c[ContextRetryAfter] = strconv.FormatInt(RetryAfterSeconds(d.RetryAfter), 10)
	}
	setBudget(c, d)
	if rl := d.RateLimit; rl != nil {
		c[ContextRateLimitResetAfter] = strconv.FormatInt(max(0, rl.Reset.Unix()-d.At.Unix()), 10)
	}
	return c
}
