package dynamo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/keygate/keygate/pkg/keys"
)

func TestClassify(t *testing.T) {
	op := func(err error) error {
		return &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "UpdateItem", Err: err}
	}
	tests := []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"transaction conflict", op(&types.TransactionConflictException{Message: aws.String("Transaction is ongoing for the item")}), true},
		{"transaction conflict, generic", op(&smithy.GenericAPIError{Code: "TransactionConflictException"}), true},
		{"throttled", op(&types.ProvisionedThroughputExceededException{}), true},
		{"request limit", op(&types.RequestLimitExceeded{}), true},
		{"throttling", op(&smithy.GenericAPIError{Code: "ThrottlingException"}), true},
		{"internal server error", op(&types.InternalServerError{}), true},
		{"deadline", op(fmt.Errorf("send: %w", context.DeadlineExceeded)), true},
		{"canceled", op(context.Canceled), true},
		{"network", op(&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}), true},
		{"condition failed", op(&types.ConditionalCheckFailedException{}), false},
		{"transaction canceled", op(&types.TransactionCanceledException{}), false},
		{"validation", op(&smithy.GenericAPIError{Code: "ValidationException"}), false},
		{"resource not found", op(&types.ResourceNotFoundException{}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := storeError("count key use", tt.err)
			if got := errors.Is(err, keys.ErrUnavailable); got != tt.unavailable {
				t.Errorf("storeError(%v): unavailable %v, want %v", tt.err, got, tt.unavailable)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("storeError(%v) = %v lost the cause", tt.err, err)
			}
		})
	}
}

// TestKeyRangeThrottle: only a throttle whose every reason is the table's
// hot key range is the key's own; the table's, an index's, the account's,
// or one that gives no reason stays an outage.
func TestKeyRangeThrottle(t *testing.T) {
	reason := func(r string) types.ThrottlingReason {
		return types.ThrottlingReason{Reason: aws.String(r), Resource: aws.String("arn:aws:dynamodb:us-east-1:123456789012:table/keygate")}
	}
	wrapped := func(err error) error {
		return storeError("count key use", &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "UpdateItem", Err: err})
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"on-demand, hot key", &types.ThrottlingException{ThrottlingReasons: []types.ThrottlingReason{reason("TableWriteKeyRangeThroughputExceeded")}}, true},
		{"provisioned, hot key", &types.ProvisionedThroughputExceededException{ThrottlingReasons: []types.ThrottlingReason{reason("TableWriteKeyRangeThroughputExceeded")}}, true},
		{"hot key, read", &types.ThrottlingException{ThrottlingReasons: []types.ThrottlingReason{reason("TableReadKeyRangeThroughputExceeded")}}, true},
		{"hot index key range", &types.ThrottlingException{ThrottlingReasons: []types.ThrottlingReason{reason("IndexWriteKeyRangeThroughputExceeded")}}, false},
		{"table's provisioned throughput", &types.ProvisionedThroughputExceededException{ThrottlingReasons: []types.ThrottlingReason{reason("TableWriteProvisionedThroughputExceeded")}}, false},
		{"account limit", &types.ThrottlingException{ThrottlingReasons: []types.ThrottlingReason{reason("TableWriteAccountLimitExceeded")}}, false},
		{"hot key and the account", &types.ThrottlingException{ThrottlingReasons: []types.ThrottlingReason{reason("TableWriteKeyRangeThroughputExceeded"), reason("TableWriteAccountLimitExceeded")}}, false},
		{"no reason", &types.ProvisionedThroughputExceededException{}, false},
		{"request limit", &types.RequestLimitExceeded{ThrottlingReasons: []types.ThrottlingReason{reason("TableWriteKeyRangeThroughputExceeded")}}, false},
		{"condition failed", &types.ConditionalCheckFailedException{}, false},
	}
	for _, tt := range tests {
		if got := isKeyRangeThrottle(wrapped(tt.err)); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	if isKeyRangeThrottle(nil) {
		t.Error("nil is a throttle")
	}
}
