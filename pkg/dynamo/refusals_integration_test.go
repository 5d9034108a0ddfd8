package dynamo_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/usage"
)

// Refusals cost no write each: an authorizer counts them in memory and
// writes them at most every usage.FlushEvery, beside an authorization's
// own write. Over 20 refusals in 5 s, one flush; the authorizations around
// it each take their one request.
func TestRefusalsAreFlushedInBatches(t *testing.T) {
	e := newDBEnv(t)
	counted := dynamo.New(e.countedClient, e.table)
	refusals := usage.NewRefusalCounter(counted, slog.New(slog.DiscardHandler))
	auth := authorizer.New(dbConfig, counted, slog.New(slog.DiscardHandler), authorizer.WithClock(e.clock.Now), authorizer.WithRefusalRecorder(refusals))
	limited := e.create(keys.CreateInput{Tier: "single"})
	decide := func() (authorizer.Outcome, int64) {
		e.requests.Reset()
		d, err := auth.Decide(context.Background(), authorizer.Request{Key: limited})
		if err != nil {
			t.Fatal(err)
		}
		return d.Outcome, e.requests.Total()
	}
	if o, n := decide(); o != authorizer.Allowed || n != 1 {
		t.Fatalf("first use: %s in %d requests", o, n)
	}
	flushes := 0
	for i := range 20 {
		e.clock.Advance(200 * time.Millisecond)
		o, n := decide()
		if o != authorizer.RateLimited {
			t.Fatalf("refusal %d: %s", i, o)
		}
		flushes += int(n - 1)
	}
	if flushes != 1 {
		t.Errorf("%d flushes in 4 s of refusals, want 1 (the first refusal's, pending since no flush yet)", flushes)
	}
	refusals.Flush(context.Background(), e.clock.Now()) // as at shutdown
	out, err := e.raw.Scan(context.Background(), &dynamodb.ScanInput{TableName: &e.table, FilterExpression: aws.String("begins_with(pk, :p)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: "REFUSALS#"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != 2 {
		t.Errorf("%d refusal items, want 2: the flush and the one at shutdown", len(out.Items))
	}
}

// A refusal item written again under its number (its first write timed out
// after DynamoDB stored it) succeeds and stores nothing: counted once.
func TestRefusalItemIsStoredOnce(t *testing.T) {
	e := newDBEnv(t)
	store := dynamo.New(e.raw, e.table)
	first := []usage.RefusalEntry{{Project: "acme", KeyID: "key_1", Hour: 3600, Counts: usage.Counts{RateLimited: 1}}}
	again := []usage.RefusalEntry{{Project: "acme", KeyID: "key_1", Hour: 3600, Counts: usage.Counts{RateLimited: 9}}}
	for _, entries := range [][]usage.RefusalEntry{first, again} {
		if err := store.PutRefusals(context.Background(), "c1", 7, entries); err != nil {
			t.Fatal(err)
		}
	}
	out, err := e.raw.Scan(context.Background(), &dynamodb.ScanInput{TableName: &e.table, FilterExpression: aws.String("begins_with(pk, :p)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: "REFUSALS#"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != 1 || !strings.Contains(out.Items[0]["entries"].(*types.AttributeValueMemberS).Value, `"rateLimited":1`) {
		t.Errorf("items %v, want the first write alone", out.Items)
	}
}
