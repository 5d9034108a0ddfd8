// Package events_test runs every event file of this folder through its
// function's handler, against DynamoDB Local, as `sam local invoke -e` would
// run it through the function: events/<name>.json and
// events/base-path/<name>.json go to functions/<name>. README.md says how
// the keys the events refer to are made.
package events_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keygate/keygate/internal/contract"
	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/internal/samtemplate"
	"github.com/keygate/keygate/pkg/app"
	"github.com/keygate/keygate/pkg/authorizer/authorizertest"
	"github.com/keygate/keygate/pkg/config"
	"github.com/keygate/keygate/pkg/httpapi"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/leaks"
	"github.com/keygate/keygate/pkg/leaks/leakstest"
)

func TestMain(m *testing.M) { os.Exit(ddbtest.Main(m)) }

// consoleFunction is the web console's function, which is no httpapi operation.
const consoleFunction = "console"

// project is the events' callers' project.
const project = "acme"

// basePath is the base path mapping of the custom domain the events of
// base-path/ come through.
const basePath = "/keygate"

// Ids of the seeded keys the events name.
const (
	adminID  = "key_77c01ad466276207654770c5"
	readerID = "key_e55e39c81941415a3ec30ae2"
)

// seeds are the keys every event runs against: the test keys of
// pkg/authorizer/authorizertest that the events carry, made through
// keys.Service. The admin key is created an hour before the reader, so
// lists have one order.
var seeds = []struct {
	label string
	at    time.Duration // before authorizertest.EventTime
	in    keys.CreateInput
}{
	{"admin", 2 * time.Hour, keys.CreateInput{Name: "admin", Tier: "internal", Owner: "ops", Scopes: []string{"admin", "verify"}}},
	{"reader", time.Hour, keys.CreateInput{Name: "reader", Tier: "public", Owner: "alice", Scopes: []string{"contracts"}, Metadata: json.RawMessage(`{"plan":"pro"}`),
		Credits: json.RawMessage(`{"remaining":1000,"refill":{"interval":"monthly","amount":1000,"refillDay":1}}`)}},
}

// answer is a function's response, its envelope decoded.
type answer struct {
	status    int
	setCookie string
	Success   bool            `json:"success"`
	Data      json.RawMessage `json:"data"`
	Message   string          `json:"message"`
}

// expected is what each event's function answers on the seeded table.
var expected = map[string]struct {
	status int
	check  func(t *testing.T, a answer)
}{
	"create-key": {201, func(t *testing.T, a answer) {
		k := decode[keyView](t, a.Data)
		want(t, k.Name == "Billing service" && k.Tier == "partner" && k.Project == project && k.Owner == "alice", "key %+v", k)
		want(t, slices.Equal(k.Scopes, []string{"verify"}) && strings.HasPrefix(k.Key, "kg_pt_"), "key %+v", k)
	}},
	"list-keys": {200, func(t *testing.T, a answer) {
		ids := []string{}
		for _, k := range decode[[]keyView](t, a.Data) {
			ids = append(ids, k.ID)
		}
		want(t, slices.Equal(ids, []string{readerID, adminID}), "ids %v, want the reader's and the admin's, newest first", ids)
	}},
	"get-key": {200, func(t *testing.T, a answer) {
		k := decode[keyView](t, a.Data)
		want(t, k.ID == readerID && k.Name == "reader" && string(k.Metadata) == `{"plan":"pro"}` && k.Key == "", "key %+v", k)
	}},
	"update-key": {200, func(t *testing.T, a answer) {
		k := decode[keyView](t, a.Data)
		want(t, k.ID == readerID && k.Name == "reader (renamed)" && string(k.Metadata) == `{"plan":"enterprise"}` && k.Mode == "leased" && !k.ModeFromTier, "key %+v", k)
	}},
	"revoke-key": {200, func(t *testing.T, a answer) {
		want(t, a.Message == "API key revoked", "message %q", a.Message)
	}},
	"rotate-key": {201, func(t *testing.T, a answer) {
		k := decode[keyView](t, a.Data)
		want(t, k.RotatedFrom == readerID && k.ID != readerID && strings.HasPrefix(k.Key, "kg_pk_"), "key %+v", k)
	}},
	"adjust-credits": {200, func(t *testing.T, a answer) {
		k := decode[keyView](t, a.Data)
		want(t, k.ID == readerID && k.Credits != nil && k.Credits.Remaining == 1500, "key %+v, credits %+v", k, k.Credits)
	}},
	"put-owner-limits": {200, func(t *testing.T, a answer) {
		o := decode[ownerLimitsView](t, a.Data)
		want(t, o.Owner == "alice" && len(o.RateLimits) == 1 && o.RateLimits[0].Limit == 600 && o.Credits != nil && o.Credits.Remaining == 50000, "owner limits %s", a.Data)
	}},
	"get-owner-limits": {200, func(t *testing.T, a answer) {
		o := decode[ownerLimitsView](t, a.Data)
		want(t, o.Owner == "alice" && o.RateLimits != nil && len(o.RateLimits) == 0 && o.Credits == nil, "owner limits %s: alice has none", a.Data)
	}},
	"revoke-owner": {200, func(t *testing.T, a answer) {
		want(t, string(a.Data) == `{"revoked":1}`, "data %s", a.Data)
	}},
	"list-audit": {200, func(t *testing.T, a answer) {
		evs := decode[[]struct{ Action, Target, Actor string }](t, a.Data)
		want(t, len(evs) == 1 && evs[0].Action == keys.ActionCreated && evs[0].Target == readerID && evs[0].Actor == keys.ActorOperator, "events %+v", evs)
	}},
	"verify": {200, func(t *testing.T, a answer) {
		v := decode[struct {
			Valid bool
			Code  string
			KeyID string
		}](t, a.Data)
		want(t, v.Valid && v.Code == "VALID" && v.KeyID == readerID, "verification %+v", v)
	}},
	// No use reached the aggregator on the seeded table: every bucket is zero.
	"key-usage": {200, func(t *testing.T, a answer) {
		s := decode[struct {
			KeyID, Granularity string
			Buckets            []struct{ Allowed int64 }
		}](t, a.Data)
		want(t, s.KeyID == readerID && s.Granularity == "day" && len(s.Buckets) == 30 && s.Buckets[29].Allowed == 0, "series %+v", s)
	}},
	"owner-usage": {200, func(t *testing.T, a answer) {
		s := decode[struct {
			Owner   string
			Buckets []struct{ Allowed int64 }
		}](t, a.Data)
		want(t, s.Owner == "alice" && len(s.Buckets) == 48, "series %+v", s)
	}},
	"project-usage": {200, func(t *testing.T, a answer) {
		want(t, string(a.Data) == "[]", "totals %s", a.Data)
	}},
	"create-portal-session": {201, func(t *testing.T, a answer) {
		l := decode[struct{ URL, Owner string }](t, a.Data)
		want(t, strings.HasPrefix(l.URL, "https://k3yg4t3abc.execute-api.us-east-1.amazonaws.com/prod/portal#t=") && l.Owner == "cust_42", "link %+v", l)
	}},
	"webhooks": {201, func(t *testing.T, a answer) {
		w := decode[struct{ ID, URL, Status, Secret string }](t, a.Data)
		want(t, strings.HasPrefix(w.ID, "wh_") && w.URL == "https://203.0.113.10/keygate-events" && w.Status == "enabled" && strings.HasPrefix(w.Secret, "whsec_"), "webhook %+v", w)
	}},
	"console": {201, func(t *testing.T, a answer) {
		s := decode[struct {
			SignedIn bool
			Session  struct{ KeyID, Project string }
		}](t, a.Data)
		want(t, s.SignedIn && s.Session.KeyID == adminID && s.Session.Project == project, "session %+v", s)
		c, err := http.ParseSetCookie(a.setCookie)
		want(t, err == nil && c.HttpOnly && c.Secure && c.SameSite == http.SameSiteStrictMode, "Set-Cookie %q", a.setCookie)
	}},
	// GitHub's report of the reader key and of a look-alike: GitHub's
	// feedback, a bare array (decodeAnswer puts it in Data).
	"report-leak": {200, func(t *testing.T, a answer) {
		f := decode[[]leaks.Feedback](t, a.Data)
		reader := sha256.Sum256([]byte(authorizertest.EventKey("reader")))
		want(t, len(f) == 2 && f[0].TokenHash == hex.EncodeToString(reader[:]) && f[0].TokenType == "keygate_api_key" &&
			f[0].Label == leaks.TruePositive && f[1].Label == leaks.FalsePositive, "feedback %s", a.Data)
	}},
	// The OpenAPI document, on its public route: decodeAnswer finds no
	// envelope, so the document is in Data.
	"openapi": {200, func(t *testing.T, a answer) {
		doc := decode[struct{ OpenAPI string }](t, a.Data)
		want(t, doc.OpenAPI == "3.1.0", "openapi %q", doc.OpenAPI)
	}},
	"whoami": {200, func(t *testing.T, a answer) {
		w := decode[struct{ KeyID, Project string }](t, a.Data)
		want(t, w.KeyID == readerID && w.Project == project, "whoami %+v", w)
	}},
}

func TestEvents(t *testing.T) {
	files, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.LoadModule()
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(file, ".json")
		if _, ok := scheduled[name]; ok {
			continue // TestScheduledEvents
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			exp, ok := expected[name]
			if !ok {
				t.Fatalf("%s has no expected answer in this test", file)
			}
			ev := readEvent(t, file)
			checkShape(t, tpl, name, "", ev)
			out := invoke(t, name, ev)
			checkContract(t, ev, out)
			got := decodeAnswer(t, out)
			if got.status != exp.status || got.Success != (exp.status < 400) {
				t.Fatalf("status %d, success %v, want %d: %s", got.status, got.Success, exp.status, got.Data)
			}
			exp.check(t, got)
		})
	}
	t.Run("every expectation has its event", func(t *testing.T) {
		for name := range expected {
			want(t, slices.Contains(files, name+".json"), "no %s.json", name)
		}
		for name := range scheduled {
			want(t, slices.Contains(files, name+".json"), "no %s.json", name)
		}
	})
}

// scheduled runs each function EventBridge runs on a schedule, as its
// main builds it, with its event on the seeded table, and checks the table.
var scheduled = map[string]func(t *testing.T, a *app.App, ev events.CloudWatchEvent){
	// A key made an hour before the run, expired half an hour before it,
	// gets one key.expired event item; the seeds never expire.
	"key-expiry": func(t *testing.T, a *app.App, ev events.CloudWatchEvent) {
		made := keys.NewService(a.Config.Keys, a.Store, keys.WithClock(func() time.Time { return authorizertest.EventTime.Add(-time.Hour) }))
		at := authorizertest.EventTime.Add(-30 * time.Minute).Format(time.RFC3339)
		if _, err := made.Create(context.Background(), keys.OperatorCaller(project), keys.CreateInput{Name: "expiring", Tier: "public", ExpiresAt: &at}); err != nil {
			t.Fatal(err)
		}
		if err := a.Expiry.Handle(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		out, err := a.DynamoDB.Query(context.Background(), &dynamodb.QueryInput{
			TableName: aws.String(a.Config.Table), KeyConditionExpression: aws.String("pk = :pk"), ConsistentRead: aws.Bool(true),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "EVENT#" + project}},
		})
		if err != nil {
			t.Fatal(err)
		}
		var written []string
		for _, item := range out.Items {
			if v, ok := item["type"].(*types.AttributeValueMemberS); ok {
				written = append(written, v.Value)
			}
		}
		want(t, slices.Equal(written, []string{"key.expired"}), "event items of types %v, want one key.expired", written)
	},
}

// TestScheduledEvents runs each scheduled event (an EventBridge rule's
// "Scheduled Event") through its function at the events' time.
func TestScheduledEvents(t *testing.T) {
	tpl, err := samtemplate.LoadModule()
	if err != nil {
		t.Fatal(err)
	}
	for name, run := range scheduled {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(name + ".json")
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			var ev events.CloudWatchEvent
			if err := dec.Decode(&ev); err != nil {
				t.Fatalf("%s.json is not an EventBridge event: %v", name, err)
			}
			want(t, ev.Source == "aws.events" && ev.DetailType == "Scheduled Event", "source %q, detail-type %q: not a scheduled event", ev.Source, ev.DetailType)
			if _, ok := tpl.Function(name); !ok {
				t.Fatalf("no function %s in template.yaml", name)
			}
			client := ddbtest.Client(t)
			table := ddbtest.NewTable(t, client, ddbtest.TableOptions{TTL: true})
			a := app.New(config.Default().WithTable(table), client, slog.New(slog.DiscardHandler), app.WithClock(func() time.Time { return authorizertest.EventTime }))
			seed(t, a)
			run(t, a, ev)
		})
	}
}

// TestBasePathEvents runs each request of base-path/, which came through a
// custom domain with a base path mapping, and its twin of this folder, which
// came through the API's own endpoint: the function must answer both alike.
// The event's path carries the base path; the function routes on the
// resource.
func TestBasePathEvents(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("base-path", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no events in base-path/ (%v)", err)
	}
	tpl, err := samtemplate.LoadModule()
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ev, twin := readEvent(t, file), readEvent(t, name+".json")
			checkShape(t, tpl, name, basePath, ev)
			want(t, ev.RequestContext.Path == ev.Path && ev.Path == basePath+twin.Path,
				"path %s, requestContext.path %s: behind the custom domain both are %s%s", ev.Path, ev.RequestContext.Path, basePath, twin.Path)
			got, direct := invoke(t, name, ev), invoke(t, name, twin)
			if got.StatusCode != direct.StatusCode || got.Body != direct.Body {
				t.Errorf("behind the base path: %d %s\nwithout it: %d %s", got.StatusCode, got.Body, direct.StatusCode, direct.Body)
			}
			if exp, ok := expected[name]; !ok || got.StatusCode != exp.status {
				t.Errorf("status %d, want %s.json's expected answer", got.StatusCode, name)
			}
		})
	}
}

func readEvent(t *testing.T, file string) events.APIGatewayProxyRequest {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var ev events.APIGatewayProxyRequest
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("%s is not an API Gateway proxy event: %v", file, err)
	}
	return ev
}

// checkShape holds the event to what API Gateway would send the function:
// one of its routes in template.yaml, the path that base, resource and the
// path parameters make, and the authorizer's context with every value a
// string but integrationLatency, and principalId the key id.
func checkShape(t *testing.T, tpl *samtemplate.Template, function, base string, ev events.APIGatewayProxyRequest) {
	t.Helper()
	route := samtemplate.Route{Method: ev.HTTPMethod, Path: ev.Resource, Function: function}
	want(t, slices.ContainsFunc(tpl.Routes(), func(r samtemplate.Route) bool { r.Public = false; return r == route }),
		"%s is not a route of function %s in template.yaml", route, function)
	path := ev.Resource
	for k, v := range ev.PathParameters {
		path = strings.NewReplacer("{"+k+"}", v, "{"+k+"+}", v).Replace(path)
	}
	want(t, base+path == ev.Path && ev.RequestContext.ResourcePath == ev.Resource && ev.RequestContext.HTTPMethod == ev.HTTPMethod,
		"path %s, resource %s, requestContext %+v do not agree", ev.Path, ev.Resource, ev.RequestContext)
	want(t, ev.RequestContext.Identity.SourceIP != "" && ev.RequestContext.RequestID != "", "requestContext lacks identity.sourceIp or requestId")
	for k, v := range ev.RequestContext.Authorizer {
		if k == "integrationLatency" {
			_, isNumber := v.(float64)
			want(t, isNumber, "authorizer.integrationLatency is %T: API Gateway sends a number", v)
			continue
		}
		_, isString := v.(string)
		want(t, isString, "authorizer.%s is %T: API Gateway sends strings", k, v)
	}
	want(t, ev.RequestContext.Authorizer["principalId"] == ev.RequestContext.Authorizer["keyId"], "principalId is not the key id")
}

// checkContract checks an event and its function's answer against the
// OpenAPI document (internal/contract).
func checkContract(t *testing.T, ev events.APIGatewayProxyRequest, out events.APIGatewayProxyResponse) {
	t.Helper()
	target := &url.URL{Path: ev.Path, RawQuery: url.Values(ev.MultiValueQueryStringParameters).Encode()}
	req, err := http.NewRequest(ev.HTTPMethod, "https://keygate.test"+target.RequestURI(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range ev.MultiValueHeaders {
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	resp := contract.Response{Status: out.StatusCode, Header: http.Header{}, Body: []byte(out.Body)}
	for k, v := range out.Headers {
		resp.Header.Set(k, v)
	}
	for k, vs := range out.MultiValueHeaders {
		resp.Header[http.CanonicalHeaderKey(k)] = vs
	}
	contract.Check(t, req, []byte(ev.Body), resp)
}

// invoke runs the event through the function's handler, built as its Lambda
// main builds it, on a table seeded for this call, at the events' time.
func invoke(t *testing.T, function string, ev events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	t.Helper()
	client := ddbtest.Client(t)
	table := ddbtest.NewTable(t, client, ddbtest.TableOptions{TTL: true})
	log := slog.New(slog.DiscardHandler)
	// authorizertest.EventTime lies years ahead: DynamoDB Local deletes items
	// whose TTL has passed in real time, so the clock must not be in the past.
	cfg := config.Default().WithTable(table)
	// report-leak.json is signed with leakstest's key of this label, served here as GitHub's.
	cfg.Leaks.KeysURL = leakstest.NewKeyServer(t, leakstest.NewSigner("github-events")).URL
	a := app.New(cfg, client, log, app.WithClock(func() time.Time { return authorizertest.EventTime }))
	seed(t, a)
	var handle func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error)
	if function == consoleFunction {
		handle = a.Console().Handle
	} else {
		handle = httpadapter.New(a.API.Handler(httpapi.OperationName(function))).ProxyWithContext
	}
	out, err := handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func decodeAnswer(t *testing.T, out events.APIGatewayProxyResponse) answer {
	t.Helper()
	got := answer{status: out.StatusCode, setCookie: out.Headers["Set-Cookie"]}
	if c := out.MultiValueHeaders["Set-Cookie"]; len(c) > 0 {
		got.setCookie = c[0]
	}
	// GitHub's feedback is a bare array, and the OpenAPI document an object
	// without "success": no envelope.
	var object map[string]json.RawMessage
	if strings.HasPrefix(out.Body, "[") || json.Unmarshal([]byte(out.Body), &object) == nil && object["success"] == nil {
		got.Success, got.Data = out.StatusCode < 400, json.RawMessage(out.Body)
		return got
	}
	if err := json.Unmarshal([]byte(out.Body), &got); err != nil {
		t.Fatalf("body %q: %v", out.Body, err)
	}
	return got
}

// seed makes the seeds in a's table. keys.WithRandom with
// authorizertest.Secret of the seed's label makes the very key
// authorizertest.EventKey names, id and all.
func seed(t *testing.T, a *app.App) {
	t.Helper()
	for _, s := range seeds {
		secret := authorizertest.Secret(s.label)
		svc := keys.NewService(a.Config.Keys, a.Store,
			keys.WithRandom(bytes.NewReader(secret[:])),
			keys.WithClock(func() time.Time { return authorizertest.EventTime.Add(-s.at) }))
		created, err := svc.Create(context.Background(), keys.OperatorCaller(project), s.in)
		if err != nil {
			t.Fatal(err)
		}
		if created.RawKey != authorizertest.EventKey(s.label) {
			t.Fatalf("seed %s made %s, not authorizertest's key: the derivation changed there", s.label, created.ID)
		}
	}
}

// keyView is the key object as the API shows it.
type keyView struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Tier        string          `json:"tier"`
	Scopes      []string        `json:"scopes"`
	Project     string          `json:"project"`
	Owner       string          `json:"owner"`
	Metadata    json.RawMessage `json:"metadata"`
	RotatedFrom string          `json:"rotatedFrom"`
	Key         string          `json:"key"`
	Credits     *keys.Credits   `json:"credits"`
	// Mode is how the authorizer counts the key's uses; ModeFromTier, whether it is its tier's.
	Mode         string `json:"mode"`
	ModeFromTier bool   `json:"modeFromTier"`
}

// ownerLimitsView is an owner's limits as the API shows them.
type ownerLimitsView struct {
	Owner      string           `json:"owner"`
	RateLimits []keys.RateLimit `json:"rateLimits"`
	Credits    *keys.Credits    `json:"credits"`
}

func decode[T any](t *testing.T, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return v
}

func want(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Errorf(format, args...)
	}
}
