package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/pkg/usage"
)

// The usage API over buckets the aggregator wrote: every bucket of the
// range, zeros included; owner series; project totals by group, largest
// first, paged; project isolation; bad ranges refused.
func TestUsageAPI(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	k := e.create(&admin, `{"name":"k","tier":"public","owner":"alice"}`)
	other := e.create(&globexAdmin, `{"name":"g","tier":"public"}`)
	now := e.clock.Now()
	hour := usage.Hour.Start(now)
	seq := 0
	add := func(keyID string, g usage.Granularity, start time.Time, c usage.Counts) {
		t.Helper()
		seq++
		a := usage.Add{Series: usage.Series{Project: "acme", KeyID: keyID}, Granularity: g, Start: start, Owner: "alice", Expires: now.Add(48 * time.Hour),
			Parts: []usage.Part{{Source: "key", Seq: fmt.Sprintf("%040d", seq), Counts: c}}}
		if err := e.app.Store.AddUsage(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	add(k.ID, usage.Hour, hour.Add(-2*time.Hour), usage.Counts{Allowed: 5, RateLimited: 1, Credits: 10})
	add(k.ID, usage.Hour, hour, usage.Counts{Allowed: 2})
	add(k.ID, usage.Day, usage.Day.Start(now), usage.Counts{Allowed: 7})
	add("key_bbbbbbbbbbbbbbbbbbbbbbbb", usage.Hour, hour, usage.Counts{Allowed: 9})
	add("", usage.Hour, hour, usage.Counts{NotFound: 3})

	r := e.do(&admin, "GET", "/v1/api-keys/"+k.ID+"/usage?from="+hour.Add(-3*time.Hour).Format(time.RFC3339)+"&to="+now.Format(time.RFC3339), "")
	var series struct {
		KeyID, Granularity string
		Buckets            []struct {
			Start                         time.Time
			Allowed, RateLimited, Credits int64
		}
	}
	must(t, r.Status == 200 && json.Unmarshal(r.Data, &series) == nil, "key usage: %d %s", r.Status, r.Body)
	must(t, series.KeyID == k.ID && series.Granularity == "hour" && len(series.Buckets) == 4, "series %+v", series)
	must(t, series.Buckets[1].Allowed == 5 && series.Buckets[1].RateLimited == 1 && series.Buckets[1].Credits == 10 && series.Buckets[3].Allowed == 2 &&
		series.Buckets[0].Allowed == 0 && series.Buckets[0].Start.Equal(hour.Add(-3*time.Hour)), "buckets %+v", series.Buckets)

	r = e.do(&admin, "GET", "/v1/owners/alice/usage?granularity=day", "")
	must(t, r.Status == 200 && strings.Contains(r.Body, `"allowed":7`) && strings.Count(r.Body, `"start"`) == 30, "owner usage: %d %s", r.Status, r.Body)

	r = e.do(&admin, "GET", "/v1/usage?groupBy=key&limit=2", "")
	var groups []struct {
		Key      string
		Requests int64
	}
	must(t, r.Status == 200 && json.Unmarshal(r.Data, &groups) == nil && len(groups) == 2 && r.NextCursor != "", "project usage: %d %s", r.Status, r.Body)
	must(t, groups[0].Requests == 9 && groups[1].Key == k.ID && groups[1].Requests == 8, "largest first: %+v", groups)
	r = e.do(&admin, "GET", "/v1/usage?groupBy=key&limit=2&cursor="+r.NextCursor, "")
	must(t, r.Status == 200 && strings.Contains(r.Body, `"key":""`) && r.NextCursor == "", "the next page holds the unknown keys' row: %s", r.Body)

	for _, tt := range []struct {
		c      *caller
		target string
		status int
	}{
		{&globexAdmin, "/v1/api-keys/" + k.ID + "/usage", 404},
		{&admin, "/v1/api-keys/" + other.ID + "/usage", 404},
		{&admin, "/v1/api-keys/key_000000000000000000000fff/usage", 404},
		{&admin, "/v1/api-keys/" + k.ID + "/usage?granularity=week", 400},
		{&admin, "/v1/api-keys/" + k.ID + "/usage?from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z", 400},
		{&admin, "/v1/api-keys/" + k.ID + "/usage?from=2020-01-01T00:00:00Z&to=2030-01-01T00:00:00Z", 400},
		{&admin, "/v1/api-keys/" + k.ID + "/usage?when=now", 400},
		{&admin, "/v1/usage?groupBy=scope", 400},
		{&admin, "/v1/usage?cursor=bm9wZQ", 400},
		{&admin, "/v1/owners/bad%20owner/usage", 400},
	} {
		if r := e.do(tt.c, "GET", tt.target, ""); r.Status != tt.status {
			t.Errorf("%s as %s: %d %s, want %d", tt.target, tt.c.project, r.Status, r.Body, tt.status)
		}
	}
	r = e.do(&globexAdmin, "GET", "/v1/usage", "")
	must(t, r.Status == 200 && string(r.Data) == "[]", "another project's totals: %s", r.Body)
}
