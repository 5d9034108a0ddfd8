// Command usage-aggregator is the Lambda function that turns the table's
// stream into usage buckets (pkg/usage).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/pkg/app"
)

func main() {
	a := app.Must(context.Background())
	lambda.Start(a.Aggregator.Handle)
}
