package httpapi_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/pkg/authorizer"
)

// TestUsageFromTheStream runs authorizations, allowed and refused, across
// an hour and a day boundary (the settable clock), with the aggregator on
// DynamoDB Local's real stream as make run runs it: each lands in its
// bucket exactly, and shows within seconds.
func TestUsageFromTheStream(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	e.onStream("usage-aggregator", e.app.Aggregator.Handle)

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

	type bucket struct {
		Start                      time.Time
		Allowed, InsufficientScope int64
	}
	series := func(url string) []bucket {
		t.Helper()
		var s struct{ Buckets []bucket }
		r := e.do(&admin, "GET", url, "")
		must(t, r.Status == 200 && json.Unmarshal(r.Data, &s) == nil, "usage: %d %s", r.Status, r.Body)
		return s.Buckets
	}
	rng := "from=" + day.Add(-time.Hour).Format(time.RFC3339) + "&to=" + day.Format(time.RFC3339)
	var hours, days []bucket
	for deadline := time.Now().Add(15 * time.Second); ; {
		// The key's buckets, and the owner's, which sums the project's listing, written after them.
		hours, days = series("/v1/api-keys/"+k.ID+"/usage?"+rng), series("/v1/owners/alice/usage?granularity=day&"+rng)
		if len(hours) == 2 && hours[0].Allowed+hours[1].Allowed == 6 && hours[0].InsufficientScope == 1 &&
			len(days) == 2 && days[0].Allowed+days[1].Allowed == 6 && days[0].InsufficientScope == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15 s the key's hours are %+v and the owner's days %+v, want 3 allowed and 1 refused before midnight, 3 allowed after", hours, days)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the uses showed in their series %v after the last write", time.Since(written).Round(100*time.Millisecond))
	must(t, hours[0].Allowed == 3 && hours[1].Allowed == 3 && hours[1].InsufficientScope == 0, "hours %+v", hours)
	must(t, days[0].Allowed == 3 && days[1].Allowed == 3, "owner days %+v", days)
}
