package samtemplate

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestFunctionName(t *testing.T) {
	for id, want := range map[string]string{
		"CreateKeyFunction":   "create-key",
		"WhoamiFunction":      "whoami",
		"RevokeOwnerFunction": "revoke-owner",
		"ListV2KeysFunction":  "list-v2-keys",
		"APIKeysFunction":     "apikeys", // as the Makefile's sed: no boundary inside capitals
	} {
		if got, err := FunctionName(id); err != nil || got != want {
			t.Errorf("FunctionName(%s) = %q, %v; want %q", id, got, err, want)
		}
	}
	for _, id := range []string{"Function", "CreateKey", "CreateKeyFn"} {
		if _, err := FunctionName(id); err == nil {
			t.Errorf("FunctionName(%s): no error", id)
		}
	}
}

const sample = `
Parameters:
  Stage:
    Type: String
    Default: beta
  Prefix:
    Type: String
    Default: kg
Globals:
  Function:
    Environment:
      Variables:
        TABLE_NAME: !Ref Table
        KEYGATE_KEY_PREFIX: !Ref Prefix
        LITERAL: "on"
Resources:
  Table:
    Type: AWS::DynamoDB::Table
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: !Ref Stage
      GatewayResponses:
        ACCESS_DENIED:
          StatusCode: 403
          ResponseParameters:
            Headers:
              Retry-After: context.authorizer.retryAfter
          ResponseTemplates:
            application/json: '{"code":"$context.authorizer.errorCode"}'
  GetThingFunction:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          LITERAL: "off"
          OWN: !Sub "${Stage}-x"
      Events:
        Get:
          Type: Api
          Properties:
            Path: /things/{id}
            Method: get
        Health:
          Type: Api
          Properties:
            Path: /health
            Method: GET
            Auth:
              Authorizer: NONE
        Queue:
          Type: SQS
          Properties:
            Queue: arn
        Changes:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt KeysTable.StreamArn
            StartingPosition: LATEST
  AuthorizerFunction:
    Type: AWS::Serverless::Function
`

func TestParse(t *testing.T) {
	tpl, err := parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	if tpl.StageName != "beta" {
		t.Errorf("stage %q, want the parameter's default", tpl.StageName)
	}
	names := []string{}
	for _, f := range tpl.Functions {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, []string{"authorizer", "get-thing"}) {
		t.Errorf("functions %v", names)
	}
	get := tpl.Functions[1]
	for name, want := range map[string]string{"TABLE_NAME": "", "KEYGATE_KEY_PREFIX": "kg", "LITERAL": "off", "OWN": ""} {
		if got, ok := get.Environment[name]; !ok || got != want {
			t.Errorf("environment %s = %q (set: %v), want %q", name, got, ok, want)
		}
	}
	if tpl.Functions[0].Environment["LITERAL"] != "on" {
		t.Errorf("the authorizer's environment lacks Globals': %v", tpl.Functions[0].Environment)
	}
	want := []Route{
		{Method: "GET", Path: "/health", Function: "get-thing", Public: true},
		{Method: "GET", Path: "/things/{id}", Function: "get-thing"},
	}
	if got := tpl.Routes(); !slices.Equal(got, want) {
		t.Errorf("routes %+v, want %+v", got, want)
	}
	wantEvents := []StreamEvent{{Name: "Changes", StartingPosition: "LATEST", BatchSize: 100, MaximumRetryAttempts: -1}}
	if !reflect.DeepEqual(get.StreamEvents, wantEvents) || tpl.Functions[0].StreamEvents != nil {
		t.Errorf("stream events %+v and %+v, want %+v and none", get.StreamEvents, tpl.Functions[0].StreamEvents, wantEvents)
	}
	wantResources := map[string]string{"Table": "AWS::DynamoDB::Table", "Api": "AWS::Serverless::Api", "GetThingFunction": functionType, "AuthorizerFunction": functionType}
	if !reflect.DeepEqual(tpl.Resources, wantResources) {
		t.Errorf("resources %v, want %v", tpl.Resources, wantResources)
	}
	r := tpl.GatewayResponses["ACCESS_DENIED"]
	if r.StatusCode != 403 || r.Headers["Retry-After"] != "context.authorizer.retryAfter" || !strings.Contains(r.Templates["application/json"], "$context.authorizer.errorCode") {
		t.Errorf("ACCESS_DENIED %+v", r)
	}
}

func TestParseRejects(t *testing.T) {
	for name, tc := range map[string]struct{ from, to, want string }{
		"a function id without Function": {"GetThingFunction:", "GetThing:", "must end in"},
		"a path that is not literal":     {"Path: /things/{id}", "Path: !Sub /things", "want a literal Path"},
		"a stage CloudFormation decides": {"StageName: !Ref Stage", "StageName: !Ref Table", "StageName"},
		"no API":                         {"AWS::Serverless::Api", "AWS::ApiGateway::RestApi", "no AWS::Serverless::Api"},
		"a stream event not read":        {"StartingPosition: LATEST", "StartingPosition: LATEST\n            TumblingWindowInSeconds: 60", "GetThingFunction.Events.Changes: property TumblingWindowInSeconds"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parse([]byte(strings.Replace(sample, tc.from, tc.to, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
