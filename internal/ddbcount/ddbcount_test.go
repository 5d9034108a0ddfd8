package ddbcount_test

import (
	"context"
	"os"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/ddbcount"
	"github.com/keygate/keygate/internal/ddbtest"
)

func TestMain(m *testing.M) { os.Exit(ddbtest.Main(m)) }

// TestConsumedCapacity writes and reads one small item of the template's
// table (in no index): one write unit, one read unit for a strongly
// consistent read, recorded without touching the caller's inputs.
func TestConsumedCapacity(t *testing.T) {
	raw := ddbtest.Client(t)
	table := ddbtest.NewTable(t, raw, ddbtest.TableOptions{})
	client, counter := ddbcount.Instrument(raw, ddbcount.WithConsumedCapacity())
	ctx := context.Background()
	key := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "KEY#ddbcount"},
		"sk": &types.AttributeValueMemberS{Value: "KEY"},
	}
	update := &dynamodb.UpdateItemInput{
		TableName:                 aws.String(table),
		Key:                       key,
		UpdateExpression:          aws.String("ADD n :one"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
	}
	if _, err := client.UpdateItem(ctx, update); err != nil {
		t.Fatal(err)
	}
	if update.ReturnConsumedCapacity != "" {
		t.Errorf("the caller's input changed: ReturnConsumedCapacity %q", update.ReturnConsumedCapacity)
	}
	if _, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if got := counter.Capacity("UpdateItem"); got.Total != 1 || got.Table != 1 || len(got.Indexes) != 0 {
		t.Errorf("UpdateItem capacity %+v, want 1 on the table", got)
	}
	if got := counter.Capacity("GetItem"); got.Total != 1 || got.Table != 1 {
		t.Errorf("GetItem capacity %+v, want 1 on the table", got)
	}
	if counter.Of("UpdateItem") != 1 || counter.Of("GetItem") != 1 {
		t.Errorf("counted %d UpdateItem and %d GetItem, want 1 each", counter.Of("UpdateItem"), counter.Of("GetItem"))
	}
	counter.Reset()
	if got := counter.Capacity("UpdateItem"); got.Total != 0 || counter.Total() != 0 {
		t.Errorf("after Reset: capacity %+v, %d operations", got, counter.Total())
	}
}

// TestWithoutConsumedCapacity: without the option nothing is asked for.
func TestWithoutConsumedCapacity(t *testing.T) {
	raw := ddbtest.Client(t)
	table := ddbtest.NewTable(t, raw, ddbtest.TableOptions{})
	client, counter := ddbcount.Instrument(raw)
	out, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(table),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "KEY#none"},
			"sk": &types.AttributeValueMemberS{Value: "KEY"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.ConsumedCapacity != nil || counter.Capacity("GetItem").Total != 0 || counter.Of("GetItem") != 1 {
		t.Errorf("consumed capacity %+v, recorded %+v", out.ConsumedCapacity, counter.Capacity("GetItem"))
	}
}

// TestAccesses records what IAM authorizes: a transaction per item, a
// Query with its index, and each item's partition key.
func TestAccesses(t *testing.T) {
	raw := ddbtest.Client(t)
	table := ddbtest.NewTable(t, raw, ddbtest.TableOptions{})
	client, counter := ddbcount.Instrument(raw, ddbcount.WithAccesses("pk"))
	ctx := context.Background()
	key := func(pk string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: "KEY"}}
	}
	if _, err := client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: &table, Item: key("KEY#a")}},
		{Update: &types.Update{TableName: &table, Key: key("KEY#b"), UpdateExpression: aws.String("SET n = :one"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}}}},
		{ConditionCheck: &types.ConditionCheck{TableName: &table, Key: key("KEY#c"), ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		{Delete: &types.Delete{TableName: &table, Key: key("KEY#d")}},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Query(ctx, &dynamodb.QueryInput{TableName: &table, IndexName: aws.String("gsi1"), KeyConditionExpression: aws.String("gsi1pk = :p"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: "x"}}}); err != nil {
		t.Fatal(err)
	}
	// On the table, a Query's partition is its key condition's.
	if _, err := client.Query(ctx, &dynamodb.QueryInput{TableName: &table, KeyConditionExpression: aws.String("#p = :p AND begins_with(sk, :s)"),
		ExpressionAttributeNames:  map[string]string{"#p": "pk"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: "USAGE#x"}, ":s": &types.AttributeValueMemberS{Value: "h"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: key("CONFIG")}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{table: {Keys: []map[string]types.AttributeValue{key("KEY#a"), key("KEY#b")}}}}); err != nil {
		t.Fatal(err)
	}
	tx := "TransactWriteItems"
	want := []ddbcount.Access{
		{Operation: tx, Action: "dynamodb:PutItem", Table: table, PartitionKeys: []string{"KEY#a"}},
		{Operation: tx, Action: "dynamodb:UpdateItem", Table: table, PartitionKeys: []string{"KEY#b"}},
		{Operation: tx, Action: "dynamodb:ConditionCheckItem", Table: table, PartitionKeys: []string{"KEY#c"}},
		{Operation: tx, Action: "dynamodb:DeleteItem", Table: table, PartitionKeys: []string{"KEY#d"}},
		{Operation: "Query", Action: "dynamodb:Query", Table: table, Index: "gsi1"},
		{Operation: "Query", Action: "dynamodb:Query", Table: table, PartitionKeys: []string{"USAGE#x"}},
		{Operation: "GetItem", Action: "dynamodb:GetItem", Table: table, PartitionKeys: []string{"CONFIG"}},
		{Operation: "BatchGetItem", Action: "dynamodb:BatchGetItem", Table: table, PartitionKeys: []string{"KEY#a", "KEY#b"}},
	}
	if got := counter.Accesses(); !reflect.DeepEqual(got, want) {
		t.Errorf("accesses\n got %+v\nwant %+v", got, want)
	}
	counter.Reset()
	if got := counter.Accesses(); got != nil {
		t.Errorf("after Reset: %+v", got)
	}
}
