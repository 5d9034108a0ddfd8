package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/internal/modroot"
	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/authorizer/authorizertest"
	"github.com/keygate/keygate/pkg/httpapi"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

// fakeAPI serves verify and whoami with the authorizer over the fake store
// holding the event files' keys, at the event files' time.
func fakeAPI(t *testing.T) (*httpadapter.HandlerAdapter, *authorizertest.Store) {
	t.Helper()
	cfg := keys.DefaultConfig()
	store := authorizertest.NewStore()
	authorizertest.SeedEventKeys(store, cfg.RateWindow)
	log := slog.New(slog.DiscardHandler)
	auth := authorizer.New(cfg, store, log, authorizer.WithClock(func() time.Time { return authorizertest.EventTime }))
	return httpadapter.New(httpapi.New(httpapi.Services{Keys: keys.NewService(cfg, nil), Authorizer: auth}, log).Handler(httpapi.Verify, httpapi.Whoami)), store
}

// proxyEvent reads an API Gateway proxy event from events/.
func proxyEvent(t *testing.T, name string) events.APIGatewayProxyRequest {
	t.Helper()
	root, err := modroot.Find()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func serve(t *testing.T, adapter *httpadapter.HandlerAdapter, ev events.APIGatewayProxyRequest) response {
	t.Helper()
	out, err := adapter.ProxyWithContext(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	var r response
	if err := json.Unmarshal([]byte(out.Body), &r); err != nil {
		t.Fatalf("body %q: %v", out.Body, err)
	}
	r.Status = out.StatusCode
	return r
}

func eventKeyID(label string) string { return token.ID(token.Hash(authorizertest.EventKey(label))) }

func TestVerifyEventFile(t *testing.T) {
	adapter, store := fakeAPI(t)
	r := serve(t, adapter, proxyEvent(t, "verify.json"))
	want := `{"valid":true,"code":"VALID","keyId":"` + eventKeyID("reader") + `","project":"acme","owner":"alice","tier":"public",` +
		`"scopes":["contracts"],"metadata":{"plan":"pro"},"expiresAt":null,"rateLimit":{"name":"window","limit":100,"remaining":99,"reset":1894702500},` +
		`"rateLimits":[{"name":"window","limit":100,"remaining":99,"reset":1894702500}],"credits":null}`
	if r.Status != 200 || !jsonEqual(t, r.Data, want) {
		t.Errorf("got %d %s\nwant 200 %s", r.Status, r.Data, want)
	}
	if n := store.TotalRequests(eventKeyID("reader")); n != 1 {
		t.Errorf("verify counted %d uses, want 1", n)
	}
}

func TestWhoamiEventFile(t *testing.T) {
	adapter, _ := fakeAPI(t)
	r := serve(t, adapter, proxyEvent(t, "whoami.json"))
	want := `{"keyId":"` + eventKeyID("reader") + `","project":"acme","owner":"alice","tier":"public","scopes":["contracts"],` +
		`"expiresAt":null,"ipAllowlist":[],"sourceIp":"198.51.100.7","rateLimit":{"limit":100,"remaining":41,"reset":1894702500}}`
	if r.Status != 200 || !jsonEqual(t, r.Data, want) {
		t.Errorf("got %d %s\nwant 200 %s", r.Status, r.Data, want)
	}
}

func TestVerifyCodes(t *testing.T) {
	reader := authorizertest.EventKey("reader")
	notFound := `{"valid":false,"code":"NOT_FOUND","scopes":[],"metadata":null,"expiresAt":null,"rateLimit":null,"rateLimits":[],"credits":null}`
	tests := []struct {
		name  string
		body  string
		code  string
		calls int
		data  string // the whole answer, when given
	}{
		{"valid", `{"key":"` + reader + `","scopes":["contracts"]}`, "VALID", 1, ""},
		{"unknown", `{"key":"` + authorizertest.EventKey("unknown") + `"}`, "NOT_FOUND", 1, notFound},
		{"another project's key", `{"key":"` + authorizertest.EventKey("other-project") + `"}`, "NOT_FOUND", 1, notFound},
		{"malformed", `{"key":"` + reader[:len(reader)-1] + string(reader[len(reader)-1]^1) + `"}`, "NOT_FOUND", 0, notFound},
		{"revoked", `{"key":"` + authorizertest.EventKey("revoked") + `"}`, "REVOKED", 1, ""},
		{"expired", `{"key":"` + authorizertest.EventKey("expired") + `"}`, "EXPIRED", 1, ""},
		{"rate limited", `{"key":"` + authorizertest.EventKey("limited") + `"}`, "RATE_LIMITED", 1,
			`{"valid":false,"code":"RATE_LIMITED","keyId":"` + eventKeyID("limited") + `","project":"acme","tier":"public","scopes":[],` +
				`"metadata":null,"expiresAt":null,"rateLimit":{"name":"window","limit":100,"remaining":0,"reset":1894702500},` +
				`"rateLimits":[{"name":"window","limit":100,"remaining":0,"reset":1894702500}],"credits":null,"retryAfter":450}`},
		// Its credits refill on 2030-02-01, 16 days, 13:52:30 after EventTime.
		{"usage exceeded", `{"key":"` + authorizertest.EventKey("spent") + `"}`, "USAGE_EXCEEDED", 1,
			`{"valid":false,"code":"USAGE_EXCEEDED","keyId":"` + eventKeyID("spent") + `","project":"acme","tier":"public","scopes":[],` +
				`"metadata":null,"expiresAt":null,"rateLimit":{"name":"window","limit":100,"remaining":100,"reset":1894702500},` +
				`"rateLimits":[{"name":"window","limit":100,"remaining":100,"reset":1894702500}],"credits":{"remaining":0},"retryAfter":1432350}`},
		{"cost 0 checks a spent key without spending", `{"key":"` + authorizertest.EventKey("spent") + `","cost":0}`, "VALID", 1, ""},
		{"insufficient scope", `{"key":"` + reader + `","scopes":["contracts","payments"]}`, "INSUFFICIENT_SCOPE", 1, ""},
		// An IP refusal is counted, then returned: two store requests.
		{"IP not allowed", `{"key":"` + authorizertest.EventKey("allowlisted") + `","ip":"198.51.100.7"}`, "IP_NOT_ALLOWED", 2, ""},
		{"no IP for an allowlisted key", `{"key":"` + authorizertest.EventKey("allowlisted") + `"}`, "IP_NOT_ALLOWED", 2, ""},
		{"IP allowed", `{"key":"` + authorizertest.EventKey("allowlisted") + `","ip":"203.0.113.1"}`, "VALID", 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			adapter, store := fakeAPI(t)
			ev := proxyEvent(t, "verify.json")
			ev.Body = tt.body
			r := serve(t, adapter, ev)
			var got struct {
				Valid bool   `json:"valid"`
				Code  string `json:"code"`
			}
			if err := json.Unmarshal(r.Data, &got); err != nil || r.Status != 200 {
				t.Fatalf("%d %s: %v", r.Status, r.Data, err)
			}
			if got.Code != tt.code || got.Valid != (tt.code == "VALID") {
				t.Errorf("got %s", r.Data)
			}
			if tt.data != "" && !jsonEqual(t, r.Data, tt.data) {
				t.Errorf("got  %s\nwant %s", r.Data, tt.data)
			}
			if store.Calls() != tt.calls {
				t.Errorf("%d store requests, want %d", store.Calls(), tt.calls)
			}
		})
	}
}

func TestVerifyRefuses(t *testing.T) {
	reader := authorizertest.EventKey("reader")
	tests := []struct {
		name       string
		body       string
		authorizer map[string]any
		status     int
		code       string
	}{
		{"no body", ``, nil, 400, "bad_request"},
		{"not JSON", `{"key":`, nil, 400, "bad_request"},
		{"unknown field", `{"key":"` + reader + `","project":"globex"}`, nil, 400, "bad_request"},
		{"no key", `{"scopes":["contracts"]}`, nil, 400, "bad_request"},
		{"unknown scope", `{"key":"` + reader + `","scopes":["root"]}`, nil, 400, "bad_request"},
		{"bad ip", `{"key":"` + reader + `","ip":"10.0.0.300"}`, nil, 400, "bad_request"},
		{"negative cost", `{"key":"` + reader + `","cost":-1}`, nil, 400, "bad_request"},
		{"fractional cost", `{"key":"` + reader + `","cost":1.5}`, nil, 400, "bad_request"},
		{"cost beyond int64", `{"key":"` + reader + `","cost":1e300}`, nil, 400, "bad_request"},
		{"cost beyond the maximum", `{"key":"` + reader + `","cost":1073741825}`, nil, 400, "bad_request"},
		{"cost as a string", `{"key":"` + reader + `","cost":"3"}`, nil, 400, "bad_request"},
		{"cost twice", `{"key":"` + reader + `","cost":0,"cost":5}`, nil, 400, "bad_request"},
		{"caller without scope verify", `{"key":"` + reader + `"}`, map[string]any{"keyId": "key_1", "project": "acme", "scopes": "admin"}, 403, "forbidden"},
		{"no authorizer context", `{"key":"` + reader + `"}`, map[string]any{}, 401, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			adapter, store := fakeAPI(t)
			ev := proxyEvent(t, "verify.json")
			ev.Body = tt.body
			if tt.authorizer != nil {
				ev.RequestContext.Authorizer = tt.authorizer
			}
			r := serve(t, adapter, ev)
			if r.Status != tt.status || errorCode(r) != tt.code {
				t.Errorf("got %d %+v, want %d %s", r.Status, r.Error, tt.status, tt.code)
			}
			if store.Calls() != 0 {
				t.Errorf("%d store requests", store.Calls())
			}
		})
	}
}

// TestVerifyAgainstDynamoDB verifies keys stored in DynamoDB Local through
// the whole API: a verification counts one use of the key; another
// project's key is NOT_FOUND and not counted.
func TestVerifyAgainstDynamoDB(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	k := e.create(&admin, `{"name":"n","tier":"public","scopes":["contracts"],"metadata":{"plan":"pro"}}`)
	verify := func(c *caller, body string) map[string]any {
		t.Helper()
		r := e.do(c, "POST", "/v1/verify", body)
		if r.Status != 200 {
			t.Fatalf("verify: %d %+v", r.Status, r.Error)
		}
		return decode[map[string]any](t, r.Data)
	}
	uses := func() any {
		t.Helper()
		return decode[keyView](t, e.do(&admin, "GET", "/v1/api-keys/"+k.ID, "").Data).Usage["totalRequests"]
	}
	got := verify(&admin, `{"key":"`+k.Key+`","scopes":["contracts"]}`)
	if got["code"] != "VALID" || got["keyId"] != k.ID || !reflect.DeepEqual(got["metadata"], map[string]any{"plan": "pro"}) {
		t.Errorf("verify: %v", got)
	}
	if n := uses(); n != float64(1) {
		t.Errorf("totalRequests %v after one verification, want 1", n)
	}
	globex := caller{project: "globex", keyID: "key_000000000000000000000002", scopes: "verify"}
	if got := verify(&globex, `{"key":"`+k.Key+`"}`); got["code"] != "NOT_FOUND" || got["keyId"] != nil {
		t.Errorf("another project's verification: %v", got)
	}
	if n := uses(); n != float64(1) {
		t.Errorf("totalRequests %v after another project's verification, want still 1", n)
	}
	if r := e.do(&admin, "DELETE", "/v1/api-keys/"+k.ID, ""); r.Status != 200 {
		t.Fatalf("revoke: %d", r.Status)
	}
	if got := verify(&admin, `{"key":"`+k.Key+`"}`); got["code"] != "REVOKED" {
		t.Errorf("revoked key: %v", got)
	}
	if got := verify(&admin, `{"key":"`+strings.Replace(k.Key, "kg_", "xx_", 1)+`"}`); got["code"] != "NOT_FOUND" {
		t.Errorf("malformed key: %v", got)
	}
}

func jsonEqual(t *testing.T, got json.RawMessage, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

// whoami and every answer show the caller's budget as the authorizer set
// it: the tightest limit, the credits left, and the RateLimit header fields.
func TestAnswersShowTheBudget(t *testing.T) {
	adapter, _ := fakeAPI(t)
	ev := proxyEvent(t, "whoami.json")
	ev.RequestContext.Authorizer["creditsRemaining"] = "7"
	ev.RequestContext.Authorizer["rateLimitReset"] = fmt.Sprint(time.Now().Add(time.Minute).Unix())
	out, err := adapter.ProxyWithContext(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	var r response
	if err := json.Unmarshal([]byte(out.Body), &r); err != nil {
		t.Fatal(err)
	}
	var who struct {
		Credits struct{ Remaining int64 } `json:"credits"`
	}
	if err := json.Unmarshal(r.Data, &who); err != nil || who.Credits.Remaining != 7 {
		t.Errorf("whoami %s: want credits.remaining 7", r.Data)
	}
	h := http.Header(out.MultiValueHeaders)
	if h.Get("RateLimit-Limit") != "100" || h.Get("RateLimit-Remaining") != "41" {
		t.Errorf("headers %v: want the context's budget", out.MultiValueHeaders)
	}
	if reset, err := strconv.Atoi(h.Get("RateLimit-Reset")); err != nil || reset < 55 || reset > 60 {
		t.Errorf("RateLimit-Reset %q, want the seconds until the window ends", h.Get("RateLimit-Reset"))
	}
}
