package authorizer_test

import (
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

// After a management change (or a refill), what the last lease left of credits no
// longer goes back; a key that holds credits for the request must not be
// refused for long because the lease counted on them.
func TestReviewLeaseNoLockoutWhenCreditsDoNotGoBack(t *testing.T) {
	f := newFleet(t, 1, hotTier(1_000_000), 0, 1)
	raw := f.key("ht", "lockout", func(k *keys.Key) { k.Credits = &keys.Credits{Remaining: 1_000_000} })
	id := token.ID(token.Hash(raw))
	f.run(raw, load{rate: 1000, seconds: 1}, 1)
	req := authorizer.Request{Key: raw, Scopes: []string{"contracts"}, Cost: 1}
	f.now = f.now.Add(300 * time.Millisecond)
	f.decide(0, req) // a lease for the rest of the window, mostly unspent
	f.store.Edit(id, func(k *keys.Key) { k.Credits = &keys.Credits{Remaining: 50} })
	f.now = f.now.Add(authorizer.LeaseLifetime) // the lease ended, its credits unspent
	changed := f.now
	var first time.Duration = -1
	allowed := 0
	for f.now.Before(changed.Add(5 * time.Second)) {
		f.now = f.now.Add(10 * time.Millisecond)
		if f.decide(0, req).Outcome == authorizer.Allowed {
			allowed++
			if first < 0 {
				first = f.now.Sub(changed)
			}
		}
	}
	t.Logf("first allowed %s after the change, %d allowed", first, allowed)
	if first < 0 || first > 100*time.Millisecond || allowed != 50 {
		t.Errorf("the first request allowed %s after the credits were set to 50, want at once, as exact mode", first)
	}
}

// A key without credits left still passes a request that costs nothing, in
// exact mode; a refusal for credits that the lease remembers must not
// refuse it, nor one that costs less than the credits left.
func TestReviewLeaseRememberedUsageRefusalSparesCheaperRequests(t *testing.T) {
	f := newFleet(t, 1, hotTier(1_000_000), 0, 1)
	raw := f.key("ht", "free routes", func(k *keys.Key) { k.Credits = &keys.Credits{Remaining: 5} })
	costly := authorizer.Request{Key: raw, Scopes: []string{"contracts"}, Cost: 3}
	free := authorizer.Request{Key: raw, Scopes: []string{"contracts"}, Cost: 0}
	for range 2 {
		f.now = f.now.Add(time.Millisecond)
		f.decide(0, costly)
	}
	if d := f.decide(0, costly); d.Outcome != authorizer.UsageExceeded {
		t.Fatalf("a request costing 3 of the 2 credits left: %s", d.Outcome)
	}
	for i := range 20 {
		f.now = f.now.Add(10 * time.Millisecond)
		if d := f.decide(0, free); d.Outcome != authorizer.Allowed {
			t.Fatalf("request %d costing nothing: %s, want allowed as in exact mode", i, d.Outcome)
		}
		if i%5 == 4 {
			if d := f.decide(0, costly); d.Outcome != authorizer.UsageExceeded {
				t.Fatalf("a request costing 3: %s", d.Outcome)
			}
		}
	}
}

// A key that spent its window is refused a scope it lacks as such, as
// exact mode refuses it (scopes before budgets), not as rate limited: the
// refusal a lease remembers answers only for what the key may do.
func TestLeaseRememberedRateLimitStillRefusesMissingScope(t *testing.T) {
	f := newFleet(t, 1, hotTier(10), 0, 1)
	raw := f.key("ht", "scoped", nil)
	held := authorizer.Request{Key: raw, Scopes: []string{"contracts"}}
	lacked := authorizer.Request{Key: raw, Scopes: []string{"payments"}}
	for range 10 {
		f.now = f.now.Add(time.Millisecond)
		f.decide(0, held)
	}
	if d := f.decide(0, held); d.Outcome != authorizer.RateLimited {
		t.Fatalf("past the limit: %s", d.Outcome)
	}
	f.now = f.now.Add(time.Millisecond)
	if d := f.decide(0, lacked); d.Outcome != authorizer.InsufficientScope || d.Key == nil {
		t.Errorf("a scope the key lacks, its window spent: %s, want %s showing the key", d.Outcome, authorizer.InsufficientScope)
	}
	if d := f.decide(0, held); d.Outcome != authorizer.RateLimited || d.RetryAfter <= 0 {
		t.Errorf("then a scope it holds: %s, retry after %s; want still rate limited", d.Outcome, d.RetryAfter)
	}
}
