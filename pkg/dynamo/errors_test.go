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
