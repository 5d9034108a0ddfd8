package keys

import (
	"context"
	"errors"
	"fmt"
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
	return &grantor{allowance: own, owner: k.Owner, ownerLimited: k.OwnerLimited}, nil
}

// mayGive refuses a change that gives a key more than its grantor holds:
// each of next's rate limits and credits must be within the grantor's own,
// unless it is within what the key held before (cur; nil for a new key).
// Taking away is always allowed; on its own key the grantor holds exactly
// cur, so no key can loosen its own limits or raise its own credits.
func (g *grantor) mayGive(cur *allowance, next allowance) error {
	if g == nil {
		return nil
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
	if g == nil || owner != g.owner || LimitsWithin(next.rateLimits, cur.rateLimits) && CreditsWithin(next.credits, cur.credits) {
		return nil
	}
	return &ForbiddenError{fmt.Sprintf("the calling key belongs to owner %q: it cannot loosen its own owner's limits", owner)}
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
