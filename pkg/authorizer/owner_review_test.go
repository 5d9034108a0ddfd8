package authorizer_test

import (
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/keys"
)

// A lease of a key whose owner has credits holds some of the owner's: when
// its next claim is refused by the owner, what it left of them must still
// go back, not be lost to every key of the owner for good.
func TestReviewLeaseOwnerRefusalKeepsOwnerCredits(t *testing.T) {
	f := newFleet(t, 2, hotTier(1_000_000), 0, 1)
	f.store.SetOwnerLimits(t, "acme", "o", []keys.RateLimit{}, &keys.Credits{Remaining: 1000})
	owned := func(k *keys.Key) { k.Owner, k.OwnerLimited = "o", true }
	leased := f.key("ht", "owner leased", owned)
	plain := f.key("in", "owner exact", owned) // the internal tier decides exactly
	allowed := 0
	decide := func(c int, raw string) authorizer.Outcome {
		d := f.decide(c, authorizer.Request{Key: raw, Scopes: []string{"contracts"}, Cost: 1})
		if d.Outcome == authorizer.Allowed {
			allowed++
		}
		return d.Outcome
	}
	for range 100 { // the leased key's blocks grow: its last is mostly unspent
		f.now = f.now.Add(time.Millisecond)
		decide(0, leased)
	}
	for range 2000 { // the other key spends all the owner's credits left
		f.now = f.now.Add(time.Microsecond)
		if decide(1, plain) != authorizer.Allowed {
			break
		}
	}
	for range 20 { // the leased key's lease ended: it gives back, and spends what is left
		f.now = f.now.Add(authorizer.LeaseLifetime)
		for range 100 {
			f.now = f.now.Add(time.Millisecond)
			decide(0, leased)
		}
	}
	if allowed != 1000 {
		t.Errorf("%d allowed at a cost of 1 of the owner's 1,000 credits; remaining %d", allowed, f.store.OwnerCredits(t, "acme", "o").Remaining)
	}
}
