package authorizer_test

import (
	"bytes"
	"context"
	"log/slog"
	"maps"
	"strings"
	"testing"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/authorizer/authorizertest"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/metrics"
	"github.com/keygate/keygate/pkg/metrics/emftest"
)

// metricsCase is a decision of one outcome and the metrics its line must publish.
type metricsCase struct {
	name  string
	req   authorizer.Request
	label string // the stored key the request presents, if any
	setup func(*authorizertest.Store)
	// outcome, project and tier are the dimensions' values.
	outcome, project, tier string
	// dynamoDB is how many DynamoDB requests the decision made; failed how many failed.
	dynamoDB, failed int
}

var metricsCases = []metricsCase{
	{name: "allowed", label: "reader", outcome: "allowed", project: "acme", tier: "public", dynamoDB: 1},
	{name: "missing", outcome: "missing_key", project: "(none)", tier: "(none)"},
	{name: "malformed", req: authorizer.Request{Key: malformed()}, outcome: "malformed_key", project: "(none)", tier: "(none)"},
	{name: "not found", req: authorizer.Request{Key: authorizertest.EventKey("unknown")}, outcome: "not_found", project: "(none)", tier: "(none)", dynamoDB: 1},
	{name: "verify, another project's key", req: authorizer.Request{Project: "globex"}, label: "reader", outcome: "not_found", project: "globex", tier: "(none)", dynamoDB: 1},
	{name: "revoked", label: "revoked", outcome: "revoked", project: "acme", tier: "public", dynamoDB: 1},
	{name: "expired", label: "expired", outcome: "expired", project: "acme", tier: "public", dynamoDB: 1},
	{name: "rate limited", label: "limited", outcome: "rate_limited", project: "acme", tier: "public", dynamoDB: 1},
	{name: "throttled by DynamoDB", label: "reader", outcome: "rate_limited", project: "(none)", tier: "(none)", dynamoDB: 1,
		setup: func(s *authorizertest.Store) { s.Throttle(keyID("reader"), true) }},
	{name: "usage exceeded", req: authorizer.Request{Cost: 1}, label: "spent", outcome: "usage_exceeded", project: "acme", tier: "public", dynamoDB: 1},
	{name: "insufficient scope", req: authorizer.Request{Scopes: []string{"admin"}}, label: "reader", outcome: "insufficient_scope", project: "acme", tier: "public", dynamoDB: 1},
	{name: "IP not allowed, use returned", req: authorizer.Request{SourceIP: "198.51.100.7"}, label: "allowlisted", outcome: "ip_not_allowed", project: "acme", tier: "public", dynamoDB: 2},
	{name: "store failed", label: "admin", outcome: "error", project: "(none)", tier: "(none)", dynamoDB: 1, failed: 1,
		setup: func(s *authorizertest.Store) { s.FailWith(keys.ErrUnavailable) }},
}

// decisionSeries decides c and returns what its one log line publishes.
func decisionSeries(t *testing.T, c metricsCase) []emftest.Series {
	t.Helper()
	f := newFixture(t)
	if c.setup != nil {
		c.setup(f.store)
	}
	req := c.req
	if c.label != "" {
		req.Key = authorizertest.EventKey(c.label)
	}
	_, err := f.auth.Decide(context.Background(), req)
	if (err != nil) != (c.outcome == "error") {
		t.Fatalf("err = %v for outcome %s", err, c.outcome)
	}
	lines := bytes.Split(bytes.TrimSpace(f.logs.Bytes()), []byte("\n"))
	if len(lines) != 1 {
		t.Fatalf("%d log lines for one decision: the metrics belong in the decision's own line\n%s", len(lines), f.logs)
	}
	series, err := emftest.Parse(lines[0])
	if err != nil {
		t.Fatalf("not EMF: %v\n%s", err, lines[0])
	}
	if req.Key != "" {
		assertNoSecrets(t, f.logs.String(), req.Key)
	}
	return series
}

// Every decision's line is an EMF document publishing authorizations by
// outcome, and per project, tier and outcome; its latency, and its
// DynamoDB requests' when it made any, stack-wide and per project and tier.
func TestDecisionMetrics(t *testing.T) {
	for _, c := range metricsCases {
		t.Run(c.name, func(t *testing.T) {
			got := map[string]string{}
			for _, s := range decisionSeries(t, c) {
				if s.Namespace != metrics.DefaultNamespace {
					t.Errorf("namespace %q", s.Namespace)
				}
				for dim, v := range s.Values {
					if want := map[string]string{"outcome": c.outcome, "project": c.project, "tier": c.tier}[dim]; v != want {
						t.Errorf("%s: dimension %s = %q, want %q", s.Name, dim, v, want)
					}
				}
				got[s.Name+" "+strings.Join(s.Dimensions, ",")] = s.Unit
				switch {
				case s.Name == "authorizations" && s.Value != 1,
					s.Name == "dynamodbErrors" && s.Value != float64(c.failed):
					t.Errorf("%s = %v", s.Name, s.Value)
				}
			}
			want := map[string]string{
				"authorizations outcome":              "Count",
				"authorizations project,tier,outcome": "Count",
				"latencyMs ":                          "Milliseconds",
				"latencyMs project,tier":              "Milliseconds",
			}
			if c.dynamoDB > 0 {
				want["dynamodbLatencyMs "], want["dynamodbLatencyMs project,tier"] = "Milliseconds", "Milliseconds"
				want["dynamodbErrors "], want["dynamodbErrors project,tier"] = "Count", "Count"
			}
			if !maps.Equal(got, want) {
				t.Errorf("series (name dimensions: unit)\n\t%v\nwant\n\t%v", got, want)
			}
		})
	}
}

// The namespace is the configured one.
func TestMetricsNamespace(t *testing.T) {
	var logs bytes.Buffer
	store := authorizertest.NewStore()
	auth := authorizer.New(keys.DefaultConfig(), store, slog.New(slog.NewJSONHandler(&logs, nil)), authorizer.WithMetricsNamespace("keygate/prod"))
	if _, err := auth.Decide(context.Background(), authorizer.Request{}); err != nil {
		t.Fatal(err)
	}
	series, err := emftest.Parse(bytes.TrimSpace(logs.Bytes()))
	if err != nil || len(series) == 0 || series[0].Namespace != "keygate/prod" {
		t.Fatalf("%+v, %v", series, err)
	}
}
