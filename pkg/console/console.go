// Package console is keygate's web console: a page for operators, served
// by keygate itself at /console, signed in with an admin key. The browser
// never keeps the key: sign-in exchanges it for a session, whose token
// lives only in an HttpOnly cookie; each request of the console then acts
// as that key through the authorizer's own decision (scopes, IP allowlist,
// rate limits, revocation and expiry, checked on every request), and
// through the management API's own handlers.
//
// Routes, all under the template's /console and /console/{proxy+}:
//
//	GET    /console                  the page
//	GET    /console/assets/<file>    its assets, content-hashed, cached for a year
//	GET    /console/api/session      the session, 200 {signedIn:false} without one
//	POST   /console/api/session      sign in: {key} -> session cookie
//	DELETE /console/api/session      sign out
//	*      /console/api/v1/...       the management API (/v1/...) as the session's key
package console

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/httpapi"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/portal"
	"github.com/keygate/keygate/pkg/session"
	"github.com/keygate/keygate/pkg/token"
	"github.com/keygate/keygate/pkg/usage"
)

// Routes are the console function's routes, as template.yaml declares
// them, without authorizer.
var Routes = []string{"GET /console", "GET /console/{proxy+}", "POST /console/{proxy+}", "PUT /console/{proxy+}", "PATCH /console/{proxy+}", "DELETE /console/{proxy+}"}

// Console serves the console's page, assets, sessions and API.
type Console struct {
	store  Store
	auth   *authorizer.Authorizer
	svc    *keys.Service
	cfg    keys.Config
	routes authorizer.RouteScopes
	costs  authorizer.RouteCosts
	log    *slog.Logger
	now    func() time.Time
	assets *assets
	// api serves every management operation; patterns finds the route
	// of a path among them, whose scopes and cost the authorizer applies.
	api      *httpadapter.HandlerAdapter
	patterns *http.ServeMux
	// The customer portal: its service, its routes, and usage for its charts.
	portalSvc *portal.Service
	portal    *http.ServeMux
	usage     *usage.Service
}

// Config is what New builds a Console from.
type Config struct {
	Store      Store
	Authorizer *authorizer.Authorizer
	Service    *keys.Service
	Keys       keys.Config
	API        *httpapi.API
	Routes     authorizer.RouteScopes
	Costs      authorizer.RouteCosts
	Log        *slog.Logger
	Now        func() time.Time
	Portal     *portal.Service
	Usage      *usage.Service
}

// New builds the Console.
func New(cfg Config) *Console {
	c := &Console{
		store: cfg.Store, auth: cfg.Authorizer, svc: cfg.Service, cfg: cfg.Keys, routes: cfg.Routes, costs: cfg.Costs,
		log: cfg.Log, now: cfg.Now, assets: mustLoadAssets(), patterns: http.NewServeMux(),
		portalSvc: cfg.Portal, usage: cfg.Usage,
	}
	c.portal = c.portalMux()
	var names []httpapi.OperationName
	for _, op := range httpapi.Operations {
		names = append(names, op.Name)
		for _, route := range op.Routes {
			c.patterns.Handle(route, http.NotFoundHandler())
		}
	}
	c.api = httpadapter.New(cfg.API.Handler(names...))
	return c
}

// Handle answers one API Gateway proxy event: the console function.
func (c *Console) Handle(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	var resp events.APIGatewayProxyResponse
	var err error
	h := eventHeader(ev)
	if strings.HasPrefix(ev.Resource, "/portal") {
		resp, err = c.servePortal(ctx, ev)
	} else if inner, ok := apiPath(ev); ok {
		resp, err = c.serveAPI(ctx, ev, h, inner)
	} else {
		resp, err = serveHTTP(ctx, ev, c.route(ev))
	}
	if err != nil {
		// The adapter could not read the event (a malformed URL): an
		// envelope, never the Lambda error API Gateway would show as 502.
		c.log.ErrorContext(ctx, "console request failed", "requestId", ev.RequestContext.RequestID, "error", token.Redact(err.Error()))
		resp = events.APIGatewayProxyResponse{StatusCode: http.StatusInternalServerError, Body: internalError,
			MultiValueHeaders: map[string][]string{"Content-Type": {"application/json"}, "Cache-Control": {"no-store"}}}
	}
	return withSecurityHeaders(resp, secureCookie(h)), nil
}

// internalError is the envelope of a request the console could not read.
const internalError = `{"success":false,"error":{"code":"internal","message":"internal error"}}`

// apiPath is the management API path that a console API request asks for:
// /console/api/v1/x is /v1/x. It reads the greedy path parameter, which a
// custom domain's base path never precedes.
func apiPath(ev events.APIGatewayProxyRequest) (string, bool) {
	rest, ok := strings.CutPrefix(ev.PathParameters["proxy"], "api/v1/")
	if !ok {
		return "", false
	}
	return "/v1/" + rest, true
}

// Header names of the console.
const (
	// CSRFHeader carries the session's CSRF token on every state-changing
	// request, and any value on sign-in: a cross-site form cannot send a
	// header, and a cross-site script cannot without a CORS preflight,
	// which keygate never approves.
	CSRFHeader = "X-Keygate-CSRF"
)

// The session cookie. Over https it is a __Host- cookie: Secure, Path=/,
// no Domain, so that no other host of the site (a sibling subdomain) can
// set one the browser would send in its place. Path=/ is also what
// reaches the console under a stage (/prod/console) or a custom domain's
// base path. Plain http on loopback (make run) cannot have a __Host-
// cookie, and has no sibling hosts.
type cookie string

// The session cookies: the console's and the customer portal's.
const (
	consoleCookie cookie = "keygate_console"
	portalCookie  cookie = "keygate_portal"
)

// name is the cookie's name for a request.
func (c cookie) name(h http.Header) string {
	if secureCookie(h) {
		return "__Host-" + string(c)
	}
	return string(c)
}

// token is the one session token a request's cookies hold. Two are one
// too many: which a browser sends first is not for keygate to guess.
func (c cookie) token(h http.Header) (string, bool) {
	cookies := (&http.Request{Header: h}).CookiesNamed(c.name(h))
	if len(cookies) != 1 || cookies[0].Value == "" {
		return "", false
	}
	return cookies[0].Value, true
}

// set sets the cookie to a session's token until expires.
func (c cookie) set(w http.ResponseWriter, r *http.Request, tok string, expires, now time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name: c.name(r.Header), Value: tok, Path: "/", Expires: expires, MaxAge: int(expires.Sub(now) / time.Second),
		HttpOnly: true, Secure: secureCookie(r.Header), SameSite: http.SameSiteStrictMode,
	})
}

// clear tells the browser to drop the cookie.
func (c cookie) clear(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: c.name(r.Header), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secureCookie(r.Header), SameSite: http.SameSiteStrictMode})
}

// serveAPI runs a management request as the session's key: the route's
// scopes and cost, and the key's every check, are the authorizer's, as if
// the key itself were presented at the gateway.
func (c *Console) serveAPI(ctx context.Context, ev events.APIGatewayProxyRequest, h http.Header, p string) (events.APIGatewayProxyResponse, error) {
	// Only a clean path of plain segments names a route: /v1/x/../y is no
	// way to /v1/y, and a decoded ? or # would cut the path the API's
	// handler parses short of the route decided on here.
	if path.Clean(p) != p || strings.ContainsAny(p, "?#%") {
		return serveHTTP(ctx, ev, httpapi.NoRoute)
	}
	if err := checkFetchSite(h); err != nil {
		return c.refuse(ctx, ev, err)
	}
	_, pattern := c.patterns.Handler(&http.Request{Method: ev.HTTPMethod, URL: &url.URL{Path: p}, Header: http.Header{}})
	method, resource, found := strings.Cut(pattern, " ")
	if !found || method != ev.HTTPMethod {
		return serveHTTP(ctx, ev, httpapi.NoRoute)
	}
	now := c.now()
	ses, err := c.sessionOf(ctx, h, now)
	if err == nil && unsafeMethod(method) {
		err = checkCSRF(h, ses.CSRFMatches)
	}
	if err != nil {
		return c.refuse(ctx, ev, err)
	}
	d, err := c.auth.Decide(ctx, authorizer.Request{
		Held: &ses.Key, Project: ses.Project,
		Scopes: c.routes.Required(method, resource), SourceIP: ev.RequestContext.Identity.SourceIP,
		Route: "console " + pattern, Cost: c.costs.Cost(method, resource),
	})
	if err == nil {
		err = refusal(d)
	}
	if err != nil {
		return c.refuse(ctx, ev, err)
	}
	inner := ev
	inner.Path, inner.Resource = p, resource
	inner.RequestContext.ResourcePath = resource
	inner.PathParameters = nil
	inner.Headers, inner.MultiValueHeaders = withoutCookies(ev)
	authz := authorizer.AllowContext(d)
	authz[authorizer.ContextSession] = ses.ID
	authz["principalId"] = d.KeyID
	inner.RequestContext.Authorizer = authz
	return c.api.ProxyWithContext(ctx, inner)
}

// refuse answers ev with err's envelope (httpapi.WriteError).
func (c *Console) refuse(ctx context.Context, ev events.APIGatewayProxyRequest, err error) (events.APIGatewayProxyResponse, error) {
	return serveHTTP(ctx, ev, func(w http.ResponseWriter, r *http.Request) { httpapi.WriteError(w, r, c.log, err) })
}

// refusal is the error a decision other than Allowed answers with, in
// the words of the console: its session is what the caller holds.
func refusal(d authorizer.Decision) error {
	switch d.Outcome {
	case authorizer.Allowed:
		return nil
	case authorizer.InsufficientScope:
		return &keys.ForbiddenError{Message: "the signed-in API key lacks a scope this needs"}
	case authorizer.IPNotAllowed:
		return &keys.ForbiddenError{Message: "the signed-in API key may not be used from this address"}
	case authorizer.RateLimited:
		return &keys.RateLimitedError{Message: "the signed-in API key is over its rate limit; retry later", RetryAfter: d.RetryAfter}
	case authorizer.UsageExceeded:
		return &keys.RateLimitedError{Message: "the signed-in API key has no credits left", RetryAfter: d.RetryAfter}
	}
	return errSessionEnded
}

var errSessionEnded = &keys.UnauthorizedError{Message: "the console session ended: signed out, expired, or its API key was revoked or expired; sign in again"}

// sessionOf is the live session whose token the request's cookie holds.
func (c *Console) sessionOf(ctx context.Context, h http.Header, now time.Time) (*Session, error) {
	tok, ok := consoleCookie.token(h)
	if !ok {
		return nil, errSessionEnded
	}
	ses, err := c.store.GetSession(ctx, session.Hash(tok), now)
	if errors.Is(err, keys.ErrNotFound) {
		return nil, errSessionEnded
	}
	return ses, err
}

func unsafeMethod(m string) bool { return m != http.MethodGet && m != http.MethodHead }

var errCrossSite = &keys.ForbiddenError{Message: "cross-site request refused: the console answers its own page only"}

// checkFetchSite refuses any request a browser says came from elsewhere
// than the console's origin, reads included: an <img> on a sibling site
// must not spend the signed-in key's budget.
func checkFetchSite(h http.Header) error {
	if site := h.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return errCrossSite
	}
	return nil
}

// checkCSRF refuses a state-changing request that a browser says came from
// another site, or whose CSRF header the session's token does not match
// (any value will do when matches is nil: sign-in, opening a link).
func checkCSRF(h http.Header, matches func(string) bool) error {
	refused := &keys.ForbiddenError{Message: "cross-site request refused: send the " + CSRFHeader + " header from the console's own page"}
	if checkFetchSite(h) != nil {
		return refused
	}
	if origin := h.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Host != h.Get("Host") {
			return refused
		}
	}
	token := h.Get(CSRFHeader)
	if token == "" || matches != nil && !matches(token) {
		return refused
	}
	return nil
}

// eventHeader is an event's headers as net/http keeps them.
func eventHeader(ev events.APIGatewayProxyRequest) http.Header {
	h := http.Header{}
	for k, vs := range ev.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for k, v := range ev.Headers {
		if _, ok := h[http.CanonicalHeaderKey(k)]; !ok {
			h.Set(k, v)
		}
	}
	return h
}

// withoutCookies are ev's headers without its cookies: the session token
// goes no further than the console.
func withoutCookies(ev events.APIGatewayProxyRequest) (map[string]string, map[string][]string) {
	single := map[string]string{}
	for k, v := range ev.Headers {
		if !strings.EqualFold(k, "Cookie") {
			single[k] = v
		}
	}
	multi := map[string][]string{}
	for k, vs := range ev.MultiValueHeaders {
		if !strings.EqualFold(k, "Cookie") {
			multi[k] = vs
		}
	}
	return single, multi
}
