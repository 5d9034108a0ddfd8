package dynamo_test

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/ddbcount"
	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

// The integration tests' tiers: "single" and "tiny" for rate limits,
// "fifty" for the concurrency test, "huge" for tests that must never be
// rate limited.
var dbConfig = func() keys.Config {
	cfg := keys.DefaultConfig()
	cfg.Tiers = append(cfg.Tiers,
		keys.WindowTier("single", "sg", 1, 15*time.Minute),
		keys.WindowTier("tiny", "ti", 3, 15*time.Minute),
		keys.WindowTier("fifty", "ff", 50, 15*time.Minute),
		keys.WindowTier("huge", "hu", 1<<40, 15*time.Minute))
	return cfg
}()

const window = 15 * time.Minute

// tierCounter names the counters of the tiers' one limit.
const tierCounter = "window.900"

// dbEnv is one test's keygate on its own DynamoDB Local table. The
// authorizer's client counts its requests and the capacity they consume;
// the service and the test's own reads use another client, which does not.
type dbEnv struct {
	t        *testing.T
	clock    *testclock.Clock
	requests *ddbcount.Counter
	// countedClient is the authorizer's client, which requests counts.
	countedClient *dynamodb.Client
	raw           *dynamodb.Client
	table         string
	svc           *keys.Service
	auth          *authorizer.Authorizer
}

func newDBEnv(t *testing.T) *dbEnv {
	t.Helper()
	t.Parallel()
	raw := ddbtest.Client(t)
	table := ddbtest.NewTable(t, raw, ddbtest.TableOptions{}) // no TTL: expired items stay
	counted, requests := ddbcount.Instrument(raw, ddbcount.WithConsumedCapacity())
	clock := testclock.New(time.Date(2030, time.January, 15, 10, 7, 30, 0, time.UTC))
	store := dynamo.New(counted, table)
	return &dbEnv{
		t: t, clock: clock, requests: requests, countedClient: counted, raw: raw, table: table,
		svc:  keys.NewService(dbConfig, dynamo.New(raw, table), keys.WithClock(clock.Now)),
		auth: authorizer.New(dbConfig, store, slog.New(slog.DiscardHandler), authorizer.WithClock(clock.Now)),
	}
}

// create issues a key in project acme and returns it raw.
func (e *dbEnv) create(in keys.CreateInput) string {
	e.t.Helper()
	return e.createIn("acme", in)
}

func (e *dbEnv) createIn(project string, in keys.CreateInput) string {
	e.t.Helper()
	if in.Name == "" {
		in.Name = "test key"
	}
	created, err := e.svc.Create(context.Background(), keys.OperatorCaller(project), in)
	if err != nil {
		e.t.Fatal(err)
	}
	return created.RawKey
}

// beforeTheSplit rewrites key raw as keygate wrote it before a key was
// two items: one key item holding everything (docs/key-items.md).
func (e *dbEnv) beforeTheSplit(raw string) {
	e.t.Helper()
	if err := dynamo.RewriteBeforeTheSplit(context.Background(), e.raw, e.table, token.ID(token.Hash(raw))); err != nil {
		e.t.Fatal(err)
	}
}

// decide authorizes req and returns the decision and the DynamoDB requests
// it took.
func (e *dbEnv) decide(req authorizer.Request) (authorizer.Decision, int64) {
	e.t.Helper()
	e.requests.Reset()
	d, err := e.auth.Decide(context.Background(), req)
	if err != nil {
		e.t.Fatal(err)
	}
	return d, e.requests.Total()
}

// item reads the raw key item, consistently.
func (e *dbEnv) item(raw string) map[string]types.AttributeValue {
	e.t.Helper()
	return e.rawItem(dynamo.KeyItemKey(token.ID(token.Hash(raw))))
}

// details reads the raw details item of a key, consistently.
func (e *dbEnv) details(raw string) map[string]types.AttributeValue {
	e.t.Helper()
	return e.rawItem(dynamo.DetailsItemKey(token.ID(token.Hash(raw))))
}

func (e *dbEnv) rawItem(key map[string]types.AttributeValue) map[string]types.AttributeValue {
	e.t.Helper()
	out, err := e.raw.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &e.table, Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		e.t.Fatal(err)
	}
	return out.Item
}

// snapshot is the table's whole content, to prove a failed write changed
// nothing, or that a value is stored nowhere.
func (e *dbEnv) snapshot() string { return ddbtest.Snapshot(e.t, e.raw, e.table) }

func (e *dbEnv) totalRequests(raw string) int64 {
	e.t.Helper()
	return number(e.t, e.item(raw), dynamo.AttrTotalRequests)
}

// windowCounters are the item's rate-window counters, by attribute name.
func (e *dbEnv) windowCounters(raw string) map[string]int64 {
	e.t.Helper()
	item := e.item(raw)
	out := map[string]int64{}
	for name := range item {
		if dynamo.IsCounterAttr(name) {
			out[name] = number(e.t, item, name)
		}
	}
	return out
}

func (e *dbEnv) windowStart() int64 {
	now := e.clock.Now().Unix()
	return now - now%int64(window/time.Second)
}

func number(t *testing.T, item map[string]types.AttributeValue, name string) int64 {
	t.Helper()
	n, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		t.Fatalf("item has no number %s: %v", name, item)
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
