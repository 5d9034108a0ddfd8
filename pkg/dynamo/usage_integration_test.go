package dynamo_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keygate/keygate/internal/ddbcount"
	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/usage"
)

func part(src string, seq int, c usage.Counts) usage.Part {
	return usage.Part{Source: src, Seq: fmt.Sprintf("%040d", seq), Counts: c}
}

// The usage store against DynamoDB Local: parts count once each, however
// a batch comes again (whole, split, or its parts with new ones); buckets
// read back by range; keys sum per project; a bucket past its ttl is left
// out before DynamoDB deletes it.
func TestUsageStore(t *testing.T) {
	t.Parallel()
	raw := ddbtest.Client(t)
	store := dynamo.New(raw, ddbtest.NewTable(t, raw, ddbtest.TableOptions{}))
	ctx := context.Background()
	hour := time.Date(2030, time.January, 15, 10, 0, 0, 0, time.UTC)
	later := hour.Add(30 * 24 * time.Hour)
	key := usage.Series{Project: "acme", KeyID: "key_1"}
	add := func(s usage.Series, start, expires time.Time, parts ...usage.Part) {
		t.Helper()
		if err := store.AddUsage(ctx, usage.Add{Series: s, Granularity: usage.Hour, Start: start, Owner: "alice", Tier: "public", Expires: expires, Parts: parts}); err != nil {
			t.Fatal(err)
		}
	}
	one := usage.Counts{Allowed: 1, Credits: 3}
	add(key, hour, later, part("key", 1, one), part("key", 2, one), part("rc1", 7, usage.Counts{RateLimited: 2}))
	add(key, hour, later, part("key", 1, one), part("key", 2, one))                                               // the batch again
	add(key, hour, later, part("key", 2, one), part("key", 3, one), part("rc1", 7, usage.Counts{RateLimited: 2})) // its second half, with a new part
	add(key, hour, later, part("rc2", 1, usage.Counts{IPNotAllowed: 1}))                                          // another container
	add(key, hour.Add(2*time.Hour), later, part("key", 9, usage.Counts{Allowed: 5}))
	add(key, hour.Add(-time.Hour), hour.Add(time.Minute), part("key", 0, usage.Counts{Allowed: 50})) // expired by the reads below
	add(usage.Series{Project: "acme", KeyID: "key_2"}, hour, later, part("key", 4, usage.Counts{Allowed: 4}))
	add(usage.Series{Project: "acme"}, hour, later, part("rc1", 8, usage.Counts{NotFound: 6}))

	read := hour.Add(2 * time.Minute)
	buckets, err := store.Buckets(ctx, key, usage.Hour, hour.Add(-time.Hour), hour.Add(2*time.Hour), read)
	if err != nil {
		t.Fatal(err)
	}
	want := []usage.Bucket{
		{Start: hour, Counts: usage.Counts{Allowed: 3, Credits: 9, RateLimited: 2, IPNotAllowed: 1}},
		{Start: hour.Add(2 * time.Hour), Counts: usage.Counts{Allowed: 5}},
	}
	if len(buckets) != 2 || buckets[0] != want[0] || buckets[1] != want[1] {
		t.Errorf("buckets %+v, want %+v: each part once, the expired bucket left out", buckets, want)
	}
	if b, _ := store.Buckets(ctx, key, usage.Day, hour, hour, read); len(b) != 0 {
		t.Errorf("days read hours: %+v", b)
	}
	totals, err := store.KeyTotals(ctx, "acme", usage.Hour, hour, hour.Add(2*time.Hour), read)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, k := range totals {
		got[k.KeyID] = k.Requests()
		if k.KeyID == "key_1" && (k.Owner != "alice" || k.Tier != "public") {
			t.Errorf("key_1's totals: %+v", k)
		}
	}
	if len(got) != 3 || got["key_1"] != 11 || got["key_2"] != 4 || got[""] != 6 {
		t.Errorf("totals %v, want key_1 11, key_2 4 and unknown keys 6", got)
	}
	if totals, _ := store.KeyTotals(ctx, "globex", usage.Hour, hour, hour.Add(time.Hour), read); len(totals) != 0 {
		t.Errorf("another project's totals: %+v", totals)
	}
}

// The aggregator over one batch Lambda delivers three times, whole then
// bisected: every record counts once.
func TestAggregatorReplayedBatch(t *testing.T) {
	t.Parallel()
	raw := ddbtest.Client(t)
	store := dynamo.New(raw, ddbtest.NewTable(t, raw, ddbtest.TableOptions{}))
	agg := usage.NewAggregator(store, usage.DefaultConfig(), slog.New(slog.DiscardHandler))
	at := time.Date(2030, time.January, 15, 10, 30, 0, 0, time.UTC)
	var recs []events.DynamoDBEventRecord
	for i := 1; i <= 40; i++ {
		id := fmt.Sprintf("key_%d", i%4)
		recs = append(recs, streamUse(i, id, int64(i/4+1), at))
	}
	for _, batch := range [][]events.DynamoDBEventRecord{recs, recs[:20], recs[20:]} {
		if err := agg.Handle(context.Background(), events.DynamoDBEvent{Records: batch}); err != nil {
			t.Fatal(err)
		}
	}
	totals, err := store.KeyTotals(context.Background(), "acme", usage.Day, at.Truncate(24*time.Hour), at.Truncate(24*time.Hour), at)
	if err != nil {
		t.Fatal(err)
	}
	var allowed int64
	for _, k := range totals {
		allowed += k.Allowed
	}
	if allowed != 40 || len(totals) != 4 {
		t.Errorf("%d allowed over %d keys, want 40 over 4: each record once", allowed, len(totals))
	}
}

// streamUse is the stream record of a key item's use, as Lambda delivers it.
func streamUse(seq int, id string, total int64, at time.Time) events.DynamoDBEventRecord {
	item := func(total int64) map[string]events.DynamoDBAttributeValue {
		return map[string]events.DynamoDBAttributeValue{
			"pk": events.NewStringAttribute("KEY#" + id), "id": events.NewStringAttribute(id), "project": events.NewStringAttribute("acme"),
			"tier": events.NewStringAttribute("public"), "version": events.NewNumberAttribute("1"),
			"totalRequests": events.NewNumberAttribute(fmt.Sprint(total)), "lastUsed": events.NewNumberAttribute(fmt.Sprint(at.UnixMilli())),
		}
	}
	return events.DynamoDBEventRecord{EventID: fmt.Sprint(seq), EventName: "MODIFY", Change: events.DynamoDBStreamRecord{
		SequenceNumber: fmt.Sprint(100000 + seq), Keys: map[string]events.DynamoDBAttributeValue{"pk": events.NewStringAttribute("KEY#" + id)},
		OldImage: item(total - 1), NewImage: item(total),
	}}
}

// What aggregation costs: 1,000 authorizations in one batch over 1, 10
// and 100 keys write 4 buckets per key (its hour and day, and their
// listing by project), 1 write unit each, as DynamoDB Local reports them.
func TestAggregationCost(t *testing.T) {
	t.Parallel()
	raw := ddbtest.Client(t)
	table := ddbtest.NewTable(t, raw, ddbtest.TableOptions{})
	counted, requests := ddbcount.Instrument(raw, ddbcount.WithConsumedCapacity())
	agg := usage.NewAggregator(dynamo.New(counted, table), usage.DefaultConfig(), slog.New(slog.DiscardHandler))
	at := time.Date(2030, time.January, 15, 10, 30, 0, 0, time.UTC)
	for _, keys := range []int{1, 10, 100} {
		var recs []events.DynamoDBEventRecord
		for i := range 1000 {
			recs = append(recs, streamUse(i, fmt.Sprintf("key_%d_%d", keys, i%keys), int64(i/keys+1), at))
		}
		requests.Reset()
		if err := agg.Handle(context.Background(), events.DynamoDBEvent{Records: recs}); err != nil {
			t.Fatal(err)
		}
		units := requests.Capacity("UpdateItem").Total
		t.Logf("1,000 authorizations over %d keys: %.0f write units", keys, units)
		if units != float64(4*keys) {
			t.Errorf("%d keys: %.0f write units, want %d", keys, units, 4*keys)
		}
	}
}
