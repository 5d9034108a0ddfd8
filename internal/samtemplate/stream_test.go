package samtemplate

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseStreamEvent(t *testing.T) {
	const full = `
Stream: !GetAtt KeysTable.StreamArn
StartingPosition: TRIM_HORIZON
BatchSize: 1000
MaximumBatchingWindowInSeconds: 5
BisectBatchOnFunctionError: true
MaximumRetryAttempts: 10
MaximumRecordAgeInSeconds: 86400
DestinationConfig:
  OnFailure:
    Type: SQS
    Destination: !GetAtt Failures.Arn
FilterCriteria:
  Filters:
    - Pattern: '{"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "KEY#"}]}}}}'
    - Pattern: '{"eventName": ["REMOVE"]}'`
	for name, c := range map[string]struct {
		yaml string
		want StreamEvent
		err  string // a part of the error; "" for none
	}{
		"every property": {yaml: full, want: StreamEvent{
			Name: "Stream", StartingPosition: "TRIM_HORIZON", BatchSize: 1000, MaximumBatchingWindow: 5 * time.Second,
			MaximumRetryAttempts: 10, BisectBatchOnFunctionError: true, OnFailure: "Failures", OnFailureType: "SQS",
			Filters: []string{`{"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "KEY#"}]}}}}`, `{"eventName": ["REMOVE"]}`},
		}},
		"Lambda's defaults": {yaml: `
Stream: !GetAtt KeysTable.StreamArn
StartingPosition: LATEST`, want: StreamEvent{Name: "Stream", StartingPosition: "LATEST", BatchSize: 100, MaximumRetryAttempts: -1}},
		"a destination without a type": {yaml: `
Stream: !GetAtt KeysTable.StreamArn
StartingPosition: LATEST
DestinationConfig: {OnFailure: {Destination: !GetAtt Failures.Arn}}`,
			want: StreamEvent{Name: "Stream", StartingPosition: "LATEST", BatchSize: 100, MaximumRetryAttempts: -1, OnFailure: "Failures"}},
		"a property not read":      {yaml: full + "\nParallelizationFactor: 2", err: "property ParallelizationFactor is not read"},
		"another stream":           {yaml: strings.Replace(full, "KeysTable.StreamArn", "Other.StreamArn", 1), err: "Stream: want !GetAtt KeysTable.StreamArn"},
		"a stream by ARN":          {yaml: strings.Replace(full, "!GetAtt KeysTable.StreamArn", "arn:aws:dynamodb:x", 1), err: "Stream"},
		"no starting position":     {yaml: strings.Replace(full, "StartingPosition: TRIM_HORIZON", "", 1), err: "StartingPosition"},
		"a timestamp position":     {yaml: strings.Replace(full, "TRIM_HORIZON", "AT_TIMESTAMP", 1), err: "StartingPosition"},
		"a batch size by !Ref":     {yaml: strings.Replace(full, "BatchSize: 1000", "BatchSize: !Ref Size", 1), err: "BatchSize: want a literal integer"},
		"a window not a number":    {yaml: strings.Replace(full, "InSeconds: 5", "InSeconds: five", 1), err: "MaximumBatchingWindowInSeconds"},
		"retries by !If":           {yaml: strings.Replace(full, "Attempts: 10", "Attempts: !If [C, 1, 2]", 1), err: "MaximumRetryAttempts"},
		"bisect not a bool":        {yaml: strings.Replace(full, "OnFunctionError: true", "OnFunctionError: maybe", 1), err: "BisectBatchOnFunctionError"},
		"a destination by ARN":     {yaml: strings.Replace(full, "!GetAtt Failures.Arn", "arn:aws:sqs:x", 1), err: "OnFailure.Destination"},
		"a destination's URL":      {yaml: strings.Replace(full, "Failures.Arn", "Failures.QueueUrl", 1), err: "OnFailure.Destination"},
		"a pattern by !Sub":        {yaml: strings.Replace(full, "- Pattern: '{\"eventName\"", "- Pattern: !Sub '{\"eventName\"", 1), err: "Filters[1].Pattern"},
		"a pattern not a string":   {yaml: strings.Replace(full, "- Pattern: '{\"eventName\": [\"REMOVE\"]}'", "- Pattern: {eventName: [REMOVE]}", 1), err: "Filters[1].Pattern"},
		"properties not a mapping": {yaml: `[Stream]`, err: "cannot unmarshal"},
	} {
		t.Run(name, func(t *testing.T) {
			var n yaml.Node
			if err := yaml.Unmarshal([]byte(c.yaml), &n); err != nil {
				t.Fatal(err)
			}
			got, err := parseStreamEvent("Stream", *n.Content[0])
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}
