package samtemplate

import (
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
`
	for _, tc := range []struct {
		name, billing, hashKey, wantErr string
	}{
		{"ok", "PAY_PER_REQUEST", "pk", ""},
		{"short-form intrinsic", "!Ref Billing", "pk", "intrinsic function !Ref"},
		{"long-form intrinsic", "{Ref: Billing}", "pk", "intrinsic function Ref"},
		{"provisioned", "PROVISIONED", "pk", "not supported"},
		{"undefined key attribute", "PAY_PER_REQUEST", "id", `"id" is not in AttributeDefinitions`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			yml := strings.Replace(strings.Replace(table, "%s", tc.billing, 1), "%s", tc.hashKey, 1)
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
