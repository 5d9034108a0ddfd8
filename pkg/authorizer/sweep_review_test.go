package authorizer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

// A lease whose key was revoked while it held unspent uses owes them for
// good (every claim is refused): the sweep must still forget it, or a
// container's leases of revoked keys fill its map and every key after
// them is decided in exact mode.
func TestReviewLeaseSweepForgetsRevokedKeys(t *testing.T) {
	f := newFleet(t, 1, hotTier(1_000_000), 0, 1)
	const n = 6000
	raws := make([]string, n)
	for i := range raws {
		raws[i] = f.key("ht", fmt.Sprintf("revoked %d", i), nil)
	}
	use := func(raw string) authorizer.Outcome {
		return f.decide(0, authorizer.Request{Key: raw, Scopes: []string{"contracts"}}).Outcome
	}
	for _, raw := range raws { // a block of 1, then one of 3 that leaves 2
		use(raw)
	}
	f.now = f.now.Add(time.Millisecond)
	for _, raw := range raws {
		use(raw)
	}
	at := f.now
	for _, raw := range raws {
		f.store.Edit(token.ID(token.Hash(raw)), func(k *keys.Key) { k.Status, k.RevokedAt = keys.StatusRevoked, &at })
	}
	f.now = f.now.Add(authorizer.LeaseLifetime)
	for _, raw := range raws {
		if o := use(raw); o != authorizer.Revoked {
			t.Fatalf("a revoked key: %s", o)
		}
	}
	f.now = f.now.Add(authorizer.LeaseLifetime)
	use(f.key("ht", "after the revocations", nil)) // its claim sweeps
	if got := authorizer.LeaseCount(f.containers[0]); got > 1 {
		t.Errorf("%d leases held after the sweep, want only the new key's", got)
	}
}

// A decision that found a lease the sweep then forgot must not claim into
// it: the block would be lost with it (never given back, the window's
// uses held until it ends), as the container's next decision makes a new
// lease.
func TestReviewLeaseForgottenLeaseIsNotClaimedInto(t *testing.T) {
	f := newFleet(t, 1, hotTier(1_000_000), 0, 1)
	raw := f.key("ht", "forgotten", nil)
	id := token.ID(token.Hash(raw))
	res := f.run(raw, load{rate: 1000, seconds: 1}, 1) // blocks of a second's worth
	allowed := res.allowed
	req := authorizer.Request{Key: raw, Scopes: []string{"contracts"}}
	f.now = f.now.Add(300 * time.Millisecond)
	unlock := authorizer.LockLease(f.containers[0], id, hotTier(1_000_000))
	done := make(chan authorizer.Outcome)
	go func() {
		d, _ := f.containers[0].Decide(context.Background(), req)
		done <- d.Outcome
	}()
	time.Sleep(50 * time.Millisecond) // it waits on the lease
	authorizer.SweepLease(f.containers[0], id)
	unlock()
	if o := <-done; o == authorizer.Allowed {
		allowed++
	}
	for range 100 {
		f.now = f.now.Add(time.Millisecond)
		if f.decide(0, req).Outcome == authorizer.Allowed {
			allowed++
		}
	}
	// The key goes exact: the next claim learns it, the decision after
	// takes back what the lease left.
	f.store.Edit(id, func(k *keys.Key) { k.Mode, k.ModeFromTier = keys.ModeExact, false })
	for range 2 {
		f.now = f.now.Add(authorizer.LeaseLifetime)
		if f.decide(0, req).Outcome == authorizer.Allowed {
			allowed++
		}
	}
	if got := f.store.TotalRequests(id); got != int64(allowed) {
		t.Errorf("stored total %d, want the %d allowed: a block was lost with a forgotten lease", got, allowed)
	}
}
