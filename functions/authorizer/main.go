// Command authorizer is keygate's Lambda authorizer, for REST APIs (REQUEST
// authorizers) and HTTP APIs (payload 2.0, simple responses) alike.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/pkg/app"
	"github.com/keygate/keygate/pkg/authorizer"
)

func main() {
	a := app.Must(context.Background())
	lambda.Start(authorizer.NewHandler(a.Authorizer, a.Routes).Invoke)
}
