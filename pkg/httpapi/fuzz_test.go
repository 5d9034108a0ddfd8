package httpapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/authorizer/authorizertest"
	"github.com/keygate/keygate/pkg/httpapi"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/keys/keystest"
)

// The request decoders' property, for every body type: any body is
// answered with a 2xx or a 4xx, never a 5xx, and a 4xx writes nothing.
// `go test -fuzz FuzzCreateKey ./pkg/httpapi` (likewise the others) runs
// them for as long as asked; plain `go test` runs their seeds.

// fuzzEnv is a fresh keygate on in-memory stores: one key to act on, and
// the event files' keys for verify.
type fuzzEnv struct {
	adapter *httpadapter.HandlerAdapter
	keys    *keystest.Store
	uses    *authorizertest.Store
	target  string // the id of a key to change, rotate or revoke
}

var fuzzTime = authorizertest.EventTime

func newFuzzEnv(t *testing.T) *fuzzEnv {
	cfg := keys.DefaultConfig()
	store := keystest.NewStore()
	clock := keys.WithClock(func() time.Time { return fuzzTime })
	svc := keys.NewService(cfg, store, clock)
	created, err := svc.Create(context.Background(), keys.OperatorCaller("acme"), keys.CreateInput{
		Name: "target", Tier: "public", Scopes: []string{"contracts"}, Metadata: json.RawMessage(`{"a":1}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	uses := authorizertest.NewStore()
	authorizertest.SeedEventKeys(uses, cfg.RateWindow)
	log := slog.New(slog.DiscardHandler)
	auth := authorizer.New(cfg, uses, log, authorizer.WithClock(func() time.Time { return fuzzTime }))
	api := httpapi.New(svc, auth, log)
	return &fuzzEnv{
		adapter: httpadapter.New(api.Handler(httpapi.CreateKey, httpapi.UpdateKey, httpapi.RotateKey, httpapi.Verify)),
		keys:    store, uses: uses, target: created.ID,
	}
}

// send answers one request from an admin key of project acme.
func (e *fuzzEnv) send(t *testing.T, method, path, body string) int {
	ev := events.APIGatewayProxyRequest{
		HTTPMethod: method, Path: path, Body: body,
		Headers: map[string]string{"Content-Type": "application/json"},
		RequestContext: events.APIGatewayProxyRequestContext{
			RequestID: "fuzz",
			Identity:  events.APIGatewayRequestIdentity{SourceIP: "198.51.100.7"},
			Authorizer: map[string]any{
				"keyId": "key_000000000000000000000001", "project": "acme", "scopes": "admin,contracts,verify,webhooks",
			},
		},
	}
	out, err := e.adapter.ProxyWithContext(context.Background(), ev)
	if err != nil {
		t.Fatalf("%s %s %q: %v", method, path, body, err)
	}
	var envelope struct {
		Success bool `json:"success"`
	}
	if err := json.Unmarshal([]byte(out.Body), &envelope); err != nil {
		t.Fatalf("%s %s %q: answer %q is not JSON", method, path, body, out.Body)
	}
	return out.StatusCode
}

// fuzzBody runs the property for one route; path builds it from the
// target key's id.
func fuzzBody(f *testing.F, method string, path func(id string) string, seeds ...string) {
	for _, s := range append(seeds, hostileSeeds...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		e := newFuzzEnv(t)
		writes, uses := e.keys.Writes(), e.uses.Calls()
		status := e.send(t, method, path(e.target), body)
		if status >= 500 {
			t.Fatalf("%s %q: %d", method, body, status)
		}
		if status >= 400 && (e.keys.Writes() != writes || e.uses.Calls() != uses) {
			t.Fatalf("%s %q: %d, and it wrote", method, body, status)
		}
	})
}

// hostileSeeds are bodies every decoder must refuse or take, never choke on.
var hostileSeeds = []string{
	``, `null`, `[]`, `"x"`, `{}`, `{"a":1}{"b":2}`, `{"name":`, strings.Repeat("[", 5000),
	`{"name":"a","name":"b","tier":"public"}`, `{"Name":"a","tier":"public"}`, `{"tier":"public","TIER":"internal"}`,
	`{"metadata":{"n":-1e309}}`, `{"metadata":{"r":"u","R":"a"}}`, `{"gracePeriodSeconds":1e999}`,
	`{"name":"a\u202eb","tier":"public"}`, "{\"name\":\"\xff\xfe\",\"tier\":\"public\"}", `{"expiresAt":"99999-01-01T00:00:00Z"}`,
	`{"ipAllowlist":["::ffff:1.2.3.4/200","` + strings.Repeat("9", 100) + `"]}`, `{"scopes":[null]}`, `{"key":null,"scopes":{}}`,
}

func FuzzCreateKey(f *testing.F) {
	fuzzBody(f, "POST", func(string) string { return "/v1/api-keys" },
		`{"name":"k","tier":"public","scopes":["contracts"],"ipAllowlist":["203.0.113.0/24"],"metadata":{"env":"prod"},"owner":"u1","expiresAt":"2031-01-01T00:00:00Z"}`)
}

func FuzzUpdateKey(f *testing.F) {
	fuzzBody(f, "PATCH", func(id string) string { return "/v1/api-keys/" + id },
		`{"name":"renamed","scopes":[],"ipAllowlist":["::1"],"metadata":null,"expiresAt":null}`, `{"status":"revoked"}`, `{"status":"active"}`)
}

func FuzzRotateKey(f *testing.F) {
	fuzzBody(f, "POST", func(id string) string { return "/v1/api-keys/" + id + "/rotate" },
		`{"gracePeriodSeconds":0}`, `{"gracePeriodSeconds":604801}`, `{"gracePeriodSeconds":-1}`)
}

func FuzzVerify(f *testing.F) {
	fuzzBody(f, "POST", func(string) string { return "/v1/verify" },
		`{"key":"`+authorizertest.EventKey("reader")+`","scopes":["contracts"],"ip":"203.0.113.1"}`,
		`{"key":"`+authorizertest.EventKey("allowlisted")+`","ip":"not an ip"}`, `{"key":"kg_pk_short"}`)
}
