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
