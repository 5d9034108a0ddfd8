package authorizer_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/authorizer/authorizertest"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

// appliedThenFailed is a store whose next claim giving something back is
// applied, then fails: as pkg/dynamo's UseKey does when the key's write
// went through and its owner's write (or the return after the owner's
// refusal, or the answer itself) failed.
type appliedThenFailed struct {
	*authorizertest.Store
	mu   sync.Mutex
	fail bool
	// applied is what the failed claim gave back; again is set when a
	// later claim gives it back again.
	applied *authorizer.Unspent
	again   bool
}

func (s *appliedThenFailed) UseKey(ctx context.Context, req authorizer.UseRequest) (authorizer.UseResult, error) {
	res, err := s.Store.UseKey(ctx, req)
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.applied; b != nil && req.GiveBack.Uses == b.Uses && req.GiveBack.Credits == b.Credits && len(req.GiveBack.Limits) == len(b.Limits) {
		s.again = true
	}
	if err == nil && s.fail && res.GaveBack && req.GiveBack.Credits > 0 {
		s.fail = false
		s.applied = &req.GiveBack
		return res, errors.New("the owner's write failed")
	}
	return res, err
}

// A claim that failed after its write was applied has given back what the
// last lease left: giving it back again in the next claim would make
// credits (and window room) that were never returned.
func TestReviewLeaseFailedClaimGivesBackOnce(t *testing.T) {
	cfg := keys.DefaultConfig()
	tier := hotTier(1_000_000)
	cfg.Tiers = append(cfg.Tiers, tier)
	fake := authorizertest.NewStore()
	store := &appliedThenFailed{Store: fake}
	raw := authorizertest.Key(keys.DefaultKeyPrefix, "ht", "failed claim")
	id := fake.Add(raw, keys.Key{Tier: "hot", Project: "acme", Status: keys.StatusActive, Scopes: []string{"contracts"},
		RateLimitsFromTier: true, Credits: &keys.Credits{Remaining: 100}})
	now := time.Date(2030, 1, 15, 10, 0, 0, 0, time.UTC)
	a := authorizer.New(cfg, store, slog.New(slog.DiscardHandler), authorizer.WithClock(func() time.Time { return now }))
	req := authorizer.Request{Key: raw, Scopes: []string{"contracts"}, Cost: 1}
	allowed := 0
	decide := func() (authorizer.Decision, error) {
		d, err := a.Decide(context.Background(), req)
		if err == nil && d.Outcome == authorizer.Allowed {
			allowed++
		}
		return d, err
	}
	for range 40 { // blocks of 1, 3, 7, 15, 31: the last one mostly unspent
		now = now.Add(time.Millisecond)
		if _, err := decide(); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(2 * authorizer.LeaseLifetime)
	store.mu.Lock()
	store.fail = true
	store.mu.Unlock()
	if _, err := decide(); err == nil {
		t.Fatal("the failing claim did not fail")
	}
	for range 300 {
		now = now.Add(2 * time.Millisecond)
		d, err := decide()
		if err != nil {
			t.Fatal(err)
		}
		if d.Outcome == authorizer.UsageExceeded {
			now = now.Add(2 * authorizer.LeaseLifetime) // a remembered refusal ends, and the claim gives back
		}
	}
	if store.again {
		t.Errorf("what the last lease left (%d uses, %d credits) was given back by the claim that failed and again by the next", store.applied.Uses, store.applied.Credits)
	}
	if allowed > 100 {
		t.Errorf("%d allowed at a cost of 1 with 100 credits", allowed)
	}
	if c := fake.Credits(t, id); c.Remaining < 0 || c.Remaining+int64(allowed) > 100 {
		t.Errorf("credits %d left after %d allowed of 100", c.Remaining, allowed)
	}
}

// exactAfterLease is a container whose lease of a key has learned that
// the key went exact, with uses and credits of its block unspent and the
// lease ended: the next decision goes to the store as exact mode does,
// giving them back.
func exactAfterLease(t *testing.T) (f *fleet, raw, id string, allowed *int) {
	f = newFleet(t, 1, hotTier(1_000_000), 0, 1)
	raw = f.key("ht", "goes exact", func(k *keys.Key) { k.Credits = &keys.Credits{Remaining: 1_000_000} })
	id = token.ID(token.Hash(raw))
	res := f.run(raw, load{rate: 1000, seconds: 1}, 1)
	f.store.Edit(id, func(k *keys.Key) { k.Mode, k.ModeFromTier = keys.ModeExact, false })
	f.now = f.now.Add(authorizer.LeaseLifetime)
	req := authorizer.Request{Key: raw, Scopes: []string{"contracts"}, Cost: 1}
	if d := f.decide(0, req); d.Outcome != authorizer.Allowed { // the claim that learns it
		t.Fatalf("the claim after the change of mode: %s", d.Outcome)
	}
	n := res.allowed + 1
	f.now = f.now.Add(authorizer.LeaseLifetime)
	if f.store.TotalRequests(id) == int64(n) {
		t.Fatal("the lease holds nothing unspent")
	}
	return f, raw, id, &n
}

// Two decisions waiting on the lease when it goes exact: the first gives
// back what it left and forgets it; the second must not give it again.
func TestReviewLeaseGoneExactGivesBackOnce(t *testing.T) {
	f, raw, id, allowed := exactAfterLease(t)
	req := authorizer.Request{Key: raw, Scopes: []string{"contracts"}, Cost: 1}
	unlock := authorizer.LockLease(f.containers[0], id, hotTier(1_000_000))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range 2 {
		wg.Go(func() {
			d, err := f.containers[0].Decide(context.Background(), req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil || d.Outcome != authorizer.Allowed {
				t.Errorf("%s, %v", d.Outcome, err)
			}
			*allowed++
		})
	}
	time.Sleep(50 * time.Millisecond) // both wait on the lease
	unlock()
	wg.Wait()
	if got := f.store.TotalRequests(id); got != int64(*allowed) {
		t.Errorf("stored total %d, want the %d allowed", got, *allowed)
	}
	if c := f.store.Credits(t, id); c.Remaining != 1_000_000-int64(*allowed) {
		t.Errorf("credits %d, want %d", c.Remaining, 1_000_000-int64(*allowed))
	}
}

// A decision in exact mode that the store refuses (here for scope) takes
// nothing back: what the lease left is still to give back.
func TestReviewLeaseGoneExactRefusedKeepsWhatItOwes(t *testing.T) {
	f, raw, id, allowed := exactAfterLease(t)
	if d := f.decide(0, authorizer.Request{Key: raw, Scopes: []string{"vaults"}, Cost: 1}); d.Outcome != authorizer.InsufficientScope {
		t.Fatalf("a request lacking a scope: %s", d.Outcome)
	}
	if d := f.decide(0, authorizer.Request{Key: raw, Scopes: []string{"contracts"}, Cost: 1}); d.Outcome != authorizer.Allowed {
		t.Fatalf("a request holding its scope: %s", d.Outcome)
	}
	*allowed++
	if got := f.store.TotalRequests(id); got != int64(*allowed) {
		t.Errorf("stored total %d, want the %d allowed", got, *allowed)
	}
}

// Credits set by a management change are what the key holds from then
// on: the unspent credits of a lease claimed before must not go back on
// top of them.
func TestReviewLeaseCreditsSetAreNotOverfilled(t *testing.T) {
	f := newFleet(t, 1, hotTier(1_000_000), 0, 1)
	raw := f.key("ht", "credits set", func(k *keys.Key) { k.Credits = &keys.Credits{Remaining: 1_000_000} })
	id := token.ID(token.Hash(raw))
	f.run(raw, load{rate: 1000, seconds: 1}, 1)
	req := authorizer.Request{Key: raw, Scopes: []string{"contracts"}, Cost: 1}
	f.now = f.now.Add(300 * time.Millisecond)
	f.decide(0, req) // a lease for the rest of the window, mostly unspent
	f.store.Edit(id, func(k *keys.Key) { k.Credits = &keys.Credits{Remaining: 10} })
	f.now = f.now.Add(authorizer.LeaseLifetime)
	allowed := 0
	for range 200 {
		f.now = f.now.Add(10 * time.Millisecond)
		if f.decide(0, req).Outcome == authorizer.Allowed {
			allowed++
		}
	}
	t.Logf("allowed %d, credits %d", allowed, f.store.Credits(t, id).Remaining)
	if allowed > 10 {
		t.Errorf("%d allowed at a cost of 1 after the credits were set to 10", allowed)
	}
}
