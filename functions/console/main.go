// Command console is the Lambda function of keygate's web console
// (pkg/console): its page, assets, sessions and API.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/pkg/app"
)

func main() {
	a := app.Must(context.Background())
	lambda.Start(a.Console().Handle)
}
