package dynamo_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/usage"
)

// The usage store against DynamoDB Local: a chunk counts once however
// often it is written, buckets read back by range, groups sum by member,
// and a bucket past its ttl is left out before DynamoDB deletes it.
func TestUsageStore(t *testing.T) {
	t.Parallel()
	raw := ddbtest.Client(t)
	store := dynamo.New(raw, ddbtest.NewTable(t, raw, ddbtest.TableOptions{}))
	ctx := context.Background()
	hour := time.Date(2030, time.January, 15, 10, 0, 0, 0, time.UTC)
	key := usage.Series{Kind: usage.KindKey, Project: "acme", ID: "key_1"}
	group := func(member string) usage.Series {
		return usage.Series{Kind: usage.KindGroup, Project: "acme", GroupBy: usage.ByOwner, ID: member}
	}
	inc := func(s usage.Series, start time.Time, c usage.Counts, expires time.Time) usage.Increment {
		return usage.Increment{Series: s, Granularity: usage.Hour, Start: start, Counts: c, Expires: expires}
	}
	later := hour.Add(30 * 24 * time.Hour)
	first := []usage.Increment{
		inc(key, hour, usage.Counts{Allowed: 3, Credits: 9}, later),
		inc(key, hour.Add(2*time.Hour), usage.Counts{Allowed: 1, RateLimited: 2}, later),
		inc(key, hour.Add(-time.Hour), usage.Counts{Allowed: 5}, hour.Add(time.Minute)), // expired by the read below
		inc(group("alice"), hour, usage.Counts{Allowed: 3}, later),
		inc(group("bob"), hour.Add(time.Hour), usage.Counts{Allowed: 1}, later),
	}
	if err := store.AddUsage(ctx, "chunk/a", first); err != nil {
		t.Fatal(err)
	}
	if err := store.AddUsage(ctx, "chunk/a", first); !errors.Is(err, usage.ErrApplied) {
		t.Fatalf("the same chunk again: %v, want ErrApplied", err)
	}
	if err := store.AddUsage(ctx, "chunk/b", []usage.Increment{inc(key, hour, usage.Counts{Allowed: 1}, later), inc(group("alice"), hour.Add(time.Hour), usage.Counts{Allowed: 2}, later)}); err != nil {
		t.Fatal(err)
	}
	read := hour.Add(2 * time.Minute)
	buckets, err := store.Buckets(ctx, key, usage.Hour, hour.Add(-time.Hour), hour.Add(2*time.Hour), read)
	if err != nil {
		t.Fatal(err)
	}
	want := []usage.Bucket{{Start: hour, Counts: usage.Counts{Allowed: 4, Credits: 9}}, {Start: hour.Add(2 * time.Hour), Counts: usage.Counts{Allowed: 1, RateLimited: 2}}}
	if len(buckets) != len(want) || buckets[0] != want[0] || buckets[1] != want[1] {
		t.Errorf("buckets %+v, want %+v (the expired one left out)", buckets, want)
	}
	if b, _ := store.Buckets(ctx, key, usage.Hour, hour, hour, read); len(b) != 1 {
		t.Errorf("one bucket's range: %+v", b)
	}
	if b, _ := store.Buckets(ctx, key, usage.Day, hour, hour, read); len(b) != 0 {
		t.Errorf("days read hours: %+v", b)
	}
	totals, err := store.Group(ctx, "acme", usage.ByOwner, usage.Hour, hour, hour.Add(time.Hour), read)
	if err != nil {
		t.Fatal(err)
	}
	if totals["alice"].Allowed != 5 || totals["bob"].Allowed != 1 || len(totals) != 2 {
		t.Errorf("totals %+v, want alice 5 and bob 1", totals)
	}
	if totals, _ := store.Group(ctx, "globex", usage.ByOwner, usage.Hour, hour, hour.Add(time.Hour), read); len(totals) != 0 {
		t.Errorf("another project's totals: %+v", totals)
	}
	if err := store.AddUsage(ctx, "chunk/c", make([]usage.Increment, usage.MaxIncrements+1)); err == nil {
		t.Error("a chunk over the maximum was written")
	}
}
