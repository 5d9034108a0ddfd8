package authorizer

import (
	"context"
	"crypto/sha256"
	"slices"
	"time"

	"github.com/keygate/keygate/pkg/keys"
)

// Store checks and counts one use of a key. pkg/dynamo implements it with
// one strongly consistent conditional write on the key's item (and one on
// its owner's, for a key whose owner has limits of its own).
type Store interface {
	// UseKey counts one use of the key if, and only if, the key exists with
	// this hash (and project, when set), is active, is not expired, holds
	// every scope of Scopes, every rate limit of the key and of its owner
	// has room in its current window, and their credits cover Cost. It then
	// counts the use in every limit's window and spends Cost of the credits.
	// Otherwise it counts and spends nothing and says why, in this order:
	// NotFound, Revoked, Expired, InsufficientScope, RateLimited,
	// UsageExceeded; the key's limits before its owner's. When DynamoDB
	// throttles the key's write for its item's partition alone, the use is
	// RateLimited with Throttled set, having checked nothing. An error is a
	// failure of the store, never a refusal.
	//
	// A rotated key within its grace period counts on its successor's item:
	// rotating continues a budget rather than starting a new one.
	//
	// A lease (lease.go) counts a block of Uses at once, and nets the
	// GiveBack of its last lease into the same write.
	UseKey(ctx context.Context, req UseRequest) (UseResult, error)
	// ReturnUse takes back the uses UseKey counted, for a request refused
	// after the count (its IP, or its owner's limits): each window count
	// still current goes down by them, the credits spent come back, and
	// totalRequests goes down by them, never below zero.
	ReturnUse(ctx context.Context, req UseRequest, used UseResult) error
}

// UseRequest is one use of a key to count.
type UseRequest struct {
	ID   string
	Hash [sha256.Size]byte
	// Project, when set, makes a key of another project NotFound.
	Project string
	// Scopes the key must hold: the route's, checked in the same write, so
	// a request refused for scope is not counted.
	Scopes []string
	// TierLimits are the rate limits of the key's tier, which the tier code
	// in the key tells before any lookup: they apply to a key that has no
	// limits of its own.
	TierLimits []keys.RateLimit
	// Cost is what the use spends of the key's credits and its owner's; 0
	// checks that the key may be used without spending any. For a block of
	// Uses, it is the whole block's.
	Cost int64
	// Uses is how many uses to count: 0 or 1 for a request, a lease's
	// block for a lease. Every window of the key's limits (and its
	// owner's) must have room for all of them.
	Uses int64
	// GiveBack is what the container's last lease on the key left
	// unspent, taken back in the same write (lease.go).
	GiveBack Unspent
	Now      time.Time
}

// Count is how many uses the request counts: at least one.
func (r UseRequest) Count() int64 { return max(1, r.Uses) }

// Unspent is what a lease claimed and did not spend. A write on the item
// the lease counted on takes back its Uses from totalRequests and from
// each limit's count while the window is still the one they were claimed
// in, and its Credits from the credits while no refill came since
// (CreditsPeriod is then still the item's nextRefillAt).
type Unspent struct {
	Item    string
	Uses    int64
	Limits  []LimitCount
	Credits int64
	// CreditsPeriod and OwnerCreditsPeriod are the NextRefillAt of the key's
	// credits and its owner's when claimed; nil when they never refill.
	CreditsPeriod, OwnerCreditsPeriod *time.Time
	// Version and OwnerVersion are the versions of the item counted on and
	// of the owner's limits item when claimed (UseResult): credits go back
	// only while no management change wrote the item since, since one that
	// sets the credits sets what is held from then on.
	Version, OwnerVersion int64
	// OwnerOnly is set once the key's item took its part back (a claim
	// its owner then refused): what is left goes back to the owner's item
	// alone.
	OwnerOnly bool
}

// For is what of u an item takes back in a write, given the item the write
// is on: nothing on another item.
func (u Unspent) For(item string) Unspent {
	if u.Item != item || u.Uses <= 0 && u.Credits <= 0 {
		return Unspent{}
	}
	return u
}

// ForKey is what of u the key's item takes back in a write on item:
// nothing once it took its part.
func (u Unspent) ForKey(item string) Unspent {
	if u.OwnerOnly {
		return Unspent{}
	}
	return u.For(item)
}

// After is what of u is still to give back once the store answered used:
// nothing once all of it was taken, the owner's part when the key's item
// took its own and the owner then refused.
func (u Unspent) After(used UseResult) Unspent {
	switch {
	case !used.GaveBack:
		return u
	case used.Outcome == Allowed || u.Uses <= 0 && u.Credits <= 0:
		return Unspent{}
	}
	u.OwnerOnly = true
	return u
}

// UseResult is what UseKey found.
type UseResult struct {
	// Outcome is Allowed when the use was counted; otherwise NotFound,
	// Revoked, Expired, InsufficientScope, RateLimited or UsageExceeded.
	Outcome Outcome
	// Key is the key as stored: after the use when counted, as found
	// otherwise; nil when NotFound.
	Key *keys.Key
	// Limits are the limits that applied, the key's then its owner's, each
	// with its count in the window it counted in (this use included when
	// Allowed), when Allowed, RateLimited or UsageExceeded.
	Limits []LimitCount
	// Refused is, when RateLimited, the index in Limits of the limit that
	// refused.
	Refused int
	// Credits and OwnerCredits are what remains after the use; nil when
	// unlimited, or when the refusal came before credits were looked at.
	Credits, OwnerCredits *keys.Credits
	// Throttled is set, with RateLimited, when DynamoDB refused the key's
	// write because the key's item took all the writes its partition
	// takes in a second; no limit refused (Limits is empty), nor was the
	// key checked.
	Throttled bool
	// CountedOn is the id of the item the use counted on: the key's own, or
	// its successor's within a rotation's grace; ReturnUse gives back there.
	CountedOn string
	// GaveBack is set when the request's GiveBack was taken back: the key's
	// write was applied (whatever its owner's then said).
	GaveBack bool
	// Version and OwnerVersion are, when Allowed, the management versions
	// of the item counted on and of the owner's limits item, as written.
	Version, OwnerVersion int64
}

// LimitCount is one rate limit and its use in a window.
type LimitCount struct {
	keys.RateLimit
	// Owner is set for a limit of the key's owner, shared by all its keys.
	Owner bool
	// Window is the window counted in: the request's, or the key's later
	// one when the request reached the store behind it (its clock is
	// behind, or it arrived late).
	Window Window
	Count  int64
}

// Remaining is the room left in the window.
func (c LimitCount) Remaining() int64 { return max(0, c.Limit-c.Count) }

// Returned is the use as it stands once ReturnUse gave it back, as a
// refusal shows it: the counts and credits before the use.
func (r UseResult) Returned(req UseRequest) UseResult {
	n, cost := req.Count(), req.Cost
	k := *r.Key
	k.Usage.TotalRequests -= n
	r.Key = &k
	r.Limits = slices.Clone(r.Limits)
	for i := range r.Limits {
		r.Limits[i].Count -= n
	}
	for _, c := range []**keys.Credits{&r.Credits, &r.OwnerCredits} {
		if *c != nil {
			back := **c
			back.Remaining += cost
			*c = &back
		}
	}
	return r
}
