package samtemplate

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseTableErrors(t *testing.T) {
	t.Parallel()
	const table = `
Resources:
  Other:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: !Sub "${AWS::StackName}"
  KeysTable:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-keys"
      BillingMode: %s
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
      KeySchema:
        - {AttributeName: %s, KeyType: HASH}
      StreamSpecification:
        StreamViewType: %s
`
	for _, tc := range []struct {
		name, billing, hashKey, streamView, wantErr string
	}{
		{"ok", "PAY_PER_REQUEST", "pk", "NEW_IMAGE", ""},
		{"short-form intrinsic", "!Ref Billing", "pk", "NEW_IMAGE", "intrinsic function !Ref"},
		{"long-form intrinsic", "{Ref: Billing}", "pk", "NEW_IMAGE", "intrinsic function Ref"},
		{"provisioned", "PROVISIONED", "pk", "NEW_IMAGE", "not supported"},
		{"undefined key attribute", "PAY_PER_REQUEST", "id", "NEW_IMAGE", `"id" is not in AttributeDefinitions`},
		{"unknown stream view", "PAY_PER_REQUEST", "pk", "NEW_IMAGES", `StreamViewType "NEW_IMAGES"`},
		{"stream view by parameter", "PAY_PER_REQUEST", "pk", "!Ref View", "intrinsic function !Ref"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			yml := fmt.Sprintf(table, tc.billing, tc.hashKey, tc.streamView)
			_, err := parseTable([]byte(yml))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Load: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Load error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}
