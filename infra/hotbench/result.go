package main

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/keygate/keygate/internal/ddbcount"
	"github.com/keygate/keygate/internal/ddbthrottle"
	"github.com/keygate/keygate/pkg/authorizer"
)

// result is what a run decided, and what it cost.
type result struct {
	scenario
	mode string
	// How the requests were answered: allowed, refused by the limit,
	// refused because DynamoDB throttled the key's item (rate_limited with
	// a retryAfter), failed (an error: the function's 503).
	requests, allowed, limited, throttled, failed int
	// offered and admitted count the requests and the allowed ones by the
	// end of their rate window: the simulated one a request was sent in, the
	// store's one it was counted in.
	offered, admitted map[time.Time]int
	latencies         []time.Duration
	// hits are the latencies of decisions made from a lease, in memory.
	hits []time.Duration
	// lastAllow is, when revocation was measured, the key's last Allow
	// across the fleet after it was revoked (-1: none).
	revocation bool
	lastAllow  time.Duration
	// DynamoDB's side: requests the containers made (before the SDK's
	// retries), write units of the answered writes, throttled attempts.
	ddbRequests       int64
	writeUnits        float64
	throttledAttempts int64
	wall              time.Duration
}

func newResult(mode string, sc scenario) *result {
	return &result{scenario: sc, mode: mode, offered: map[time.Time]int{}, admitted: map[time.Time]int{}}
}

// add tallies a group of decisions sent at simulated time at.
func (r *result) add(at time.Time, group []decision) error {
	for _, d := range group {
		r.requests++
		r.offered[authorizer.WindowAt(at, time.Second).End()]++
		r.latencies = append(r.latencies, d.latency)
		if d.Leased {
			r.hits = append(r.hits, d.latency)
		}
		switch {
		case d.err != nil:
			r.failed++
		case d.Outcome == authorizer.Allowed && d.RateLimit != nil:
			r.allowed++
			r.admitted[d.RateLimit.Reset]++
		case d.Outcome == authorizer.RateLimited && d.Throttled:
			r.throttled++
		case d.Outcome == authorizer.RateLimited:
			r.limited++
		default:
			return fmt.Errorf("%s mode: unexpected decision %q (rate limit %v)", r.mode, d.Outcome, d.RateLimit)
		}
	}
	return nil
}

func (r *result) countDynamoDB(counter *ddbcount.Counter, throttle *ddbthrottle.Throttle) {
	r.ddbRequests = counter.Total()
	for _, op := range []string{"UpdateItem", "PutItem", "DeleteItem"} {
		r.writeUnits += counter.Capacity(op).Total
	}
	r.throttledAttempts = throttle.Throttled()
}

// overAdmission is an error if any window admitted more than the limit.
func (r *result) overAdmission() error {
	for _, end := range r.windows() {
		if n := r.admitted[end]; int64(n) > r.limit {
			return fmt.Errorf("%s mode at %d requests/s: %d admitted in the window ending %s, over the limit of %d",
				r.mode, r.rate, n, end.Format(time.RFC3339), r.limit)
		}
	}
	return nil
}

// windows are the ends of the windows requests were sent or counted in.
func (r *result) windows() []time.Time {
	ends := slices.Collect(maps.Keys(r.offered))
	for end := range r.admitted {
		if !slices.Contains(ends, end) {
			ends = append(ends, end)
		}
	}
	slices.SortFunc(ends, time.Time.Compare)
	return ends
}

// underAdmission is, in % of the limit, what the limit would have let
// through and was refused: per window, the lesser of the requests and the
// limit, less those admitted.
func (r *result) underAdmission() float64 {
	var missed, budget float64
	for _, end := range r.windows() {
		missed += float64(min(int64(r.offered[end]), r.limit) - int64(r.admitted[end]))
		budget += float64(r.limit)
	}
	return 100 * missed / budget
}

// percentile reads the nearest-rank percentile p of latencies.
func percentile(latencies []time.Duration, p float64) time.Duration {
	if len(latencies) == 0 {
		return 0
	}
	sorted := slices.Clone(latencies)
	slices.Sort(sorted)
	rank := int(p*float64(len(sorted)) + 0.5)
	return sorted[min(max(rank, 1), len(sorted))-1]
}
