package dynamo

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/keygate/keygate/pkg/keys"
)

// unavailableCodes are DynamoDB's answers that mean "not now, try later":
// throttling, a service fault, and a transaction conflict, which the SDK's
// standard retryer does not retry.
var unavailableCodes = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"RequestLimitExceeded":                   true,
	"ThrottlingException":                    true,
	"LimitExceededException":                 true,
	"InternalServerError":                    true,
	"ServiceUnavailable":                     true,
	// A single-item write met a TransactWriteItems on the same item in
	// flight (a management change of the key). The write was not applied.
	codeTransactionConflict: true,
}

const codeTransactionConflict = "TransactionConflictException"

// storeError wraps a failed call's error (nil stays nil), marking failures
// a retry may cure as keys.ErrUnavailable, keeping the cause for the log.
func storeError(op string, err error) error {
	if err == nil {
		return nil
	}
	var apiErr smithy.APIError
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.As(err, &apiErr) && unavailableCodes[apiErr.ErrorCode()],
		errors.As(err, &netErr):
		return fmt.Errorf("%s: %w: %w", op, keys.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// conditionFailed reports whether err is a write refused by its condition.
func conditionFailed(err error) bool {
	var failed *types.ConditionalCheckFailedException
	return errors.As(err, &failed)
}

// isTransactionConflict reports whether err is DynamoDB's
// TransactionConflictException.
func isTransactionConflict(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == codeTransactionConflict
}

// isKeyRangeThrottle reports whether DynamoDB throttled a request because
// the partition of the item it named is over its own ceiling (about 1,000
// write or 3,000 read units a second), as every ThrottlingReason it gives
// says: TableWriteKeyRangeThroughputExceeded or
// TableReadKeyRangeThroughputExceeded. A throttle of the table, an index or
// the account, or one without reasons (older answers), is not.
func isKeyRangeThrottle(err error) bool {
	var reasons []types.ThrottlingReason
	var throttling *types.ThrottlingException
	var exceeded *types.ProvisionedThroughputExceededException
	switch {
	case errors.As(err, &throttling):
		reasons = throttling.ThrottlingReasons
	case errors.As(err, &exceeded):
		reasons = exceeded.ThrottlingReasons
	}
	for _, r := range reasons {
		switch aws.ToString(r.Reason) {
		case "TableWriteKeyRangeThroughputExceeded", "TableReadKeyRangeThroughputExceeded":
		default:
			return false
		}
	}
	return len(reasons) > 0
}
