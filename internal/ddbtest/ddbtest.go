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
// Every table has the template's stream; StreamsClient reads it.
//
// Client uses the DynamoDB at $DYNAMODB_ENDPOINT when set (as `make test`
// does, through infra/dynamodb-local, so all packages share one DynamoDB
// Local); otherwise the first Client starts a private in-memory DynamoDB
// Local for the package. Under -short, and where DynamoDB Local is not
// installed, the integration tests are skipped, except in CI (CI set),
// where a missing DynamoDB Local is a failure.
package ddbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/keygate/keygate/internal/ddblocal"
	"github.com/keygate/keygate/internal/samtemplate"
	"github.com/keygate/keygate/internal/streams"
	"github.com/keygate/keygate/internal/testenv"
	"github.com/keygate/keygate/pkg/config"
)

// state is what Main and the first Client set up; NewTable reads it.
var state struct {
	mu       sync.Mutex
	ran      bool   // Main was called
	started  bool   // the first Client looked for DynamoDB
	endpoint string // where DynamoDB Local listens
	missing  error  // why there is no DynamoDB Local, if there is none
	inst     *ddblocal.Instance
	client   *dynamodb.Client
	table    *samtemplate.Table
}

// Main runs the package's tests and stops the DynamoDB Local a test started,
// returning the exit code for os.Exit. DynamoDB Local starts only when a
// test first asks for a Client: a run of unit tests alone (-short, a fuzz
// target) never starts Java.
func Main(m *testing.M) int {
	state.mu.Lock()
	state.ran = true
	state.mu.Unlock()
	code := m.Run()
	state.mu.Lock()
	defer state.mu.Unlock()
	if state.inst != nil {
		if err := state.inst.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "ddbtest: %v\n", err)
		}
	}
	return code
}

// Client returns a client for the test DynamoDB, shared by all tests of the
// package: $DYNAMODB_ENDPOINT when set (as `make test` does, through
// infra/dynamodb-local, so all packages share one DynamoDB Local), else a
// private in-memory DynamoDB Local, started on first use. It skips the test
// under -short, skips it where DynamoDB Local is not installed (fails it in
// CI), and fails it when the package's TestMain does not call Main.
func Client(t testing.TB) *dynamodb.Client {
	t.Helper()
	testenv.Integration(t)
	state.mu.Lock()
	defer state.mu.Unlock()
	if !state.ran {
		t.Fatal("ddbtest: call ddbtest.Main from TestMain: func TestMain(m *testing.M) { os.Exit(ddbtest.Main(m)) }")
	}
	if !state.started {
		state.started = true
		state.endpoint, state.inst, state.missing = find()
	}
	if errors.Is(state.missing, ddblocal.ErrNotInstalled) {
		testenv.Require(t, state.missing)
	} else if state.missing != nil {
		t.Fatalf("starting DynamoDB Local: %v", state.missing)
	}
	if state.client == nil {
		c, err := ddblocal.Client(context.Background(), state.endpoint)
		if err != nil {
			t.Fatal(err)
		}
		state.client = c
	}
	return state.client
}

// StreamsClient returns a client of the Streams API for the test DynamoDB,
// which serves it at the same endpoint, as Client does.
func StreamsClient(t testing.TB) *dynamodbstreams.Client {
	t.Helper()
	return streams.NewClient(Client(t))
}

// find is the DynamoDB at $DYNAMODB_ENDPOINT, or a DynamoDB Local it starts.
func find() (string, *ddblocal.Instance, error) {
	if ep := os.Getenv(config.EnvEndpoint); ep != "" {
		return ep, nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inst, err := ddblocal.Start(ctx, ddblocal.Options{})
	if err != nil {
		return "", nil, err
	}
	return inst.Endpoint(), inst, nil
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
	table, err := tableDefinition()
	if err != nil {
		t.Fatal(err)
	}
	name := tableName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := samtemplate.Create(ctx, client, table, name, samtemplate.CreateOptions{TTL: opts.TTL}); err != nil {
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

// Snapshot is a table's whole content as JSON, read consistently: equal
// snapshots before and after prove that a refused request wrote nothing,
// and one can be searched for a value that must be stored nowhere.
func Snapshot(t testing.TB, client *dynamodb.Client, table string) string {
	t.Helper()
	out, err := client.Scan(context.Background(), &dynamodb.ScanInput{TableName: &table, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(out.Items)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tableDefinition loads the table definition from template.yaml once.
func tableDefinition() (*samtemplate.Table, error) {
	state.mu.Lock()
	defer state.mu.Unlock()
	if state.table != nil {
		return state.table, nil
	}
	tpl, err := samtemplate.LoadModule()
	if err != nil {
		return nil, err
	}
	if tpl.Table == nil {
		return nil, fmt.Errorf("ddbtest: template.yaml has no %s", samtemplate.TableResource)
	}
	state.table = tpl.Table
	return state.table, nil
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
