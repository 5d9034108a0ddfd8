// Command authorizer is keygate's Lambda authorizer, for REST APIs (REQUEST
// authorizers) and HTTP APIs (payload 2.0, simple responses) alike.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/pkg/app"
)

func main() {
	a := app.Must(context.Background())
	lambda.Start(a.AuthorizerHandler().Invoke)
}
