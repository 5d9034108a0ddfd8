// Command local runs keygate on this machine, as `make run` does:
//
//	go run ./infra/local [-port 3000] [-dynamodb-port 8000] [-data .keygate] [-log text|json] [-expiry-interval 1m]
//
// It starts DynamoDB Local with its data on disk, creates the table from
// template.yaml if it is missing, and serves every route of template.yaml
// on http://127.0.0.1:PORT through the local gateway (internal/gateway),
// which runs the same authorizer and function code as the Lambda functions,
// in this process. On the first start it creates an admin key and prints it
// once. Ctrl-C stops the gateway and DynamoDB Local. Should DynamoDB Local
// exit on its own, keygate stops too, with an error naming it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/samtemplate"
	"github.com/keygate/keygate/pkg/app"
	"github.com/keygate/keygate/pkg/httpapi"
)

func main() {
	var opts options
	flag.IntVar(&opts.port, "port", 3000, "port to serve the API on, on 127.0.0.1")
	flag.IntVar(&opts.dynamoDBPort, "dynamodb-port", 8000, "port for DynamoDB Local")
	flag.StringVar(&opts.dataDir, "data", "", "directory for DynamoDB Local's data (default: .keygate at the repository root)")
	flag.DurationVar(&opts.expiryInterval, "expiry-interval", time.Minute, "how often the key-expiry schedule runs (hourly in AWS)")
	logFormat := flag.String("log", logText, "log format on stderr: "+logText+" (one line per request) or "+logJSON+" (every record, as in CloudWatch)")
	flag.Parse()
	log, err := newLogger(*logFormat, os.Stderr)
	if err != nil || flag.NArg() > 0 || opts.expiryInterval <= 0 {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		flag.Usage()
		os.Exit(2)
	}
	opts.out = os.Stdout
	opts.log = log

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// The first signal stops keygate gracefully; a second one, with the
		// default action back, ends a stuck shutdown at once (the kernel
		// then stops DynamoDB Local, see internal/ddblocal).
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "keygate:", err)
		os.Exit(1)
	}
}

// newGateway serves tpl's routes with a's authorizer and functions, as the
// Lambda authorizer and functions of the deployed API serve them.
func newGateway(a *app.App, tpl *samtemplate.Template, log *slog.Logger) (*gateway.Gateway, error) {
	authorizerFn, ok := tpl.Function(authorizerFunction)
	if !ok {
		return nil, fmt.Errorf("template.yaml has no function %s", authorizerFunction)
	}
	return gateway.New(gateway.Config{
		Template:          tpl,
		Authorizer:        a.AuthorizerHandler().REST,
		AuthorizerTimeout: authorizerFn.Timeout,
		Functions:         lambdaFunctions(a),
		Region:            localRegion,
		AccountID:         localAccountID,
		APIID:             localAPIID,
		Log:               log,
	})
}

// authorizerFunction is the template's Lambda authorizer, functions/authorizer.
const authorizerFunction = "authorizer"

// consoleFunction is the web console, functions/console.
const consoleFunction = "console"

// lambdaFunctions are the functions' handlers by name, each built as its
// main under functions/ builds it.
func lambdaFunctions(a *app.App) map[string]gateway.Function {
	functions := map[string]gateway.Function{}
	for _, op := range httpapi.Operations {
		functions[string(op.Name)] = httpadapter.New(a.API.Handler(op.Name)).ProxyWithContext
	}
	functions[consoleFunction] = a.Console().Handle
	return functions
}
