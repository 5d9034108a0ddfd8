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
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/config"
	"github.com/keygate/keygate/pkg/console"
	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/events"
	"github.com/keygate/keygate/pkg/expiry"
	"github.com/keygate/keygate/pkg/httpapi"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/leaks"
	"github.com/keygate/keygate/pkg/portal"
	"github.com/keygate/keygate/pkg/usage"
	"github.com/keygate/keygate/pkg/webhooks"
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
	Config   config.Config
	DynamoDB *dynamodb.Client
	Store    *dynamo.Store
	Service  *keys.Service
	// Authorizer decides for the authorizer function and for verify.
	Authorizer *authorizer.Authorizer
	// Routes are the scopes routes need: keygate's own, with the
	// configured ones (KEYGATE_ROUTE_SCOPES) over them.
	Routes authorizer.RouteScopes
	API    *httpapi.API
	Log    *slog.Logger
	// Refusals counts the authorizer's refusals for usage over time;
	// Close flushes what it holds.
	Refusals *usage.RefusalCounter
	// Aggregator is the usage-aggregator function.
	Aggregator *usage.Aggregator
	// Usage serves usage over time; Portal the customer portal.
	Usage  *usage.Service
	Portal *portal.Service
	// Webhooks manages webhooks; Dispatcher is the event-dispatcher
	// function, Retrier the webhook-retry function.
	Webhooks   *webhooks.Service
	Dispatcher *events.Dispatcher
	Retrier    *events.Retrier
	// Expiry is the key-expiry function's schedule.
	Expiry *expiry.Scheduler
	now    func() time.Time
}

// Console builds the console function's handler, which only that function
// needs: its assets are hashed and its page rendered here.
func (a *App) Console() *console.Console {
	return console.New(console.Config{
		Store: a.Store, Authorizer: a.Authorizer, Service: a.Service, Keys: a.Config.Keys, API: a.API,
		Routes: a.Routes, Costs: a.Config.RouteCosts, Log: a.Log, Now: a.now, Portal: a.Portal, Usage: a.Usage,
	})
}

// Close writes what the process still holds: the refusal counts not yet
// flushed, as at shutdown.
func (a *App) Close(ctx context.Context) { a.Refusals.Flush(ctx, time.Now()) }

// Load reads the environment and builds the App.
func Load(ctx context.Context) (*App, error) { return LoadEnv(ctx, os.Getenv, NewLogger()) }

// LoadEnv is Load reading the environment through getenv and logging to
// log: for a process that hosts the functions itself and decides some of
// their environment, as the local gateway does.
func LoadEnv(ctx context.Context, getenv func(string) string, log *slog.Logger) (*App, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, err
	}
	client, err := NewDynamoDB(ctx, cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	var opts []Option
	if cfg.EventBusName != "" {
		bus, err := newEventBridge(ctx, cfg.EventBusName)
		if err != nil {
			return nil, err
		}
		opts = append(opts, WithPublisher(bus))
	}
	return New(cfg, client, log, opts...), nil
}

// newEventBridge is the bus events go to, with the default credential
// chain and the SDK's standard retries.
func newEventBridge(ctx context.Context, bus string) (*events.EventBridge, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config for EventBridge: %w", err)
	}
	return events.NewEventBridge(eventbridge.NewFromConfig(awsCfg), bus), nil
}

// AuthorizerHandler answers API Gateway's authorizer events.
func (a *App) AuthorizerHandler() *authorizer.Handler {
	opts := []authorizer.HandlerOption{authorizer.WithRouteCosts(a.Config.RouteCosts)}
	if a.Config.CachedResults {
		opts = append(opts, authorizer.ForCachedResults())
	}
	return authorizer.NewHandler(a.Authorizer, a.Routes, opts...)
}

// Option changes how New builds an App, for tests.
type Option func(*options)

type options struct {
	now func() time.Time
	bus events.Publisher
}

// WithClock sets the clock of the service and the authorizer alike.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithPublisher sends events to bus as well as to webhooks.
func WithPublisher(bus events.Publisher) Option { return func(o *options) { o.bus = bus } }

// New builds an App from its parts: keygate's own route scopes with the
// configured ones over them.
func New(cfg config.Config, client *dynamodb.Client, log *slog.Logger, opts ...Option) *App {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	store := dynamo.New(client, cfg.Table)
	svc := keys.NewService(cfg.Keys, store, keys.WithClock(o.now))
	refusals := usage.NewRefusalCounter(store, log)
	auth := authorizer.New(cfg.Keys, store, log, authorizer.WithClock(o.now), authorizer.WithRefusalRecorder(refusals),
		authorizer.WithMetricsNamespace(cfg.MetricsNamespace))
	usageSvc := usage.NewService(store, store, o.now)
	portalSvc := portal.NewService(store.Portal(), svc, store, cfg.Keys, o.now)
	addrs := webhooks.Addresses{AllowLoopback: cfg.WebhooksAllowLoopback}
	hooks := webhooks.NewService(store.Webhooks(), svc, events.Tests{Store: store}, addrs, events.Types, o.now)
	deliverer := webhooks.NewDeliverer(store.Webhooks(), webhooks.NewSender(addrs), o.now, log)
	leaksSvc := leaks.NewService(cfg.Leaks, svc, o.now, log)
	return &App{
		Config: cfg, DynamoDB: client, Store: store, Service: svc, Authorizer: auth,
		Routes: httpapi.RouteScopes().Merge(cfg.RouteScopes), API: httpapi.New(httpapi.Services{Keys: svc, Authorizer: auth, Usage: usageSvc, Portal: portalSvc, Webhooks: hooks, Leaks: leaksSvc}, log), Log: log,
		Refusals: refusals, Aggregator: usage.NewAggregator(store, cfg.Usage, log), Usage: usageSvc, Portal: portalSvc,
		Webhooks: hooks, Dispatcher: events.NewDispatcher(dynamo.DecodeChange, svc, deliverer, o.bus, log).Remembering(store).WithKeyDetails(store), Retrier: events.NewRetrier(deliverer, log),
		Expiry: expiry.New(store, svc, log, o.now),
		now:    o.now,
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
	retryer := func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = maxAttempts
			o.MaxBackoff = maxBackoff
		})
	}
	// The SDK's buildable client, unlike a plain http.Client, also takes a
	// custom CA bundle (AWS_CA_BUNDLE) instead of failing to load.
	httpClient := awshttp.NewBuildableClient().WithTimeout(attemptTimeout)
	if endpoint != "" {
		// DynamoDB Local: dummy credentials, and nothing read of the
		// machine's AWS setup, which can neither break nor leak into it.
		cfg := aws.Config{
			Region: LocalRegion, Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
			Retryer: retryer, HTTPClient: httpClient,
		}
		return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
			o.BaseEndpoint = aws.String(endpoint)
			// DynamoDB Local sends a CRC32 of 0 with its error responses,
			// which the SDK logs a warning about on every one.
			o.DisableValidateResponseChecksum = true
		}), nil
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRetryer(retryer), awsconfig.WithHTTPClient(httpClient))
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	return dynamodb.NewFromConfig(awsCfg), nil
}

// LocalRegion is the region of a DynamoDB Local client. DynamoDB Local runs
// with -sharedDb, so the region does not matter, but the SDK requires one.
const LocalRegion = "us-east-1"
