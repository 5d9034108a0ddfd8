package httpapi_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/internal/samtemplate"
	"github.com/keygate/keygate/internal/streams"
	"github.com/keygate/keygate/pkg/authorizer"
)

// TestUsageFromTheStream runs authorizations, allowed and refused, across
// an hour and a day boundary (the settable clock), with the aggregator on
// DynamoDB Local's real stream as make run runs it: each lands in its
// bucket exactly, and shows within seconds.
func TestUsageFromTheStream(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	tpl, err := samtemplate.LoadModule()
	if err != nil {
		t.Fatal(err)
	}
	opts, err := streams.OptionsFromTemplate(tpl, "usage-aggregator")
	if err != nil {
		t.Fatal(err)
	}
	opts.OnFailure = func(_ context.Context, recs []events.DynamoDBEventRecord, err error) {
		t.Errorf("a batch of %d records failed: %v", len(recs), err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() {
		ran <- streams.Run(ctx, streams.NewClient(e.client), e.client, e.table, opts, e.app.Aggregator.Handle)
	}()
	t.Cleanup(func() {
		stop()
		if err := <-ran; err != nil {
			t.Error(err)
		}
	})

	k := e.create(&admin, `{"name":"metered","tier":"public","owner":"alice","scopes":["contracts"]}`)
	day := e.clock.Now().Truncate(24 * time.Hour).Add(24 * time.Hour) // the next midnight
	decide := func(at time.Time, scopes ...string) authorizer.Outcome {
		t.Helper()
		e.clock.Set(at)
		d, err := e.app.Authorizer.Decide(context.Background(), authorizer.Request{Key: k.Key, Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		return d.Outcome
	}
	before, after := day.Add(-10*time.Second), day.Add(10*time.Second)
	for range 3 {
		decide(before)
	}
	decide(before, "payments") // refused: insufficient scope
	decide(after)
	decide(after)
	decide(after.Add(6 * time.Second)) // the first decision 5 s after the refusal's flush is due: it flushes
	e.app.Close(context.Background())
	written := time.Now()

	url := "/v1/api-keys/" + k.ID + "/usage?from=" + day.Add(-time.Hour).Format(time.RFC3339) + "&to=" + day.Format(time.RFC3339)
	type bucket struct {
		Start                      time.Time
		Allowed, InsufficientScope int64
	}
	var got []bucket
	for deadline := time.Now().Add(15 * time.Second); ; {
		var s struct{ Buckets []bucket }
		r := e.do(&admin, "GET", url, "")
		must(t, r.Status == 200 && json.Unmarshal(r.Data, &s) == nil, "usage: %d %s", r.Status, r.Body)
		got = s.Buckets
		if len(got) == 2 && got[0].Allowed+got[1].Allowed == 6 && got[0].InsufficientScope == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15 s the series is %+v, want 3 allowed and 1 refused in the hour before midnight, 3 allowed after", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the uses showed in their series %v after the last write", time.Since(written).Round(100*time.Millisecond))
	must(t, got[0].Allowed == 3 && got[1].Allowed == 3 && got[1].InsufficientScope == 0, "hours %+v", got)

	r := e.do(&admin, "GET", "/v1/owners/alice/usage?granularity=day&from="+day.Add(-time.Hour).Format(time.RFC3339)+"&to="+day.Format(time.RFC3339), "")
	var days struct{ Buckets []bucket }
	must(t, r.Status == 200 && json.Unmarshal(r.Data, &days) == nil && len(days.Buckets) == 2, "owner days: %s", r.Body)
	must(t, days.Buckets[0].Allowed == 3 && days.Buckets[0].InsufficientScope == 1 && days.Buckets[1].Allowed == 3, "owner days %+v", days.Buckets)
}
