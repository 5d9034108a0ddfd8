// Package app builds what every keygate process needs, once per process:
// configuration from the environment, the DynamoDB client, the store, the
// domain service and the HTTP API.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/httpapi"
	"github.com/keygate/keygate/pkg/keys"
)

// Environment variables besides keys.Config's.
const (
	EnvTableName = "TABLE_NAME"
	// EnvEndpoint points the DynamoDB client at DynamoDB Local; unset means AWS.
	EnvEndpoint      = "DYNAMODB_ENDPOINT"
	DefaultTableName = "keygate"
)

// Bounds on every DynamoDB call, well inside the functions' timeouts (5 s
// for the authorizer): at most 3 attempts of at most 1 s each, with short
// backoff, so a slow or throttled table fails closed in time.
const (
	maxAttempts    = 3
	attemptTimeout = time.Second
	maxBackoff     = 100 * time.Millisecond
)

// App is a process's shared state.
type App struct {
	Config   keys.Config
	Table    string
	DynamoDB *dynamodb.Client
	Store    *dynamo.Store
	Service  *keys.Service
	// Authorizer decides for the authorizer function and for verify.
	Authorizer *authorizer.Authorizer
	// Routes are the scopes routes need: keygate's own, with
	// KEYGATE_ROUTE_SCOPES over them once Load has read it.
	Routes authorizer.RouteScopes
	// CachedResults is set when API Gateway caches the authorizer's answers.
	CachedResults bool
	API           *httpapi.API
	Log           *slog.Logger
}

// Load reads the environment and builds the App.
func Load(ctx context.Context) (*App, error) { return LoadEnv(ctx, os.Getenv, NewLogger()) }

// LoadEnv is Load reading the environment through getenv and logging to
// log: for a process that hosts the functions itself and decides some of
// their environment, as the local gateway does.
func LoadEnv(ctx context.Context, getenv func(string) string, log *slog.Logger) (*App, error) {
	cfg, err := keys.ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	table := getenv(EnvTableName)
	if table == "" {
		table = DefaultTableName
	}
	routes, err := authorizer.ParseRouteScopes(getenv(authorizer.EnvRouteScopes), cfg.Scopes)
	if err != nil {
		return nil, err
	}
	client, err := NewDynamoDB(ctx, getenv(EnvEndpoint))
	if err != nil {
		return nil, err
	}
	a := New(cfg, client, table, log)
	a.Routes = a.Routes.Merge(routes)
	a.CachedResults = getenv(authorizer.EnvCachedResults) == "true"
	return a, nil
}

// AuthorizerHandler answers API Gateway's authorizer events.
func (a *App) AuthorizerHandler() *authorizer.Handler {
	var opts []authorizer.HandlerOption
	if a.CachedResults {
		opts = append(opts, authorizer.ForCachedResults())
	}
	return authorizer.NewHandler(a.Authorizer, a.Routes, opts...)
}

// New builds an App from its parts, with keygate's own route scopes. The
// authorizer keeps the service's clock, so a test clock governs both.
func New(cfg keys.Config, client *dynamodb.Client, table string, log *slog.Logger, opts ...keys.Option) *App {
	store := dynamo.New(client, table)
	svc := keys.NewService(cfg, store, opts...)
	auth := authorizer.New(cfg, store, log, authorizer.WithClock(svc.Now))
	return &App{
		Config: cfg, Table: table, DynamoDB: client, Store: store, Service: svc,
		Authorizer: auth, Routes: httpapi.RouteScopes(), API: httpapi.New(svc, auth, log), Log: log,
	}
}

// Must is Load for main functions: a process that cannot load stops at once.
func Must(ctx context.Context) *App {
	a, err := Load(ctx)
	if err != nil {
		slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("startup failed", "error", err.Error())
		os.Exit(1)
	}
	return a
}

// NewLogger writes JSON lines to stdout, which Lambda's JSON log format keeps as they are.
func NewLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(os.Stdout, nil)) }

// NewDynamoDB builds a DynamoDB client with bounded retries and timeouts.
// With an endpoint it talks to DynamoDB Local with dummy credentials;
// without, to AWS with the default credential chain.
func NewDynamoDB(ctx context.Context, endpoint string) (*dynamodb.Client, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.MaxBackoff = maxBackoff
			})
		}),
		// The SDK's buildable client, unlike a plain http.Client, also takes
		// a custom CA bundle (AWS_CA_BUNDLE) instead of failing to load.
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(attemptTimeout)),
	}
	if endpoint != "" {
		opts = append(opts,
			config.WithRegion("us-east-1"),
			config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	return dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			// DynamoDB Local sends a CRC32 of 0 with its error responses,
			// which the SDK logs a warning about on every one.
			o.DisableValidateResponseChecksum = true
		}
	}), nil
}
