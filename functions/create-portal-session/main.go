// Command create-portal-session is the Lambda function of keygate's create-portal-session operation.
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
	lambda.Start(httpadapter.New(a.API.Handler(httpapi.CreatePortalSession)).ProxyWithContext)
}
