package metrics_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/metrics"
	"github.com/keygate/keygate/pkg/metrics/emftest"
)

var directive = []metrics.Directive{metrics.NewDirective("keygate/test", [][]string{{"outcome"}, {"project", "outcome"}},
	metrics.Metric{Name: "authorizations", Unit: metrics.Count}, metrics.Metric{Name: "latencyMs", Unit: metrics.Milliseconds})}

// A line logged through slog's JSON handler with Attr and the members it
// names is an EMF document publishing each metric under each dimension set.
func TestAttrThroughSlog(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2030, time.January, 15, 10, 7, 30, 0, time.UTC)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("authorization",
		"outcome", "allowed", "project", "acme", "authorizations", 1, "latencyMs", 3.5, metrics.Attr(at, directive))
	series, err := emftest.Parse(buf.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if len(series) != 4 {
		t.Fatalf("%d series, want 2 metrics × 2 dimension sets: %+v", len(series), series)
	}
	if s := series[3]; s.Namespace != "keygate/test" || s.Name != "latencyMs" || s.Unit != "Milliseconds" || s.Value != 3.5 ||
		strings.Join(s.Dimensions, ",") != "project,outcome" || s.Values["project"] != "acme" {
		t.Errorf("series %+v", s)
	}
	if !strings.Contains(buf.String(), fmt.Sprintf(`"Timestamp":%d`, at.UnixMilli())) {
		t.Errorf("no Timestamp in milliseconds: %s", buf.String())
	}
}

// Parse refuses each way a line breaks the specification.
func TestParseRefuses(t *testing.T) {
	const aws = `"_aws":{"Timestamp":1894605250000,"CloudWatchMetrics":[{"Namespace":"kg","Dimensions":[["outcome"]],"Metrics":[{"Name":"n","Unit":"Count"}]}]}`
	if _, err := emftest.Parse([]byte(`{"outcome":"allowed","n":1,` + aws + `}`)); err != nil {
		t.Fatalf("the valid line: %v", err)
	}
	for name, line := range map[string]string{
		"no _aws":               `{"outcome":"allowed","n":1}`,
		"nested _aws":           `{"outcome":"allowed","n":1,"log":{` + aws + `}}`,
		"metric missing":        `{"outcome":"allowed",` + aws + `}`,
		"metric a string":       `{"outcome":"allowed","n":"1",` + aws + `}`,
		"dimension missing":     `{"n":1,` + aws + `}`,
		"dimension a number":    `{"outcome":7,"n":1,` + aws + `}`,
		"dimension empty":       `{"outcome":"","n":1,` + aws + `}`,
		"timestamp in seconds":  `{"outcome":"allowed","n":1,` + strings.Replace(aws, "1894605250000", "1894605250", 1) + `}`,
		"no timestamp":          `{"outcome":"allowed","n":1,` + strings.Replace(aws, `"Timestamp":1894605250000,`, "", 1) + `}`,
		"unknown unit":          `{"outcome":"allowed","n":1,` + strings.Replace(aws, `"Count"`, `"Requests"`, 1) + `}`,
		"dimensions not nested": `{"outcome":"allowed","n":1,` + strings.Replace(aws, `[["outcome"]]`, `["outcome"]`, 1) + `}`,
		"AWS namespace":         `{"outcome":"allowed","n":1,` + strings.Replace(aws, `"kg"`, `"AWS/Lambda"`, 1) + `}`,
		"extra directive field": `{"outcome":"allowed","n":1,` + strings.Replace(aws, `"Namespace"`, `"Region":"x","Namespace"`, 1) + `}`,
	} {
		if _, err := emftest.Parse([]byte(line)); err == nil {
			t.Errorf("%s: no error for %s", name, line)
		}
	}
}

func TestNewDirectivePanicsOverLimits(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for 101 metrics")
		}
	}()
	metrics.NewDirective("keygate", nil, make([]metrics.Metric, metrics.MaxMetrics+1)...)
}
