// Command webhook-retry is the Lambda function that, every minute, attempts
// the webhook deliveries that are due again (pkg/webhooks).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/pkg/app"
)

func main() {
	a := app.Must(context.Background())
	lambda.Start(a.Retrier.Handle)
}
