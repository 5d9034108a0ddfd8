// Package metrics publishes CloudWatch metrics in the Embedded Metric
// Format (EMF): a log line that carries an "_aws" member is read by
// CloudWatch Logs, which extracts the metrics it names from the line's own
// members. No API call, no cloudwatch:PutMetricData right, no latency.
//
// The "_aws" member goes into a line the process logs anyway, through its
// slog JSON logger (pkg/app.NewLogger): Lambda keeps a line that is already
// a JSON object as it is, also with the JSON log format, so the member stays
// at the top level where EMF requires it. The logger must have no group
// (slog.Logger.WithGroup), which would nest it.
//
// The specification:
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
package metrics

import (
	"fmt"
	"log/slog"
	"time"
	"unicode"
)

// DefaultNamespace is the namespace of a process whose configuration
// names none, as `make run`; a stack's is keygate/<stack name>
// (template.yaml, KEYGATE_METRICS_NAMESPACE).
const DefaultNamespace = "keygate"

// Limits of one directive, from the specification.
const (
	MaxMetrics    = 100 // metric definitions
	MaxDimensions = 30  // dimension keys in one dimension set
)

// Unit is a CloudWatch unit.
type Unit string

const (
	Count        Unit = "Count"
	Milliseconds Unit = "Milliseconds"
)

// Metric is a MetricDefinition: the name of a top-level member of the line
// holding a number, and its unit.
type Metric struct {
	Name string `json:"Name"`
	Unit Unit   `json:"Unit"`
}

// Directive is a MetricDirective: which members of a line are metrics, in
// what namespace, and which members (string values) are their dimensions.
// Each dimension set is one more series of each metric, which CloudWatch
// bills as one more custom metric for every distinct combination of values.
type Directive struct {
	Namespace  string     `json:"Namespace"`
	Dimensions [][]string `json:"Dimensions"`
	Metrics    []Metric   `json:"Metrics"`
}

// NewDirective checks a directive against the specification's limits. Its
// dimensions and metrics are the code's own constants, so a violation is a
// bug: it panics, as regexp.MustCompile does.
func NewDirective(namespace string, dimensions [][]string, metrics ...Metric) Directive {
	if err := CheckNamespace(namespace); err != nil {
		panic(err)
	}
	if len(metrics) == 0 || len(metrics) > MaxMetrics {
		panic(fmt.Sprintf("metrics: %d metrics in a directive, want 1 to %d", len(metrics), MaxMetrics))
	}
	for _, set := range dimensions {
		if len(set) > MaxDimensions {
			panic(fmt.Sprintf("metrics: dimension set %v has more than %d keys", set, MaxDimensions))
		}
	}
	return Directive{Namespace: namespace, Dimensions: dimensions, Metrics: metrics}
}

// CheckNamespace refuses what CloudWatch does not take as a custom
// namespace: 1 to 255 printable ASCII characters, not starting with "AWS/"
// (AWS's own) or ":".
func CheckNamespace(ns string) error {
	if ns == "" || len(ns) > 255 || ns[0] == ':' || len(ns) >= 4 && ns[:4] == "AWS/" {
		return fmt.Errorf("metrics namespace %q: want 1-255 characters, not starting with AWS/ or ':'", ns)
	}
	for _, r := range ns {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return fmt.Errorf("metrics namespace %q: want printable ASCII", ns)
		}
	}
	return nil
}

// metadata is the "_aws" member.
type metadata struct {
	Timestamp         int64       `json:"Timestamp"` // milliseconds since the epoch
	CloudWatchMetrics []Directive `json:"CloudWatchMetrics"`
}

// Attr is the "_aws" member of a line logged at at, for the directives.
// The caller logs, in the same line, every metric they name as a number and
// every dimension as a string (pkg/metrics/emftest checks lines so). A
// slice rather than variadic arguments: the caller builds it once.
func Attr(at time.Time, directives []Directive) slog.Attr {
	return slog.Any("_aws", metadata{Timestamp: at.UnixMilli(), CloudWatchMetrics: directives})
}
