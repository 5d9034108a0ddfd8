package authorizer

import (
	"context"
	"crypto/subtle"
	"math"
	"sync"
	"time"

	"github.com/keygate/keygate/pkg/keys"
)

// Leased mode (docs/leases.md). A warm container claims a block of a key's
// budget (uses in each rate window, and credits) with one conditional write,
// then decides from memory until the block is spent, the lease ends or a
// window does. The store admits a claim only if every window has room for
// the whole block and the credits cover it, so the blocks outstanding never
// add up to more than the limits: leased mode never admits more than exact
// mode would. What a lease leaves unspent goes back in the container's next
// claim of the key, in the same write.

// LeaseLifetime bounds how long a container decides from what one write
// told it: every management change of a key (revocation, scopes, IP
// allowlist, limits, credits, mode) reaches every container within it, and
// a refusal remembered in memory lasts no longer.
const LeaseLifetime = time.Second

// scarceSpan is how much of a container's traffic a block is sized for
// once a window is half spent (otherwise LeaseLifetime's worth): when the
// budget runs short, what a lease leaves unspent (a container that dies
// holding it, or a window that ends) is what others are refused, and
// smaller blocks bound it to a quarter second of the container's uses, for
// four claims a second.
const scarceSpan = 250 * time.Millisecond

// maxLeases bounds the keys one container remembers leases of. Only a key
// that exists has one: an unknown key is never remembered.
const maxLeases = 10_000

// leases are a container's leases, by key id.
type leases struct {
	mu   sync.Mutex
	byID map[string]*lease
	// swept is when the last sweep ran: at most one a LeaseLifetime, so
	// that a claim does not walk every lease each time.
	swept time.Time
}

// lease is what a container holds of one key: the last claim's block and
// what that write showed of the key, or a refusal to repeat until it ends.
type lease struct {
	mu sync.Mutex
	// dead is set, under mu, once the lease is no longer the container's
	// lease of its key (swept or dropped): a decision that found it before
	// finds the key's lease again rather than claim into this one, whose
	// block would be lost.
	dead bool
	// exact is set once a write showed the key counts in exact mode: its
	// next decision goes to the store, returning what is left here.
	exact bool

	// What the last claim found, valid until expires.
	key     *keys.Key
	limits  []LimitCount // each limit's count after the claim
	credits *keys.Credits
	owner   *keys.Credits
	item    string // the item counted on
	// version and ownerVersion are the item's and its owner's management
	// versions as the claim wrote them (Unspent.Version).
	version, ownerVersion int64
	claimed               time.Time
	expires               time.Time
	tokens                int64 // uses left of the block
	spare                 int64 // credits left of the block
	block                 int64 // uses the claim took
	used                  int64 // uses spent since the claim
	// owed is what a claim the store refused did not take back: the
	// lease before it, still to return in the next claim.
	owed *Unspent

	// refusal is the store's last refusal, repeated until refusedUntil;
	// a rate limited or usage exceeded one says to retry at retryAt.
	refusal      *Decision
	refusedUntil time.Time
	retryAt      time.Time
	// refusedCost is the cost of the request refused: a usage exceeded
	// refusal is no answer for a request that costs less (one that costs
	// nothing passes a key without credits left).
	refusedCost int64

	rate    float64 // the key's uses a second in this container, estimated
	avgCost float64 // the mean cost of a use, estimated
}

// find is the lease of id, made for a key of tier if its tier leases; nil
// when the key counts in exact mode as far as the container knows.
func (ls *leases) find(id string, tier keys.Tier) *lease {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l := ls.byID[id]; l != nil {
		return l
	}
	if tier.Mode != keys.ModeLeased {
		return nil
	}
	return ls.add(id)
}

// learn notes the mode a store's answer showed for a key decided in exact
// mode: a key in leased mode gets a lease from its next decision.
func (ls *leases) learn(id string, tier keys.Tier, k *keys.Key) {
	if k == nil || tier.EffectiveMode(k) != keys.ModeLeased {
		return
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.byID[id] == nil {
		ls.add(id)
	}
}

// add makes an empty lease for id, unless the container holds too many:
// then the key is decided in exact mode, which is never wrong, only
// slower.
func (ls *leases) add(id string) *lease {
	if ls.byID == nil {
		ls.byID = map[string]*lease{}
	}
	if len(ls.byID) >= maxLeases {
		return nil
	}
	l := &lease{}
	ls.byID[id] = l
	return l
}

// drop forgets l, id's lease, whose lock the caller holds: only if it
// is still id's lease, so as not to forget a newer one.
func (ls *leases) drop(id string, l *lease) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.forget(id, l)
}

// sweep forgets leases that hold nothing any more, when the container
// holds many: run before each claim, it keeps memory bounded by the keys
// in use.
func (ls *leases) sweep(now time.Time) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if len(ls.byID) < maxLeases/2 || now.Sub(ls.swept).Abs() < LeaseLifetime {
		return
	}
	ls.swept = now
	for id, l := range ls.byID {
		if l.mu.TryLock() {
			if !now.Before(l.expires) && !now.Before(l.refusedUntil) && l.tokens == 0 && (l.owed == nil || l.ended()) {
				ls.forget(id, l)
			}
			l.mu.Unlock()
		}
	}
}

// forget deletes l, id's lease, holding ls.mu and l.mu.
func (ls *leases) forget(id string, l *lease) {
	if ls.byID[id] == l {
		delete(ls.byID, id)
	}
	l.dead = true
}

// ended reports whether the store's last answer was that the key is
// revoked or expired: what the lease owes would go back only in a claim
// the store refuses, so it is forgotten with the lease (counted as spent).
func (l *lease) ended() bool {
	return l.refusal != nil && (l.refusal.Outcome == Revoked || l.refusal.Outcome == Expired)
}

// decideLeased decides a request for a key with a lease: from memory when
// the lease covers it, else after a claim.
// live is false, and nothing decided, when the lease was forgotten
// before the decision held it: the caller finds the key's lease again.
func (a *Authorizer) decideLeased(ctx context.Context, req Request, l *lease, id string, hash [32]byte, tier keys.Tier, now time.Time) (d Decision, st storeUse, live bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead {
		return Decision{}, storeUse{}, false, nil
	}
	d, st, err = a.decideLease(ctx, req, l, id, hash, tier, now)
	return d, st, true, err
}

// decideLease is decideLeased, holding the live lease.
func (a *Authorizer) decideLease(ctx context.Context, req Request, l *lease, id string, hash [32]byte, tier keys.Tier, now time.Time) (Decision, storeUse, error) {
	if l.key != nil && !l.holds(req, hash) {
		// Another key's hash for the id, or another project: the store
		// answers it, and the lease stays the key's.
		return a.decideExact(ctx, req, hash, tier, now, Unspent{})
	}
	if d, ok := l.fromMemory(req, now); ok {
		return d, storeUse{}, nil
	}
	if l.exact {
		// What the lease left goes back in this decision's write, and is no
		// longer the lease's: a decision waiting on the lease meanwhile must
		// not give it back again.
		back := l.unspent()
		l.owe(Unspent{})
		d, st, left, err := a.exact(ctx, req, hash, tier, now, back)
		if left.Uses > 0 || left.Credits > 0 {
			l.owed = &left // refused before the write: the next decision gives it back
		} else {
			a.leases.drop(id, l)
		}
		return d, st, err
	}
	a.leases.sweep(now)
	return a.claim(ctx, req, l, id, hash, tier, now)
}

// holds reports whether the lease is of the request's key: the same hash,
// compared in constant time, and a project the request allows.
func (l *lease) holds(req Request, hash [32]byte) bool {
	return subtle.ConstantTimeCompare(l.key.Hash[:], hash[:]) == 1 && (req.Project == "" || req.Project == l.key.Project)
}

// fromMemory decides req without the store when the lease can: a refusal
// still current, or the key as the last claim showed it, within the lease,
// with a use and credits left. ok is false when a claim must decide.
func (l *lease) fromMemory(req Request, now time.Time) (Decision, bool) {
	if l.refusal != nil && now.Before(l.refusedUntil) && (l.refusal.Outcome != UsageExceeded || req.Cost >= l.refusedCost) {
		d := *l.refusal
		d.At, d.Leased = now, true
		if spent := d.Outcome == RateLimited || d.Outcome == UsageExceeded; spent && d.Key != nil && !d.Key.HoldsScopes(req.Scopes) {
			// As exact mode answers: a scope the key lacks before a budget it spent.
			return Decision{Outcome: InsufficientScope, KeyID: d.KeyID, Key: d.Key, At: now, Leased: true}, true
		}
		if d.RetryAfter > 0 {
			d.RetryAfter = l.retryAt.Sub(now)
		}
		return d, true
	}
	if l.key == nil || !now.Before(l.expires) {
		return Decision{}, false
	}
	d := Decision{KeyID: l.key.ID, Key: l.key, At: now, Leased: true}
	switch {
	case l.key.ExpiresAt != nil && l.key.ExpiresAt.UnixMilli() <= now.UnixMilli():
		d.Outcome = Expired
		return d, true
	case !l.key.HoldsScopes(req.Scopes):
		d.Outcome = InsufficientScope
		return d, true
	case !ipAllowed(l.key.IPAllowlist, req.SourceIP):
		// Decided before the budget: a refused address spends nothing.
		d.Outcome = IPNotAllowed
		return d, true
	case l.tokens < 1 || l.metered() && l.spare < req.Cost:
		return Decision{}, false
	}
	l.tokens--
	l.used++
	if l.metered() {
		l.spare -= req.Cost
	}
	l.avgCost += (float64(req.Cost) - l.avgCost) / 16
	d.Outcome = Allowed
	d.RateLimits, d.RateLimit = l.budgets()
	d.Credits, d.OwnerCredits = l.withSpare(l.credits), l.withSpare(l.owner)
	return d, true
}

// metered reports whether uses spend credits, the key's or its owner's.
func (l *lease) metered() bool { return l.credits != nil || l.owner != nil }

// budgets are each limit's room as the container knows it: what the
// claim left in the window, and what is left of the block.
func (l *lease) budgets() ([]RateLimit, *RateLimit) {
	counts := make([]LimitCount, len(l.limits))
	for i, c := range l.limits {
		c.Count -= l.tokens
		counts[i] = c
	}
	return budgets(counts)
}

func (l *lease) withSpare(c *keys.Credits) *keys.Credits {
	if c == nil {
		return nil
	}
	out := *c
	out.Remaining += l.spare
	return &out
}

// unspent is what the lease claimed and did not spend, to return in the
// next write on the key (and what an earlier refused claim still owes).
func (l *lease) unspent() Unspent {
	if l.owed != nil {
		return *l.owed
	}
	if l.key == nil || l.tokens <= 0 && l.spare <= 0 {
		return Unspent{}
	}
	u := Unspent{Item: l.item, Uses: l.tokens, Limits: l.limits, Credits: l.spare, Version: l.version, OwnerVersion: l.ownerVersion}
	if l.credits != nil {
		u.CreditsPeriod = l.credits.NextRefillAt
	}
	if l.owner != nil {
		u.OwnerCreditsPeriod = l.owner.NextRefillAt
	}
	return u
}

// nextBlock is how many uses the next claim takes: what this container
// is expected to use of the key until the lease would end (scarceSpan when
// a window is half spent), from the rate the last lease saw; one on a
// first claim, and at most twice the last block and one, so that a burst
// cannot make a container hoard the budget.
func (l *lease) nextBlock(now time.Time, life time.Duration) int64 {
	if l.claimed.IsZero() {
		return 1
	}
	elapsed := max(now.Sub(l.claimed), time.Millisecond)
	seen := float64(l.used) / elapsed.Seconds()
	if l.rate == 0 || l.tokens == 0 {
		l.rate = seen // spent before the lease ended: the rate is at least this
	} else {
		l.rate = (l.rate + seen) / 2
	}
	if l.scarce() {
		life = min(life, scarceSpan)
	}
	want := int64(math.Ceil(l.rate * life.Seconds()))
	return min(max(want, 1), 2*l.block+1)
}

// scarce reports whether the last claim left less than half of a window.
func (l *lease) scarce() bool {
	for _, c := range l.limits {
		if c.Remaining() < c.Limit/2 {
			return true
		}
	}
	return false
}

// lifeAt is how long a lease claimed at now lasts: LeaseLifetime, or less
// when a window of the key's limits ends sooner (its block counts in that
// window only).
func lifeAt(now time.Time, limits []keys.RateLimit) time.Duration {
	life := LeaseLifetime
	for _, l := range limits {
		life = min(life, WindowAt(now, l.Window()).End().Sub(now))
	}
	return life
}

// claimTries bounds the writes of one claim: a block that does not fit is
// retried once at the size that fits.
const claimTries = 2

// claim writes a claim of the key's budget, with what the last lease left
// unspent, and decides req from the new lease; a refusal is remembered
// until the lease would have ended or the window or credits refill.
func (a *Authorizer) claim(ctx context.Context, req Request, l *lease, id string, hash [32]byte, tier keys.Tier, now time.Time) (Decision, storeUse, error) {
	var st storeUse
	limits := tier.RateLimits
	if l.key != nil && !l.key.RateLimitsFromTier {
		limits = l.key.RateLimits
	}
	life := lifeAt(now, limits)
	block := l.nextBlock(now, life)
	cost := req.Cost + (block-1)*int64(math.Ceil(l.avgCost))
	back := l.unspent()
	var used UseResult
	for try := 1; ; try++ {
		use := UseRequest{ID: id, Hash: hash, Project: req.Project, TierLimits: tier.RateLimits, Cost: cost, Uses: block, GiveBack: back, Now: now}
		err := a.timed(&st, func() (err error) { used, err = a.store.UseKey(ctx, use); return err })
		if err != nil {
			// The write may have been applied, giving back what the last
			// lease left, before the error (its owner's write failed, or the
			// answer was lost): owing it again could give it back twice,
			// making room and credits never returned. Forgotten, it counts
			// as spent, as a container that dies with it.
			l.owe(Unspent{})
			return Decision{KeyID: id}, st, err
		}
		back = back.After(used)
		smaller, smallerCost := l.fits(used, block, cost, back, req.Cost)
		if try == claimTries || smaller == 0 {
			break
		}
		block, cost = smaller, smallerCost
	}
	l.owe(back)
	d := decided(id, used, req.Cost, now)
	switch {
	case used.Outcome == Allowed:
		l.install(used, block, cost, now, life)
		l.exact = tier.EffectiveMode(used.Key) != keys.ModeLeased
		// A fresh lease decides: it holds a use and the request's cost.
		d, _ = l.fromMemory(req, now)
		d.Leased = false // the claim's write decided it
		return d, st, nil
	case used.Throttled:
		return d, st, nil
	case used.Outcome == NotFound:
		a.leases.drop(id, l)
		return d, st, nil
	}
	l.remember(d, req.Cost, now)
	return d, st, nil
}

// fits is, after a claim the limits or credits refused, a smaller block
// that fits (0 when none does or the claim was allowed): the room the
// refusal showed in every window, with what goes back in it, and the
// credits left, at least the request's cost.
func (l *lease) fits(used UseResult, block, cost int64, back Unspent, reqCost int64) (int64, int64) {
	switch used.Outcome {
	case RateLimited:
		if used.Throttled {
			return 0, 0
		}
		room := block
		for _, c := range used.Limits {
			r := c.Limit - c.Count
			for _, b := range back.Limits {
				if b.Owner == c.Owner && (c.Owner || !back.OwnerOnly) && b.Counter() == c.Counter() && b.Window.Start.Equal(c.Window.Start) {
					r += back.Uses
				}
			}
			room = min(room, r)
		}
		if room < 1 || room >= block {
			return 0, 0
		}
		return room, min(cost, reqCost+(room-1)*(cost-reqCost)/max(block-1, 1))
	case UsageExceeded:
		// What the credits hold alone fits whether or not the store takes
		// back what the last lease left (it does not after a refill or a
		// management change); only when that is short is the give-back
		// counted on.
		alone, withBack := int64(math.MaxInt64), int64(math.MaxInt64)
		for _, c := range []*keys.Credits{used.Credits, used.OwnerCredits} {
			if c != nil {
				b := back.Credits
				if back.OwnerOnly && c != used.OwnerCredits {
					b = 0
				}
				alone, withBack = min(alone, c.Remaining), min(withBack, c.Remaining+b)
			}
		}
		left := alone
		if left < reqCost {
			left = withBack
		}
		if left < reqCost || left >= cost {
			return 0, 0
		}
		return block, left
	}
	return 0, 0
}

// owe keeps what a claim did not take back, for the next one.
func (l *lease) owe(back Unspent) {
	if back.Uses > 0 || back.Credits > 0 {
		l.owed = &back
	} else {
		l.owed = nil
	}
	l.tokens, l.spare = 0, 0
}

// install makes a claim the store allowed the lease.
func (l *lease) install(used UseResult, block, cost int64, now time.Time, life time.Duration) {
	for _, c := range used.Limits {
		life = min(life, c.Window.End().Sub(now)) // the windows the store counted in
	}
	l.key, l.limits, l.credits, l.owner, l.item = used.Key, used.Limits, used.Credits, used.OwnerCredits, used.CountedOn
	l.version, l.ownerVersion = used.Version, used.OwnerVersion
	l.claimed, l.expires = now, now.Add(life)
	l.tokens, l.spare, l.block, l.used = block, cost, block, 0
	l.refusal = nil
}

// remember keeps a refusal of the store to answer from memory until the
// lease would have ended, or sooner when the window or credits refill.
func (l *lease) remember(d Decision, cost int64, now time.Time) {
	until := now.Add(LeaseLifetime)
	if d.RetryAfter > 0 {
		until = now.Add(min(LeaseLifetime, d.RetryAfter))
	}
	if d.Key != nil {
		l.key = d.Key
	}
	l.expires = now // whatever block it held is spent or owed
	l.refusal, l.refusedUntil, l.retryAt, l.refusedCost = &d, until, now.Add(d.RetryAfter), cost
}
