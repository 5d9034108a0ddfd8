package authorizer

import "github.com/keygate/keygate/pkg/keys"

// LockLease holds the lock of the lease a's container keeps of key id,
// found or made as a decision would for tier; the returned func releases
// it. Tests use it to line up concurrent decisions on one lease.
func LockLease(a *Authorizer, id string, tier keys.Tier) func() {
	l := a.leases.find(id, tier)
	if l == nil {
		return func() {}
	}
	l.mu.Lock()
	return l.mu.Unlock
}

// LeaseCount is how many keys a's container holds leases of.
func LeaseCount(a *Authorizer) int {
	a.leases.mu.Lock()
	defer a.leases.mu.Unlock()
	return len(a.leases.byID)
}

// SweepLease forgets the lease of key id as the sweep does, while the
// caller holds its lock (LockLease): a decision that found it before
// then waits on a lease no longer the container's.
func SweepLease(a *Authorizer, id string) {
	a.leases.mu.Lock()
	defer a.leases.mu.Unlock()
	if l := a.leases.byID[id]; l != nil {
		a.leases.forget(id, l)
	}
}
