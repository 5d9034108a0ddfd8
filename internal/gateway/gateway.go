// Package gateway serves a SAM template's REST API in-process, with API
// Gateway's semantics: it matches the request to a route of the template,
// runs the Lambda authorizer on a REQUEST authorizer event, evaluates the
// policy it returns, and calls the route's function with a Lambda proxy
// event carrying the authorizer's context, as API Gateway would. Whatever
// API Gateway answers itself (401, 403, 404, 413, authorizer failures) comes
// from the template's GatewayResponses, so the local gateway and the
// deployed API answer alike. It emulates what keygate's template uses of
// API Gateway, and New refuses a template that needs more.
//
// It is the core of `make run` (infra/local); tests serve it with httptest.
package gateway

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keygate/keygate/internal/samtemplate"
	"github.com/keygate/keygate/pkg/token"
)

// MaxBodyBytes is API Gateway's limit on a request's payload: 10 MB.
const MaxBodyBytes = 10 << 20

// Authorizer answers a REST API REQUEST authorizer event, as a Lambda
// authorizer does. The error "Unauthorized" asks for a 401.
type Authorizer func(context.Context, events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error)

// Function answers a Lambda proxy integration event, as a Lambda function does.
type Function func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error)

// errUnauthorized is the authorizer error API Gateway answers with 401; it
// matches the text exactly.
const errUnauthorized = "Unauthorized"

// Config is what a Gateway serves.
type Config struct {
	// Template gives the routes, the stage and the gateway responses.
	Template *samtemplate.Template
	// Authorizer runs before every route.
	Authorizer Authorizer
	// Functions serve the routes, by function name (samtemplate.Function.Name).
	// Every route needs its function, and every function a route.
	Functions map[string]Function
	// Region, AccountID and APIID make up the method ARN the authorizer sees.
	Region, AccountID, APIID string
	// AuthorizerTimeout is the authorizer function's Lambda timeout; 0
	// leaves it to the integration timeout.
	AuthorizerTimeout time.Duration
	// Log receives one record per request (message "gateway") and one per
	// failure; nil discards them. Paths, queries and errors are redacted
	// (token.Redact): a key pasted into a URL never reaches the log.
	Log *slog.Logger
}

// integrationTimeout is how long API Gateway waits for a REST API's
// integration, whatever the function's own timeout.
const integrationTimeout = 29 * time.Second

// Gateway is an http.Handler serving a Config.
type Gateway struct {
	resources []*resource
	responses responses
	authorize Authorizer
	functions map[string]Function
	// timeouts are the functions' Lambda timeouts, by name, and the authorizer's.
	timeouts          map[string]time.Duration
	authorizerTimeout time.Duration
	stage             string
	accountID         string
	apiID             string
	arnPrefix         string // the method ARN up to the method: arn:aws:execute-api:<region>:<account>:<apiId>/<stage>/
	log               *slog.Logger
}

// New checks that cfg's template and functions agree, and builds the Gateway.
func New(cfg Config) (*Gateway, error) {
	t := cfg.Template
	if t == nil {
		return nil, errors.New("gateway: no template")
	}
	if cfg.Authorizer == nil {
		return nil, errors.New("gateway: no authorizer; every route runs it")
	}
	resources, err := newResources(t.Routes())
	if err != nil {
		return nil, err
	}
	routed := map[string]bool{}
	for _, r := range t.Routes() {
		if cfg.Functions[r.Function] == nil {
			return nil, fmt.Errorf("gateway: route %s: no handler for function %s", r, r.Function)
		}
		routed[r.Function] = true
	}
	for name := range cfg.Functions {
		if !routed[name] {
			return nil, fmt.Errorf("gateway: function %s serves no route of the template", name)
		}
	}
	resp, err := newResponses(t.GatewayResponses)
	if err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeouts := map[string]time.Duration{}
	for _, f := range t.Functions {
		timeouts[f.Name] = f.Timeout
	}
	return &Gateway{
		resources: resources, responses: resp, authorize: cfg.Authorizer, functions: cfg.Functions,
		timeouts: timeouts, authorizerTimeout: cmp.Or(cfg.AuthorizerTimeout, integrationTimeout),
		stage: t.StageName, accountID: cfg.AccountID, apiID: cfg.APIID,
		arnPrefix: fmt.Sprintf("arn:aws:execute-api:%s:%s:%s/%s/", cfg.Region, cfg.AccountID, cfg.APIID, t.StageName),
		log:       log,
	}, nil
}

// ServeHTTP answers one request as API Gateway would, and logs it: method,
// path and query, redacted, status, latency, request id, and the
// authorizer's answer; never a header, where keys travel.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	req := g.newIncoming(r, start)
	// As in AWS, a client that hangs up does not stop the functions.
	resp := g.serve(context.WithoutCancel(r.Context()), req)
	// API Gateway names the request id in every answer, its own and the
	// functions'; its own carry it in the body too.
	resp.header.Set("X-Amzn-Requestid", req.id)
	for k, vs := range resp.header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
	g.log.LogAttrs(r.Context(), slog.LevelInfo, "gateway", req.logAttrs(resp.status, time.Since(start))...)
}

// logAttrs describe the request in its log record.
func (req *incoming) logAttrs(status int, latency time.Duration) []slog.Attr {
	attrs := []slog.Attr{slog.String("method", req.r.Method), slog.String("path", token.Redact(req.r.URL.Path))}
	if req.r.URL.RawQuery != "" {
		attrs = append(attrs, slog.String("query", loggedQuery(req.r.URL.RawQuery)))
	}
	attrs = append(attrs, slog.Int("status", status), slog.Float64("latencyMs", float64(latency.Microseconds())/1000),
		slog.String("requestId", req.id))
	if req.authorized != "" {
		attrs = append(attrs, slog.String("authorizer", req.authorized))
	}
	if req.principal != "" {
		attrs = append(attrs, slog.String("principal", token.Redact(req.principal)))
	}
	return attrs
}

// percentEscape is one %XX of a URL.
var percentEscape = regexp.MustCompile(`%[0-9A-Fa-f]{2}`)

// loggedQuery is a raw query as the log shows it: redacted, after every
// valid escape is decoded, so that a key with an escaped character (%5F for
// _) is found too, even beside a broken escape.
func loggedQuery(raw string) string {
	decoded := percentEscape.ReplaceAllStringFunc(raw, func(e string) string {
		b, _ := hex.DecodeString(e[1:])
		return string(b)
	})
	return token.Redact(decoded)
}

// serve carries the request through API Gateway's steps: payload limit,
// route, authorizer and policy, function.
func (g *Gateway) serve(ctx context.Context, req *incoming) response {
	body, err := io.ReadAll(io.LimitReader(req.r.Body, MaxBodyBytes+1))
	switch {
	case err != nil: // the client broke the request off: no one reads the answer
		return response{status: http.StatusBadRequest, header: http.Header{}}
	case len(body) > MaxBodyBytes:
		return g.responses.render(requestTooLarge, vars{requestID: req.id})
	}
	req.body = body
	route, params, ok := g.match(req.r.Method, req.r.URL)
	if !ok {
		// A REST API answers a path or method it does not have as if
		// authentication were missing: it cannot tell the two apart.
		return g.responses.render(missingAuthenticationToken, vars{requestID: req.id})
	}
	req.route, req.pathParameters = route, params

	var allowed *allowance
	if !route.Public {
		a, refusal := g.authorizeRequest(ctx, req)
		if refusal != nil {
			return *refusal
		}
		allowed = &a
	}
	fctx, cancel := context.WithTimeout(ctx, min(g.timeouts[route.Function], integrationTimeout))
	defer cancel()
	out, err := invoke(fctx, g.functions[route.Function], g.proxyEvent(req, allowed))
	if err == nil {
		var resp response
		if resp, err = fromProxyResponse(out); err == nil {
			return resp
		}
	}
	g.log.ErrorContext(ctx, "function failed", "requestId", req.id, "function", route.Function, "error", token.Redact(err.Error()))
	return g.responses.render(integrationFailure, vars{requestID: req.id})
}

// invoke runs a handler as Lambda would: past its deadline, or panicking,
// it has failed.
func invoke[In, Out any](ctx context.Context, handler func(context.Context, In) (Out, error), in In) (out Out, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	out, err = handler(ctx, in)
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("timed out: %w", ctx.Err())
	}
	return out, err
}

// allowance is what API Gateway hands a function about an authorizer that
// allowed the request.
type allowance struct {
	context   map[string]string
	principal string
	latency   time.Duration
}

// authorizeRequest runs the authorizer and applies its answer: an allowance, or
// the gateway response refusing the request.
func (g *Gateway) authorizeRequest(ctx context.Context, req *incoming) (allowance, *response) {
	refuse := func(t responseType, authorizerContext map[string]string) (allowance, *response) {
		resp := g.responses.render(t, vars{requestID: req.id, authorizer: authorizerContext})
		return allowance{}, &resp
	}
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, g.authorizerTimeout)
	defer cancel()
	answer, err := invoke(actx, g.authorize, g.authorizerEvent(req))
	latency := time.Since(start)
	switch {
	case err != nil && err.Error() == errUnauthorized:
		req.authorized = authorizerUnauthorized
		return refuse(unauthorized, nil)
	case err != nil:
		// API Gateway answers a Lambda authorizer's failure (any error but
		// Unauthorized, a timeout, a crash) as a configuration error.
		req.authorized = authorizerFailed
		g.log.ErrorContext(ctx, "authorizer failed", "requestId", req.id, "error", token.Redact(err.Error()))
		return refuse(authorizerConfigurationError, nil)
	}
	authorizerContext, principal, err := evaluatePolicy(answer, g.methodArn(req))
	req.principal = principal
	switch {
	case errors.Is(err, errDenied):
		req.authorized = authorizerDenied
		return refuse(accessDenied, authorizerContext)
	case err != nil:
		req.authorized = authorizerFailed
		g.log.ErrorContext(ctx, "authorizer answer refused", "requestId", req.id, "error", token.Redact(err.Error()))
		return refuse(authorizerConfigurationError, nil)
	}
	req.authorized = authorizerAllowed
	return allowance{context: authorizerContext, principal: principal, latency: latency}, nil
}

// methodArn is the ARN of the request's method, with the request's own
// path, as API Gateway hands it to the authorizer: the policy must allow it.
func (g *Gateway) methodArn(req *incoming) string {
	return g.arnPrefix + req.r.Method + "/" + strings.TrimPrefix(req.r.URL.Path, "/")
}

// The authorizer's answers, as the request's log record names them.
const (
	authorizerAllowed      = "allowed"
	authorizerDenied       = "denied"
	authorizerUnauthorized = "unauthorized"
	authorizerFailed       = "failed" // an error, a timeout, a crash, or an answer API Gateway refuses
)

// incoming is a request on its way through the gateway.
type incoming struct {
	r              *http.Request
	id             string
	at             time.Time
	sourceIP       string
	headers, query values
	body           []byte
	route          samtemplate.Route
	pathParameters map[string]string
	// For the log: the authorizer's answer ("" when it did not run), and
	// the principal of its policy.
	authorized, principal string
}

func (g *Gateway) newIncoming(r *http.Request, at time.Time) *incoming {
	// API Gateway sees the client's address on the connection, whatever
	// X-Forwarded-For claims.
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	return &incoming{
		r: r, id: newRequestID(), at: at, sourceIP: ip,
		headers: newValues(forwardedHeaders(r, ip)), query: newValues(parseQuery(r.URL.RawQuery)),
	}
}

// newRequestID makes a random UUID, as API Gateway's request ids are.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// parseQuery splits a query string on & alone, as API Gateway does: Go's
// url.ParseQuery drops any pair holding a semicolon.
func parseQuery(raw string) url.Values {
	q := url.Values{}
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if key, err := url.QueryUnescape(k); err == nil {
			k = key
		}
		if value, err := url.QueryUnescape(v); err == nil {
			v = value
		}
		q[k] = append(q[k], v)
	}
	return q
}
