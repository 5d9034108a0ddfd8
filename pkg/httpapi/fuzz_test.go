package httpapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
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
// answered with a 2xx or a 4xx, never a 5xx, and a 4xx writes nothing; a
// created or changed key holds what the body's exact field names say.
// `go test -fuzz FuzzCreateKey ./pkg/httpapi` (likewise the others) runs
// them for as long as asked; plain `go test` runs their seeds.

// fuzzEnv is a fresh keygate on in-memory stores: the calling admin key,
// one key to act on, and the event files' keys for verify.
type fuzzEnv struct {
	adapter *httpadapter.HandlerAdapter
	keys    *keystest.Store
	uses    *authorizertest.Store
	caller  *keys.Created // the admin key every request comes from
	target  string        // the id of a key to change, rotate or revoke
}

var fuzzTime = authorizertest.EventTime

func newFuzzEnv(t testing.TB) *fuzzEnv {
	cfg := keys.DefaultConfig()
	store := keystest.NewStore()
	clock := keys.WithClock(func() time.Time { return fuzzTime })
	svc := keys.NewService(cfg, store, clock)
	caller, err := svc.Create(context.Background(), keys.OperatorCaller("acme"), keys.CreateInput{
		Name: "fuzzer", Tier: "internal", Scopes: []string{"admin", "contracts", "verify", "webhooks"},
	})
	if err != nil {
		t.Fatal(err)
	}
	created, err := svc.Create(context.Background(), keys.OperatorCaller("acme"), keys.CreateInput{
		Name: "target", Tier: "public", Scopes: []string{"contracts"}, Metadata: json.RawMessage(`{"a":1}`), Credits: json.RawMessage(`{"remaining":100}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	uses := authorizertest.NewStore()
	authorizertest.SeedEventKeys(uses, cfg.RateWindow)
	log := slog.New(slog.DiscardHandler)
	auth := authorizer.New(cfg, uses, log, authorizer.WithClock(func() time.Time { return fuzzTime }))
	api := httpapi.New(httpapi.Services{Keys: svc, Authorizer: auth}, log)
	return &fuzzEnv{
		adapter: httpadapter.New(api.Handler(httpapi.CreateKey, httpapi.UpdateKey, httpapi.RotateKey, httpapi.Verify, httpapi.AdjustCredits, httpapi.PutOwnerLimits)),
		keys:    store, uses: uses, caller: caller, target: created.ID,
	}
}

// send answers one request from an admin key of project acme, returning
// its status and body.
func (e *fuzzEnv) send(t testing.TB, method, path, body string) (int, string) {
	ev := events.APIGatewayProxyRequest{
		HTTPMethod: method, Path: path, Body: body,
		Headers: map[string]string{"Content-Type": "application/json"},
		RequestContext: events.APIGatewayProxyRequestContext{
			RequestID: "fuzz",
			Identity:  events.APIGatewayRequestIdentity{SourceIP: "198.51.100.7"},
			Authorizer: map[string]any{
				"keyId": e.caller.ID, "project": "acme", "scopes": strings.Join(e.caller.Scopes, ","), "tier": e.caller.Tier,
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
	return out.StatusCode, out.Body
}

// fuzzBody runs the property for one route; path builds it from the
// target key's id, and check, if not nil, looks at what was answered.
func fuzzBody(f *testing.F, method string, path func(id string) string, check func(t *testing.T, body string, status int, answer string), seeds ...string) {
	// The first seed is a valid request: were it refused (say, the caller
	// unknown), the property would hold of nothing.
	e := newFuzzEnv(f)
	if status, answer := e.send(f, method, path(e.target), seeds[0]); status >= 300 {
		f.Fatalf("%s %s: %d %s, want a 2xx", method, seeds[0], status, answer)
	}
	for _, s := range append(seeds, hostileSeeds...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		e := newFuzzEnv(t)
		writes, uses := e.keys.Writes(), e.uses.Calls()
		status, answer := e.send(t, method, path(e.target), body)
		if status >= 500 {
			t.Fatalf("%s %q: %d", method, body, status)
		}
		if status >= 400 && (e.keys.Writes() != writes || e.uses.Calls() != uses) {
			t.Fatalf("%s %q: %d, and it wrote", method, body, status)
		}
		if check != nil {
			check(t, body, status, answer)
		}
	})
}

// checkFields requires that the fields of a created (201) or changed (200)
// key are those the body gives under their exact names, as the service trims
// and sorts them, or else what they were: a case-variant or Unicode-folded
// field name ("TIER", "\u017fcopes") never sets a field.
func checkFields(ok int, unchanged keyFields) func(t *testing.T, body string, status int, answer string) {
	return func(t *testing.T, body string, status int, answer string) {
		if status != ok {
			return
		}
		sent := exactObject(t, body)
		want := unchanged
		if name, set := exactText(t, sent["name"]); set {
			want.Name = strings.TrimSpace(name)
		}
		if tier, set := exactText(t, sent["tier"]); set {
			want.Tier = tier
		}
		if scopes, set := exactList(t, sent["scopes"]); set {
			want.Scopes = slices.Compact(slices.Sorted(slices.Values(scopes)))
		}
		if status, set := exactText(t, sent["status"]); set {
			want.Status = status
		}
		key := exactObject(t, string(exactObject(t, answer)["data"]))
		var got keyFields
		got.Name, _ = exactText(t, key["name"])
		got.Tier, _ = exactText(t, key["tier"])
		got.Status, _ = exactText(t, key["status"])
		got.Scopes, _ = exactList(t, key["scopes"])
		if !got.equal(want) {
			t.Fatalf("%q: %d with %+v, want %+v", body, status, got, want)
		}
	}
}

// keyFields are the fields checkFields compares.
type keyFields struct {
	Name, Tier, Status string
	Scopes             []string
}

func (k keyFields) equal(o keyFields) bool {
	return k.Name == o.Name && k.Tier == o.Tier && k.Status == o.Status && slices.Equal(k.Scopes, o.Scopes)
}

// exactObject decodes a JSON object into a map, whose keys, unlike a
// struct's fields, encoding/json matches exactly.
func exactObject(t *testing.T, doc string) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("%q is not a JSON object: %v", doc, err)
	}
	return m
}

// exactText decodes a string field; set is false if it is absent or null.
func exactText(t *testing.T, raw json.RawMessage) (s string, set bool) {
	var p *string
	if raw != nil {
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatalf("%s is not a string: %v", raw, err)
		}
	}
	if p == nil {
		return "", false
	}
	return *p, true
}

// exactList decodes a list of strings; set is false if it is absent or null.
func exactList(t *testing.T, raw json.RawMessage) (l []string, set bool) {
	var p *[]string
	if raw != nil {
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatalf("%s is not a list of strings: %v", raw, err)
		}
	}
	if p == nil {
		return nil, false
	}
	return *p, true
}

// hostileSeeds are bodies every decoder must refuse or take, never choke on.
var hostileSeeds = []string{
	``, `null`, `[]`, `"x"`, `{}`, `{"a":1}{"b":2}`, `{"name":`, strings.Repeat("[", 5000),
	`{"name":"a","name":"b","tier":"public"}`, `{"Name":"a","tier":"public"}`, `{"tier":"public","TIER":"internal"}`,
	`{"metadata":{"n":-1e309}}`, `{"metadata":{"r":"u","R":"a"}}`, `{"gracePeriodSeconds":1e999}`,
	`{"name":"a\u202eb","tier":"public"}`, "{\"name\":\"\xff\xfe\",\"tier\":\"public\"}", `{"expiresAt":"99999-01-01T00:00:00Z"}`,
	`{"ipAllowlist":["::ffff:1.2.3.4/200","` + strings.Repeat("9", 100) + `"]}`, `{"scopes":[null]}`, `{"key":null,"scopes":{}}`,
	// Field names and metadata keys that only Unicode case folding makes
	// equal: ſ (U+017F) is s, K (U+212A) is k, µ (U+00B5) is μ, ς (U+03C2) is σ.
	`{"name":"a","tier":"public","\u017fcopes":["admin"]}`, "{\"name\":\"a\",\"tier\":\"public\",\"scopes\":[],\"\u017fcopes\":[\"admin\"]}",
	`{"name":"a","tier":"public","ipAllowli\u017ft":["0.0.0.0/0"]}`, `{"\u017ftatus":"revoked"}`, `{"gracePeriod\u017feconds":0}`, `{"\u212aey":"kg_pk_x"}`,
	`{"name":"a","tier":"public","metadata":{"isAdmin":false,"i\u017fAdmin":true}}`, "{\"metadata\":{\"kind\":\"user\",\"\u212aind\":\"admin\"}}",
	`{"name":"a","tier":"public","metadata":{"\u03bc":1,"\u00b5":2}}`, "{\"metadata\":{\"\u03a3\":1,\"\u03c2\":2}}",
	// Limits and credits: numbers at and past every edge, nesting, types.
	`{"rateLimits":[{"name":"a","limit":-0,"windowSeconds":1e-400}]}`, `{"rateLimits":[{"name":"a","limit":9007199254740993,"windowSeconds":1}]}`,
	`{"rateLimits":[[{"name":"a"}]],"credits":[]}`, `{"credits":{"remaining":1,"refill":{"interval":"monthly","amount":1,"refillDay":2147483648}}}`,
	`{"credits":{"remaining":1,"refill":{"interval":"monthly","amount":1,"refillDay":-9223372036854775809}}}`, `{"rateLimits":{"0":{}},"credits":{"Remaining":1}}`,
	`{"op":"set","value":1.0000000000000002}`, `{"op":"decrement","value":1e3,"Value":1}`, `{"op":null,"value":null}`,
}

func FuzzCreateKey(f *testing.F) {
	fuzzBody(f, "POST", func(string) string { return "/v1/api-keys" }, checkFields(201, keyFields{Status: "active"}),
		`{"name":"k","tier":"public","scopes":["contracts"],"ipAllowlist":["203.0.113.0/24"],"metadata":{"env":"prod"},"owner":"u1","expiresAt":"2031-01-01T00:00:00Z"}`,
		`{"name":"k","tier":"public","rateLimits":[{"name":"s","limit":1,"windowSeconds":1}],"credits":{"remaining":1,"refill":{"interval":"daily","amount":1}}}`)
}

func FuzzUpdateKey(f *testing.F) {
	fuzzBody(f, "PATCH", func(id string) string { return "/v1/api-keys/" + id }, checkFields(200, keyFields{"target", "public", "active", []string{"contracts"}}),
		`{"name":"renamed","scopes":[],"ipAllowlist":["::1"],"metadata":null,"expiresAt":null}`, `{"status":"revoked"}`, `{"status":"active"}`,
		`{"Name":"renamed"}`, `{"\u017fcopes":["admin"]}`, `{"name":" padded "}`, `{"name":null,"scopes":null}`,
		`{"rateLimits":null,"credits":{"refill":{"interval":"daily","amount":3}}}`, `{"credits":null,"rateLimits":[]}`)
}

func FuzzAdjustCredits(f *testing.F) {
	fuzzBody(f, "POST", func(id string) string { return "/v1/api-keys/" + id + "/credits" }, nil,
		`{"op":"increment","value":5}`, `{"op":"decrement","value":101}`, `{"op":"set","value":-0}`, `{"op":"set","value":1125899906842625}`)
}

func FuzzPutOwnerLimits(f *testing.F) {
	fuzzBody(f, "PUT", func(string) string { return "/v1/owners/alice/limits" }, nil,
		`{"rateLimits":[{"name":"m","limit":60,"windowSeconds":60}],"credits":{"remaining":5,"refill":{"interval":"monthly","amount":5,"refillDay":31}}}`,
		`{"rateLimits":[],"credits":null}`, `{"credits":{"refill":null}}`, `{"rateLimits":null}`)
}

func FuzzRotateKey(f *testing.F) {
	fuzzBody(f, "POST", func(id string) string { return "/v1/api-keys/" + id + "/rotate" }, nil,
		`{"gracePeriodSeconds":0}`, `{"gracePeriodSeconds":604801}`, `{"gracePeriodSeconds":-1}`)
}

func FuzzVerify(f *testing.F) {
	fuzzBody(f, "POST", func(string) string { return "/v1/verify" }, nil,
		`{"key":"`+authorizertest.EventKey("reader")+`","scopes":["contracts"],"ip":"203.0.113.1"}`,
		`{"key":"`+authorizertest.EventKey("allowlisted")+`","ip":"not an ip"}`, `{"key":"kg_pk_short"}`)
}
