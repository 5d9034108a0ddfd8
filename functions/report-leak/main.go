// Command report-leak is the Lambda function that takes GitHub's secret
// scanning reports of leaked keys (pkg/leaks), on a public route.
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
	lambda.Start(httpadapter.New(a.API.Handler(httpapi.ReportLeak)).ProxyWithContext)
}
