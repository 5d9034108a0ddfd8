package main

// The IAM drift test: every DynamoDB request each function's code makes is
// allowed by that function's inline policy in template.yaml, and every
// grant of a policy is used. Neither DynamoDB Local nor the local gateway
// enforces IAM, so without this a missing permission shows only in AWS, and
// an excess one never.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keygate/keygate/internal/ddbcount"
	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/internal/samtemplate"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/pkg/app"
	"github.com/keygate/keygate/pkg/config"
	"github.com/keygate/keygate/pkg/console"
	"github.com/keygate/keygate/pkg/httpapi"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/leaks"
	"github.com/keygate/keygate/pkg/leaks/leakstest"
)

func TestMain(m *testing.M) {
	code := ddbtest.Main(m)
	if builtDir != "" {
		_ = os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

func TestIAMPolicies(t *testing.T) {
	_, tpl := loadTemplate(t)
	table, recorded := recordAccesses(t, tpl)
	denied, unused := checkPolicies(tpl, table, recorded)
	for _, d := range denied {
		t.Error(d)
	}
	for _, f := range tpl.Functions {
		t.Logf("%s: %d accesses", f.Name, len(recorded[f.Name]))
	}
	// Every grant is used today, so a new excess one fails here.
	if len(unused) > 0 {
		t.Errorf("grants no driven path uses (drive the path that needs each, or remove it from template.yaml):\n  %s", strings.Join(unused, "\n  "))
	}

	// The check can fail: a policy short of an action the code needs is
	// named with its function, action and resource.
	for _, c := range []struct {
		function, action, want string
	}{
		{"create-key", "dynamodb:ConditionCheckItem", "create-key (TransactWriteItems): dynamodb:ConditionCheckItem on KeysTable"},
		{"list-keys", "dynamodb:Query", "list-keys (Query): dynamodb:Query on KeysTable/index/gsi1"},
		{"authorizer", "dynamodb:UpdateItem", "authorizer (UpdateItem): dynamodb:UpdateItem on KeysTable"},
	} {
		t.Run("without "+c.function+" "+c.action, func(t *testing.T) {
			denied, _ := checkPolicies(withoutAction(tpl, c.function, c.action), table, recorded)
			i := slices.IndexFunc(denied, func(d string) bool { return strings.HasPrefix(d, c.want) })
			if i < 0 {
				t.Fatalf("denied %q, want one starting %q", denied, c.want)
			}
			t.Log(denied[i])
		})
	}
}

// withoutAction is a copy of tpl whose function name lacks action.
func withoutAction(tpl *samtemplate.Template, name, action string) *samtemplate.Template {
	cp := *tpl
	cp.Functions = slices.Clone(tpl.Functions)
	for i, f := range cp.Functions {
		if f.Name != name {
			continue
		}
		f.Policy = slices.Clone(f.Policy)
		for j, s := range f.Policy {
			s.Actions = slices.DeleteFunc(slices.Clone(s.Actions), func(a string) bool { return a == action })
			f.Policy[j] = s
		}
		cp.Functions[i] = f
	}
	return &cp
}

// checkPolicies holds each function's recorded accesses to its policy:
// denied names each access no statement allows; unused each grant
// ("function action resource") no access used, sorted.
func checkPolicies(tpl *samtemplate.Template, table string, recorded map[string][]ddbcount.Access) (denied, unused []string) {
	for _, f := range tpl.Functions {
		used := map[string]bool{}
		for _, a := range recorded[f.Name] {
			res := samtemplate.Resource{Index: a.Index}
			i := slices.IndexFunc(f.Policy, func(s samtemplate.Statement) bool { return allows(s, a.Action, res, a.PartitionKeys) })
			switch {
			case a.Table != table:
				denied = append(denied, fmt.Sprintf("%s (%s): %s on table %q, not the KeysTable", f.Name, a.Operation, a.Action, a.Table))
			case i < 0:
				denied = append(denied, fmt.Sprintf("%s (%s): %s on %s for partition keys %q: no statement of %s's policy allows it",
					f.Name, a.Operation, a.Action, res, a.PartitionKeys, f.LogicalID))
			default:
				used[a.Action+" "+res.String()] = true
			}
		}
		for _, s := range f.Policy {
			for _, action := range s.Actions {
				for _, res := range s.Resources {
					if g := action + " " + res.String(); !used[g] {
						unused = append(unused, f.Name+" "+g)
					}
				}
			}
		}
	}
	slices.Sort(unused)
	return denied, slices.Compact(unused)
}

// allows reports whether s allows action on res for items in partitions
// pks. LeadingKeys holds only if every partition is known and listed.
func allows(s samtemplate.Statement, action string, res samtemplate.Resource, pks []string) bool {
	if !slices.Contains(s.Actions, action) || !slices.Contains(s.Resources, res) {
		return false
	}
	if s.LeadingKeys == nil {
		return true
	}
	return len(pks) > 0 && !slices.ContainsFunc(pks, func(pk string) bool { return !s.Admits(pk) })
}

// recordAccesses drives every function's main paths through its real
// handler against DynamoDB Local and returns the table and, by function
// name, the accesses each made.
func recordAccesses(t *testing.T, tpl *samtemplate.Template) (string, map[string][]ddbcount.Access) {
	raw := ddbtest.Client(t)
	table := ddbtest.NewTable(t, raw, ddbtest.TableOptions{TTL: true})
	client, counter := ddbcount.Instrument(raw, ddbcount.WithAccesses(partitionKey(t, tpl)))
	clock := testclock.New(time.Now().UTC().Truncate(24 * time.Hour).Add(36 * time.Hour))
	// Each function is its own Lambda process: its own App, so nothing one
	// read (the cursor secret) is at hand for another.
	var d *iamDriver
	cfg := config.Default().WithTable(table)
	cfg.WebhooksAllowLoopback = true // the receiver below is on loopback
	github := leakstest.NewSigner("github-iam")
	cfg.Leaks.KeysURL = leakstest.NewKeyServer(t, github).URL
	newProcess := func() {
		a := app.New(cfg, client, slog.New(slog.DiscardHandler), app.WithClock(clock.Now))
		d = &iamDriver{t: t, adapter: httpadapter.New(a.API.Handler(operationNames()...)), app: a}
	}
	newProcess()
	admin := iamCaller{keyID: "key_000000000000000000000001", scopes: "admin,contracts,verify"}
	created := clock.Now().Add(-time.Hour)
	seed := &keys.Key{ID: admin.keyID, Name: "iam caller", Tier: "internal", Project: "acme", Scopes: strings.Split(admin.scopes, ","), Status: keys.StatusActive, CreatedAt: created, UpdatedAt: created}
	if err := d.app.Store.Apply(context.Background(), keys.Tx{Create: []*keys.Key{seed}}); err != nil {
		t.Fatal(err)
	}

	// A webhook receiver that fails until told otherwise.
	var receiverStatus atomic.Int32
	receiverStatus.Store(500)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(receiverStatus.Load())) }))
	t.Cleanup(receiver.Close)
	var hookID string
	// auditRecord is the stream record of an audit item made: a key.created.
	auditRecord := func(id string) events.DynamoDBEventRecord {
		at := fmt.Sprint(clock.Now().UnixMilli())
		image := map[string]events.DynamoDBAttributeValue{
			"pk": events.NewStringAttribute("AUDIT#acme"), "sk": events.NewStringAttribute(at + "#" + id), "id": events.NewStringAttribute(id),
			"project": events.NewStringAttribute("acme"), "actor": events.NewStringAttribute(admin.keyID), "action": events.NewStringAttribute("key.created"),
			"target": events.NewStringAttribute(admin.keyID), "time": events.NewNumberAttribute(at), "ttl": events.NewNumberAttribute(fmt.Sprint(clock.Now().Add(time.Hour).Unix())),
		}
		return events.DynamoDBEventRecord{EventID: id, EventName: "INSERT", Change: events.DynamoDBStreamRecord{
			SequenceNumber: "200", Keys: map[string]events.DynamoDBAttributeValue{"pk": image["pk"], "sk": image["sk"]}, NewImage: image,
		}}
	}

	recorded := map[string][]ddbcount.Access{}
	var alice, bobs, allowlisted, spare, metered iamKey
	var portalToken string
	// Each step is one function's request; a step's accesses are its function's.
	steps := []struct {
		function string
		// firstListing: the step's function finds no cursor secret, as the
		// first listing of a table does, and creates it.
		firstListing bool
		run          func()
	}{
		{"create-key", false, func() {
			alice = d.create(admin, `{"name":"alice's","tier":"internal","owner":"alice","scopes":["admin"]}`)
			allowlisted = d.create(admin, `{"name":"allowlisted","tier":"public","ipAllowlist":["203.0.113.0/24"]}`)
			spare = d.create(admin, `{"name":"spare","tier":"internal","scopes":["admin","contracts"]}`)
			metered = d.create(admin, `{"name":"metered","tier":"public","credits":{"remaining":10}}`)
			// A key alice's key created, under another owner, for revoke-owner's includeCreated.
			bobs = d.create(iamCaller{keyID: alice.ID, scopes: "admin"}, `{"name":"bob's","tier":"public","owner":"bob"}`)
			// For key-expiry: a key that expires within its first run's hour.
			d.create(admin, fmt.Sprintf(`{"name":"expiring","tier":"public","expiresAt":%q}`, clock.Now().Add(30*time.Minute).Format(time.RFC3339)))
		}},
		{"list-keys", true, func() {
			page := d.ok(admin, "GET", "/v1/api-keys?limit=1", "")
			d.ok(admin, "GET", "/v1/api-keys?limit=1&cursor="+url.QueryEscape(page.NextCursor), "")
			d.ok(admin, "GET", "/v1/api-keys?owner=alice", "")
			d.ok(admin, "GET", "/v1/api-keys?createdBy="+alice.ID, "")
		}},
		{"get-key", false, func() { d.ok(admin, "GET", "/v1/api-keys/"+spare.ID, "") }},
		{"update-key", false, func() { d.ok(admin, "PATCH", "/v1/api-keys/"+spare.ID, `{"name":"renamed"}`) }},
		{"rotate-key", false, func() { d.ok(admin, "POST", "/v1/api-keys/"+bobs.ID+"/rotate", "") }},
		{"adjust-credits", false, func() { d.ok(admin, "POST", "/v1/api-keys/"+metered.ID+"/credits", `{"op":"increment","value":5}`) }},
		// Flags alice's keys, and then a key made for her checks her limits.
		{"put-owner-limits", false, func() {
			d.ok(admin, "PUT", "/v1/owners/alice/limits", `{"rateLimits":[{"name":"minute","limit":60,"windowSeconds":60}]}`)
		}},
		{"create-key", false, func() { d.create(admin, `{"name":"alice's second","tier":"public","owner":"alice"}`) }},
		{"get-owner-limits", false, func() { d.ok(admin, "GET", "/v1/owners/alice/limits", "") }},
		{"revoke-key", false, func() { d.ok(admin, "DELETE", "/v1/api-keys/"+metered.ID, "") }},
		{"list-audit", true, func() {
			page := d.ok(admin, "GET", "/v1/audit?limit=1", "")
			d.ok(admin, "GET", "/v1/audit?limit=1&cursor="+url.QueryEscape(page.NextCursor), "")
		}},
		{"verify", false, func() {
			d.ok(admin, "POST", "/v1/verify", fmt.Sprintf(`{"key":%q}`, alice.Key))
			// A refusal, then the verification that flushes its count.
			d.ok(admin, "POST", "/v1/verify", fmt.Sprintf(`{"key":%q,"ip":"198.51.100.1"}`, allowlisted.Key))
			d.ok(admin, "POST", "/v1/verify", fmt.Sprintf(`{"key":%q}`, alice.Key))
		}},
		{"whoami", false, func() { d.ok(admin, "GET", "/v1/whoami", "") }},
		{"authorizer", false, func() {
			d.authorize(alice.Key, "Allow", "")
			// Refused after its use is counted: the use is returned (a second UpdateItem).
			d.authorize(allowlisted.Key, "Deny", "ip_not_allowed")
			// The next decision flushes the refusal counted (a PutItem).
			d.authorize(alice.Key, "Allow", "")
		}},
		{"usage-aggregator", false, func() {
			item := func(total string) map[string]events.DynamoDBAttributeValue {
				return map[string]events.DynamoDBAttributeValue{
					"pk": events.NewStringAttribute("KEY#" + alice.ID), "id": events.NewStringAttribute(alice.ID), "project": events.NewStringAttribute("acme"),
					"version": events.NewNumberAttribute("1"), "totalRequests": events.NewNumberAttribute(total), "lastUsed": events.NewNumberAttribute(fmt.Sprint(clock.Now().UnixMilli())),
				}
			}
			use := events.DynamoDBEventRecord{EventID: "1", EventName: "MODIFY", Change: events.DynamoDBStreamRecord{
				SequenceNumber: "100", Keys: map[string]events.DynamoDBAttributeValue{"pk": events.NewStringAttribute("KEY#" + alice.ID)},
				OldImage: item("1"), NewImage: item("2"),
			}}
			if err := d.app.Aggregator.Handle(context.Background(), events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{use}}); err != nil {
				t.Fatal(err)
			}
		}},
		{"key-usage", false, func() { d.ok(admin, "GET", "/v1/api-keys/"+alice.ID+"/usage", "") }},
		{"owner-usage", false, func() { d.ok(admin, "GET", "/v1/owners/alice/usage", "") }},
		{"project-usage", false, func() { d.ok(admin, "GET", "/v1/usage?groupBy=owner", "") }},
		{"create-portal-session", false, func() {
			link := d.ok(admin, "POST", "/v1/portal/sessions", `{"owner":"carol","allowedTiers":["public"],"maxKeys":2}`)
			var v struct{ URL string }
			if err := json.Unmarshal(link.Data, &v); err != nil || !strings.Contains(v.URL, "/portal#t=") {
				t.Fatalf("portal link %s: %v", link.Data, err)
			}
			portalToken = v.URL[strings.Index(v.URL, "#t=")+3:]
		}},
		{"revoke-owner", false, func() { d.ok(admin, "POST", "/v1/owners/alice/revoke?includeCreated=true", "") }},
		{"webhooks", false, func() {
			var w struct{ ID string }
			created := d.ok(admin, "POST", "/v1/webhooks", fmt.Sprintf(`{"url":%q,"events":["key.created"]}`, receiver.URL))
			if err := json.Unmarshal(created.Data, &w); err != nil {
				t.Fatal(err)
			}
			hookID = w.ID
			d.ok(admin, "GET", "/v1/webhooks", "")
			d.ok(admin, "PATCH", "/v1/webhooks/"+hookID, `{"description":"iam"}`)
		}},
		// Two events: the receiver fails both (the webhook is failing).
		{"event-dispatcher", false, func() {
			batch := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{auditRecord("evt_iam1"), auditRecord("evt_iam2")}}
			if err := d.app.Dispatcher.Handle(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
		}},
		// Their retries succeed (the failing streak ends).
		{"webhook-retry", false, func() {
			receiverStatus.Store(200)
			clock.Advance(2 * time.Minute)
			if err := d.app.Retrier.Handle(context.Background(), events.EventBridgeEvent{}); err != nil {
				t.Fatal(err)
			}
		}},
		{"webhooks", true, func() {
			page := d.ok(admin, "GET", "/v1/webhooks/"+hookID+"/deliveries?limit=1", "")
			d.ok(admin, "GET", "/v1/webhooks/"+hookID+"/deliveries?limit=1&cursor="+url.QueryEscape(page.NextCursor), "")
			d.ok(admin, "GET", "/v1/webhooks/"+hookID, "")
			d.ok(admin, "POST", "/v1/webhooks/"+hookID+"/test", "")
			d.ok(admin, "DELETE", "/v1/webhooks/"+hookID, "")
		}},
		// Its first run, an hour on: the expiring key's key.expired event.
		{"key-expiry", false, func() {
			if res, err := d.app.Expiry.Run(context.Background(), clock.Now().Add(time.Hour)); err != nil || res.Written != 1 {
				t.Fatalf("key-expiry: %+v, %v; want one event written", res, err)
			}
		}},
		// The console signs in (the authorizer's write, the session and its
		// event), serves the management API as the session's key, and signs out.
		{"console", true, func() {
			c := d.signIn(spare.Key)
			c.ok("GET", "api/session", "")
			page := c.ok("GET", "api/v1/api-keys?limit=1", "")
			c.ok("GET", "api/v1/api-keys?limit=1&cursor="+url.QueryEscape(page.NextCursor), "")
			c.ok("GET", "api/v1/api-keys?owner=bob&search=bob", "")
			c.ok("GET", "api/v1/api-keys?createdBy="+alice.ID, "")
			c.ok("POST", "api/v1/api-keys", `{"name":"from the console","tier":"public"}`)
			c.ok("GET", "api/v1/audit?keyId="+spare.ID, "")
			c.ok("GET", "api/v1/api-keys/"+spare.ID+"/usage", "")
			c.ok("POST", "api/v1/owners/bob/revoke?includeCreated=true&dryRun=true", "")
			c.ok("DELETE", "api/session", "")
			// The customer portal: open the link, make, rotate and revoke a
			// key, read its usage, sign out.
			p := d.openPortal(portalToken)
			var k struct{ ID string }
			if err := json.Unmarshal(p.ok("POST", "api/keys", `{"name":"carol's","tier":"public"}`).Data, &k); err != nil {
				t.Fatal(err)
			}
			p.ok("GET", "api/keys", "")
			p.ok("GET", "api/keys/"+k.ID+"/usage", "")
			p.ok("POST", "api/keys/"+k.ID+"/rotate", `{"gracePeriodSeconds":0}`)
			p.ok("DELETE", "api/keys/"+k.ID, "")
			p.ok("DELETE", "api/session", "")
		}},
		// GitHub reports spare's key leaked: read, revoked with its event.
		{"report-leak", false, func() { d.reportLeak(github, spare.Key) }},
		// The OpenAPI document is embedded: no table access at all.
		{"openapi", false, func() { d.ok(admin, "GET", "/v1/openapi.json", "") }},
	}
	for _, s := range steps {
		if _, ok := tpl.Function(s.function); !ok {
			t.Fatalf("step %s: no such function in template.yaml", s.function)
		}
		newProcess()
		if s.firstListing {
			deletePartition(t, raw, table, cursorPartition)
		}
		counter.Reset()
		s.run()
		if t.Failed() {
			t.FailNow()
		}
		recorded[s.function] = append(recorded[s.function], counter.Accesses()...)
	}
	for _, name := range functionNames(tpl) {
		if _, ok := recorded[name]; !ok {
			t.Errorf("function %s is not driven: add its step", name)
		}
	}
	return table, recorded
}

// cursorPartition holds the secret that signs page cursors (pkg/dynamo/cursor.go).
const cursorPartition = "CONFIG"

// deletePartition deletes the items of partition pk, behind the recording.
func deletePartition(t *testing.T, client *dynamodb.Client, table, pk string) {
	ctx := context.Background()
	out, err := client.Query(ctx, &dynamodb.QueryInput{
		TableName: &table, KeyConditionExpression: aws.String("pk = :pk"), ConsistentRead: aws.Bool(true),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, item := range out.Items {
		key := map[string]types.AttributeValue{"pk": item["pk"], "sk": item["sk"]}
		if _, err := client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &table, Key: key}); err != nil {
			t.Fatal(err)
		}
	}
}

func partitionKey(t *testing.T, tpl *samtemplate.Template) string {
	i := slices.IndexFunc(tpl.Table.KeySchema, func(k types.KeySchemaElement) bool { return k.KeyType == types.KeyTypeHash })
	if i < 0 {
		t.Fatal("KeysTable has no partition key")
	}
	return *tpl.Table.KeySchema[i].AttributeName
}

func operationNames() []httpapi.OperationName {
	var names []httpapi.OperationName
	for _, op := range httpapi.Operations {
		names = append(names, op.Name)
	}
	return names
}

// iamDriver sends requests as API Gateway would, after the authorizer.
type iamDriver struct {
	t       *testing.T
	adapter *httpadapter.HandlerAdapter
	app     *app.App
}

// iamCaller is the authorizer context of a key of project acme.
type iamCaller struct{ keyID, scopes string }

type iamKey struct{ ID, Key string }

type iamResponse struct {
	Data       json.RawMessage `json:"data"`
	NextCursor string          `json:"nextCursor"`
}

// ok sends a request and fails the test unless it succeeds.
func (d *iamDriver) ok(c iamCaller, method, target, body string) iamResponse {
	d.t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		d.t.Fatal(err)
	}
	out, err := d.adapter.ProxyWithContext(context.Background(), events.APIGatewayProxyRequest{
		HTTPMethod: method, Path: u.Path, Body: body, MultiValueQueryStringParameters: u.Query(),
		Headers: map[string]string{"Content-Type": "application/json"},
		RequestContext: events.APIGatewayProxyRequestContext{
			RequestID:  "req-iam",
			Identity:   events.APIGatewayRequestIdentity{SourceIP: "198.51.100.7"},
			Authorizer: map[string]any{"keyId": c.keyID, "project": "acme", "scopes": c.scopes, "principalId": c.keyID},
		},
	})
	if err != nil || out.StatusCode >= 300 {
		d.t.Fatalf("%s %s: %d %s %v", method, target, out.StatusCode, out.Body, err)
	}
	var r iamResponse
	if err := json.Unmarshal([]byte(out.Body), &r); err != nil {
		d.t.Fatal(err)
	}
	return r
}

// reportLeak posts a report of raw signed by github, as API Gateway hands
// the public route's request over, and checks that it found the key.
func (d *iamDriver) reportLeak(github leakstest.Signer, raw string) {
	d.t.Helper()
	body := fmt.Sprintf(`[{"token":%q,"type":"keygate_api_key","url":"https://github.com/o/r/blob/1/a.txt","source":"content"}]`, raw)
	out, err := d.adapter.ProxyWithContext(context.Background(), events.APIGatewayProxyRequest{
		HTTPMethod: "POST", Path: "/v1/leaks/github", Body: body,
		Headers:        map[string]string{leaks.HeaderKeyID: github.ID, leaks.HeaderSignature: github.Sign([]byte(body))},
		RequestContext: events.APIGatewayProxyRequestContext{RequestID: "req-iam", Identity: events.APIGatewayRequestIdentity{SourceIP: "140.82.115.1"}},
	})
	if err != nil || out.StatusCode != 200 || !strings.Contains(out.Body, leaks.TruePositive) {
		d.t.Fatalf("report-leak: %d %s %v", out.StatusCode, out.Body, err)
	}
}

func (d *iamDriver) create(c iamCaller, body string) iamKey {
	d.t.Helper()
	var k iamKey
	if err := json.Unmarshal(d.ok(c, "POST", "/v1/api-keys", body).Data, &k); err != nil || k.Key == "" {
		d.t.Fatalf("create %s: %+v %v", body, k, err)
	}
	return k
}

// authorize runs the authorizer on GET /v1/whoami from 198.51.100.7 and
// checks its effect and error code.
func (d *iamDriver) authorize(key, effect, errorCode string) {
	d.t.Helper()
	resp, err := d.app.AuthorizerHandler().REST(context.Background(), events.APIGatewayCustomAuthorizerRequestTypeRequest{
		Type: "REQUEST", MethodArn: "arn:aws:execute-api:us-east-1:123456789012:k3yg4t3abc/prod/GET/v1/whoami",
		Resource: "/v1/whoami", Path: "/v1/whoami", HTTPMethod: "GET",
		Headers: map[string]string{"Authorization": "Bearer " + key},
		RequestContext: events.APIGatewayCustomAuthorizerRequestTypeRequestContext{
			Identity: events.APIGatewayCustomAuthorizerRequestTypeRequestIdentity{SourceIP: "198.51.100.7"},
		},
	})
	if err != nil || len(resp.PolicyDocument.Statement) != 1 || resp.PolicyDocument.Statement[0].Effect != effect || resp.Context["errorCode"] != nil && resp.Context["errorCode"] != errorCode {
		d.t.Fatalf("authorizer: %+v, %v; want %s %s", resp, err, effect, errorCode)
	}
}

func TestIAMAllows(t *testing.T) {
	cursor := samtemplate.Statement{Actions: []string{"dynamodb:GetItem"}, Resources: []samtemplate.Resource{{}}, LeadingKeys: []string{cursorPartition}}
	index := samtemplate.Statement{Actions: []string{"dynamodb:Query"}, Resources: []samtemplate.Resource{{Index: "gsi2"}}}
	for _, c := range []struct {
		name   string
		s      samtemplate.Statement
		action string
		res    samtemplate.Resource
		pks    []string
		want   bool
	}{
		{"the config partition", cursor, "dynamodb:GetItem", samtemplate.Resource{}, []string{"CONFIG"}, true},
		{"a key's partition", cursor, "dynamodb:GetItem", samtemplate.Resource{}, []string{"KEY#a"}, false},
		{"one partition of two outside", cursor, "dynamodb:GetItem", samtemplate.Resource{}, []string{"CONFIG", "KEY#a"}, false},
		{"partitions unknown", cursor, "dynamodb:GetItem", samtemplate.Resource{}, nil, false},
		{"another action", cursor, "dynamodb:PutItem", samtemplate.Resource{}, []string{"CONFIG"}, false},
		{"the granted index", index, "dynamodb:Query", samtemplate.Resource{Index: "gsi2"}, nil, true},
		{"another index", index, "dynamodb:Query", samtemplate.Resource{Index: "gsi1"}, nil, false},
		{"the table, not the index", index, "dynamodb:Query", samtemplate.Resource{}, nil, false},
	} {
		if got := allows(c.s, c.action, c.res, c.pks); got != c.want {
			t.Errorf("%s: allows = %v, want %v", c.name, got, c.want)
		}
	}
}

// consoleSession drives the console function as a browser signed in would,
// to the console's routes or the portal's.
type consoleSession struct {
	d                  *iamDriver
	cookie, csrf       string
	prefix, cookieName string
}

// signIn opens a console session with a raw key.
func (d *iamDriver) signIn(key string) *consoleSession {
	return d.open(&consoleSession{d: d, csrf: "signin", prefix: "/console/", cookieName: "__Host-keygate_console"}, fmt.Sprintf(`{"key":%q}`, key))
}

// openPortal opens a customer portal link as its page does.
func (d *iamDriver) openPortal(token string) *consoleSession {
	return d.open(&consoleSession{d: d, csrf: "open", prefix: "/portal/", cookieName: "__Host-keygate_portal"}, fmt.Sprintf(`{"token":%q}`, token))
}

// open posts body to c's session route and keeps the cookie and CSRF token
// of the session it opens.
func (d *iamDriver) open(c *consoleSession, body string) *consoleSession {
	out := c.send("POST", "api/session", body)
	cookie, err := http.ParseSetCookie(out.Headers["Set-Cookie"] + strings.Join(out.MultiValueHeaders["Set-Cookie"], ""))
	var v struct {
		Data struct{ CSRFToken string } `json:"data"`
	}
	if err != nil || json.Unmarshal([]byte(out.Body), &v) != nil || v.Data.CSRFToken == "" {
		d.t.Fatalf("%sapi/session: %d %s %v", c.prefix, out.StatusCode, out.Body, err)
	}
	c.cookie, c.csrf = cookie.Value, v.Data.CSRFToken
	return c
}

func (c *consoleSession) send(method, target, body string) events.APIGatewayProxyResponse {
	c.d.t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		c.d.t.Fatal(err)
	}
	h := map[string][]string{"Host": {"k3yg4t3abc.execute-api.us-east-1.amazonaws.com"}, "Content-Type": {"application/json"}, console.CSRFHeader: {c.csrf}}
	if c.cookie != "" {
		h["Cookie"] = []string{c.cookieName + "=" + c.cookie}
	}
	out, err := c.d.app.Console().Handle(context.Background(), events.APIGatewayProxyRequest{
		HTTPMethod: method, Resource: c.prefix + "{proxy+}", Path: c.prefix + u.Path, PathParameters: map[string]string{"proxy": u.Path},
		MultiValueQueryStringParameters: u.Query(), MultiValueHeaders: h, Body: body,
		RequestContext: events.APIGatewayProxyRequestContext{RequestID: "req-iam", Identity: events.APIGatewayRequestIdentity{SourceIP: "198.51.100.7"}},
	})
	if err != nil {
		c.d.t.Fatal(err)
	}
	return out
}

// ok sends a request of the signed-in console and fails the test unless it succeeds.
func (c *consoleSession) ok(method, target, body string) iamResponse {
	c.d.t.Helper()
	out := c.send(method, target, body)
	var r iamResponse
	if out.StatusCode >= 300 || json.Unmarshal([]byte(out.Body), &r) != nil {
		c.d.t.Fatalf("console %s %s: %d %s", method, target, out.StatusCode, out.Body)
	}
	return r
}
