// Command key-expiry is the Lambda function that EventBridge runs hourly
// to write key.expiring and key.expired events (pkg/expiry).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/pkg/app"
)

func main() {
	a := app.Must(context.Background())
	lambda.Start(a.Expiry.Handle)
}
