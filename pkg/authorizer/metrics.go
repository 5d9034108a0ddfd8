package authorizer

import (
	"log/slog"
	"time"

	"github.com/keygate/keygate/pkg/metrics"
)

// The decisions' metrics, published in CloudWatch's Embedded Metric Format
// by each decision's own log line (pkg/metrics): their names are the line's
// members, so a Logs Insights query and a graph name the same thing.
// template.yaml's alarms and dashboard use them; a test checks both ways.
//
// Their dimensions are the outcome, the project and the tier, never the
// key: CloudWatch bills every distinct combination of dimension values as
// one more custom metric, kept 15 months. Per key, that would be a metric
// (or four) for every key ever used, a cost growing with the keys issued
// rather than with the traffic, and graphs no one reads. A key's own
// traffic is in usage over time (pkg/usage) and in these lines' keyId.
const (
	metricAuthorizations  = "authorizations"    // 1 a decision
	metricLatency         = "latencyMs"         // the decision's time in the authorizer
	metricDynamoDBLatency = "dynamodbLatencyMs" // its DynamoDB requests' time, when it made any
	metricDynamoDBErrors  = "dynamodbErrors"    // how many of those failed

	dimOutcome = "outcome" // an Outcome, or outcomeError
	dimProject = "project"
	dimTier    = "tier"
	// outcomeError is a decision the store failed: refused, failing closed.
	outcomeError = "error"
	// noKey is the project and tier of a decision that found no key
	// (missing, malformed, not found, throttled, or the store failed); a
	// project or tier name cannot hold parentheses.
	noKey = "(none)"
)

// metricsDirectives are the directives of a decision's line, built once.
type metricsDirectives struct {
	keyless, stored []metrics.Directive
}

// newMetricsDirectives: authorizations by outcome, stack-wide (what the
// fail-closed alarm watches) and per project and tier; the times and the
// DynamoDB errors stack-wide (the empty dimension set) and per project and
// tier, not per outcome, which would multiply their series by twelve.
func newMetricsDirectives(namespace string) metricsDirectives {
	decisions := metrics.NewDirective(namespace, [][]string{{dimOutcome}, {dimProject, dimTier, dimOutcome}},
		metrics.Metric{Name: metricAuthorizations, Unit: metrics.Count})
	timing := func(ms ...metrics.Metric) metrics.Directive {
		return metrics.NewDirective(namespace, [][]string{{}, {dimProject, dimTier}}, ms...)
	}
	latency := metrics.Metric{Name: metricLatency, Unit: metrics.Milliseconds}
	return metricsDirectives{
		keyless: []metrics.Directive{decisions, timing(latency)},
		stored: []metrics.Directive{decisions, timing(latency,
			metrics.Metric{Name: metricDynamoDBLatency, Unit: metrics.Milliseconds},
			metrics.Metric{Name: metricDynamoDBErrors, Unit: metrics.Count})},
	}
}

// appendMetrics adds the members the decision's directives name but the
// outcome and latency, which the line has anyway, and the directives.
func (a *Authorizer) appendMetrics(attrs []slog.Attr, req Request, d Decision, st storeUse, at time.Time) []slog.Attr {
	project, tier := noKey, noKey
	switch {
	case d.Key != nil:
		project, tier = d.Key.Project, d.Key.Tier
	case req.Project != "":
		project = req.Project
	}
	attrs = append(attrs, slog.String(dimProject, project), slog.String(dimTier, tier), slog.Int(metricAuthorizations, 1))
	if st.requests == 0 {
		return append(attrs, metrics.Attr(at, a.emf.keyless))
	}
	return append(attrs,
		slog.Float64(metricDynamoDBLatency, milliseconds(st.latency)),
		slog.Int(metricDynamoDBErrors, st.errors),
		metrics.Attr(at, a.emf.stored))
}

// milliseconds is d in milliseconds, to the microsecond.
func milliseconds(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
