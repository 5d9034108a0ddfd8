package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keygate/keygate/internal/ddblocal"
	"github.com/keygate/keygate/internal/modroot"
	"github.com/keygate/keygate/internal/samtemplate"
	"github.com/keygate/keygate/internal/streams"
	"github.com/keygate/keygate/pkg/app"
	"github.com/keygate/keygate/pkg/config"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/wait"
)

// What the local API is, where API Gateway would say: they make up the
// method ARNs the authorizer sees.
const (
	localRegion    = app.LocalRegion
	localAccountID = "123456789012"
	localAPIID     = "local"
)

// The local store: one table, and the admin key of the first start.
const (
	tableName    = config.DefaultTableName
	adminProject = "default"
	adminTier    = "internal"
	adminName    = "local admin"
	dataDirName  = ".keygate" // at the module root, git-ignored
)

var adminScopes = []string{keys.ScopeAdmin, keys.ScopeVerify}

// shutdownTimeout bounds the wait for requests in flight on Ctrl-C.
const shutdownTimeout = 5 * time.Second

type options struct {
	port, dynamoDBPort int
	expiryInterval     time.Duration // how often the key-expiry schedule runs
	dataDir            string        // "" for .keygate at the module root
	out                io.Writer     // the banner
	log                *slog.Logger
}

// run serves keygate until ctx ends, then stops the gateway and DynamoDB
// Local. Should DynamoDB Local exit first, every request would fail: run
// then stops too, and its error says so.
func run(ctx context.Context, opts options) (err error) {
	root, err := modroot.Find()
	if err != nil {
		return err
	}
	templatePath := filepath.Join(root, "template.yaml")
	tpl, err := samtemplate.Load(templatePath)
	if err != nil {
		return err
	}
	table := tpl.Table
	if table == nil {
		return fmt.Errorf("%s has no %s", templatePath, samtemplate.TableResource)
	}
	if opts.dataDir == "" {
		opts.dataDir = filepath.Join(root, dataDirName)
	}

	// Bind the gateway's port first: a busy port fails before Java starts.
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot serve on %s: %w; choose another port with -port (make run PORT=...)", addr, err)
	}
	defer ln.Close()

	// Java takes seconds to start, and the first start compiles
	// internal/ddblocal's LoopbackServer: say what is going on.
	fmt.Fprintf(opts.out, "Starting DynamoDB Local on port %d, data in %s...\n", opts.dynamoDBPort, opts.dataDir)
	ddb, err := startDynamoDB(ctx, opts)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, ddb.Stop()) }()

	// The functions' environment is this process's, with the local table.
	getenv := func(name string) string {
		switch name {
		case config.EnvEndpoint:
			return ddb.Endpoint()
		case config.EnvTableName:
			return tableName
		case config.EnvWebhooksAllowLoopback:
			// A receiver on this machine, over http: local only.
			return "true"
		}
		return os.Getenv(name)
	}
	a, err := app.LoadEnv(ctx, getenv, opts.log)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.out, "Creating table %s from template.yaml if it is missing...\n", tableName)
	if err := samtemplate.EnsureExists(ctx, a.DynamoDB, table, tableName); err != nil {
		return err
	}
	adminKey, err := firstAdminKey(ctx, a.Service)
	if err != nil {
		return err
	}
	gw, err := newGateway(a, tpl, opts.log)
	if err != nil {
		return err
	}

	// The stream functions run on the table's real stream, with their
	// event source mappings' settings, as Lambda would run them; the
	// webhook retries on their schedule.
	for name, handle := range map[string]streams.Handler{aggregatorFunction: a.Aggregator.Handle, dispatcherFunction: a.Dispatcher.Handle} {
		stopStream, err := runStream(ctx, a, tpl, name, handle, opts.log)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, stopStream()) }()
	}
	defer every(ctx, retryInterval, func(ctx context.Context) { _ = a.Retrier.Handle(ctx, events.EventBridgeEvent{}) })()
	defer every(ctx, opts.expiryInterval, func(ctx context.Context) {
		if _, err := a.Expiry.Run(ctx, time.Now()); err != nil && ctx.Err() == nil {
			opts.log.ErrorContext(ctx, "key-expiry: the run failed; the next goes on from where it got to", "error", err.Error())
		}
	})()
	// What the authorizer still holds at shutdown, Lambda would lose; here
	// it is written.
	defer a.Close(context.WithoutCancel(ctx))

	printBanner(opts.out, banner{
		url: "http://" + ln.Addr().String(), stage: tpl.StageName,
		ddbEndpoint: ddb.Endpoint(), ddbPid: ddb.Pid(), ddbExposed: ddb.Exposed(), dataDir: opts.dataDir,
		adminKey: adminKey,
	})
	err = serve(ctx, ln, gw, ddb.Done())
	if died := ddb.Err(); died != nil {
		return errors.Join(fmt.Errorf("stopping, as every request would fail: %w", died), err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(opts.out, "\nStopping keygate and DynamoDB Local...")
	return nil
}

// runStream starts a stream function of template.yaml on the stream in
// the background; the returned func stops it and says why it stopped, if
// not for the stop.
func runStream(ctx context.Context, a *app.App, tpl *samtemplate.Template, function string, handle streams.Handler, log *slog.Logger) (func() error, error) {
	opts, err := streams.OptionsFromTemplate(tpl, function)
	if err != nil {
		return nil, err
	}
	opts.OnFailure = func(ctx context.Context, records []events.DynamoDBEventRecord, err error) {
		log.ErrorContext(ctx, function+": a batch failed its last retry; Lambda would send it to its on-failure queue", "records", len(records), "error", err.Error())
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- streams.Run(runCtx, streams.NewClient(a.DynamoDB), a.DynamoDB, tableName, opts, handle)
	}()
	return func() error {
		stop()
		return <-done
	}, nil
}

// The stream functions of template.yaml.
const (
	aggregatorFunction = "usage-aggregator"
	dispatcherFunction = "event-dispatcher"
	retryFunction      = "webhook-retry"
	expiryFunction     = "key-expiry"
)

// retryInterval is how often make run attempts the webhook deliveries due,
// as the webhook-retry function's schedule does in AWS.
const retryInterval = time.Minute

// every runs fn at once and then every interval, as a schedule would,
// until ctx ends or the returned func is called, which waits for a run in
// progress.
func every(ctx context.Context, interval time.Duration, fn func(context.Context)) func() {
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			fn(runCtx)
			if wait.For(runCtx, interval) != nil {
				return
			}
		}
	}()
	return func() {
		stop()
		<-done
	}
}

// startDynamoDB starts DynamoDB Local on its fixed port, with its data in
// opts.dataDir.
func startDynamoDB(ctx context.Context, opts options) (*ddblocal.Instance, error) {
	ddb, err := ddblocal.Start(ctx, ddblocal.Options{DataDir: opts.dataDir, Port: opts.dynamoDBPort})
	switch {
	case errors.Is(err, ddblocal.ErrNotInstalled):
		return nil, fmt.Errorf("%w; install it with `make deps` (needs npm and Java 17+)", err)
	case err != nil:
		return nil, fmt.Errorf("%w\nIf port %d is taken (another keygate?), choose another with -dynamodb-port (make run DYNAMODB_PORT=...)", err, opts.dynamoDBPort)
	}
	return ddb, nil
}

// serve serves h on ln until ctx ends or stop is closed, then lets the
// requests in flight finish.
func serve(ctx context.Context, ln net.Listener, h http.Handler, stop <-chan struct{}) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	case <-stop:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// firstAdminKey makes the admin key of a fresh store, where project
// default has no key at all, and returns it; "" when the project has keys.
func firstAdminKey(ctx context.Context, svc *keys.Service) (string, error) {
	operator := keys.OperatorCaller(adminProject)
	page, err := svc.List(ctx, operator, keys.ListInput{Limit: 1})
	if err != nil {
		return "", fmt.Errorf("looking for keys of project %s: %w", adminProject, err)
	}
	// A page can come back empty with a cursor when many keys are filtered
	// out (past their retention): those are keys too.
	if len(page.Items) > 0 || page.NextCursor != "" {
		return "", nil
	}
	created, err := svc.Create(ctx, operator, keys.CreateInput{Name: adminName, Tier: adminTier, Scopes: adminScopes})
	if err != nil {
		return "", fmt.Errorf("creating the admin key: %w", err)
	}
	return created.RawKey, nil
}

// banner is what printBanner shows.
type banner struct {
	url, stage  string
	ddbEndpoint string
	ddbPid      int
	ddbExposed  error // why DynamoDB Local listens on every interface; nil if it does not
	dataDir     string
	adminKey    string // "" but on the first start
}

// printBanner says where keygate runs and how to use it: the admin key
// when it was just made (the only time it is shown), the CLI for everyday
// use, and always how to make an admin key without one. A DynamoDB Local that other machines can reach gets a
// warning first: they could write the table, and make an admin key.
func printBanner(w io.Writer, b banner) {
	fmt.Fprintf(w, "\nkeygate is running at %s (the routes of template.yaml, stage %s)\n", b.url, b.stage)
	fmt.Fprintf(w, "Web console: %s/console (sign in with an admin key)\n", b.url)
	fmt.Fprintf(w, "DynamoDB Local: %s (pid %d), table %s, data in %s\n\n", b.ddbEndpoint, b.ddbPid, tableName, b.dataDir)
	if b.ddbExposed != nil {
		fmt.Fprintf(w, "WARNING: DynamoDB Local listens on every network interface, not only on 127.0.0.1:\n"+
			"anyone who can reach this machine can read and write its table, and make an admin key.\n"+
			"Install a JDK (with javac) to keep it on 127.0.0.1 (%v).\n\n", b.ddbExposed)
	}
	if b.adminKey != "" {
		fmt.Fprintf(w, "Created the admin key of project %s (scopes admin and verify, tier %s).\n", adminProject, adminTier)
		fmt.Fprintf(w, "It is shown only this once:\n\n  export ADMIN=%s\n\n", b.adminKey)
		fmt.Fprintf(w, "Try it:\n\n  curl -H \"Authorization: Bearer $ADMIN\" %s/v1/whoami\n\n", b.url)
	}
	fmt.Fprintf(w, "Manage keys with the keygate CLI: go install ./cmd/keygate (see the README, The keygate CLI).\n")
	fmt.Fprintf(w, "To make an admin key without one (bootstrap, break-glass), as an operator:\n\n  DYNAMODB_ENDPOINT=%s TABLE_NAME=%s go run ./infra/admin create-key --project %s --tier %s --scopes admin,verify --name \"another key\"\n\n",
		b.ddbEndpoint, tableName, adminProject, adminTier)
	fmt.Fprintln(w, "Press Ctrl-C to stop.")
}
