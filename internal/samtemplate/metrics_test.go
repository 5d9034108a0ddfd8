package samtemplate

import (
	"reflect"
	"strings"
	"testing"
)

// withMonitoring is sample with an alarm on one metric, one on metric
// math, and a dashboard.
const withMonitoring = sample + `
  FailClosedAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: !Sub keygate/${AWS::StackName}
      MetricName: authorizations
      Dimensions:
        - Name: outcome
          Value: error
  ThrottlesAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Metrics:
        - Id: sum
          Expression: FILL(w, 0)
        - Id: w
          MetricStat:
            Metric:
              Namespace: AWS/DynamoDB
              MetricName: WriteThrottleEvents
              Dimensions:
                - Name: TableName
                  Value: !Ref Table
  Board:
    Type: AWS::CloudWatch::Dashboard
    Properties:
      DashboardBody: !Sub |
        {"widgets": [{"type": "metric", "properties": {"region": "${AWS::Region}", "metrics": [
          [{"expression": "SEARCH('{keygate/${AWS::StackName},tier,project} MetricName=\"authorizations\"', 'Sum', 60)", "id": "e"}],
          ["keygate/${AWS::StackName}", "latencyMs", {"stat": "p99"}],
          ["AWS/Lambda", "Errors", "FunctionName", "${AuthorizerFunction}"]]}}]}
`

func TestMetrics(t *testing.T) {
	tpl, err := parse([]byte(withMonitoring))
	if err != nil {
		t.Fatal(err)
	}
	want := []MetricRef{
		{Resource: "Board", Namespace: "keygate/${AWS::StackName}", Name: "authorizations", Dimensions: []string{"project", "tier"}},
		{Resource: "Board", Namespace: "keygate/${AWS::StackName}", Name: "latencyMs"},
		{Resource: "Board", Namespace: "AWS/Lambda", Name: "Errors", Dimensions: []string{"FunctionName"}},
		{Resource: "FailClosedAlarm", Namespace: "keygate/${AWS::StackName}", Name: "authorizations", Dimensions: []string{"outcome"}},
		{Resource: "ThrottlesAlarm", Namespace: "AWS/DynamoDB", Name: "WriteThrottleEvents", Dimensions: []string{"TableName"}},
	}
	if !reflect.DeepEqual(tpl.Metrics, want) {
		t.Errorf("metrics\n\t%+v\nwant\n\t%+v", tpl.Metrics, want)
	}
}

func TestMetricsRejects(t *testing.T) {
	for name, tc := range map[string]struct{ from, to string }{
		"the . shorthand":         {`["AWS/Lambda", "Errors"`, `[".", "Errors"`},
		"an odd dimension":        {`"FunctionName", "${AuthorizerFunction}"`, `"FunctionName"`},
		"a metric math dashboard": {`"expression": "SEARCH(`, `"expression": "SUM(`},
		"a body not JSON":         {`{"widgets"`, `{widgets`},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parse([]byte(strings.Replace(withMonitoring, tc.from, tc.to, 1))); err == nil || !strings.Contains(err.Error(), "Board.DashboardBody") {
				t.Fatalf("err = %v, want one about Board.DashboardBody", err)
			}
		})
	}
}
