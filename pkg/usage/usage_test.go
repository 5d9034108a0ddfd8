package usage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/keys"
)

var now = time.Date(2030, time.January, 15, 10, 7, 30, 0, time.UTC)

func TestQueryParse(t *testing.T) {
	for _, tc := range []struct {
		name     string
		q        Query
		from, to string
		err      string
	}{
		{"defaults: the last 48 hours", Query{}, "2030-01-13T11:00:00Z", "2030-01-15T10:00:00Z", ""},
		{"days: the last 30", Query{Granularity: "day"}, "2029-12-17T00:00:00Z", "2030-01-15T00:00:00Z", ""},
		{"aligned to buckets", Query{From: "2030-01-15T08:59:59Z", To: "2030-01-15T09:00:01Z"}, "2030-01-15T08:00:00Z", "2030-01-15T09:00:00Z", ""},
		{"one bucket", Query{From: "2030-01-15T09:10:00Z", To: "2030-01-15T09:20:00Z"}, "2030-01-15T09:00:00Z", "2030-01-15T09:00:00Z", ""},
		{"400 buckets", Query{From: "2030-01-01T00:00:00Z", To: "2030-01-17T15:00:00Z"}, "2030-01-01T00:00:00Z", "2030-01-17T15:00:00Z", ""},
		{"401 buckets", Query{From: "2030-01-01T00:00:00Z", To: "2030-01-17T16:00:00Z"}, "", "", "from: the range spans more than 400"},
		{"from after to", Query{From: "2030-01-15T10:00:00Z", To: "2030-01-15T09:00:00Z"}, "", "", "from: must not be after to"},
		{"bad granularity", Query{Granularity: "minute"}, "", "", "granularity"},
		{"granularity in capitals", Query{Granularity: "HOUR"}, "", "", "granularity"},
		{"bad from", Query{From: "yesterday"}, "", "", "from"},
		{"bad to", Query{To: "2030-13-01T00:00:00Z"}, "", "", "to"},
		{"year 10000", Query{To: "10000-01-01T00:00:00Z"}, "", "", "to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.q.parse(now)
			if tc.err != "" {
				var invalid *keys.InvalidError
				if !errors.As(err, &invalid) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want an InvalidError saying %q", err, tc.err)
				}
				return
			}
			if err != nil || r.From.Format(time.RFC3339) != tc.from || r.To.Format(time.RFC3339) != tc.to {
				t.Errorf("got %v .. %v, %v; want %s .. %s", r.From, r.To, err, tc.from, tc.to)
			}
		})
	}
}

func FuzzQueryParse(f *testing.F) {
	f.Add("hour", "2030-01-01T00:00:00Z", "2030-01-02T00:00:00Z")
	f.Add("day", "", "")
	f.Fuzz(func(t *testing.T, g, from, to string) {
		r, err := Query{Granularity: g, From: from, To: to}.parse(now)
		if err != nil {
			return
		}
		n := r.To.Sub(r.From) / r.Granularity.Length()
		if r.From.After(r.To) || n >= MaxBuckets || r.From != r.Granularity.Start(r.From) {
			t.Errorf("%q %q %q: accepted %+v", g, from, to, r)
		}
	})
}

// spyStore records what the aggregator writes and fails on cue; it
// stands for no store (pkg/dynamo's tests hold the real one to the rules).
type spyStore struct {
	Store
	mu   sync.Mutex
	adds []Add
	fail bool
}

func (s *spyStore) AddUsage(_ context.Context, add Add) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("throttled")
	}
	s.adds = append(s.adds, add)
	return nil
}

// find is the add of a key's bucket at g.
func (s *spyStore) find(keyID string, g Granularity, start time.Time) (Add, bool) {
	for _, a := range s.adds {
		if a.Series.KeyID == keyID && a.Granularity == g && a.Start.Equal(start) {
			return a, true
		}
	}
	return Add{}, false
}

func sum(parts []Part) Counts {
	var c Counts
	for _, p := range parts {
		c.Add(p.Counts)
	}
	return c
}

func n(v int64) events.DynamoDBAttributeValue  { return events.NewNumberAttribute(fmt.Sprint(v)) }
func s(v string) events.DynamoDBAttributeValue { return events.NewStringAttribute(v) }
func keyItem(id string, total, credits int64, at time.Time) map[string]events.DynamoDBAttributeValue {
	return map[string]events.DynamoDBAttributeValue{
		"pk": s("KEY#" + id), "project": s("acme"), "owner": s("alice"), "tier": s("public"),
		"version": n(1), "totalRequests": n(total), "credits": n(credits), "lastUsed": n(at.UnixMilli()),
	}
}

// useRecord is the stream record of one use of key id costing cost.
func useRecord(seq int, id string, total int64, cost int64, at time.Time) events.DynamoDBEventRecord {
	return events.DynamoDBEventRecord{
		EventID: fmt.Sprintf("ev%d", seq), EventName: "MODIFY",
		Change: events.DynamoDBStreamRecord{
			SequenceNumber: fmt.Sprint(1000 + seq), Keys: map[string]events.DynamoDBAttributeValue{"pk": s("KEY#" + id), "sk": s("KEY")},
			OldImage: keyItem(id, total-1, 1000-(total-1)*cost, at.Add(-time.Second)), NewImage: keyItem(id, total, 1000-total*cost, at),
		},
	}
}

// A batch is merged by bucket: each bucket written once, with a part per
// record, in order, named by source and sequence number.
func TestAggregateMergesByBucket(t *testing.T) {
	store := &spyStore{}
	a := NewAggregator(store, DefaultConfig(), slog.New(slog.DiscardHandler))
	var recs []events.DynamoDBEventRecord
	for i := 1; i <= 3; i++ {
		recs = append(recs, useRecord(i, "key_1", int64(i), 2, now))
	}
	recs = append(recs, useRecord(4, "key_1", 4, 2, now.Add(time.Hour))) // the next hour, the same day
	mgmt := useRecord(5, "key_1", 4, 0, now)
	mgmt.Change.NewImage["version"] = n(2) // a management change: no use
	recs = append(recs, mgmt, useRecord(6, "key_2", 1, 0, now))
	if err := a.Handle(context.Background(), events.DynamoDBEvent{Records: recs}); err != nil {
		t.Fatal(err)
	}
	if len(store.adds) != 5 {
		t.Errorf("%d buckets written, want 5: key_1's two hours and day, key_2's hour and day", len(store.adds))
	}
	day, _ := store.find("key_1", Day, Day.Start(now))
	if got := sum(day.Parts); got.Allowed != 4 || got.Credits != 8 || len(day.Parts) != 4 || day.Owner != "alice" || day.Tier != "public" {
		t.Errorf("key_1's day: %+v", day)
	}
	if day.Parts[0].Source != "key" || day.Parts[0].Seq != fmt.Sprintf("%040d", 1001) || day.Parts[3].Seq <= day.Parts[2].Seq {
		t.Errorf("parts %+v, want sources and padded sequence numbers, in order", day.Parts)
	}
	if hour, ok := store.find("key_1", Hour, Hour.Start(now)); !ok || sum(hour.Parts).Allowed != 3 || !hour.Expires.Equal(Hour.Start(now).Add(time.Hour+14*24*time.Hour)) {
		t.Errorf("key_1's hour: %+v", hour)
	}
	store.fail = true
	if err := a.Handle(context.Background(), events.DynamoDBEvent{Records: recs}); err == nil {
		t.Error("a failed write did not fail the batch")
	}
}

// A refusal flush adds its entries, unknown keys to the project's series.
func TestAggregateRefusalFlush(t *testing.T) {
	store := &spyStore{}
	a := NewAggregator(store, DefaultConfig(), slog.New(slog.DiscardHandler))
	hour := now.Truncate(time.Hour).Unix()
	entries := fmt.Sprintf(`[{"project":"acme","keyId":"key_1","tier":"public","hour":%d,"counts":{"rateLimited":2,"ipNotAllowed":1}},{"project":"acme","hour":%d,"counts":{"notFound":7}}]`, hour, hour)
	rec := events.DynamoDBEventRecord{EventID: "flush1", EventName: "INSERT", Change: events.DynamoDBStreamRecord{
		SequenceNumber: "5", Keys: map[string]events.DynamoDBAttributeValue{"pk": s("REFUSALS#c1"), "sk": s("1")},
		NewImage: map[string]events.DynamoDBAttributeValue{"pk": s("REFUSALS#c1"), "entries": s(entries)},
	}}
	bad := rec
	bad.EventID, bad.Change.NewImage = "flush2", map[string]events.DynamoDBAttributeValue{"pk": s("REFUSALS#c1"), "entries": s("not json")}
	if err := a.Handle(context.Background(), events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{rec, bad}}); err != nil {
		t.Fatal(err)
	}
	if add, _ := store.find("key_1", Hour, now.Truncate(time.Hour)); sum(add.Parts).RateLimited != 2 || add.Parts[0].Source != "rc1" {
		t.Errorf("key_1's hour: %+v", add)
	}
	if add, _ := store.find("", Day, Day.Start(now)); sum(add.Parts).NotFound != 7 || add.Series.Project != "acme" {
		t.Errorf("unknown keys: %+v", add)
	}
}

// spySink records the items written, by number, storing each once as
// pkg/dynamo does; it fails on cue.
type spySink struct {
	mu      sync.Mutex
	flushes [][]RefusalEntry
	seqs    []int64
	fail    bool
}

func (s *spySink) PutRefusals(_ context.Context, _ string, seq int64, entries []RefusalEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("throttled")
	}
	s.flushes, s.seqs = append(s.flushes, entries), append(s.seqs, seq)
	return nil
}

// flushDueForTest runs c's flush, if one is due, to its end.
func (c *RefusalCounter) flushDueForTest(ctx context.Context, now time.Time) {
	if done := c.FlushDue(ctx, now); done != nil {
		<-done
	}
}

func TestRefusalCounterFlushesAtMostEveryFewSeconds(t *testing.T) {
	sink := &spySink{}
	c := NewRefusalCounter(sink, slog.New(slog.DiscardHandler))
	k := &keys.Key{ID: "key_1", Project: "acme", Owner: "alice", Tier: "public"}
	c.Record("", authorizer.Decision{Outcome: authorizer.RateLimited, Key: k}, now)
	c.Record("", authorizer.Decision{Outcome: authorizer.Allowed, Key: k}, now) // not a refusal
	c.Record("", authorizer.Decision{Outcome: authorizer.MalformedKey}, now)    // no key was presented
	c.Record("acme", authorizer.Decision{Outcome: authorizer.NotFound}, now)
	c.flushDueForTest(context.Background(), now)
	c.Record("", authorizer.Decision{Outcome: authorizer.IPNotAllowed, Key: k}, now)
	c.flushDueForTest(context.Background(), now.Add(FlushEvery-time.Millisecond)) // too soon
	if len(sink.flushes) != 1 || len(sink.flushes[0]) != 2 {
		t.Fatalf("flushes %+v, want one of the key's and the unknown key's counts", sink.flushes)
	}
	sink.fail = true
	c.flushDueForTest(context.Background(), now.Add(FlushEvery)) // fails: the item stays, under its number
	sink.fail = false
	c.Record("", authorizer.Decision{Outcome: authorizer.IPNotAllowed, Key: k}, now)
	c.Flush(context.Background(), now.Add(FlushEvery+time.Second))
	if len(sink.flushes) != 3 || sink.seqs[1] != 2 || sink.seqs[2] != 3 {
		t.Fatalf("after a failed flush: items %v, want the failed one (2) written again, then the new one (3)", sink.seqs)
	}
	if sink.flushes[1][0].Counts.IPNotAllowed+sink.flushes[2][0].Counts.IPNotAllowed != 2 {
		t.Errorf("after a failed flush: %+v, want the 2 IP refusals, each once", sink.flushes[1:])
	}
}
