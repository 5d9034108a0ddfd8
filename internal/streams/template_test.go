package streams_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/samtemplate"
	"github.com/keygate/keygate/internal/streams"
)

const sampleTemplate = `
Globals:
  Function:
    Timeout: 10
Resources:
  KeysTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      StreamSpecification: {StreamViewType: NEW_AND_OLD_IMAGES}
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
  Failures:
    Type: AWS::SQS::Queue
  CountFunction:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 60
      Events:
        Stream:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt KeysTable.StreamArn
            StartingPosition: TRIM_HORIZON
            BatchSize: 1000
            MaximumBatchingWindowInSeconds: 5
            BisectBatchOnFunctionError: true
            MaximumRetryAttempts: 10
            DestinationConfig:
              OnFailure: {Type: SQS, Destination: !GetAtt Failures.Arn}
            FilterCriteria:
              Filters:
                - Pattern: '{"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "KEY#"}]}}}}'
  DefaultsFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Stream:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt KeysTable.StreamArn
            StartingPosition: TRIM_HORIZON
  LatestFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Stream:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt KeysTable.StreamArn
            StartingPosition: LATEST
  ApiFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Get:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: /x, Method: get}
`

func TestOptionsFromTemplate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(path, []byte(sampleTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		function string
		want     streams.Options
		err      string
	}{
		{function: "count", want: streams.Options{
			BatchSize: 1000, BatchingWindow: 5 * time.Second, MaxRetries: 10, Bisect: true,
			Filters: []string{`{"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "KEY#"}]}}}}`},
			Timeout: time.Minute, PollInterval: 250 * time.Millisecond,
		}},
		// Lambda's defaults: 100 records, no window, retries until the records expire.
		{function: "defaults", want: streams.Options{BatchSize: 100, MaxRetries: -1, Timeout: 10 * time.Second, PollInterval: 250 * time.Millisecond}},
		{function: "latest", err: "StartingPosition LATEST"},
		{function: "api", err: "function api has 0 DynamoDB events"},
		{function: "missing", err: "no function missing"},
	} {
		got, err := streams.OptionsFromTemplate(tpl, c.function)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want one containing %q", c.function, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %+v, %v; want %+v", c.function, got, err, c.want)
		}
	}
}
