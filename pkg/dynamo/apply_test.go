package dynamo_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/keys"
)

// cancellingClient answers every transaction with a cancellation for the
// given reason, as DynamoDB does.
type cancellingClient struct {
	dynamo.Client
	reason string
}

func (c cancellingClient) TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return nil, &types.TransactionCanceledException{CancellationReasons: []types.CancellationReason{{Code: aws.String("None")}, {Code: aws.String(c.reason)}}}
}

// A cancelled transaction tells a conflict (re-read and retry, or 409) from
// throttling (503, retry later).
func TestApplyClassifiesCancellations(t *testing.T) {
	for reason, want := range map[string]error{
		"ConditionalCheckFailed":        keys.ErrConflict,
		"TransactionConflict":           keys.ErrConflict,
		"ThrottlingError":               keys.ErrUnavailable,
		"ProvisionedThroughputExceeded": keys.ErrUnavailable,
	} {
		err := dynamo.New(cancellingClient{reason: reason}, "t").Apply(context.Background(), keys.Tx{})
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", reason, err, want)
		}
	}
}
