package dynamo_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

// The exactness the limits promise, against DynamoDB Local: whatever the
// concurrency, no window passes more than its limit, no credit is spent
// twice, a refill happens once, and an owner's limits hold across its keys.

// limitedKey stores a key of project acme with its own limits and credits,
// after edit, and returns it raw.
func (e *dbEnv) limitedKey(limits []keys.RateLimit, credits *keys.Credits, edit func(*keys.Key)) string {
	e.t.Helper()
	seed := sha256.Sum256(fmt.Appendf(nil, "%s %d", e.t.Name(), time.Now().UnixNano()))
	raw, err := token.Generate(bytes.NewReader(seed[:]), "kg", "pk")
	if err != nil {
		e.t.Fatal(err)
	}
	now := e.clock.Now()
	k := &keys.Key{
		Name: "limited", Start: token.DisplayPrefix(raw), Tier: "public", Project: "acme", Status: keys.StatusActive,
		CreatedAt: now, UpdatedAt: now, CreatedBy: keys.ActorOperator,
		RateLimits: limits, Credits: credits, LimitsVersion: 1,
	}
	k.Hash = token.Hash(raw)
	k.ID = token.ID(k.Hash)
	if edit != nil {
		edit(k)
	}
	if err := dynamo.New(e.raw, e.table).Apply(context.Background(), keys.Tx{Create: []*keys.Key{k}}); err != nil {
		e.t.Fatal(err)
	}
	return raw
}

// hammerWorkers is how many authorizations hammer runs at once. DynamoDB
// Local (one JVM, here on 2 cores) serializes the writes on one item and
// takes some 30-50 ms each, more under make test's load: 100 at once would
// queue some past the authorizer's 3 s budget, which these tests are not
// about.
const hammerWorkers = 6

// hammer runs n authorizations of the keys, round robin, hammerWorkers at
// a time, and counts their outcomes.
func (e *dbEnv) hammer(auth *authorizer.Authorizer, n int, cost int64, raws ...string) map[authorizer.Outcome]int {
	e.t.Helper()
	var (
		mu       sync.Mutex
		outcomes = map[authorizer.Outcome]int{}
		wg       sync.WaitGroup
		jobs     = make(chan string, n)
	)
	for i := range n {
		jobs <- raws[i%len(raws)]
	}
	close(jobs)
	for range hammerWorkers {
		wg.Go(func() {
			for raw := range jobs {
				d, err := auth.Decide(context.Background(), authorizer.Request{Key: raw, Cost: cost})
				mu.Lock()
				if err != nil {
					e.t.Error(err)
				} else {
					outcomes[d.Outcome]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return outcomes
}

func (e *dbEnv) credits(raw string) int64 {
	e.t.Helper()
	return number(e.t, e.item(raw), "credits")
}

// With limits {5 per second, 20 per 900 s} and 100 concurrent requests a
// second, exactly 5 pass each second until 20 passed in the window, then
// none.
func TestSeveralLimitsAreExactUnderConcurrency(t *testing.T) {
	e := newDBEnv(t)
	raw := e.limitedKey([]keys.RateLimit{{Name: "burst", Limit: 5, WindowSeconds: 1}, {Name: "sustained", Limit: 20, WindowSeconds: 900}}, nil, nil)
	passed := 0
	for second := range 6 {
		got := e.hammer(e.auth, 100, 1, raw)
		want := min(5, 20-passed)
		if got[authorizer.Allowed] != want || got[authorizer.RateLimited] != 100-want {
			t.Errorf("second %d: %v, want %d allowed and the rest rate limited", second, got, want)
		}
		passed += got[authorizer.Allowed]
		e.clock.Advance(time.Second)
	}
	if passed != 20 || e.totalRequests(raw) != 20 {
		t.Errorf("%d passed, totalRequests %d; want 20 in the 900 s window", passed, e.totalRequests(raw))
	}
	sustained := dynamo.CounterAttr("sustained.900", e.windowStart())
	if got := e.windowCounters(raw)[sustained]; got != 20 {
		t.Errorf("counters %v, want %s at 20", e.windowCounters(raw), sustained)
	}
}

// credits.remaining 50, cost 3, 100 concurrent requests: exactly 16 pass
// and 2 remain.
func TestCreditsAreExactUnderConcurrency(t *testing.T) {
	e := newDBEnv(t)
	raw := e.limitedKey([]keys.RateLimit{}, &keys.Credits{Remaining: 50}, nil)
	got := e.hammer(e.auth, 100, 3, raw)
	if got[authorizer.Allowed] != 16 || got[authorizer.UsageExceeded] != 84 {
		t.Errorf("outcomes %v, want 16 allowed and 84 usage exceeded", got)
	}
	if c := e.credits(raw); c != 2 {
		t.Errorf("credits %d, want 2", c)
	}
	if n := e.totalRequests(raw); n != 16 {
		t.Errorf("totalRequests %d, want 16", n)
	}
}

// 50 requests race across the refill time, stamped on both sides of it:
// the credits refill once, so no more than the refill amount passes after
// it, and what passed is what was spent.
func TestRefillHappensOnceAcrossThePeriodBoundary(t *testing.T) {
	e := newDBEnv(t)
	boundary := time.Date(2030, time.January, 16, 0, 0, 0, 0, time.UTC)
	raw := e.limitedKey([]keys.RateLimit{}, &keys.Credits{
		Remaining: 0, Refill: &keys.Refill{Interval: keys.RefillDaily, Amount: 30}, NextRefillAt: &boundary,
	}, nil)
	store := dynamo.New(e.raw, e.table)
	before := authorizer.New(dbConfig, store, slog.New(slog.DiscardHandler), authorizer.WithClock(func() time.Time { return boundary.Add(-time.Millisecond) }))
	after := authorizer.New(dbConfig, store, slog.New(slog.DiscardHandler), authorizer.WithClock(func() time.Time { return boundary }))
	var wg sync.WaitGroup
	results := make([]map[authorizer.Outcome]int, 2)
	for i, auth := range []*authorizer.Authorizer{before, after} {
		wg.Go(func() { results[i] = e.hammer(auth, 25, 1, raw) })
	}
	wg.Wait()
	// A request stamped before the boundary that reaches the table after
	// the refill spends the new period's credits, as a late request does.
	allowed := results[0][authorizer.Allowed] + results[1][authorizer.Allowed]
	if remaining := e.credits(raw); allowed > 30 || remaining != int64(30-allowed) {
		t.Errorf("%d allowed, %d remaining: want at most 30 allowed, spending the one refill of 30", allowed, remaining)
	}
	if next := number(t, e.item(raw), "nextRefill"); next != boundary.AddDate(0, 0, 1).UnixMilli() {
		t.Errorf("nextRefill %d, want the next midnight", next)
	}
	// 50 more after the boundary: what the one refill left, and no more.
	left := 30 - allowed
	if got := e.hammer(after, 50, 1, raw); got[authorizer.Allowed] != left {
		t.Errorf("50 more: %v, want %d allowed", got, left)
	}
}

// An owner's limit of 10 holds exactly across 4 of its keys hammered at
// once, and its credits alike; a refusal by the owner spends nothing of
// the key's own budget.
func TestOwnerLimitsAreExactAcrossKeys(t *testing.T) {
	e := newDBEnv(t)
	if err := dynamo.PutOwnerLimits(context.Background(), e.raw, e.table, "acme", "team", []keys.RateLimit{{Name: "shared", Limit: 10, WindowSeconds: 900}}, &keys.Credits{Remaining: 1000}); err != nil {
		t.Fatal(err)
	}
	var raws []string
	for range 4 {
		raws = append(raws, e.limitedKey([]keys.RateLimit{{Name: "own", Limit: 5, WindowSeconds: 900}}, nil, func(k *keys.Key) { k.Owner, k.OwnerLimited = "team", true }))
	}
	got := e.hammer(e.auth, 100, 1, raws...)
	if got[authorizer.Allowed] != 10 || got[authorizer.RateLimited] != 90 {
		t.Errorf("outcomes %v, want 10 allowed and 90 rate limited", got)
	}
	var total, own int64
	for _, raw := range raws {
		total += e.totalRequests(raw)
		own += e.windowCounters(raw)[dynamo.CounterAttr("own.900", e.windowStart())]
	}
	if total != 10 || own != 10 {
		t.Errorf("the keys counted %d uses and %d in their own windows, want 10: refusals by the owner must give back", total, own)
	}
}

func TestOwnerCreditsAreExactAcrossKeys(t *testing.T) {
	e := newDBEnv(t)
	if err := dynamo.PutOwnerLimits(context.Background(), e.raw, e.table, "acme", "team", []keys.RateLimit{}, &keys.Credits{Remaining: 20}); err != nil {
		t.Fatal(err)
	}
	var raws []string
	for range 4 {
		raws = append(raws, e.limitedKey([]keys.RateLimit{}, &keys.Credits{Remaining: 100}, func(k *keys.Key) { k.Owner, k.OwnerLimited = "team", true }))
	}
	got := e.hammer(e.auth, 100, 3, raws...)
	if got[authorizer.Allowed] != 6 || got[authorizer.UsageExceeded] != 94 {
		t.Errorf("outcomes %v, want 6 allowed and 94 usage exceeded", got)
	}
	var spent int64
	for _, raw := range raws {
		spent += 100 - e.credits(raw)
	}
	if spent != 18 {
		t.Errorf("the keys spent %d credits, want 18: refusals by the owner must give back", spent)
	}
}

// A warm authorizer decides a key with 3 limits and credits in one request
// and one write unit; it learns the key's plan on first sight (two
// requests), and again once the plan changes.
func TestLimitedKeyRequestsAndUnits(t *testing.T) {
	e := newDBEnv(t)
	limits := []keys.RateLimit{{Name: "burst", Limit: 1000, WindowSeconds: 1}, {Name: "hourly", Limit: 100000, WindowSeconds: 3600}, {Name: "daily", Limit: 1000000, WindowSeconds: 86400}}
	monthly := &keys.Refill{Interval: keys.RefillMonthly, Amount: 5000, RefillDay: 1}
	next := monthly.NextAfter(e.clock.Now())
	raw := e.limitedKey(limits, &keys.Credits{Remaining: 5000, Refill: monthly, NextRefillAt: &next}, func(k *keys.Key) {
		k.Owner, k.Scopes = "alice", []string{"contracts"}
	})
	for i, want := range []int64{2, 1, 1} {
		e.clock.Advance(time.Second)
		d, requests := e.decide(authorizer.Request{Key: raw, Scopes: []string{"contracts"}, Cost: 1})
		if d.Outcome != authorizer.Allowed || requests != want {
			t.Errorf("authorization %d: %s in %d requests, want allowed in %d", i+1, d.Outcome, requests, want)
		}
		if len(d.RateLimits) != 3 || d.Credits == nil || d.Credits.Remaining != int64(4999-i) {
			t.Errorf("authorization %d: limits %+v, credits %+v", i+1, d.RateLimits, d.Credits)
		}
		if got := e.requests.Capacity("UpdateItem"); want == 1 && got.Total != 1 {
			t.Errorf("authorization %d consumed %v write units, want 1", i+1, got.Total)
		}
	}
	if n := len(e.item(raw)); n > 40 {
		t.Errorf("the item holds %d attributes: the windows are not swept", n)
	}
}
