// Command project-usage is the Lambda function of keygate's project-usage operation.
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
	lambda.Start(httpadapter.New(a.API.Handler(httpapi.ProjectUsage)).ProxyWithContext)
}
