package keys

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// allowance is what a set of limits allows: rate limits (none: any rate)
// and credits (nil: unlimited).
type allowance struct {
	rateLimits []RateLimit
	credits    *Credits
}

// allowanceOf is what k allows at now: the limits in effect and its credits
// as they stand; ok is false when its tier is no longer configured.
func (s *Service) allowanceOf(k *Key, now time.Time) (a allowance, ok bool) {
	limits, ok := s.rateLimitsOf(k)
	return allowance{rateLimits: limits, credits: k.Credits.At(now)}, ok
}

// CreditsWithin reports whether credits next give no more than credits
// own. Unlimited own allows anything; otherwise next must have credits,
// no more remaining, and a refill no larger and no more frequent than
// own's, or none (own's has none: any refill would give more in time).
func CreditsWithin(next, own *Credits) bool {
	switch {
	case own == nil:
		return true
	case next == nil || next.Remaining > own.Remaining:
		return false
	case next.Refill == nil:
		return true
	case own.Refill == nil || next.Refill.Amount > own.Refill.Amount:
		return false
	}
	return own.Refill.Interval == RefillDaily || next.Refill.Interval == RefillMonthly
}

// grantor is a calling key as stored, read afresh for the change it asks
// for (the authorizer's context is a snapshot): the bound of what it may
// give. A nil grantor is the operator, who may give anything.
type grantor struct {
	allowance
	id           string
	owner        string
	ownerLimited bool
}

// grantorOf reads the calling key; the operator has none.
func (s *Service) grantorOf(ctx context.Context, caller Caller, now time.Time) (*grantor, error) {
	if caller.Operator {
		return nil, nil
	}
	k, err := s.store.GetKey(ctx, caller.KeyID)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, ErrCallerInactive
	case err != nil:
		return nil, err
	case k.Project != caller.Project || k.StatusAt(now) != StatusActive || k.GoneAt(now):
		return nil, ErrCallerInactive
	}
	own, ok := s.allowanceOf(k, now)
	if !ok {
		return nil, &ForbiddenError{fmt.Sprintf("the calling key's tier %q is no longer configured: it can give no key limits", k.Tier)}
	}
	return &grantor{allowance: own, id: k.ID, owner: k.Owner, ownerLimited: k.OwnerLimited}, nil
}

// mayGive refuses a change that gives key target more than its grantor
// holds: each of next's rate limits and credits must be within the
// grantor's own, unless it is within what the key held before (cur; nil
// for a new key). Taking away is always allowed, but on its own key only
// in place (mayRestrictOwn).
func (g *grantor) mayGive(target string, cur *allowance, next allowance) error {
	if g == nil {
		return nil
	}
	if target == g.id && cur != nil {
		return mayRestrictOwn("its own", *cur, next)
	}
	if !(cur != nil && LimitsWithin(next.rateLimits, cur.rateLimits)) && !LimitsWithin(next.rateLimits, g.rateLimits) {
		return &ForbiddenError{"rateLimits: the calling key is limited to " + describeLimits(g.rateLimits) + "; it cannot give a key looser limits"}
	}
	if !(cur != nil && CreditsWithin(next.credits, cur.credits)) && !CreditsWithin(next.credits, g.credits) {
		return &ForbiddenError{"credits: the calling key holds " + describeCredits(g.credits) + "; it cannot give a key more"}
	}
	return nil
}

// mayMakeFor refuses a key of another owner to a key whose owner has
// limits: every key it makes or rotates stays within them.
func (g *grantor) mayMakeFor(owner string) error {
	if g == nil || !g.ownerLimited || owner == g.owner {
		return nil
	}
	return &ForbiddenError{fmt.Sprintf("owner: the calling key's owner %q has shared limits; it cannot make a key outside them", g.owner)}
}

// mayLimitOwner refuses a change that loosens the limits of the grantor's
// own owner, which bind the grantor itself; other owners' limits bind no
// key beyond its own limits, so setting them gives nothing.
func (g *grantor) mayLimitOwner(owner string, cur, next allowance) error {
	if g == nil || owner != g.owner {
		return nil
	}
	return mayRestrictOwn("its own owner's", cur, next)
}

// mayRestrictOwn refuses a change of the budget that binds the caller
// itself (its key's, its owner's) other than a restriction in place: each
// limit kept under its name and window with no higher limit (more may be
// added), credits no more than before, their refill kept or removed. A
// renamed or lengthened limit starts from a fresh counter, and a moved
// refill comes early, however tight either looks: the caller would reset
// what it has spent.
func mayRestrictOwn(whose string, cur, next allowance) error {
	for _, c := range cur.rateLimits {
		i := slices.IndexFunc(next.rateLimits, func(n RateLimit) bool { return n.Counter() == c.Counter() })
		if i < 0 || next.rateLimits[i].Limit > c.Limit {
			return &ForbiddenError{"rateLimits: the calling key may only lower " + whose + " limits in place (same name and window), or add some: renaming, lengthening or dropping limit " + c.Name + " would reset what was spent"}
		}
	}
	c, n := cur.credits, next.credits
	if c != nil && (n == nil || n.Remaining > c.Remaining || n.Refill != nil && !equalRefills(n.Refill, c.Refill)) {
		return &ForbiddenError{"credits: the calling key may only spend " + whose + " credits down or remove their refill"}
	}
	return nil
}

func describeLimits(limits []RateLimit) string {
	parts := make([]string, len(limits))
	for i, l := range limits {
		parts[i] = fmt.Sprintf("%s: %d per %d s", l.Name, l.Limit, l.WindowSeconds)
	}
	return strings.Join(parts, ", ")
}

func describeCredits(c *Credits) string {
	s := fmt.Sprintf("%d credits", c.Remaining)
	if r := c.Refill; r != nil {
		s += fmt.Sprintf(", refilled to %d %s", r.Amount, r.Interval)
	} else {
		s += " and no refill"
	}
	return s
}
