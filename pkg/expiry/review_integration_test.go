package expiry_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TestForeignIndexItem: an item not written by keygate that lands in an
// EXPIRY# partition of the index (no project, not a key) is passed over:
// it must not fail every run, which would stop every warning for good.
func TestForeignIndexItem(t *testing.T) {
	e := newEnv(t)
	k := e.create(30 * time.Minute)
	at := e.clock.Now().Add(10 * time.Minute)
	for i, item := range []map[string]types.AttributeValue{
		{"pk": &types.AttributeValueMemberS{Value: "OTHER#1"}, "sk": &types.AttributeValueMemberS{Value: "X"}},
		{"pk": &types.AttributeValueMemberS{Value: "KEY#nonsense"}, "sk": &types.AttributeValueMemberS{Value: "KEY"},
			"project": &types.AttributeValueMemberS{Value: "no such project!"}},
	} {
		item["gsi4pk"] = &types.AttributeValueMemberS{Value: "EXPIRY#" + at.Format(time.DateOnly)}
		item["gsi4sk"] = &types.AttributeValueMemberS{Value: fmt.Sprintf("%013d#foreign%d", at.UnixMilli(), i)}
		if _, err := e.raw.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	e.run(0)
	e.clock.Advance(time.Hour)
	res, err := e.sched.Run(context.Background(), e.clock.Now())
	if err != nil {
		t.Fatalf("run over a foreign index item: %v", err)
	}
	if got := e.warnings(k.ID); len(got) != 1 || res.CheckedUntil != e.clock.Now() {
		t.Errorf("warnings %v, checked until %v; want key.expired, and the run through", got, res.CheckedUntil)
	}
}
