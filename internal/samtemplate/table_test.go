package samtemplate_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/internal/samtemplate"
)

func TestMain(m *testing.M) { os.Exit(ddbtest.Main(m)) }

func loadTemplate(t *testing.T) *samtemplate.Table {
	t.Helper()
	tpl, err := samtemplate.LoadModule()
	if err != nil {
		t.Fatal(err)
	}
	if tpl.Table == nil {
		t.Fatal("template.yaml has no KeysTable")
	}
	return tpl.Table
}

// keys renders a key schema as "pk HASH,sk RANGE".
func keys(ks []types.KeySchemaElement) string {
	var parts []string
	for _, k := range ks {
		parts = append(parts, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
	}
	return strings.Join(parts, ",")
}

func TestLoadTemplate(t *testing.T) {
	t.Parallel()
	def := loadTemplate(t)

	var attrs []string
	for _, a := range def.AttributeDefinitions {
		attrs = append(attrs, aws.ToString(a.AttributeName)+":"+string(a.AttributeType))
	}
	if want := []string{"pk:S", "sk:S", "gsi1pk:S", "gsi1sk:S", "gsi2pk:S", "gsi2sk:S", "gsi3pk:S", "gsi3sk:S", "gsi4pk:S", "gsi4sk:S"}; !slices.Equal(attrs, want) {
		t.Errorf("AttributeDefinitions = %v, want %v", attrs, want)
	}
	if got, want := keys(def.KeySchema), "pk HASH,sk RANGE"; got != want {
		t.Errorf("KeySchema = %q, want %q", got, want)
	}
	if def.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("BillingMode = %q", def.BillingMode)
	}
	if def.TTLAttribute != "ttl" {
		t.Errorf("TTLAttribute = %q, want ttl", def.TTLAttribute)
	}
	if def.StreamViewType != types.StreamViewTypeNewAndOldImages {
		t.Errorf("StreamViewType = %q, want NEW_AND_OLD_IMAGES", def.StreamViewType)
	}
	var gsis []string
	for _, g := range def.GlobalSecondaryIndexes {
		gsis = append(gsis, aws.ToString(g.IndexName)+"("+keys(g.KeySchema)+")"+string(g.Projection.ProjectionType)+
			fmt.Sprint(g.Projection.NonKeyAttributes))
	}
	// The indexes leave the authorizer's attributes out, so authorizations never write them.
	want := []string{
		"gsi1(gsi1pk HASH,gsi1sk RANGE)INCLUDE[status tier expiresAt ttl]",
		"gsi2(gsi2pk HASH,gsi2sk RANGE)INCLUDE[status tier expiresAt ttl]",
		"gsi3(gsi3pk HASH,gsi3sk RANGE)INCLUDE[status tier expiresAt ttl owner]",
		"gsi4(gsi4pk HASH,gsi4sk RANGE)INCLUDE[project]",
	}
	if !slices.Equal(gsis, want) {
		t.Errorf("GlobalSecondaryIndexes = %v, want %v", gsis, want)
	}
}

func TestCreateTableInputIsACopy(t *testing.T) {
	t.Parallel()
	def := loadTemplate(t)
	in := def.CreateTableInput("a")
	in.KeySchema[0].AttributeName = aws.String("changed")
	in.GlobalSecondaryIndexes[0].Projection.ProjectionType = types.ProjectionTypeKeysOnly
	if got := aws.ToString(def.KeySchema[0].AttributeName); got != "pk" {
		t.Errorf("definition changed through CreateTableInput: %q", got)
	}
	if got := def.GlobalSecondaryIndexes[0].Projection.ProjectionType; got != types.ProjectionTypeInclude {
		t.Errorf("definition changed through CreateTableInput: %q", got)
	}
}

// TestCreateMatchesTemplate creates tables in DynamoDB Local and checks that
// what DynamoDB reports matches the template.
func TestCreateMatchesTemplate(t *testing.T) {
	t.Parallel()
	def := loadTemplate(t)
	client := ddbtest.Client(t)
	for _, ttl := range []bool{true, false} {
		t.Run("ttl="+map[bool]string{true: "on", false: "off"}[ttl], func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			name := ddbtest.NewTable(t, client, ddbtest.TableOptions{TTL: ttl})

			out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
			if err != nil {
				t.Fatal(err)
			}
			desc := out.Table
			if desc.TableStatus != types.TableStatusActive {
				t.Errorf("status = %s", desc.TableStatus)
			}
			if got, want := keys(desc.KeySchema), keys(def.KeySchema); got != want {
				t.Errorf("KeySchema = %q, want %q", got, want)
			}
			if len(desc.AttributeDefinitions) != len(def.AttributeDefinitions) {
				t.Errorf("%d attribute definitions, want %d", len(desc.AttributeDefinitions), len(def.AttributeDefinitions))
			}
			if desc.BillingModeSummary == nil || desc.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
				t.Errorf("BillingModeSummary = %+v", desc.BillingModeSummary)
			}
			gsis := map[string]types.GlobalSecondaryIndexDescription{}
			for _, g := range desc.GlobalSecondaryIndexes {
				gsis[aws.ToString(g.IndexName)] = g
			}
			for _, want := range def.GlobalSecondaryIndexes {
				got, ok := gsis[aws.ToString(want.IndexName)]
				if !ok {
					t.Errorf("index %s missing", aws.ToString(want.IndexName))
					continue
				}
				if keys(got.KeySchema) != keys(want.KeySchema) || got.Projection.ProjectionType != want.Projection.ProjectionType {
					t.Errorf("index %s = %s %s, want %s %s", aws.ToString(want.IndexName),
						keys(got.KeySchema), got.Projection.ProjectionType, keys(want.KeySchema), want.Projection.ProjectionType)
				}
			}
			if len(gsis) != len(def.GlobalSecondaryIndexes) {
				t.Errorf("%d indexes, want %d", len(gsis), len(def.GlobalSecondaryIndexes))
			}
			if s := desc.StreamSpecification; s == nil || !aws.ToBool(s.StreamEnabled) || s.StreamViewType != def.StreamViewType || desc.LatestStreamArn == nil {
				t.Errorf("stream %+v (ARN %v), want an enabled %s stream", s, aws.ToString(desc.LatestStreamArn), def.StreamViewType)
			}

			ttlOut, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
			if err != nil {
				t.Fatal(err)
			}
			d := ttlOut.TimeToLiveDescription
			if ttl {
				if d.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != def.TTLAttribute {
					t.Errorf("time to live = %s on %q, want ENABLED on %q", d.TimeToLiveStatus, aws.ToString(d.AttributeName), def.TTLAttribute)
				}
			} else if d.TimeToLiveStatus != types.TimeToLiveStatusDisabled {
				t.Errorf("time to live = %s, want DISABLED", d.TimeToLiveStatus)
			}
		})
	}
}

func TestEnsureExistsIsIdempotent(t *testing.T) {
	t.Parallel()
	def := loadTemplate(t)
	client := ddbtest.Client(t)
	ctx := t.Context()
	name := "ensure_" + strings.ReplaceAll(t.Name(), "/", "_")
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	for i := range 2 {
		if err := samtemplate.EnsureExists(ctx, client, def, name); err != nil {
			t.Fatalf("EnsureExists #%d: %v", i+1, err)
		}
	}
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if ttl.TimeToLiveDescription.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
		t.Errorf("time to live = %s, want ENABLED", ttl.TimeToLiveDescription.TimeToLiveStatus)
	}
	// Creating it again must fail: EnsureExists did not hide a second table.
	if err := samtemplate.Create(ctx, client, def, name, samtemplate.CreateOptions{}); err == nil {
		t.Error("Create of an existing table succeeded")
	}
}

// TestEnsureExistsEnablesTheStream: a table made before the template had a
// stream (a local store from an older keygate) gets it.
func TestEnsureExistsEnablesTheStream(t *testing.T) {
	t.Parallel()
	def := loadTemplate(t)
	client := ddbtest.Client(t)
	ctx := t.Context()
	name := "nostream_" + strings.ReplaceAll(t.Name(), "/", "_")
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	withoutStream := *def
	withoutStream.StreamViewType = ""
	if err := samtemplate.Create(ctx, client, &withoutStream, name, samtemplate.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := samtemplate.EnsureExists(ctx, client, def, name); err != nil {
		t.Fatal(err)
	}
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if s := out.Table.StreamSpecification; s == nil || !aws.ToBool(s.StreamEnabled) || s.StreamViewType != def.StreamViewType {
		t.Errorf("stream %+v, want an enabled %s stream", s, def.StreamViewType)
	}

	otherView := *def
	otherView.StreamViewType = types.StreamViewTypeKeysOnly
	if err := samtemplate.EnsureExists(ctx, client, &otherView, name); err == nil || !strings.Contains(err.Error(), "KEYS_ONLY") {
		t.Errorf("EnsureExists with another view type: %v, want an error naming it", err)
	}
}

// TestEnsureExistsAddsIndexes: a table made before the template had an
// index (a local store from an older keygate) gets it, built from the
// items it holds.
func TestEnsureExistsAddsIndexes(t *testing.T) {
	t.Parallel()
	def := loadTemplate(t)
	client := ddbtest.Client(t)
	ctx := t.Context()
	name := "noindex_" + strings.ReplaceAll(t.Name(), "/", "_")
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	last := def.GlobalSecondaryIndexes[len(def.GlobalSecondaryIndexes)-1]
	newest := aws.ToString(last.IndexName)
	hashKey, rangeKey := aws.ToString(last.KeySchema[0].AttributeName), aws.ToString(last.KeySchema[1].AttributeName)
	older := *def
	older.GlobalSecondaryIndexes = def.GlobalSecondaryIndexes[:len(def.GlobalSecondaryIndexes)-1]
	older.AttributeDefinitions = slices.DeleteFunc(slices.Clone(def.AttributeDefinitions), func(a types.AttributeDefinition) bool {
		return aws.ToString(a.AttributeName) == hashKey || aws.ToString(a.AttributeName) == rangeKey
	})
	if err := samtemplate.Create(ctx, client, &older, name, samtemplate.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(name), Item: map[string]types.AttributeValue{
		"pk": s("a"), "sk": s("b"), hashKey: s("h"), rangeKey: s("r"),
	}}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the second finds it there
		if err := samtemplate.EnsureExists(ctx, client, def, name); err != nil {
			t.Fatalf("EnsureExists #%d: %v", i+1, err)
		}
	}
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(out.Table.GlobalSecondaryIndexes); got != len(def.GlobalSecondaryIndexes) {
		t.Fatalf("%d indexes, want %d", got, len(def.GlobalSecondaryIndexes))
	}
	q, err := client.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(name), IndexName: aws.String(newest), KeyConditionExpression: aws.String("#h = :h"),
		ExpressionAttributeNames: map[string]string{"#h": hashKey}, ExpressionAttributeValues: map[string]types.AttributeValue{":h": s("h")},
	})
	if err != nil || len(q.Items) != 1 {
		t.Errorf("query of the added index %s: %d items, %v; want the item written before", newest, len(q.Items), err)
	}
}
