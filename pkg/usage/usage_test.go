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

// spyStore records what the aggregator writes and fails on cue.
type spyStore struct {
	Store
	mu      sync.Mutex
	applied map[string][]Increment
	failOn  string // a marker prefix to fail once
}

func (s *spyStore) AddUsage(_ context.Context, marker string, incs []Increment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failOn != "" && strings.HasPrefix(marker, s.failOn) {
		s.failOn = ""
		return errors.New("throttled")
	}
	if _, ok := s.applied[marker]; ok {
		return ErrApplied
	}
	if len(incs) > MaxIncrements {
		return fmt.Errorf("%d increments", len(incs))
	}
	s.applied[marker] = incs
	return nil
}

// total sums what series s holds at granularity g.
func (s *spyStore) total(series Series, g Granularity) Counts {
	var c Counts
	for _, incs := range s.applied {
		for _, i := range incs {
			if i.Series == series && i.Granularity == g {
				c.Add(i.Counts)
			}
		}
	}
	return c
}

func n(v int64) events.DynamoDBAttributeValue  { return events.NewNumberAttribute(fmt.Sprint(v)) }
func s(v string) events.DynamoDBAttributeValue { return events.NewStringAttribute(v) }
func keyItem(id string, total, credits int64, at time.Time) map[string]events.DynamoDBAttributeValue {
	return map[string]events.DynamoDBAttributeValue{
		"pk": s("KEY#" + id), "id": s(id), "project": s("acme"), "owner": s("alice"), "tier": s("public"),
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

func TestAggregateUses(t *testing.T) {
	store := &spyStore{applied: map[string][]Increment{}}
	a := NewAggregator(store, DefaultConfig(), slog.New(slog.DiscardHandler))
	var recs []events.DynamoDBEventRecord
	for i := 1; i <= 3; i++ {
		recs = append(recs, useRecord(i, "key_1", int64(i), 2, now))
	}
	recs = append(recs, useRecord(4, "key_1", 4, 2, now.Add(time.Hour))) // the next hour, the same day
	mgmt := useRecord(5, "key_1", 4, 0, now)
	mgmt.Change.NewImage["version"] = n(2) // a management change: no use
	recs = append(recs, mgmt)
	resp, err := a.Handle(context.Background(), events.DynamoDBEvent{Records: recs})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle: %+v, %v", resp, err)
	}
	key := Series{Kind: KindKey, Project: "acme", ID: "key_1"}
	if got := store.total(key, Day); got.Allowed != 4 || got.Credits != 8 {
		t.Errorf("the key's day: %+v, want 4 allowed, 8 credits", got)
	}
	if got := store.total(key, Hour); got.Allowed != 4 {
		t.Errorf("the key's hours: %+v", got)
	}
	for _, series := range []Series{{Kind: KindOwner, Project: "acme", ID: "alice"}, {Kind: KindGroup, Project: "acme", GroupBy: ByTier, ID: "public"}} {
		if got := store.total(series, Day); got.Allowed != 4 {
			t.Errorf("%v: %+v, want 4 allowed", series, got)
		}
	}
}

// A batch delivered again, whole or from the record a failed chunk began
// with, counts each record once.
func TestAggregateRedeliveredBatch(t *testing.T) {
	store := &spyStore{applied: map[string][]Increment{}}
	a := NewAggregator(store, DefaultConfig(), slog.New(slog.DiscardHandler))
	var recs []events.DynamoDBEventRecord
	// 30 keys of one owner and tier: 6 shared buckets and 4 of each key's,
	// so the first chunk holds 23 records and the second the rest.
	for i := 1; i <= 30; i++ {
		recs = append(recs, useRecord(i, fmt.Sprintf("key_%02d", i), 1, 1, now))
	}
	ev := events.DynamoDBEvent{Records: recs}
	store.failOn = "chunk/ev24"
	resp, _ := a.Handle(context.Background(), ev)
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "1024" {
		t.Fatalf("failures %+v, want the chunk starting at record 24", resp.BatchItemFailures)
	}
	// Lambda delivers again from record 24, then (as after a timeout) the whole batch.
	for _, again := range [][]events.DynamoDBEventRecord{recs[23:], recs} {
		if resp, _ := a.Handle(context.Background(), events.DynamoDBEvent{Records: again}); len(resp.BatchItemFailures) != 0 {
			t.Fatalf("again: %+v", resp)
		}
	}
	group := store.total(Series{Kind: KindGroup, Project: "acme", GroupBy: ByTier, ID: "public"}, Day)
	if group.Allowed != 30 {
		t.Errorf("the tier's day: %d allowed, want 30, each record once", group.Allowed)
	}
}

// A refusal flush too large for one transaction goes in pieces, each
// counted once however often it is delivered.
func TestAggregateLargeRefusalFlush(t *testing.T) {
	store := &spyStore{applied: map[string][]Increment{}}
	a := NewAggregator(store, DefaultConfig(), slog.New(slog.DiscardHandler))
	var entries []string
	for i := range 50 {
		entries = append(entries, fmt.Sprintf(`{"project":"acme","keyId":"key_%02d","tier":"public","hour":%d,"counts":{"rateLimited":2}}`, i, now.Truncate(time.Hour).Unix()))
	}
	entries = append(entries, fmt.Sprintf(`{"project":"acme","hour":%d,"counts":{"notFound":7}}`, now.Truncate(time.Hour).Unix()))
	rec := events.DynamoDBEventRecord{EventID: "flush1", EventName: "INSERT", Change: events.DynamoDBStreamRecord{
		SequenceNumber: "5", Keys: map[string]events.DynamoDBAttributeValue{"pk": s("REFUSALS#c1"), "sk": s("1")},
		NewImage: map[string]events.DynamoDBAttributeValue{"pk": s("REFUSALS#c1"), "entries": s("[" + strings.Join(entries, ",") + "]")},
	}}
	for range 2 {
		if resp, err := a.Handle(context.Background(), events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{rec}}); err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("Handle: %+v %v", resp, err)
		}
	}
	if got := store.total(Series{Kind: KindGroup, Project: "acme", GroupBy: ByTier, ID: "public"}, Hour); got.RateLimited != 100 {
		t.Errorf("the tier's hour: %+v, want 100 rate limited", got)
	}
	if got := store.total(Series{Kind: KindUnknown, Project: "acme"}, Day); got.NotFound != 7 {
		t.Errorf("unknown keys: %+v, want 7", got)
	}
}

type spySink struct {
	mu      sync.Mutex
	flushes [][]RefusalEntry
	fail    bool
}

func (s *spySink) PutRefusals(_ context.Context, _ string, _ int64, entries []RefusalEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("throttled")
	}
	s.flushes = append(s.flushes, entries)
	return nil
}

func TestRefusalCounterFlushesAtMostEveryFewSeconds(t *testing.T) {
	sink := &spySink{}
	c := NewRefusalCounter(sink, slog.New(slog.DiscardHandler))
	k := &keys.Key{ID: "key_1", Project: "acme", Owner: "alice", Tier: "public"}
	c.Record("", authorizer.Decision{Outcome: authorizer.RateLimited, Key: k}, now)
	c.Record("", authorizer.Decision{Outcome: authorizer.Allowed, Key: k}, now) // not a refusal
	c.Record("", authorizer.Decision{Outcome: authorizer.MalformedKey}, now)    // no key was presented
	c.Record("acme", authorizer.Decision{Outcome: authorizer.NotFound}, now)
	c.FlushDue(context.Background(), now)
	c.Record("", authorizer.Decision{Outcome: authorizer.IPNotAllowed, Key: k}, now)
	c.FlushDue(context.Background(), now.Add(FlushEvery-time.Millisecond)) // too soon
	if len(sink.flushes) != 1 || len(sink.flushes[0]) != 2 {
		t.Fatalf("flushes %+v, want one of the key's and the unknown key's counts", sink.flushes)
	}
	sink.fail = true
	c.FlushDue(context.Background(), now.Add(FlushEvery)) // fails: the counts stay
	sink.fail = false
	c.Record("", authorizer.Decision{Outcome: authorizer.IPNotAllowed, Key: k}, now)
	c.Flush(context.Background(), now.Add(FlushEvery+time.Second))
	if len(sink.flushes) != 2 || len(sink.flushes[1]) != 1 || sink.flushes[1][0].Counts.IPNotAllowed != 2 {
		t.Errorf("after a failed flush: %+v, want the 2 IP refusals in one entry", sink.flushes)
	}
}
