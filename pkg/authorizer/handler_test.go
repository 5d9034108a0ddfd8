package authorizer_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/internal/modroot"
	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/httpapi"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

// eventCase is what each event file under events/authorizer (REST API)
// and events/authorizer-http (HTTP API, payload 2.0) must decide. The files
// carry test keys (authorizertest.EventKey), decided at EventTime.
type eventCase struct {
	outcome authorizer.Outcome
	label   string            // the key whose id the answer names
	context map[string]string // an Allow's context besides the key id, or a Deny's
	calls   int               // store requests
}

// budget is the context of the tier public's window at EventTime with
// remaining uses left.
func budget(remaining string, more ...string) map[string]string {
	c := map[string]string{"rateLimitLimit": "100", "rateLimitRemaining": remaining, "rateLimitReset": "1894702500", "rateLimitResetAfter": "450"}
	for i := 0; i < len(more); i += 2 {
		c[more[i]] = more[i+1]
	}
	return c
}

var eventCases = map[string]eventCase{
	"allow-bearer": {outcome: authorizer.Allowed, label: "reader", calls: 1, context: map[string]string{
		"project": "acme", "owner": "alice", "tier": "public", "scopes": "contracts",
		"rateLimitLimit": "100", "rateLimitRemaining": "99", "rateLimitReset": "1894702500"}},
	"allow-x-api-key": {outcome: authorizer.Allowed, label: "admin", calls: 1, context: map[string]string{
		"project": "acme", "owner": "ops", "tier": "internal", "scopes": "admin,verify",
		"rateLimitLimit": "10000", "rateLimitRemaining": "9999", "rateLimitReset": "1894702500"}},
	"allow-ip-in-allowlist": {outcome: authorizer.Allowed, label: "allowlisted", calls: 1, context: map[string]string{
		"project": "acme", "owner": "", "tier": "public", "scopes": "", "ipAllowlist": "203.0.113.0/24,2001:db8::/32",
		"rateLimitLimit": "100", "rateLimitRemaining": "99", "rateLimitReset": "1894702500"}},
	"missing-key":        {outcome: authorizer.MissingKey},
	"malformed-key":      {outcome: authorizer.MalformedKey},
	"conflicting-keys":   {outcome: authorizer.MalformedKey},
	"unknown-key":        {outcome: authorizer.NotFound, calls: 1},
	"revoked-key":        {outcome: authorizer.Revoked, calls: 1},
	"expired-key":        {outcome: authorizer.Expired, calls: 1},
	"insufficient-scope": {outcome: authorizer.InsufficientScope, label: "reader", calls: 1, context: map[string]string{"errorCode": "insufficient_scope"}},
	// The use, then its return.
	"ip-not-allowed": {outcome: authorizer.IPNotAllowed, label: "allowlisted", calls: 2, context: budget("100", "errorCode", "ip_not_allowed")},
	"rate-limited":   {outcome: authorizer.RateLimited, label: "limited", calls: 1, context: budget("0", "errorCode", "rate_limited", "retryAfter", "450")},
	// Its credits refill on 2030-02-01, 16 days, 13:52:30 after EventTime.
	"usage-exceeded": {outcome: authorizer.UsageExceeded, label: "spent", calls: 1, context: budget("100", "errorCode", "usage_exceeded", "retryAfter", "1432350", "creditsRemaining", "0")},
}

func newHandler(t testing.TB) (*authorizer.Handler, *fixture) {
	f := newFixture(t)
	return authorizer.NewHandler(f.auth, httpapi.RouteScopes()), f
}

// eventFiles returns the event files of a directory under events/, and
// checks that each has a case and each case a file.
func eventFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	root, err := modroot.Find()
	if err != nil {
		t.Fatal(err)
	}
	paths, err := filepath.Glob(filepath.Join(root, "events", dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".json")
		if _, ok := eventCases[name]; !ok {
			t.Errorf("events/%s/%s.json has no case in eventCases", dir, name)
		}
		if files[name], err = os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
	}
	for name := range eventCases {
		if files[name] == nil {
			t.Errorf("case %s has no file events/%s/%s.json", name, dir, name)
		}
	}
	return files
}

func TestRESTEventFiles(t *testing.T) {
	for name, raw := range eventFiles(t, "authorizer") {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want := eventCases[name]
			h, f := newHandler(t)
			var ev events.APIGatewayCustomAuthorizerRequestTypeRequest
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			out, err := h.Invoke(context.Background(), raw)
			resp, _ := out.(events.APIGatewayCustomAuthorizerResponse)
			switch want.outcome {
			case authorizer.Allowed:
				checkPolicy(t, resp, err, "Allow", ev.MethodArn, want.label, allowContext(want))
			case authorizer.RateLimited, authorizer.UsageExceeded, authorizer.InsufficientScope, authorizer.IPNotAllowed:
				checkPolicy(t, resp, err, "Deny", ev.MethodArn, want.label, denyContext(want))
			default:
				if err == nil || err.Error() != "Unauthorized" || !reflect.DeepEqual(resp, events.APIGatewayCustomAuthorizerResponse{}) {
					t.Errorf("got %+v, %v; want the error Unauthorized", out, err)
				}
			}
			checkCalls(t, f, want)
		})
	}
}

func TestHTTPEventFiles(t *testing.T) {
	for name, raw := range eventFiles(t, "authorizer-http") {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want := eventCases[name]
			h, f := newHandler(t)
			out, err := h.Invoke(context.Background(), raw)
			if err != nil {
				t.Fatal(err)
			}
			resp, ok := out.(events.APIGatewayV2CustomAuthorizerSimpleResponse)
			if !ok {
				t.Fatalf("answered %T, want a simple response", out)
			}
			var wantResp events.APIGatewayV2CustomAuthorizerSimpleResponse
			switch want.outcome {
			case authorizer.Allowed:
				wantResp = events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: true, Context: allowContext(want)}
			case authorizer.RateLimited, authorizer.UsageExceeded, authorizer.InsufficientScope, authorizer.IPNotAllowed:
				wantResp.Context = denyContext(want)
			default:
				wantResp.Context = map[string]any{"errorCode": "unauthorized"}
			}
			if !reflect.DeepEqual(resp, wantResp) {
				t.Errorf("got %+v, want %+v", resp, wantResp)
			}
			checkCalls(t, f, want)
		})
	}
}

func denyContext(c eventCase) map[string]any {
	m := map[string]any{}
	for k, v := range c.context {
		m[k] = v
	}
	return m
}

func allowContext(c eventCase) map[string]any {
	m := map[string]any{"keyId": keyID(c.label)}
	for k, v := range c.context {
		m[k] = v
	}
	return m
}

func checkPolicy(t *testing.T, resp events.APIGatewayCustomAuthorizerResponse, err error, effect, methodArn, label string, context map[string]any) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	want := events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: keyID(label),
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17",
			Statement: []events.IAMPolicyStatement{{
				Action: []string{"execute-api:Invoke"}, Effect: effect, Resource: []string{methodArn},
			}},
		},
		Context: context,
	}
	if !reflect.DeepEqual(resp, want) {
		t.Errorf("got  %+v\nwant %+v", resp, want)
	}
	if strings.Contains(methodArn, "*") {
		t.Errorf("method ARN %s is a wildcard", methodArn)
	}
}

// checkCalls checks the store requests, and that a refused request spent
// none of its key's budget.
func checkCalls(t *testing.T, f *fixture, want eventCase) {
	t.Helper()
	if got := f.store.Calls(); got != want.calls {
		t.Errorf("%d store requests, want %d", got, want.calls)
	}
	if want.outcome != authorizer.Allowed && want.label != "" {
		if n := f.store.TotalRequests(keyID(want.label)); n != 0 {
			t.Errorf("%s request counted: total %d", want.outcome, n)
		}
	}
}

// TestLambdaWire runs events through the same Lambda handler wrapper that
// lambda.Start uses, and checks the JSON API Gateway receives.
func TestLambdaWire(t *testing.T) {
	h, _ := newHandler(t)
	handler := lambda.NewHandler(h.Invoke)
	root, err := modroot.Find()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ file, want, wantErr string }{
		{"authorizer/allow-bearer.json", `{"principalId":"` + keyID("reader") + `","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":["execute-api:Invoke"],"Effect":"Allow","Resource":["arn:aws:execute-api:us-east-1:123456789012:k3yg4t3abc/prod/GET/v1/whoami"]}]},"context":{"keyId":"` + keyID("reader") + `","owner":"alice","project":"acme","rateLimitLimit":"100","rateLimitRemaining":"99","rateLimitReset":"1894702500","scopes":"contracts","tier":"public"}}`, ""},
		{"authorizer/rate-limited.json", `{"principalId":"` + keyID("limited") + `","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":["execute-api:Invoke"],"Effect":"Deny","Resource":["arn:aws:execute-api:us-east-1:123456789012:k3yg4t3abc/prod/GET/v1/whoami"]}]},"context":{"errorCode":"rate_limited","rateLimitLimit":"100","rateLimitRemaining":"0","rateLimitReset":"1894702500","rateLimitResetAfter":"450","retryAfter":"450"}}`, ""},
		{"authorizer/revoked-key.json", "", "Unauthorized"},
		{"authorizer-http/allow-bearer.json", `{"isAuthorized":true,"context":{"keyId":"` + keyID("reader") + `","owner":"alice","project":"acme","rateLimitLimit":"100","rateLimitRemaining":"98","rateLimitReset":"1894702500","scopes":"contracts","tier":"public"}}`, ""},
		{"authorizer-http/revoked-key.json", `{"isAuthorized":false,"context":{"errorCode":"unauthorized"}}`, ""},
	}
	for _, tt := range tests {
		raw, err := os.ReadFile(filepath.Join(root, "events", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		out, err := handler.Invoke(context.Background(), raw)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("%s: got %s, %v; want the error %s", tt.file, out, err, tt.wantErr)
			}
			continue
		}
		if err != nil || string(out) != tt.want {
			t.Errorf("%s:\ngot  %s, %v\nwant %s", tt.file, out, err, tt.want)
		}
	}
}

// TestGatewayThrottled: a key DynamoDB throttles is denied as rate
// limited with Retry-After 1 (API Gateway's ACCESS_DENIED response), never
// allowed nor failed.
func TestGatewayThrottled(t *testing.T) {
	h, f := newHandler(t)
	f.store.Throttle(keyID("reader"), true)
	want := map[string]any{"errorCode": "rate_limited", "retryAfter": "1"}
	for dir, raw := range map[string][]byte{"authorizer": eventFiles(t, "authorizer")["allow-bearer"], "authorizer-http": eventFiles(t, "authorizer-http")["allow-bearer"]} {
		out, err := h.Invoke(context.Background(), raw)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		switch resp := out.(type) {
		case events.APIGatewayCustomAuthorizerResponse:
			if len(resp.PolicyDocument.Statement) != 1 || resp.PolicyDocument.Statement[0].Effect != "Deny" || !reflect.DeepEqual(resp.Context, want) {
				t.Errorf("%s: %+v, want a Deny with %v", dir, resp, want)
			}
		case events.APIGatewayV2CustomAuthorizerSimpleResponse:
			if resp.IsAuthorized || !reflect.DeepEqual(resp.Context, want) {
				t.Errorf("%s: %+v, want refused with %v", dir, resp, want)
			}
		default:
			t.Errorf("%s: %T", dir, out)
		}
	}
}

func TestGatewayFailsClosed(t *testing.T) {
	h, f := newHandler(t)
	f.store.FailWith(keys.ErrUnavailable)
	root, err := modroot.Find()
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"authorizer", "authorizer-http"} {
		raw, err := os.ReadFile(filepath.Join(root, "events", dir, "allow-bearer.json"))
		if err != nil {
			t.Fatal(err)
		}
		out, err := h.Invoke(context.Background(), raw)
		if err == nil || err.Error() == "Unauthorized" {
			t.Errorf("%s: got %+v, %v; want a store error, which API Gateway answers 5xx", dir, out, err)
		}
		switch resp := out.(type) {
		case events.APIGatewayCustomAuthorizerResponse:
			if len(resp.PolicyDocument.Statement) != 0 {
				t.Errorf("%s: a policy on a store failure: %+v", dir, resp)
			}
		case events.APIGatewayV2CustomAuthorizerSimpleResponse:
			if resp.IsAuthorized {
				t.Errorf("%s: authorized on a store failure", dir)
			}
		}
	}
}

func TestInvokeRefusesAnUnreadableEvent(t *testing.T) {
	h, f := newHandler(t)
	for _, raw := range []string{`not json`, `{"version": "2.0", "headers": 7}`, `{"headers": []}`} {
		if _, err := h.Invoke(context.Background(), json.RawMessage(raw)); err == nil {
			t.Errorf("%s: no error", raw)
		}
	}
	if f.store.Calls() != 0 {
		t.Errorf("%d store requests", f.store.Calls())
	}
}

func decodeLines(t *testing.T, logs *bytes.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(logs.Bytes()))
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}

// assertNoSecrets checks that no raw key, nor its secret, nor its hash in
// hex or base64 is in the log.
func assertNoSecrets(t *testing.T, log string, raws ...string) {
	t.Helper()
	for _, raw := range raws {
		hash := token.Hash(raw)
		secret := raw[strings.LastIndexByte(raw, '_')+1:]
		for _, s := range []string{raw, secret, hex.EncodeToString(hash[:]), base64.StdEncoding.EncodeToString(hash[:])} {
			if strings.Contains(log, s) {
				t.Errorf("the log holds a key or its hash: %q", s)
			}
		}
	}
}

func benchEvents(raw string) (events.APIGatewayCustomAuthorizerRequestTypeRequest, events.APIGatewayV2CustomAuthorizerV2Request) {
	rest := events.APIGatewayCustomAuthorizerRequestTypeRequest{
		Type:       "REQUEST",
		MethodArn:  "arn:aws:execute-api:us-east-1:123456789012:k3yg4t3abc/prod/GET/v1/contracts/c_42",
		Resource:   "/v1/contracts/{id}",
		Path:       "/v1/contracts/c_42",
		HTTPMethod: "GET",
		Headers: map[string]string{
			"Accept": "*/*", "Authorization": "Bearer " + raw, "Host": "k3yg4t3abc.execute-api.us-east-1.amazonaws.com",
			"User-Agent": "curl/8.5.0", "X-Forwarded-For": "198.51.100.7", "X-Forwarded-Port": "443", "X-Forwarded-Proto": "https",
		},
		RequestContext: events.APIGatewayCustomAuthorizerRequestTypeRequestContext{
			Identity: events.APIGatewayCustomAuthorizerRequestTypeRequestIdentity{SourceIP: "198.51.100.7"},
		},
	}
	rest.MultiValueHeaders = map[string][]string{}
	for k, v := range rest.Headers {
		rest.MultiValueHeaders[k] = []string{v}
	}
	http := events.APIGatewayV2CustomAuthorizerV2Request{
		Version:  "2.0",
		Type:     "REQUEST",
		RouteKey: "GET /v1/contracts/{id}",
		Headers:  map[string]string{},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: "/v1/contracts/c_42", SourceIP: "198.51.100.7"},
		},
	}
	for k, v := range rest.Headers {
		http.Headers[strings.ToLower(k)] = v
	}
	return rest, http
}
