package samtemplate

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

const (
	alarmType     = "AWS::CloudWatch::Alarm"
	dashboardType = "AWS::CloudWatch::Dashboard"
)

// MetricRef is a CloudWatch metric an alarm or a dashboard graphs, for the
// test that checks them against the metrics the code publishes.
type MetricRef struct {
	// Resource is the alarm's or the dashboard's logical id.
	Resource string
	// Namespace is as written, substitutions unresolved: keygate/${AWS::StackName}.
	Namespace string
	Name      string
	// Dimensions are the dimensions' names, sorted: values do not matter
	// to whether the code publishes the metric.
	Dimensions []string
}

type (
	metricProps struct {
		Namespace  yaml.Node `yaml:"Namespace"`
		MetricName string    `yaml:"MetricName"`
		Dimensions []struct {
			Name string `yaml:"Name"`
		} `yaml:"Dimensions"`
	}
	alarmProps struct {
		metricProps `yaml:",inline"`
		Metrics     []struct {
			MetricStat struct {
				Metric metricProps `yaml:"Metric"`
			} `yaml:"MetricStat"`
		} `yaml:"Metrics"`
	}
	dashboardProps struct {
		DashboardBody yaml.Node `yaml:"DashboardBody"`
	}
)

// alarmMetrics are the metrics of an alarm: its own, or those its metric
// math reads.
func alarmMetrics(id string, node yaml.Node) ([]MetricRef, error) {
	var props alarmProps
	if err := node.Decode(&props); err != nil {
		return nil, fmt.Errorf("%s.Properties: %w", id, err)
	}
	var out []MetricRef
	for _, m := range append([]metricProps{props.metricProps}, metricStats(props)...) {
		if m.MetricName == "" {
			continue
		}
		ref := MetricRef{Resource: id, Namespace: m.Namespace.Value, Name: m.MetricName}
		for _, d := range m.Dimensions {
			ref.Dimensions = append(ref.Dimensions, d.Name)
		}
		slices.Sort(ref.Dimensions)
		out = append(out, ref)
	}
	return out, nil
}

func metricStats(p alarmProps) []metricProps {
	var out []metricProps
	for _, m := range p.Metrics {
		out = append(out, m.MetricStat.Metric)
	}
	return out
}

// search reads a SEARCH expression's schema and metric name:
// SEARCH('{Namespace,Dim1,Dim2} MetricName="name"', 'Sum', 60).
var search = regexp.MustCompile(`^SEARCH\('\{(.*)\} MetricName="([^"]+)"'`)

// dashboardMetrics are the metrics of a dashboard's metric widgets: each
// row [namespace, name, dimension, value, ..., {options}], or a SEARCH
// expression. The body's ${...} substitutions stand inside JSON strings,
// so it parses as written.
func dashboardMetrics(id string, node yaml.Node) ([]MetricRef, error) {
	var props dashboardProps
	if err := node.Decode(&props); err != nil {
		return nil, fmt.Errorf("%s.Properties: %w", id, err)
	}
	var body struct {
		Widgets []struct {
			Properties struct {
				Metrics [][]any `json:"metrics"`
			} `json:"properties"`
		} `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(props.DashboardBody.Value), &body); err != nil {
		return nil, fmt.Errorf("%s.DashboardBody: %w", id, err)
	}
	var out []MetricRef
	for _, w := range body.Widgets {
		for _, row := range w.Properties.Metrics {
			ref, err := dashboardRow(row)
			if err != nil {
				return nil, fmt.Errorf("%s.DashboardBody: metric %v: %w", id, row, err)
			}
			ref.Resource = id
			slices.Sort(ref.Dimensions)
			out = append(out, ref)
		}
	}
	return out, nil
}

func dashboardRow(row []any) (MetricRef, error) {
	var ref MetricRef
	if len(row) > 0 {
		if opts, ok := row[0].(map[string]any); ok {
			expr, _ := opts["expression"].(string)
			m := search.FindStringSubmatch(expr)
			if m == nil {
				return ref, fmt.Errorf("an expression other than SEARCH('{schema} MetricName=\"name\"', ...)")
			}
			schema := strings.Split(m[1], ",")
			return MetricRef{Namespace: schema[0], Name: m[2], Dimensions: schema[1:]}, nil
		}
	}
	var names []string
	for _, v := range row {
		s, ok := v.(string)
		if !ok {
			break // the options
		}
		names = append(names, s)
	}
	if len(names) < 2 || len(names)%2 != 0 || names[0] == "." {
		return ref, fmt.Errorf(`want "namespace", "name", then dimension name and value pairs (no "." shorthand)`)
	}
	ref.Namespace, ref.Name = names[0], names[1]
	for i := 2; i < len(names); i += 2 {
		ref.Dimensions = append(ref.Dimensions, names[i])
	}
	return ref, nil
}
