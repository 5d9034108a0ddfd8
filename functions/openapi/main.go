// Command openapi is the Lambda function that serves keygate's OpenAPI
// document as JSON, on a public route.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keygate/keygate/pkg/app"
	"github.com/keygate/keygate/pkg/httpapi"
	"github.com/keygate/keygate/pkg/openapi"
)

func main() {
	// The document is converted at init, not on the first request, which
	// then answers at once; a broken one fails the start.
	if _, err := openapi.Load(); err != nil {
		slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("startup failed", "error", err.Error())
		os.Exit(1)
	}
	a := app.Must(context.Background())
	lambda.Start(httpadapter.New(a.API.Handler(httpapi.OpenAPI)).ProxyWithContext)
}
