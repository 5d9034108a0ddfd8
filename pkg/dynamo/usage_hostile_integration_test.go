package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/usage"
)

// A flush of 2000 realistic entries goes in items within DynamoDB's 400 KB
// item limit.
func TestARefusalFlushOf2000EntriesIsWritten(t *testing.T) {
	t.Parallel()
	raw := ddbtest.Client(t)
	table := ddbtest.NewTable(t, raw, ddbtest.TableOptions{})
	store := dynamo.New(raw, table)
	c := usage.NewRefusalCounter(store, slog.New(slog.DiscardHandler))
	at := time.Date(2030, time.January, 15, 10, 30, 0, 0, time.UTC)
	for i := range 2000 {
		k := &keys.Key{ID: fmt.Sprintf("key_%024x", i), Project: "acme-production", Owner: fmt.Sprintf("customer-%08d", i), Tier: "public"}
		c.Record("", authorizer.Decision{Outcome: authorizer.RateLimited, Key: k}, at)
	}
	c.Flush(context.Background(), at)
	out, err := raw.Scan(context.Background(), &dynamodb.ScanInput{TableName: &table, FilterExpression: aws.String("begins_with(pk, :p)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: "REFUSALS#"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != 4 {
		t.Fatalf("%d refusal items after flushing 2000 entries, want 4 of 500: a refused item would be retried, bigger, forever", len(out.Items))
	}
}

type slowSink struct{ d time.Duration }

// PutRefusals takes d, as a throttled PutItem does while the SDK backs
// off, unless ctx ends first, as the SDK's calls do.
func (s slowSink) PutRefusals(ctx context.Context, _ string, _ int64, _ []usage.RefusalEntry) error {
	select {
	case <-time.After(s.d):
		return errors.New("throttled")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// A slow flush (a throttled PutItem) holds no decision past its budget,
// nor past its caller's deadline.
func TestASlowFlushHoldsNoDecision(t *testing.T) {
	e := newDBEnv(t)
	refusals := usage.NewRefusalCounter(slowSink{3 * time.Second}, slog.New(slog.DiscardHandler))
	auth := authorizer.New(dbConfig, dynamo.New(e.raw, e.table), slog.New(slog.DiscardHandler), authorizer.WithClock(e.clock.Now), authorizer.WithRefusalRecorder(refusals))
	limited := e.create(keys.CreateInput{Tier: "single"})
	if d, _ := auth.Decide(context.Background(), authorizer.Request{Key: limited}); d.Outcome != authorizer.Allowed {
		t.Fatal(d.Outcome)
	}
	if d, _ := auth.Decide(context.Background(), authorizer.Request{Key: limited}); d.Outcome != authorizer.RateLimited { // pending refusal
		t.Fatal(d.Outcome)
	}
	e.clock.Advance(6 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _ = auth.Decide(ctx, authorizer.Request{Key: limited})
	if took := time.Since(start); took > time.Second {
		t.Errorf("Decide took %v under a 500ms deadline: it waits for the refusal flush (context.WithoutCancel)", took.Round(time.Millisecond))
	}
}

// keyRec is a key item's MODIFY as the stream carries it; returned, when
// set, is the time of a use given back, as ReturnUse writes it.
func keyRec(seq int, oldTotal, newTotal int64, oldUsed, newUsed time.Time, returned ...time.Time) events.DynamoDBEventRecord {
	item := func(total int64, used time.Time) map[string]events.DynamoDBAttributeValue {
		return map[string]events.DynamoDBAttributeValue{
			"pk": events.NewStringAttribute("KEY#key_1"), "id": events.NewStringAttribute("key_1"), "project": events.NewStringAttribute("acme"),
			"tier": events.NewStringAttribute("public"), "version": events.NewNumberAttribute("1"),
			"totalRequests": events.NewNumberAttribute(fmt.Sprint(total)), "lastUsed": events.NewNumberAttribute(fmt.Sprint(used.UnixMilli())),
		}
	}
	cur := item(newTotal, newUsed)
	for _, r := range returned {
		cur["returnedUse"] = events.NewNumberAttribute(fmt.Sprint(r.UnixMilli()))
	}
	return events.DynamoDBEventRecord{EventID: fmt.Sprint(seq), EventName: "MODIFY", Change: events.DynamoDBStreamRecord{
		SequenceNumber: fmt.Sprint(seq), Keys: map[string]events.DynamoDBAttributeValue{"pk": events.NewStringAttribute("KEY#key_1")},
		OldImage: item(oldTotal, oldUsed), NewImage: cur,
	}}
}

// An IP-refused use at 23:59:59.990 is counted (+1, lastUsed set), then a
// use from another container at 00:00:00.010 is counted, then the first
// container gives its use back: lastUsed is the other use's by then, so
// the give-back carries its own use's time (returnedUse), and the -1 lands
// in the refused use's hour and day.
func TestAGiveBackLandsInItsOwnBucket(t *testing.T) {
	t.Parallel()
	raw := ddbtest.Client(t)
	store := dynamo.New(raw, ddbtest.NewTable(t, raw, ddbtest.TableOptions{}))
	agg := usage.NewAggregator(store, usage.DefaultConfig(), slog.New(slog.DiscardHandler))
	midnight := time.Date(2030, time.January, 16, 0, 0, 0, 0, time.UTC)
	before, after := midnight.Add(-10*time.Millisecond), midnight.Add(10*time.Millisecond)
	old := midnight.Add(-time.Hour)
	recs := []events.DynamoDBEventRecord{
		keyRec(1, 0, 1, old, before),          // the IP-refused use, counted
		keyRec(2, 1, 2, before, after),        // another container's allowed use
		keyRec(3, 2, 1, after, after, before), // the refused use given back
	}
	if err := agg.Handle(context.Background(), events.DynamoDBEvent{Records: recs}); err != nil {
		t.Fatal(err)
	}
	s := usage.Series{Project: "acme", KeyID: "key_1"}
	for _, g := range []usage.Granularity{usage.Hour, usage.Day} {
		b, err := store.Buckets(context.Background(), s, g, g.Start(before), g.Start(after), midnight)
		if err != nil {
			t.Fatal(err)
		}
		got := map[time.Time]int64{}
		for _, x := range b {
			got[x.Start] = x.Allowed
		}
		if got[g.Start(before)] != 0 || got[g.Start(after)] != 1 {
			t.Errorf("%s buckets: %v allowed before midnight, %v after; want 0 and 1", g, got[g.Start(before)], got[g.Start(after)])
		}
	}
}
