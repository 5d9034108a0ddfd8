package samtemplate

import (
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestParsePolicies(t *testing.T) {
	for name, c := range map[string]struct {
		yaml string
		want []Statement
		err  string // a part of the error; "" for none
	}{
		"none": {yaml: ``},
		"table and indexes, one action as a scalar": {yaml: `
- Statement:
    - Effect: Allow
      Action: dynamodb:Query
      Resource:
        - !Sub ${KeysTable.Arn}/index/gsi1
        - !Sub ${KeysTable.Arn}
    - Effect: Allow
      Action: [dynamodb:GetItem, dynamodb:PutItem]
      Resource: !GetAtt KeysTable.Arn`,
			want: []Statement{
				{Actions: []string{"dynamodb:Query"}, Resources: []Resource{{Index: "gsi1"}, {}}},
				{Actions: []string{"dynamodb:GetItem", "dynamodb:PutItem"}, Resources: []Resource{{}}},
			}},
		"leading keys": {yaml: `
- Statement:
    - Effect: Allow
      Action: [dynamodb:GetItem]
      Resource: !GetAtt KeysTable.Arn
      Condition:
        ForAllValues:StringEquals:
          dynamodb:LeadingKeys: [CONFIG]`,
			want: []Statement{{Actions: []string{"dynamodb:GetItem"}, Resources: []Resource{{}}, LeadingKeys: []string{"CONFIG"}}}},
		"deny": {yaml: `
- Statement:
    - {Effect: Deny, Action: dynamodb:GetItem, Resource: !GetAtt KeysTable.Arn}`, err: `Effect "Deny"`},
		"another condition": {yaml: `
- Statement:
    - Effect: Allow
      Action: dynamodb:GetItem
      Resource: !GetAtt KeysTable.Arn
      Condition:
        StringEquals:
          dynamodb:LeadingKeys: [CONFIG]`, err: "Condition StringEquals"},
		"another attribute": {yaml: `
- Statement:
    - Effect: Allow
      Action: dynamodb:GetItem
      Resource: !GetAtt KeysTable.Arn
      Condition:
        ForAllValues:StringEquals:
          dynamodb:Attributes: [pk]`, err: "Condition ForAllValues:StringEquals"},
		"another table": {yaml: `
- Statement:
    - {Effect: Allow, Action: dynamodb:GetItem, Resource: !GetAtt OtherTable.Arn}`, err: `Resource !GetAtt "OtherTable.Arn"`},
		"an index wildcard": {yaml: `
- Statement:
    - {Effect: Allow, Action: dynamodb:Query, Resource: !Sub "${KeysTable.Arn}/index/*"}`, err: "Resource !Sub"},
		"a literal ARN": {yaml: `
- Statement:
    - {Effect: Allow, Action: dynamodb:Query, Resource: "arn:aws:dynamodb:*:*:table/keys"}`, err: "Resource"},
		"a SAM policy template": {yaml: `
- DynamoDBCrudPolicy:
    TableName: !Ref KeysTable`, err: "Statement list"},
		"a managed policy": {yaml: `
- AmazonDynamoDBFullAccess`, err: "Policies"},
	} {
		t.Run(name, func(t *testing.T) {
			var n yaml.Node
			if err := yaml.Unmarshal([]byte(c.yaml), &n); err != nil {
				t.Fatal(err)
			}
			if n.Kind == yaml.DocumentNode {
				n = *n.Content[0]
			}
			got, err := parsePolicies(n)
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

// TestModulePolicies reads template.yaml's policies: the conditioned
// statement of list-keys and the function without any.
func TestModulePolicies(t *testing.T) {
	tpl, err := LoadModule()
	if err != nil {
		t.Fatal(err)
	}
	list, _ := tpl.Function("list-keys")
	want := Statement{Actions: []string{"dynamodb:GetItem", "dynamodb:PutItem"}, Resources: []Resource{{}}, LeadingKeys: []string{"CONFIG"}}
	if len(list.Policy) != 3 || !reflect.DeepEqual(list.Policy[2], want) {
		t.Errorf("list-keys policy %+v, want its third statement %+v", list.Policy, want)
	}
	if whoami, _ := tpl.Function("whoami"); whoami.Policy != nil {
		t.Errorf("whoami policy %+v, want none", whoami.Policy)
	}
}

func TestStatementAdmits(t *testing.T) {
	exact := Statement{LeadingKeys: []string{"CONFIG"}}
	like := Statement{LeadingKeys: []string{"KEY#*", "OWNERLIMITS#*"}, LeadingKeysLike: true}
	for _, tc := range []struct {
		s    Statement
		pk   string
		want bool
	}{
		{Statement{}, "anything", true},
		{exact, "CONFIG", true},
		{exact, "CONFIGX", false},
		{exact, "KEY#*", false},
		{like, "KEY#key_1", true},
		{like, "OWNERLIMITS#acme#team", true},
		{like, "AUDIT#acme", false},
		{like, "XKEY#key_1", false},
		{like, "CONFIG", false},
		{Statement{LeadingKeys: []string{"A*B*C"}, LeadingKeysLike: true}, "AxxBxC", true},
		{Statement{LeadingKeys: []string{"A*B*C"}, LeadingKeysLike: true}, "AxxCxB", false},
	} {
		if got := tc.s.Admits(tc.pk); got != tc.want {
			t.Errorf("%+v admits %q: %v, want %v", tc.s, tc.pk, got, tc.want)
		}
	}
}
