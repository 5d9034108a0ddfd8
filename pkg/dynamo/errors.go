package dynamo

import (
	"context"
	"errors"
	"fmt"
	"net"

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

// isTransactionConflict reports whether err is DynamoDB's
// TransactionConflictException.
func isTransactionConflict(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == codeTransactionConflict
}
