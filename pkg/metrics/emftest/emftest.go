// Package emftest checks log lines against the CloudWatch Embedded Metric
// Format specification, for tests: what CloudWatch Logs would refuse to
// extract, or extract as something else, is an error here.
package emftest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/keygate/keygate/pkg/metrics"
)

// Series is one metric a line publishes under one dimension set.
type Series struct {
	Namespace string
	Name      string
	Unit      string
	// Dimensions are the set's names, in order; Values their values.
	Dimensions []string
	Values     map[string]string
	Value      float64
}

// units are the units a MetricDefinition may name.
var units = []string{
	"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
	"Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
	"Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
	"Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}

// Parse checks that line is an EMF document and returns the series it
// publishes, one per metric and dimension set.
func Parse(line []byte) ([]Series, error) {
	var root map[string]json.RawMessage
	if err := strict(line, &root); err != nil {
		return nil, fmt.Errorf("root: not a JSON object: %w", err)
	}
	var aws struct {
		Timestamp         *json.Number                  `json:"Timestamp"`
		CloudWatchMetrics *[]map[string]json.RawMessage `json:"CloudWatchMetrics"`
	}
	raw, ok := root["_aws"]
	if !ok {
		return nil, fmt.Errorf("no top-level _aws member")
	}
	if err := strict(raw, &aws); err != nil {
		return nil, fmt.Errorf("_aws: %w", err)
	}
	if aws.Timestamp == nil {
		return nil, fmt.Errorf("_aws: no Timestamp")
	}
	// Milliseconds since the epoch: a whole number after 2001 (seconds would be far below).
	if ms, err := aws.Timestamp.Int64(); err != nil || ms < 1e12 {
		return nil, fmt.Errorf("_aws.Timestamp %s: want whole milliseconds since the epoch", *aws.Timestamp)
	}
	if aws.CloudWatchMetrics == nil {
		return nil, fmt.Errorf("_aws: no CloudWatchMetrics")
	}
	var out []Series
	for i, d := range *aws.CloudWatchMetrics {
		series, err := directive(root, d)
		if err != nil {
			return nil, fmt.Errorf("_aws.CloudWatchMetrics[%d]: %w", i, err)
		}
		out = append(out, series...)
	}
	return out, nil
}

func directive(root, d map[string]json.RawMessage) ([]Series, error) {
	for member := range d {
		if !slices.Contains([]string{"Namespace", "Dimensions", "Metrics"}, member) {
			return nil, fmt.Errorf("member %q: a MetricDirective has no other than Namespace, Dimensions, Metrics", member)
		}
	}
	var ns string
	var dims [][]string
	var defs []map[string]json.RawMessage
	for name, into := range map[string]any{"Namespace": &ns, "Dimensions": &dims, "Metrics": &defs} {
		raw, ok := d[name]
		if !ok {
			return nil, fmt.Errorf("no %s", name)
		}
		if err := strict(raw, into); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if err := metrics.CheckNamespace(ns); err != nil {
		return nil, err
	}
	if len(defs) == 0 || len(defs) > metrics.MaxMetrics {
		return nil, fmt.Errorf("%d metrics, want 1 to %d", len(defs), metrics.MaxMetrics)
	}
	values := make([]map[string]string, len(dims)) // of each set
	for i, set := range dims {
		if len(set) > metrics.MaxDimensions {
			return nil, fmt.Errorf("dimension set %v: more than %d", set, metrics.MaxDimensions)
		}
		values[i] = map[string]string{}
		for _, key := range set {
			var v string
			if err := strict(root[key], &v); err != nil || v == "" {
				return nil, fmt.Errorf("dimension %q: want a top-level member holding a non-empty string, not %s", key, root[key])
			}
			values[i][key] = v
		}
	}
	var out []Series
	for _, def := range defs {
		var name, unit string
		for member, raw := range def {
			switch member {
			case "Name":
				if err := strict(raw, &name); err != nil {
					return nil, fmt.Errorf("metric Name %s: %w", raw, err)
				}
			case "Unit":
				if err := strict(raw, &unit); err != nil || !slices.Contains(units, unit) {
					return nil, fmt.Errorf("metric Unit %s: not a CloudWatch unit", raw)
				}
			case "StorageResolution":
			default:
				return nil, fmt.Errorf("metric member %q: a MetricDefinition has Name, Unit and StorageResolution only", member)
			}
		}
		if name == "" {
			return nil, fmt.Errorf("metric without a Name")
		}
		// The specification also takes an array of numbers; keygate logs one.
		var value float64
		if err := strict(root[name], &value); err != nil {
			return nil, fmt.Errorf("metric %q: want a top-level member holding a number, not %s", name, root[name])
		}
		for i, set := range dims {
			out = append(out, Series{Namespace: ns, Name: name, Unit: unit, Dimensions: set, Values: values[i], Value: value})
		}
	}
	return out, nil
}

// strict decodes raw into v, refusing a JSON null and members v lacks.
func strict(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return fmt.Errorf("missing or null")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	return dec.Decode(v)
}
