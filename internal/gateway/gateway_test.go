package gateway_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/samtemplate"
)

// template is keygate's template.yaml: the tests render its gateway responses.
func template(t *testing.T) *samtemplate.Template {
	t.Helper()
	tpl, err := samtemplate.LoadModule()
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// recorder stands in for every function but those in real: it records the
// events it gets and answers with answer, by default 200 naming the function.
type recorder struct {
	mu     sync.Mutex
	events map[string][]events.APIGatewayProxyRequest
	answer func(name string) (events.APIGatewayProxyResponse, error)
	real   map[string]gateway.Function
}

func (rec *recorder) functions(tpl *samtemplate.Template) map[string]gateway.Function {
	fns := map[string]gateway.Function{}
	for _, f := range tpl.Functions {
		if len(f.Routes) == 0 {
			continue // the authorizer
		}
		name := f.Name
		if fn, ok := rec.real[name]; ok {
			fns[name] = fn
			continue
		}
		fns[name] = func(_ context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			rec.mu.Lock()
			rec.events[name] = append(rec.events[name], ev)
			rec.mu.Unlock()
			if rec.answer != nil {
				return rec.answer(name)
			}
			return events.APIGatewayProxyResponse{StatusCode: 200, Body: `{"success":true,"data":"` + name + `"}`}, nil
		}
	}
	return fns
}

// last is the last event function got.
func (rec *recorder) last(t *testing.T, function string) events.APIGatewayProxyRequest {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	evs := rec.events[function]
	if len(evs) == 0 {
		t.Fatalf("function %s got no event", function)
	}
	return evs[len(evs)-1]
}

// allowing is an authorizer that allows exactly the method ARN it is
// asked about, with ctx, and records its events.
type allowing struct {
	mu     sync.Mutex
	events []events.APIGatewayCustomAuthorizerRequestTypeRequest
	ctx    map[string]any
}

func (a *allowing) authorize(_ context.Context, ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, ev)
	return policy("key_1", "Allow", ev.MethodArn, a.ctx), nil
}

func policy(principal, effect, resource string, ctx map[string]any) events.APIGatewayCustomAuthorizerResponse {
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: principal,
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{Version: "2012-10-17", Statement: []events.IAMPolicyStatement{
			{Action: []string{"execute-api:Invoke"}, Effect: effect, Resource: []string{resource}},
		}},
		Context: ctx,
	}
}

// serve starts a Gateway for keygate's template with authorize and rec's functions.
func serve(t *testing.T, authorize gateway.Authorizer, rec *recorder) *httptest.Server {
	t.Helper()
	return serveLogged(t, authorize, rec, nil)
}

// serveLogged is serve, logging to log.
func serveLogged(t *testing.T, authorize gateway.Authorizer, rec *recorder, log *slog.Logger) *httptest.Server {
	t.Helper()
	return serveTemplate(t, template(t), authorize, rec, log)
}

// serveTemplate starts a Gateway for tpl.
func serveTemplate(t *testing.T, tpl *samtemplate.Template, authorize gateway.Authorizer, rec *recorder, log *slog.Logger) *httptest.Server {
	t.Helper()
	if rec.events == nil {
		rec.events = map[string][]events.APIGatewayProxyRequest{}
	}
	gw, err := gateway.New(gateway.Config{
		Template: tpl, Authorizer: authorize, Functions: rec.functions(tpl),
		Region: "us-east-1", AccountID: "123456789012", APIID: "local", Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return srv
}

// reply is a response with its envelope decoded.
type reply struct {
	status  int
	header  http.Header
	body    string
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Error   *struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"requestId"`
	} `json:"error"`
}

func (r reply) code() string {
	if r.Error == nil {
		return ""
	}
	return r.Error.Code
}

func do(t *testing.T, srv *httptest.Server, method, target string, header http.Header, body io.Reader) reply {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+target, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, body: string(raw)}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s %s: body %q is not JSON: %v", method, target, raw, err)
	}
	if r.Error != nil && r.Error.RequestID != resp.Header.Get("X-Amzn-Requestid") {
		t.Errorf("%s %s: requestId %q in the body, %q in x-amzn-RequestId", method, target, r.Error.RequestID, resp.Header.Get("X-Amzn-Requestid"))
	}
	return r
}

func TestRouting(t *testing.T) {
	rec := &recorder{}
	srv := serve(t, (&allowing{}).authorize, rec)
	for _, tc := range []struct {
		method, target string
		function       string            // "" for no route
		params         map[string]string // the path parameters
	}{
		{"GET", "/v1/api-keys", "list-keys", nil},
		{"POST", "/v1/api-keys", "create-key", nil},
		{"GET", "/v1/api-keys/key_1", "get-key", map[string]string{"id": "key_1"}},
		{"PATCH", "/v1/api-keys/key_1", "update-key", map[string]string{"id": "key_1"}},
		{"PUT", "/v1/api-keys/key_1", "update-key", map[string]string{"id": "key_1"}},
		{"DELETE", "/v1/api-keys/key_1", "revoke-key", map[string]string{"id": "key_1"}},
		{"POST", "/v1/api-keys/key_1/rotate", "rotate-key", map[string]string{"id": "key_1"}},
		{"POST", "/v1/owners/bob%40example.com/revoke", "revoke-owner", map[string]string{"owner": "bob@example.com"}},
		{"POST", "/v1/owners/a%2Fb/revoke", "revoke-owner", map[string]string{"owner": "a/b"}},
		{"GET", "/v1/audit?keyId=key_1", "list-audit", nil},
		{"POST", "/v1/verify", "verify", nil},
		{"GET", "/v1/whoami", "whoami", nil},
		{"GET", "/", "", nil},
		{"GET", "/v1/nope", "", nil},
		{"DELETE", "/v1/whoami", "", nil},            // a method the resource lacks
		{"GET", "/v1/api-keys/", "", nil},            // an empty path parameter
		{"GET", "/v1/api-keys/key_1/other", "", nil}, // a deeper path
		{"GET", "/v1/whoami/", "", nil},
	} {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			r := do(t, srv, tc.method, tc.target, nil, nil)
			if tc.function == "" {
				if r.status != 404 || r.code() != "not_found" || r.header.Get("Content-Type") != "application/json" {
					t.Fatalf("got %d %s %v, want the template's 404", r.status, r.body, r.header)
				}
				return
			}
			var served string
			if r.status != 200 || json.Unmarshal(r.Data, &served) != nil || served != tc.function {
				t.Fatalf("got %d %s, want function %s", r.status, r.body, tc.function)
			}
			if ev := rec.last(t, tc.function); !maps.Equal(ev.PathParameters, tc.params) {
				t.Errorf("pathParameters %v, want %v", ev.PathParameters, tc.params)
			}
		})
	}
}

func TestEvents(t *testing.T) {
	auth := &allowing{ctx: map[string]any{"keyId": "key_1", "project": "acme", "limit": 42, "ratio": 0.5, "admin": true}}
	rec := &recorder{}
	srv := serve(t, auth.authorize, rec)
	header := http.Header{"Authorization": {"Bearer kg_in_x"}, "X-Multi": {"a", "b"}, "X-Forwarded-For": {"203.0.113.9"}}
	r := do(t, srv, "PATCH", "/v1/api-keys/key_9?x=1&x=2&y=3", header, strings.NewReader(`{"name":"n"}`))
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	requestID := r.header.Get("X-Amzn-Requestid")
	host := strings.TrimPrefix(srv.URL, "http://")

	a := auth.events[0]
	wantEqual(t, "type", a.Type, "REQUEST")
	wantEqual(t, "methodArn", a.MethodArn, "arn:aws:execute-api:us-east-1:123456789012:local/prod/PATCH/v1/api-keys/key_9")
	wantEqual(t, "resource", a.Resource, "/v1/api-keys/{id}")
	wantEqual(t, "path", a.Path, "/v1/api-keys/key_9")
	wantEqual(t, "httpMethod", a.HTTPMethod, "PATCH")
	wantEqual(t, "Authorization", a.Headers["Authorization"], "Bearer kg_in_x")
	wantEqual(t, "X-Multi", a.Headers["X-Multi"], "b") // the last value
	wantEqual(t, "multi X-Multi", strings.Join(a.MultiValueHeaders["X-Multi"], ","), "a,b")
	wantEqual(t, "Host", a.Headers["Host"], host)
	wantEqual(t, "X-Forwarded-For", a.Headers["X-Forwarded-For"], "203.0.113.9, 127.0.0.1")
	wantEqual(t, "query x", a.QueryStringParameters["x"], "2")
	wantEqual(t, "multi query x", strings.Join(a.MultiValueQueryStringParameters["x"], ","), "1,2")
	wantEqual(t, "pathParameters", a.PathParameters["id"], "key_9")
	wantEqual(t, "requestId", a.RequestContext.RequestID, requestID)
	wantEqual(t, "sourceIp", a.RequestContext.Identity.SourceIP, "127.0.0.1") // the peer, not X-Forwarded-For
	wantEqual(t, "resourcePath", a.RequestContext.ResourcePath, "/v1/api-keys/{id}")
	wantEqual(t, "stage", a.RequestContext.Stage, "prod")
	wantEqual(t, "context path", a.RequestContext.Path, "/prod/v1/api-keys/key_9")
	wantEqual(t, "apiId", a.RequestContext.APIID, "local")

	f := rec.last(t, "update-key")
	wantEqual(t, "resource", f.Resource, "/v1/api-keys/{id}")
	wantEqual(t, "path", f.Path, "/v1/api-keys/key_9")
	wantEqual(t, "body", f.Body, `{"name":"n"}`)
	wantEqual(t, "query y", f.QueryStringParameters["y"], "3")
	wantEqual(t, "multi X-Multi", strings.Join(f.MultiValueHeaders["X-Multi"], ","), "a,b")
	wantEqual(t, "requestId", f.RequestContext.RequestID, requestID)
	wantEqual(t, "sourceIp", f.RequestContext.Identity.SourceIP, "127.0.0.1")
	wantEqual(t, "domainName", f.RequestContext.DomainName, host)
	// API Gateway hands on every context value as a string, with the
	// principal and the authorizer's latency, a number.
	got := f.RequestContext.Authorizer
	for k, v := range map[string]string{"keyId": "key_1", "project": "acme", "limit": "42", "ratio": "0.5", "admin": "true", "principalId": "key_1"} {
		if got[k] != v {
			t.Errorf("authorizer.%s = %#v, want %q", k, got[k], v)
		}
	}
	if _, ok := got["integrationLatency"].(int64); !ok {
		t.Errorf("authorizer.integrationLatency = %#v, want a number", got["integrationLatency"])
	}
}

func TestPolicy(t *testing.T) {
	const arn = "arn:aws:execute-api:us-east-1:123456789012:local/prod/GET/v1/whoami"
	statement := func(effect, action, resource string) events.IAMPolicyStatement {
		return events.IAMPolicyStatement{Effect: effect, Action: []string{action}, Resource: []string{resource}}
	}
	for _, tc := range []struct {
		name       string
		statements []events.IAMPolicyStatement
		status     int
	}{
		{"allow exactly", []events.IAMPolicyStatement{statement("Allow", "execute-api:Invoke", arn)}, 200},
		{"allow a wildcard", []events.IAMPolicyStatement{statement("Allow", "execute-api:*", "arn:aws:execute-api:*:*:local/prod/*")}, 200},
		{"allow with ?", []events.IAMPolicyStatement{statement("Allow", "*", "arn:aws:execute-api:us-east-1:123456789012:local/prod/GE?/v1/whoami")}, 200},
		{"actions ignore case", []events.IAMPolicyStatement{statement("Allow", "EXECUTE-API:invoke", arn)}, 200},
		{"allow another method", []events.IAMPolicyStatement{statement("Allow", "execute-api:Invoke", strings.Replace(arn, "/GET/", "/POST/", 1))}, 403},
		{"allow another action", []events.IAMPolicyStatement{statement("Allow", "execute-api:ManageConnections", arn)}, 403},
		{"resources keep case", []events.IAMPolicyStatement{statement("Allow", "execute-api:Invoke", strings.ToUpper(arn))}, 403},
		{"deny wins", []events.IAMPolicyStatement{statement("Allow", "execute-api:Invoke", arn), statement("Deny", "execute-api:Invoke", "*")}, 403},
		{"no statement", nil, 503},
		{"bad effect", []events.IAMPolicyStatement{statement("allow", "execute-api:Invoke", arn)}, 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			authorize := func(context.Context, events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
				p := policy("key_1", "", "", nil)
				p.PolicyDocument.Statement = tc.statements
				return p, nil
			}
			r := do(t, serve(t, authorize, &recorder{}), "GET", "/v1/whoami", nil, nil)
			if r.status != tc.status {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tc.status)
			}
		})
	}
}

func TestGatewayResponses(t *testing.T) {
	answering := func(resp events.APIGatewayCustomAuthorizerResponse, err error) gateway.Authorizer {
		return func(context.Context, events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
			return resp, err
		}
	}
	const anyArn = "arn:aws:execute-api:*"
	for _, tc := range []struct {
		name      string
		authorize gateway.Authorizer
		status    int
		code      string
		header    map[string]string // "" for a header that must be absent
	}{
		{"unauthorized", answering(events.APIGatewayCustomAuthorizerResponse{}, errors.New("Unauthorized")),
			401, "unauthorized", map[string]string{"Www-Authenticate": "Bearer", "Retry-After": ""}},
		{"rate limited", answering(policy("key_1", "Deny", anyArn, map[string]any{"errorCode": "rate_limited", "retryAfter": "42"}), nil),
			403, "rate_limited", map[string]string{"Retry-After": "42"}},
		{"insufficient scope", answering(policy("key_1", "Deny", anyArn, map[string]any{"errorCode": "insufficient_scope"}), nil),
			403, "insufficient_scope", map[string]string{"Retry-After": "", "RateLimit-Limit": ""}},
		{"usage exceeded, with the budget", answering(policy("key_1", "Deny", anyArn, map[string]any{
			"errorCode": "usage_exceeded", "retryAfter": "3600", "rateLimitLimit": "100", "rateLimitRemaining": "99", "rateLimitResetAfter": "450",
		}), nil), 403, "usage_exceeded", map[string]string{"Retry-After": "3600", "RateLimit-Limit": "100", "RateLimit-Remaining": "99", "RateLimit-Reset": "450"}},
		{"numbers in the context", answering(policy("key_1", "Deny", anyArn, map[string]any{"errorCode": "rate_limited", "retryAfter": 7}), nil),
			403, "rate_limited", map[string]string{"Retry-After": "7"}},
		{"authorizer failure", answering(events.APIGatewayCustomAuthorizerResponse{}, errors.New("store unavailable")),
			503, "unavailable", nil},
		{"an object in the context", answering(policy("key_1", "Allow", anyArn, map[string]any{"nested": map[string]any{}}), nil),
			503, "unavailable", nil},
		{"authorizer panics", func(context.Context, events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
			panic("boom")
		}, 503, "unavailable", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, serve(t, tc.authorize, &recorder{}), "GET", "/v1/api-keys", nil, nil)
			if r.status != tc.status || r.code() != tc.code || r.Success {
				t.Fatalf("got %d %s, want %d with code %s", r.status, r.body, tc.status, tc.code)
			}
			for k, v := range tc.header {
				if got := r.header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if r.Error.RequestID == "" || r.header.Get("Content-Type") != "application/json" {
				t.Errorf("no requestId or Content-Type: %v %s", r.header, r.body)
			}
		})
	}

	t.Run("request too large", func(t *testing.T) {
		rec := &recorder{}
		srv := serve(t, (&allowing{}).authorize, rec)
		r := do(t, srv, "POST", "/v1/api-keys", nil, strings.NewReader(strings.Repeat("x", gateway.MaxBodyBytes+1)))
		if r.status != 413 || r.code() != "payload_too_large" {
			t.Fatalf("got %d %s, want 413 payload_too_large", r.status, r.body)
		}
		if len(rec.events["create-key"]) != 0 {
			t.Error("the function ran")
		}
	})
}

func TestFunctionResponses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer events.APIGatewayProxyResponse
		err    error
		status int
		body   string
		header http.Header
	}{
		{"headers merged", events.APIGatewayProxyResponse{StatusCode: 201, Body: `{"success":true}`,
			Headers:           map[string]string{"Content-Type": "application/json", "X-One": "1", "Set-Cookie": "a=1"},
			MultiValueHeaders: map[string][]string{"Set-Cookie": {"a=1", "b=2"}}},
			nil, 201, `{"success":true}`, http.Header{"X-One": {"1"}, "Set-Cookie": {"a=1", "b=2"}}},
		{"base64 body", events.APIGatewayProxyResponse{StatusCode: 200, IsBase64Encoded: true, Body: base64.StdEncoding.EncodeToString([]byte(`{"success":true}`))},
			nil, 200, `{"success":true}`, http.Header{"Content-Type": {"application/json"}}},
		{"function error", events.APIGatewayProxyResponse{}, errors.New("panic"), 502, "", nil},
		{"no status", events.APIGatewayProxyResponse{Body: "{}"}, nil, 502, "", nil},
		{"bad base64", events.APIGatewayProxyResponse{StatusCode: 200, IsBase64Encoded: true, Body: "%%%"}, nil, 502, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{answer: func(string) (events.APIGatewayProxyResponse, error) { return tc.answer, tc.err }}
			r := do(t, serve(t, (&allowing{}).authorize, rec), "GET", "/v1/whoami", nil, nil)
			if r.status != tc.status {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tc.status)
			}
			if tc.status == 502 {
				if r.code() != "internal" {
					t.Errorf("body %s, want the template's DEFAULT_5XX", r.body)
				}
				return
			}
			if r.body != tc.body {
				t.Errorf("body %q, want %q", r.body, tc.body)
			}
			for k, vs := range tc.header {
				if got := r.header.Values(k); !slices.Equal(got, vs) {
					t.Errorf("header %s = %q, want %q", k, got, vs)
				}
			}
		})
	}
}

func TestNew(t *testing.T) {
	tpl := template(t)
	rec := &recorder{}
	allow := (&allowing{}).authorize
	valid := func() gateway.Config {
		return gateway.Config{Template: tpl, Authorizer: allow, Functions: rec.functions(tpl)}
	}
	if _, err := gateway.New(valid()); err != nil {
		t.Fatalf("keygate's template: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*gateway.Config)
		want   string
	}{
		{"a route without its function", func(c *gateway.Config) { delete(c.Functions, "whoami") }, "no handler for function whoami"},
		{"a function without a route", func(c *gateway.Config) { c.Functions["extra"] = c.Functions["whoami"] }, "function extra serves no route"},
		{"no authorizer", func(c *gateway.Config) { c.Authorizer = nil }, "no authorizer"},
		// What keygate's template does not use of API Gateway, New refuses.
		{"the ANY method", withRoute(samtemplate.Route{Method: "ANY", Path: "/v1/things"}), "does not serve the ANY method"},
		{"a greedy path parameter mid-path", withRoute(samtemplate.Route{Method: "GET", Path: "/v1/{path+}/x"}), "greedy path parameter before"},
		{"a response left to DEFAULT_4XX", withResponses(func(rs map[string]samtemplate.GatewayResponse) {
			delete(rs, "REQUEST_TOO_LARGE")
		}), "GatewayResponses.REQUEST_TOO_LARGE"},
		{"a context variable", withResponses(func(rs map[string]samtemplate.GatewayResponse) {
			rs["UNAUTHORIZED"] = samtemplate.GatewayResponse{Templates: map[string]string{"application/json": `{"stage":"$context.stage"}`}}
		}), "does not supply $context.stage"},
		{"a header from the request", withResponses(func(rs map[string]samtemplate.GatewayResponse) {
			rs["UNAUTHORIZED"] = samtemplate.GatewayResponse{
				Headers:   map[string]string{"X-Id": "method.request.header.x-id"},
				Templates: map[string]string{"application/json": "{}"},
			}
		}), "header X-Id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid()
			tc.change(&cfg)
			if _, err := gateway.New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// withRoute adds a function "extra" serving r to the config's template.
func withRoute(r samtemplate.Route) func(*gateway.Config) {
	return func(c *gateway.Config) {
		tpl := *c.Template
		r.Function = "extra"
		tpl.Functions = append(slices.Clone(tpl.Functions), samtemplate.Function{Name: "extra", Routes: []samtemplate.Route{r}})
		c.Template = &tpl
		c.Functions["extra"] = c.Functions["whoami"]
	}
}

// withResponses changes a copy of the config's template's gateway responses.
func withResponses(change func(map[string]samtemplate.GatewayResponse)) func(*gateway.Config) {
	return func(c *gateway.Config) {
		tpl := *c.Template
		tpl.GatewayResponses = maps.Clone(tpl.GatewayResponses)
		change(tpl.GatewayResponses)
		c.Template = &tpl
	}
}

func wantEqual(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// A REST API hands the function the path as sent, percent-encoded, and
// decodes the path parameters; it splits the query on & alone.
func TestPathAndQueryAsAPIGatewayHandsThemOn(t *testing.T) {
	rec := &recorder{}
	allow := func(context.Context, events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
		return policy("key_1", "Allow", "*", nil), nil
	}
	srv := serve(t, allow, rec)
	if r := do(t, srv, "GET", "/v1/api-keys/a%2Fb%3Fc?status=revoked;x=1&limit=2", nil, nil); r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	ev := rec.events["get-key"][0]
	if ev.Path != "/v1/api-keys/a%2Fb%3Fc" || ev.PathParameters["id"] != "a/b?c" {
		t.Errorf("path %q, parameters %v", ev.Path, ev.PathParameters)
	}
	if ev.QueryStringParameters["status"] != "revoked;x=1" || ev.QueryStringParameters["limit"] != "2" {
		t.Errorf("query %v", ev.QueryStringParameters)
	}
}

// A function runs with its Lambda timeout as its deadline, and one that
// panics has failed: 502.
func TestFunctionDeadlineAndPanic(t *testing.T) {
	allow := func(context.Context, events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
		return policy("key_1", "Allow", "*", nil), nil
	}
	var left time.Duration
	rec := &recorder{real: map[string]gateway.Function{
		"whoami": func(ctx context.Context, _ events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			deadline, _ := ctx.Deadline()
			left = time.Until(deadline)
			return events.APIGatewayProxyResponse{StatusCode: 200, Body: "{}"}, nil
		},
		"get-key": func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			panic("boom")
		},
	}}
	srv := serve(t, allow, rec)
	if r := do(t, srv, "GET", "/v1/whoami", nil, nil); r.status != 200 || left <= 9*time.Second || left > 10*time.Second {
		t.Errorf("whoami: %d, deadline in %v, want Globals' 10 s", r.status, left)
	}
	if r := do(t, srv, "GET", "/v1/api-keys/x", nil, nil); r.status != 502 {
		t.Errorf("a panicking function: %d %s, want 502", r.status, r.body)
	}
}
