// Command webhooks is the Lambda function of keygate's webhooks operation:
// every /v1/webhooks route.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keygate/keygate/pkg/app"
	"github.com/keygate/keygate/pkg/httpapi"
)

func main() {
	a := app.Must(context.Background())
	lambda.Start(httpadapter.New(a.API.Handler(httpapi.Webhooks)).ProxyWithContext)
}
