package authorizer_test

import (
	"bytes"
	"context"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/keygate/keygate/internal/modroot"
	"github.com/keygate/keygate/internal/samtemplate"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/authorizer/authorizertest"
	"github.com/keygate/keygate/pkg/config"
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

// stackNamespace is the namespace template.yaml gives the authorizer
// (KEYGATE_METRICS_NAMESPACE) and its alarms and dashboard read.
const stackNamespace = "keygate/${AWS::StackName}"

// Every alarm and dashboard metric of keygate's namespace in template.yaml
// is one a decision publishes, with those dimensions; and every metric a
// decision publishes is on an alarm or the dashboard.
func TestTemplateMetricsArePublished(t *testing.T) {
	tpl, err := samtemplate.LoadModule()
	if err != nil {
		t.Fatal(err)
	}
	published := map[string]bool{} // "name dim,dim" with the dimensions sorted
	names := map[string]bool{}
	for _, c := range metricsCases {
		for _, s := range decisionSeries(t, c) {
			published[s.Name+" "+strings.Join(slices.Sorted(slices.Values(s.Dimensions)), ",")] = true
			names[s.Name] = true
		}
	}
	used := map[string]bool{}
	for _, m := range tpl.Metrics {
		if !strings.HasPrefix(m.Namespace, "keygate") {
			continue
		}
		if m.Namespace != stackNamespace {
			t.Errorf("%s: namespace %q, want %q", m.Resource, m.Namespace, stackNamespace)
		}
		if key := m.Name + " " + strings.Join(m.Dimensions, ","); !published[key] {
			t.Errorf("%s: metric %s with dimensions %v: no decision publishes it (published: %v)", m.Resource, m.Name, m.Dimensions, slices.Sorted(maps.Keys(published)))
		}
		used[m.Name] = true
	}
	for name := range names {
		if !used[name] {
			t.Errorf("metric %s: published, but no alarm or dashboard of template.yaml shows it", name)
		}
	}
	failClosed := slices.ContainsFunc(tpl.Metrics, func(m samtemplate.MetricRef) bool {
		return m.Resource == "AuthorizerFailClosedAlarm" && m.Name == "authorizations" && slices.Equal(m.Dimensions, []string{"outcome"})
	})
	if !failClosed {
		t.Error("AuthorizerFailClosedAlarm does not watch authorizations by outcome")
	}
	if env := globalsVariable(t, config.EnvMetricsNamespace); env != stackNamespace {
		t.Errorf("Globals set %s to %q, want %q", config.EnvMetricsNamespace, env, stackNamespace)
	}
}

// globalsVariable is a variable of template.yaml's Globals as written,
// which samtemplate leaves "" when it is a !Sub.
func globalsVariable(t *testing.T, name string) string {
	t.Helper()
	root, err := modroot.Find()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Globals struct {
			Function struct {
				Environment struct {
					Variables map[string]yaml.Node `yaml:"Variables"`
				} `yaml:"Environment"`
			} `yaml:"Function"`
		} `yaml:"Globals"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Globals.Function.Environment.Variables[name].Value
}
