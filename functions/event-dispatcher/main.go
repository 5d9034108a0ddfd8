// Command event-dispatcher is the Lambda function that turns the table's
// stream into events for webhooks and EventBridge (pkg/events).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/pkg/app"
)

func main() {
	a := app.Must(context.Background())
	lambda.Start(a.Dispatcher.Handle)
}
