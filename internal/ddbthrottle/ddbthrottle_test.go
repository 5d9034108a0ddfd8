package ddbthrottle_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/internal/ddbthrottle"
	"github.com/keygate/keygate/internal/testclock"
)

func TestMain(m *testing.M) { os.Exit(ddbtest.Main(m)) }

// setup is a throttled client on a fresh table, its clock held still.
func setup(t *testing.T, opts ddbthrottle.Options) (*dynamodb.Client, *ddbthrottle.Throttle, *testclock.Clock, string) {
	t.Helper()
	raw := ddbtest.Client(t)
	table := ddbtest.NewTable(t, raw, ddbtest.TableOptions{})
	clock := testclock.New(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	opts.Now = clock.Now
	client, th := ddbthrottle.Instrument(raw, opts)
	return client, th, clock, table
}

func key(pk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"sk": &types.AttributeValueMemberS{Value: "KEY"},
	}
}

func count(ctx context.Context, client *dynamodb.Client, table, pk string) error {
	_, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(table),
		Key:                       key(pk),
		UpdateExpression:          aws.String("ADD n :one"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
	})
	return err
}

func stored(t *testing.T, client *dynamodb.Client, table, pk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: key(pk), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

// TestHotItem: one item takes 1,000 one-unit writes in a second and no
// more, while another item at the same instant is not throttled; a
// millisecond later the hot item has one unit again.
func TestHotItem(t *testing.T) {
	client, th, clock, table := setup(t, ddbthrottle.Options{})
	ctx := context.Background()
	for i := range ddbthrottle.WriteUnitsPerSecond {
		if err := count(ctx, client, table, "KEY#hot"); err != nil {
			t.Fatalf("write %d: %v", i+1, err)
		}
	}
	err := count(ctx, client, table, "KEY#hot")
	var throttled *types.ThrottlingException
	if !errors.As(err, &throttled) {
		t.Fatalf("write 1001: %v, want a ThrottlingException", err)
	}
	if err := count(ctx, client, table, "KEY#cold"); err != nil {
		t.Errorf("another item at the same instant: %v", err)
	}
	if n := stored(t, client, table, "KEY#hot")["n"].(*types.AttributeValueMemberN).Value; n != "1000" {
		t.Errorf("the hot item counts %s, want 1000: a throttled write is not applied", n)
	}
	clock.Advance(time.Millisecond)
	if err := count(ctx, client, table, "KEY#hot"); err != nil {
		t.Errorf("a millisecond later: %v, want one more write", err)
	}
	if err := count(ctx, client, table, "KEY#hot"); !errors.As(err, &throttled) {
		t.Errorf("and another: %v, want a ThrottlingException", err)
	}
	// Each throttled call is retried by the client's retryer, as in AWS.
	if th.Throttled() < 2 {
		t.Errorf("%d throttled attempts, want at least 2", th.Throttled())
	}
}

// TestErrorAsTheSDKSeesIt: the throttle is decoded by the SDK from
// DynamoDB's wire answer: its type, code, reasons and retries.
func TestErrorAsTheSDKSeesIt(t *testing.T) {
	for _, provisioned := range []bool{false, true} {
		client, _, _, table := setup(t, ddbthrottle.Options{Provisioned: provisioned})
		ctx := context.Background()
		big := strings.Repeat("x", 1000*1024) // 1,000 write units a write
		_, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "KEY#big"}, "sk": &types.AttributeValueMemberS{Value: "KEY"},
			"blob": &types.AttributeValueMemberS{Value: big[:390*1024]},
		}})
		if err != nil {
			t.Fatal(err)
		}
		// 390 units spent: two more such puts, and the third is throttled.
		for range 2 {
			_, err = client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: "KEY#big"}, "sk": &types.AttributeValueMemberS{Value: "KEY"},
				"blob": &types.AttributeValueMemberS{Value: big[:390*1024]},
			}})
		}
		if err != nil {
			t.Fatalf("the third 390 KB put (780 units spent before it): %v", err)
		}
		err = count(ctx, client, table, "KEY#big")
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("provisioned %v: %v, want an API error", provisioned, err)
		}
		var reasons []types.ThrottlingReason
		var throttling *types.ThrottlingException
		var exceeded *types.ProvisionedThroughputExceededException
		switch {
		case !provisioned && errors.As(err, &throttling):
			reasons = throttling.ThrottlingReasons
		case provisioned && errors.As(err, &exceeded):
			reasons = exceeded.ThrottlingReasons
		default:
			t.Fatalf("provisioned %v: %T %v", provisioned, err, err)
		}
		if len(reasons) != 1 || aws.ToString(reasons[0].Reason) != ddbthrottle.ReasonWriteKeyRange ||
			!strings.HasSuffix(aws.ToString(reasons[0].Resource), ":table/"+table) {
			t.Errorf("provisioned %v: reasons %+v", provisioned, reasons)
		}
		if apiErr.ErrorFault() != smithy.FaultClient {
			t.Errorf("fault %v, want the client's", apiErr.ErrorFault())
		}
		if !strings.Contains(err.Error(), "attempt") {
			t.Errorf("%v: want the SDK's retries exhausted", err)
		}
	}
}

// TestReadHeavyItem: a 39.5 KB item costs 10 read units a strongly
// consistent read, so it takes 300 a second; reads and writes of an item
// are throttled apart, and eventually consistent reads cost half.
func TestReadHeavyItem(t *testing.T) {
	client, _, clock, table := setup(t, ddbthrottle.Options{})
	ctx := context.Background()
	item := key("KEY#read")
	item["blob"] = &types.AttributeValueMemberS{Value: strings.Repeat("r", 39*1024+512-len("pk")-len("sk")-len("KEY#read")-len("KEY")-len("blob"))}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}
	read := func(consistent bool) error {
		_, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key("KEY#read"), ConsistentRead: aws.Bool(consistent)})
		return err
	}
	for i := range ddbthrottle.ReadUnitsPerSecond / 10 {
		if err := read(true); err != nil {
			t.Fatalf("read %d: %v", i+1, err)
		}
	}
	var throttled *types.ThrottlingException
	if err := read(true); !errors.As(err, &throttled) || aws.ToString(throttled.ThrottlingReasons[0].Reason) != ddbthrottle.ReasonReadKeyRange {
		t.Fatalf("read 301: %v, want a read throttle", err)
	}
	if err := count(ctx, client, table, "KEY#read"); err != nil {
		t.Errorf("a write of the read-hot item: %v", err)
	}
	clock.Advance(time.Second)
	for i := range ddbthrottle.ReadUnitsPerSecond / 5 {
		if err := read(false); err != nil {
			t.Fatalf("eventually consistent read %d: %v", i+1, err)
		}
	}
	if err := read(false); !errors.As(err, &throttled) {
		t.Errorf("eventually consistent read 601: %v, want a throttle", err)
	}
}

// TestTransactions: each item of a transaction costs double, and a
// throttled transaction is cancelled with ThrottlingError as its reason,
// applying nothing.
func TestTransactions(t *testing.T) {
	client, _, _, table := setup(t, ddbthrottle.Options{})
	ctx := context.Background()
	update := func(pk string) types.TransactWriteItem {
		return types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(table), Key: key(pk), UpdateExpression: aws.String("ADD n :one"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
		}}
	}
	for i := range ddbthrottle.WriteUnitsPerSecond / 2 {
		if _, err := client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{update("KEY#tx")}}); err != nil {
			t.Fatalf("transaction %d: %v", i+1, err)
		}
	}
	_, err := client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{update("KEY#other"), update("KEY#tx")}})
	var canceled *types.TransactionCanceledException
	if !errors.As(err, &canceled) {
		t.Fatalf("transaction 501: %v, want a TransactionCanceledException", err)
	}
	if r := canceled.CancellationReasons; len(r) != 2 || aws.ToString(r[0].Code) != "None" || aws.ToString(r[1].Code) != "ThrottlingError" {
		t.Errorf("reasons %+v, want None and ThrottlingError", r)
	}
	if item := stored(t, client, table, "KEY#other"); item != nil {
		t.Errorf("the cancelled transaction wrote %v", item)
	}
	if n := stored(t, client, table, "KEY#tx")["n"].(*types.AttributeValueMemberN).Value; n != "500" {
		t.Errorf("counted %s, want 500", n)
	}
}

// TestConditionFailedWrites: a write refused by its condition is charged
// the old item's size, as DynamoDB charges it: a 9.5 KB item takes 100 a
// second.
func TestConditionFailedWrites(t *testing.T) {
	client, _, _, table := setup(t, ddbthrottle.Options{})
	ctx := context.Background()
	item := key("KEY#refused")
	item["blob"] = &types.AttributeValueMemberS{Value: strings.Repeat("c", 9*1024+512)}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}
	refused := func() error {
		_, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(table), Key: key("KEY#refused"),
			UpdateExpression: aws.String("SET x = :b"), ConditionExpression: aws.String("attribute_not_exists(pk)"),
			ExpressionAttributeValues:           map[string]types.AttributeValue{":b": &types.AttributeValueMemberS{Value: "x"}},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		return err
	}
	// The put took 10 units: 99 refused writes of 10 more, and the next is throttled.
	var failed *types.ConditionalCheckFailedException
	for i := range ddbthrottle.WriteUnitsPerSecond/10 - 1 {
		if err := refused(); !errors.As(err, &failed) {
			t.Fatalf("refused write %d: %v", i+1, err)
		}
	}
	var throttled *types.ThrottlingException
	if err := refused(); !errors.As(err, &throttled) {
		t.Errorf("refused write 100: %v, want a throttle", err)
	}
}

// TestCallerSeesNoCapacity: the capacity the harness asks for reaches
// the caller only as the caller asked for it, and its input is unchanged.
func TestCallerSeesNoCapacity(t *testing.T) {
	client, _, _, table := setup(t, ddbthrottle.Options{})
	ctx := context.Background()
	in := &dynamodb.PutItemInput{TableName: aws.String(table), Item: key("KEY#quiet")}
	out, err := client.PutItem(ctx, in)
	if err != nil || out.ConsumedCapacity != nil || in.ReturnConsumedCapacity != "" {
		t.Errorf("without asking: %+v, %v; input asks %q", out.ConsumedCapacity, err, in.ReturnConsumedCapacity)
	}
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err = client.PutItem(ctx, in)
	if err != nil || out.ConsumedCapacity == nil || aws.ToFloat64(out.ConsumedCapacity.CapacityUnits) != 1 || out.ConsumedCapacity.Table != nil {
		t.Errorf("asking TOTAL: %+v, %v; want 1 unit, no breakdown", out.ConsumedCapacity, err)
	}
}
