package main

// Stream drift tests: the usage aggregator's event source mapping in
// template.yaml keeps a poison record from blocking the stream, can be run
// locally as Lambda runs it, and hands the aggregator what the code writes
// of keys and refusals, and nothing else: not its own buckets.

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/internal/streams"
	"github.com/keygate/keygate/pkg/app"
	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/config"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/usage"
)

func TestUsageAggregatorMapping(t *testing.T) {
	_, tpl := loadTemplate(t)
	if got := tpl.Table.StreamViewType; got != types.StreamViewTypeNewAndOldImages {
		t.Errorf("the table's stream records %q, want NEW_AND_OLD_IMAGES: the item before and after each change", got)
	}
	f, ok := tpl.Function(aggregatorFunction)
	if !ok || len(f.StreamEvents) != 1 {
		t.Fatalf("function %s: found %v, with DynamoDB events %+v; want one", aggregatorFunction, ok, f.StreamEvents)
	}
	ev := f.StreamEvents[0]
	// A poison record never blocks the stream: it is isolated, retried a
	// bounded number of times, and sent where SAM lets the function send it.
	if !ev.BisectBatchOnFunctionError || ev.MaximumRetryAttempts < 0 {
		t.Errorf("bisect %v, retries %d: want bisection and a bounded number of retries", ev.BisectBatchOnFunctionError, ev.MaximumRetryAttempts)
	}
	if ev.OnFailure == "" || tpl.Resources[ev.OnFailure] != "AWS::SQS::Queue" || ev.OnFailureType != "SQS" {
		t.Errorf("on failure %q (a %q) of Type %q: want a queue of the template, with Type SQS, without which SAM grants no sqs:SendMessage",
			ev.OnFailure, tpl.Resources[ev.OnFailure], ev.OnFailureType)
	}
	if _, err := streams.OptionsFromTemplate(tpl, aggregatorFunction); err != nil {
		t.Errorf("make run cannot run the mapping as Lambda does: %v", err)
	}
}

// TestUsageAggregatorFilter runs the template's mapping on DynamoDB Local's
// stream while the code writes keys, audit events, the cursor secret and
// owner limits, and refusal counts and usage buckets are written as the
// authorizer and the aggregator write them: the aggregator gets the
// changes of key items and refusal counts, and only those.
func TestUsageAggregatorFilter(t *testing.T) {
	_, tpl := loadTemplate(t)
	opts, err := streams.OptionsFromTemplate(tpl, aggregatorFunction)
	if err != nil {
		t.Fatal(err)
	}
	// Batches of one, at once: what is filtered is at stake here, not how it is batched.
	opts.BatchSize, opts.BatchingWindow = 1, 0
	raw := ddbtest.Client(t)
	table := ddbtest.NewTable(t, raw, ddbtest.TableOptions{})

	var mu sync.Mutex
	var delivered []string
	sentinel := make(chan struct{})
	const sentinelPK = "KEY#sentinel" // written last: all before it has been read
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan error, 1)
	go func() {
		returned <- streams.Run(ctx, ddbtest.StreamsClient(t), raw, table, opts, func(_ context.Context, ev events.DynamoDBEvent) error {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range ev.Records {
				pk := r.Change.Keys["pk"].String()
				delivered = append(delivered, pk)
				if pk == sentinelPK {
					close(sentinel)
				}
			}
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-returned; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	// The code's own writes: a key and its audit event, its use, a listing's
	// cursor secret, an owner's limits.
	a := app.New(config.Default().WithTable(table), raw, slog.New(slog.DiscardHandler))
	d := &iamDriver{t: t, adapter: httpadapter.New(a.API.Handler(operationNames()...)), app: a}
	admin := iamCaller{keyID: "key_000000000000000000000001", scopes: "admin"}
	now := time.Now().UTC()
	seed := &keys.Key{ID: admin.keyID, Name: "admin", Tier: "internal", Project: "acme", Status: keys.StatusActive, CreatedAt: now, UpdatedAt: now}
	if err := a.Store.Apply(context.Background(), keys.Tx{Create: []*keys.Key{seed}}); err != nil {
		t.Fatal(err)
	}
	key := d.create(admin, `{"name":"used","tier":"public","owner":"alice"}`)
	d.authorize(key.Key, "Allow", "")
	d.ok(admin, "GET", "/v1/api-keys?limit=1", "")
	d.ok(admin, "PUT", "/v1/owners/alice/limits", `{"rateLimits":[{"name":"minute","limit":60,"windowSeconds":60}]}`)
	// A refusal's count, flushed as at shutdown, and a bucket, as the
	// aggregator writes it.
	a.Refusals.Record("", authorizer.Decision{Outcome: authorizer.RateLimited, Key: &keys.Key{ID: key.ID, Project: "acme", Owner: "alice", Tier: "public"}}, now)
	a.Close(context.Background())
	bucket := usage.Add{Series: usage.Series{Project: "acme", KeyID: key.ID}, Granularity: usage.Hour, Start: usage.Hour.Start(now), Expires: now.Add(time.Hour),
		Parts: []usage.Part{{Source: "key", Seq: "1", Counts: usage.Counts{Allowed: 1}}}}
	if err := a.Store.AddUsage(context.Background(), bucket); err != nil {
		t.Fatal(err)
	}
	sentinelItem := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: sentinelPK}, "sk": &types.AttributeValueMemberS{Value: sentinelPK}}
	if _, err := raw.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: &table, Item: sentinelItem}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sentinel:
	case <-time.After(30 * time.Second):
		t.Fatal("the last write never reached the aggregator")
	}

	written := partitions(t, raw, table)
	for _, prefix := range []string{"KEY#", "AUDIT#", "CONFIG", "OWNERLIMITS#", "REFUSALS#", "USAGE#"} {
		if !slices.ContainsFunc(written, func(pk string) bool { return strings.HasPrefix(pk, prefix) }) {
			t.Fatalf("no partition %s... written, so this test proves nothing of it: %q", prefix, written)
		}
	}
	var want []string
	for _, pk := range written {
		if strings.HasPrefix(pk, "KEY#") || strings.HasPrefix(pk, "REFUSALS#") {
			want = append(want, pk)
		}
	}
	mu.Lock()
	got := slices.Compact(slices.Sorted(slices.Values(delivered)))
	mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("the aggregator got the changes of\n\t%q\nwant those of the key items and refusal counts written,\n\t%q", got, want)
	}
}

// partitions are the table's partition keys, sorted.
func partitions(t *testing.T, client *dynamodb.Client, table string) []string {
	t.Helper()
	out, err := client.Scan(context.Background(), &dynamodb.ScanInput{TableName: &table, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var pks []string
	for _, item := range out.Items {
		pks = append(pks, item["pk"].(*types.AttributeValueMemberS).Value)
	}
	slices.Sort(pks)
	return slices.Compact(pks)
}
