package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keygate/keygate/internal/contract"
	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/pkg/app"
	"github.com/keygate/keygate/pkg/config"
	"github.com/keygate/keygate/pkg/httpapi"
	"github.com/keygate/keygate/pkg/keys"
)

func TestMain(m *testing.M) { os.Exit(ddbtest.Main(m)) }

// env is one test's keygate: its own table, a settable clock, and every
// operation behind the same Lambda adapter API Gateway events go through.
type env struct {
	t       *testing.T
	clock   *testclock.Clock
	app     *app.App
	client  *dynamodb.Client
	table   string
	adapter *httpadapter.HandlerAdapter
	// offContract logs, rather than fails on, an exchange that disagrees
	// with the OpenAPI document: for a test that plants items keygate
	// never writes, whose answers show them as stored.
	offContract bool
}

func newEnv(t *testing.T, opts ddbtest.TableOptions) *env {
	t.Helper()
	t.Parallel()
	client := ddbtest.Client(t)
	table := ddbtest.NewTable(t, client, opts)
	// The clock starts tomorrow at noon, not at a fixed date: DynamoDB Local
	// really deletes items whose TTL lies in the machine's past, within seconds.
	c := testclock.New(time.Now().UTC().Truncate(24 * time.Hour).Add(36 * time.Hour))
	e := (&env{t: t, clock: c, client: client, table: table}).configured(config.Default())
	e.seedCaller(admin)
	e.seedCaller(globexAdmin)
	return e
}

// configured is e's table and clock served by a keygate configured with
// cfg: as after a deployment that changed its parameters.
func (e *env) configured(cfg config.Config) *env {
	a := app.New(cfg.WithTable(e.table), e.client, slog.New(slog.DiscardHandler), app.WithClock(e.clock.Now))
	names := make([]httpapi.OperationName, 0, len(httpapi.Operations))
	for _, op := range httpapi.Operations {
		names = append(names, op.Name)
	}
	c := *e
	c.app, c.adapter = a, httpadapter.New(a.API.Handler(names...))
	return &c
}

// seedCaller stores the key of a caller made up by a test, active: every
// change a key makes requires its key to be. Listings show it; see
// withoutCallers.
func (e *env) seedCaller(c caller) {
	e.t.Helper()
	created := e.clock.Now().Add(-time.Hour)
	key := &keys.Key{ID: c.keyID, Name: "test caller", Tier: "internal", Project: c.project, Status: keys.StatusActive, CreatedAt: created, UpdatedAt: created}
	if err := e.app.Store.Apply(context.Background(), keys.Tx{Create: []*keys.Key{key}}); err != nil {
		e.t.Fatal(err)
	}
}

// withoutCallers leaves the seeded callers' keys out of a listing.
func withoutCallers(list []keyView) []keyView {
	return slices.DeleteFunc(list, func(k keyView) bool { return k.Name == "test caller" })
}

// caller is an authorizer context as API Gateway hands it to a function.
type caller struct {
	project, keyID, scopes string
	owner                  string
	expiresAt              *time.Time
	ipAllowlist            string // comma-separated, as the authorizer hands it on
	tier                   string
}

// callerOf is the context the authorizer hands on for key k.
func callerOf(k keyView) *caller {
	return &caller{project: k.Project, keyID: k.ID, scopes: strings.Join(k.Scopes, ","), owner: k.Owner, expiresAt: k.ExpiresAt,
		ipAllowlist: strings.Join(k.IPAllowlist, ","), tier: k.Tier}
}

var (
	admin       = caller{project: "acme", keyID: "key_000000000000000000000001", scopes: "admin,contracts,verify,webhooks"}
	globexAdmin = caller{project: "globex", keyID: "key_000000000000000000000002", scopes: admin.scopes}
)

// response is a decoded envelope.
type response struct {
	Status     int
	Body       string          // as sent
	Warnings   []string        `json:"warnings"`
	Success    bool            `json:"success"`
	Data       json.RawMessage `json:"data"`
	NextCursor string          `json:"nextCursor"`
	Message    string          `json:"message"`
	Error      *struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"requestId"`
	} `json:"error"`
}

// do sends one request through the Lambda proxy adapter, as API Gateway would.
func (e *env) do(c *caller, method, target, body string) response {
	e.t.Helper()
	r, err := e.try(c, method, target, body)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// try is do for any goroutine: it reports what do would fail the test for.
func (e *env) try(c *caller, method, target, body string) (response, error) {
	u, err := url.Parse(target)
	if err != nil {
		return response{}, err
	}
	ev := events.APIGatewayProxyRequest{
		HTTPMethod: method,
		Path:       u.Path,
		Body:       body,
		Headers:    map[string]string{"Content-Type": "application/json"},
		RequestContext: events.APIGatewayProxyRequestContext{
			RequestID: "req-test",
			Identity:  events.APIGatewayRequestIdentity{SourceIP: "198.51.100.7"},
		},
	}
	if q := u.Query(); len(q) > 0 {
		ev.MultiValueQueryStringParameters = q
	}
	if c != nil {
		ev.RequestContext.Authorizer = map[string]any{"keyId": c.keyID, "project": c.project, "scopes": c.scopes, "owner": c.owner, "principalId": c.keyID}
		if c.expiresAt != nil {
			ev.RequestContext.Authorizer["expiresAt"] = strconv.FormatInt(c.expiresAt.UnixMilli(), 10)
		}
		if c.ipAllowlist != "" {
			ev.RequestContext.Authorizer["ipAllowlist"] = c.ipAllowlist
		}
		if c.tier != "" {
			ev.RequestContext.Authorizer["tier"] = c.tier
		}
	}
	out, err := e.adapter.ProxyWithContext(context.Background(), ev)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, target, err)
	}
	// Every exchange of every test must agree with the OpenAPI document.
	if err := checkContract(method, u, ev.Headers, body, out); err != nil {
		if !e.offContract {
			return response{}, err
		}
		e.t.Logf("off the contract, as planted: %v", err)
	}
	var r response
	if err := json.Unmarshal([]byte(out.Body), &r); err != nil {
		return response{}, fmt.Errorf("%s %s: body %q is not JSON: %w", method, target, out.Body, err)
	}
	r.Status = out.StatusCode
	r.Body = out.Body
	if got := out.MultiValueHeaders["Content-Type"]; len(got) != 1 || got[0] != "application/json" {
		return r, fmt.Errorf("%s %s: Content-Type %q", method, target, got)
	}
	if r.Success != (r.Status < 400) || (r.Error == nil) != r.Success {
		return r, fmt.Errorf("%s %s: envelope %d %s does not match its status", method, target, r.Status, out.Body)
	}
	return r, nil
}

// checkContract checks a request and the answer the adapter gave against
// the OpenAPI document (internal/contract).
func checkContract(method string, u *url.URL, header map[string]string, body string, out events.APIGatewayProxyResponse) error {
	req, err := http.NewRequest(method, "https://keygate.test"+u.RequestURI(), nil)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp := contract.Response{Status: out.StatusCode, Header: http.Header{}, Body: []byte(out.Body)}
	for k, vs := range out.MultiValueHeaders {
		for _, v := range vs {
			resp.Header.Add(k, v)
		}
	}
	return contract.Validate(req, []byte(body), resp)
}

// keyView is the key object as the API shows it.
type keyView struct {
	ID          string           `json:"id"`
	Name        string           `json:"name"`
	Start       string           `json:"start"`
	Tier        string           `json:"tier"`
	Scopes      []string         `json:"scopes"`
	Project     string           `json:"project"`
	Owner       string           `json:"owner"`
	Status      string           `json:"status"`
	Usage       map[string]any   `json:"usage"`
	IPAllowlist []string         `json:"ipAllowlist"`
	Metadata    json.RawMessage  `json:"metadata"`
	ExpiresAt   *time.Time       `json:"expiresAt"`
	CreatedAt   time.Time        `json:"createdAt"`
	UpdatedAt   time.Time        `json:"updatedAt"`
	RevokedAt   *time.Time       `json:"revokedAt"`
	RotatedFrom string           `json:"rotatedFrom"`
	RotatedTo   string           `json:"rotatedTo"`
	CreatedBy   string           `json:"createdBy"`
	Key         string           `json:"key"`
	RateLimits  []keys.RateLimit `json:"rateLimits"`
	FromTier    bool             `json:"rateLimitsFromTier"`
	Credits     *keys.Credits    `json:"credits"`
}

func (e *env) create(c *caller, body string) keyView {
	e.t.Helper()
	r := e.do(c, "POST", "/v1/api-keys", body)
	if r.Status != 201 {
		e.t.Fatalf("create %s: %d %+v", body, r.Status, r.Error)
	}
	return decode[keyView](e.t, r.Data)
}

// at is the test clock's time plus d, in RFC 3339.
func (e *env) at(d time.Duration) string { return e.clock.Now().Add(d).Format(time.RFC3339) }

func decode[T any](t *testing.T, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return v
}

// itemCount counts every item in the table, to prove a 4xx wrote nothing.
func (e *env) itemCount() int {
	e.t.Helper()
	out, err := e.client.Scan(context.Background(), &dynamodb.ScanInput{TableName: &e.table, ConsistentRead: boolPtr(true)})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(out.Items)
}

// snapshot is the table's whole content, to prove a 4xx changed nothing.
func (e *env) snapshot() string { return ddbtest.Snapshot(e.t, e.client, e.table) }

func boolPtr(b bool) *bool { return &b }

func must(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Fatalf(format, args...)
	}
}

func errorCode(r response) string {
	if r.Error == nil {
		return ""
	}
	return r.Error.Code
}
