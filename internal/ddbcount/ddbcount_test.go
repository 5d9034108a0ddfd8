package ddbcount_test

import (
	"context"
	"os"
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
