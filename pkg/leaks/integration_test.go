package leaks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keygate/keygate/internal/contract"
	"github.com/keygate/keygate/internal/ddbcount"
	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/pkg/app"
	"github.com/keygate/keygate/pkg/config"
	"github.com/keygate/keygate/pkg/httpapi"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/leaks"
	"github.com/keygate/keygate/pkg/leaks/leakstest"
	"github.com/keygate/keygate/pkg/token"
)

func TestMain(m *testing.M) { os.Exit(ddbtest.Main(m)) }

// github is the test's stand-in for GitHub's signing key.
var github = leakstest.NewSigner("github-test")

// ddbEnv is the report-leak function on DynamoDB Local, as Lambda runs it,
// with GitHub's key list served by the test.
type ddbEnv struct {
	t       *testing.T
	clock   *testclock.Clock
	raw     *dynamodb.Client
	table   string
	counter *ddbcount.Counter
	app     *app.App
	adapter *httpadapter.HandlerAdapter
}

func newDDBEnv(t *testing.T, action keys.LeakAction) *ddbEnv {
	t.Helper()
	t.Parallel()
	raw := ddbtest.Client(t)
	table := ddbtest.NewTable(t, raw, ddbtest.TableOptions{TTL: true})
	client, counter := ddbcount.Instrument(raw)
	// Tomorrow at noon: DynamoDB Local deletes items whose TTL lies in the
	// machine's past.
	clock := testclock.New(time.Now().UTC().Truncate(24 * time.Hour).Add(36 * time.Hour))
	cfg := config.Default().WithTable(table)
	cfg.Leaks = leaks.Config{KeysURL: leakstest.NewKeyServer(t, github).URL, Action: action}
	a := app.New(cfg, client, slog.New(slog.DiscardHandler), app.WithClock(clock.Now))
	return &ddbEnv{t: t, clock: clock, raw: raw, table: table, counter: counter, app: a, adapter: httpadapter.New(a.API.Handler(httpapi.ReportLeak))}
}

// key creates an active key of project acme and returns it with its raw value.
func (e *ddbEnv) key(in keys.CreateInput) (*keys.Key, string) {
	e.t.Helper()
	in.Name, in.Tier = "leaky", "partner"
	created, err := e.app.Service.Create(context.Background(), keys.OperatorCaller("acme"), in)
	if err != nil {
		e.t.Fatal(err)
	}
	return created.Key, created.RawKey
}

// post sends body with the signature headers, as API Gateway hands a
// request of the public route to the function.
func (e *ddbEnv) post(body []byte, keyID, signature string) events.APIGatewayProxyResponse {
	e.t.Helper()
	headers := map[string]string{"Content-Type": "application/json"}
	if keyID != "" {
		headers[leaks.HeaderKeyID] = keyID
	}
	if signature != "" {
		headers[leaks.HeaderSignature] = signature
	}
	out, err := e.adapter.ProxyWithContext(context.Background(), events.APIGatewayProxyRequest{
		HTTPMethod: "POST", Path: "/v1/leaks/github", Resource: "/v1/leaks/github", Body: string(body), Headers: headers,
		RequestContext: events.APIGatewayProxyRequestContext{RequestID: "req-leak", Identity: events.APIGatewayRequestIdentity{SourceIP: "140.82.115.1"}},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	// Every exchange must agree with the OpenAPI document.
	req, err := http.NewRequest("POST", "https://keygate.test/v1/leaks/github", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp := contract.Response{Status: out.StatusCode, Header: http.Header{}, Body: []byte(out.Body)}
	for k, vs := range out.MultiValueHeaders {
		for _, v := range vs {
			resp.Header.Add(k, v)
		}
	}
	contract.Check(e.t, req, body, resp)
	return out
}

// report posts tokens signed by GitHub and returns the labels answered.
func (e *ddbEnv) report(tokens ...string) []string {
	e.t.Helper()
	body := reportOf(tokens...)
	out := e.post(body, github.ID, github.Sign(body))
	var feedback []leaks.Feedback
	if out.StatusCode != http.StatusOK || json.Unmarshal([]byte(out.Body), &feedback) != nil || len(feedback) != len(tokens) {
		e.t.Fatalf("answer %d %s, want 200 and one feedback per token", out.StatusCode, out.Body)
	}
	var labels []string
	for _, f := range feedback {
		labels = append(labels, f.Label)
	}
	return labels
}

// leakEvents are the key.leaked events of key id.
func (e *ddbEnv) leakEvents(id string) []*keys.AuditEvent {
	e.t.Helper()
	evs, _, err := e.app.Store.ListAudit(context.Background(), keys.AuditQuery{Project: "acme", Target: id, Action: keys.ActionLeaked, Limit: 10, Now: e.clock.Now()})
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

// writesNothing fails if fn changes the table.
func (e *ddbEnv) writesNothing(fn func()) {
	e.t.Helper()
	before := ddbtest.Snapshot(e.t, e.raw, e.table)
	fn()
	if after := ddbtest.Snapshot(e.t, e.raw, e.table); after != before {
		e.t.Errorf("the table changed:\n%s\nwas\n%s", after, before)
	}
}

func TestReportLeakChangesTheKey(t *testing.T) {
	for _, tc := range []struct {
		action  keys.LeakAction
		changed string // the change the event holds besides source
	}{
		{keys.LeakRevoke, `"status":{"from":"active","to":"revoked"}`},
		{keys.LeakRestrict, `"expiresAt":{"from":null,"to":"`},
	} {
		t.Run(string(tc.action), func(t *testing.T) {
			e := newDDBEnv(t, tc.action)
			k, raw := e.key(keys.CreateInput{})
			if labels := e.report(raw); labels[0] != leaks.TruePositive {
				t.Fatalf("labels %v", labels)
			}
			got, err := e.app.Store.GetKey(context.Background(), k.ID)
			if err != nil {
				t.Fatal(err)
			}
			now := e.clock.Now()
			switch tc.action {
			case keys.LeakRevoke:
				if got.Status != keys.StatusRevoked || got.RevokedAt == nil || !got.RevokedAt.Equal(now) {
					t.Errorf("key status %s, revokedAt %v: want revoked now", got.Status, got.RevokedAt)
				}
			case keys.LeakRestrict:
				if got.Status != keys.StatusActive || got.ExpiresAt == nil || !got.ExpiresAt.Equal(now.Add(keys.LeakGrace)) {
					t.Errorf("key status %s, expiresAt %v: want active, expiring in an hour", got.Status, got.ExpiresAt)
				}
			}
			evs := e.leakEvents(k.ID)
			if len(evs) != 1 {
				t.Fatalf("%d key.leaked events, want 1", len(evs))
			}
			changes, _ := evs[0].MarshalChanges()
			if evs[0].Actor != keys.SystemGitHubSecretScanning || evs[0].SourceIP != "140.82.115.1" || !strings.Contains(changes, tc.changed) ||
				!strings.Contains(changes, `"source":{"from":null,"to":"https://github.com/o/r/blob/1/a.txt"}`) {
				t.Errorf("event actor %q, source IP %q, changes %s", evs[0].Actor, evs[0].SourceIP, changes)
			}
			if strings.Contains(ddbtest.Snapshot(t, e.raw, e.table), raw) {
				t.Error("the raw key is stored")
			}

			// GitHub sends the report again: the same answer, nothing written.
			e.clock.Advance(time.Minute)
			e.writesNothing(func() {
				if labels := e.report(raw); labels[0] != leaks.TruePositive {
					t.Errorf("replay: labels %v", labels)
				}
			})
		})
	}
}

func TestReportLeakRefusesUnverified(t *testing.T) {
	e := newDDBEnv(t, keys.LeakRevoke)
	_, raw := e.key(keys.CreateInput{})
	body := reportOf(raw)
	impostor := newSigner(t, github.ID, github.Key.Curve)
	tooMany := reportOf(strings.Split(strings.Repeat("x,", leaks.MaxMatches+1), ",")[:leaks.MaxMatches+1]...)
	huge := append(bytes.Repeat([]byte(" "), leaks.MaxBodyBytes), body...)
	for _, tc := range []struct {
		name           string
		body           []byte
		keyID, sig     string
		status         int
		code, contains string
	}{
		{"forged signature", body, github.ID, impostor.Sign(body), http.StatusUnauthorized, httpapi.CodeUnauthorized, "signature"},
		{"signature of another body", body, github.ID, github.Sign(reportOf("x")), http.StatusUnauthorized, httpapi.CodeUnauthorized, "signature"},
		{"no signature", body, github.ID, "", http.StatusUnauthorized, httpapi.CodeUnauthorized, leaks.HeaderSignature},
		{"no identifier", body, "", github.Sign(body), http.StatusUnauthorized, httpapi.CodeUnauthorized, leaks.HeaderKeyID},
		{"unknown identifier", body, "other", github.Sign(body), http.StatusUnauthorized, httpapi.CodeUnauthorized, "unknown"},
		{"over 1 MiB", huge, github.ID, github.Sign(huge), http.StatusRequestEntityTooLarge, httpapi.CodePayloadTooLarge, "1024 KB"},
		{"too many tokens", tooMany, github.ID, github.Sign(tooMany), http.StatusBadRequest, httpapi.CodeBadRequest, "at most 100"},
		{"duplicate keys", []byte(`[{"token":"a","token":"b"}]`), github.ID, github.Sign([]byte(`[{"token":"a","token":"b"}]`)), http.StatusBadRequest, httpapi.CodeBadRequest, "token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.counter.Reset()
			e.writesNothing(func() {
				out := e.post(tc.body, tc.keyID, tc.sig)
				var env httpapi.Envelope
				if err := json.Unmarshal([]byte(out.Body), &env); err != nil || out.StatusCode != tc.status || env.Success || env.Error == nil ||
					env.Error.Code != tc.code || !strings.Contains(env.Error.Message, tc.contains) || env.Error.RequestID != "req-leak" {
					t.Errorf("answer %d %s, want %d %s mentioning %q", out.StatusCode, out.Body, tc.status, tc.code, tc.contains)
				}
			})
			if n := e.counter.Total(); n != 0 {
				t.Errorf("%d DynamoDB requests, want none", n)
			}
		})
	}
}

func TestReportLeakOfWhatIsNoActiveKey(t *testing.T) {
	e := newDDBEnv(t, keys.LeakRevoke)
	active, activeRaw := e.key(keys.CreateInput{})
	revoked, revokedRaw := e.key(keys.CreateInput{})
	if err := e.app.Service.Revoke(context.Background(), keys.OperatorCaller("acme"), revoked.ID); err != nil {
		t.Fatal(err)
	}
	_, expiredRaw := e.key(keys.CreateInput{ExpiresAt: new(e.clock.Now().Add(time.Minute).Format(time.RFC3339))})
	e.clock.Advance(2 * time.Minute)
	unknown, _ := token.Generate(bytes.NewReader(bytes.Repeat([]byte{9}, 32)), "kg", "pt")
	otherPrefix, _ := token.Generate(bytes.NewReader(bytes.Repeat([]byte{9}, 32)), "gh", "pt")
	garbage := []string{"garbage", activeRaw[:len(activeRaw)-1], activeRaw + "0", strings.ToUpper(activeRaw), activeRaw[:8] + "\u200b" + activeRaw[8:], otherPrefix}

	t.Run("garbage costs no request", func(t *testing.T) {
		e.counter.Reset()
		e.writesNothing(func() {
			for i, label := range e.report(garbage...) {
				if label != leaks.FalsePositive {
					t.Errorf("%q: %s", garbage[i], label)
				}
			}
		})
		if n := e.counter.Total(); n != 0 {
			t.Errorf("%d DynamoDB requests, want none", n)
		}
	})
	t.Run("revoked, expired, unknown: nothing written", func(t *testing.T) {
		e.counter.Reset()
		e.writesNothing(func() {
			got := e.report(revokedRaw, expiredRaw, unknown)
			if strings.Join(got, " ") != "true_positive true_positive false_positive" {
				t.Errorf("labels %v", got)
			}
		})
		if n := e.counter.Of("Query"); n != 3 || e.counter.Total() != 3 {
			t.Errorf("%d Query of %d requests, want one read (both items of the key) per well-formed key", n, e.counter.Total())
		}
		if evs := e.leakEvents(revoked.ID); len(evs) != 0 {
			t.Errorf("key.leaked events of a revoked key: %v", evs)
		}
	})
	t.Run("a mix", func(t *testing.T) {
		got := e.report(unknown, activeRaw, "garbage", revokedRaw, activeRaw)
		if strings.Join(got, " ") != "false_positive true_positive false_positive true_positive true_positive" {
			t.Errorf("labels %v", got)
		}
		if evs := e.leakEvents(active.ID); len(evs) != 1 {
			t.Errorf("%d key.leaked events of the active key, want 1", len(evs))
		}
		if evs := e.leakEvents(revoked.ID); len(evs) != 0 {
			t.Errorf("key.leaked events of the revoked key: %v", evs)
		}
	})
}
