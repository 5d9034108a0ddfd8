package dynamo

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/aws/smithy-go"

	"github.com/keygate/keygate/pkg/keys"
)

// throttlingCodes are DynamoDB's answers that mean "too much, try later".
var throttlingCodes = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"RequestLimitExceeded":                   true,
	"ThrottlingException":                    true,
	"LimitExceededException":                 true,
	"InternalServerError":                    true,
	"ServiceUnavailable":                     true,
}

// classify marks failures a retry may cure as keys.ErrUnavailable, keeping
// the cause for the log.
func classify(op string, err error) error {
	var apiErr smithy.APIError
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.As(err, &apiErr) && throttlingCodes[apiErr.ErrorCode()],
		errors.As(err, &netErr):
		return fmt.Errorf("%s: %w: %w", op, keys.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
