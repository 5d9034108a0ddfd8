package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// OwnerLimits are limits that all keys of an owner, in a project, share:
// a use of such a key must fit in both its own limits and its owner's.
type OwnerLimits struct {
	Project    string      `json:"-"`
	Owner      string      `json:"owner"`
	RateLimits []RateLimit `json:"rateLimits"`
	Credits    *Credits    `json:"credits"`
	// UpdatedAt is nil for an owner whose limits were never set.
	UpdatedAt *time.Time `json:"updatedAt"`
	// Version counts changes, 0 for limits never stored: the authorizer
	// conditions its write of the owner's counters on it.
	Version int64 `json:"-"`
}

// limited reports whether the limits limit anything. An owner whose
// limits were all removed keeps its item, so that its version never
// starts again from 0 under a cached plan of it.
func (o *OwnerLimits) limited() bool { return len(o.RateLimits) > 0 || o.Credits != nil }

// at is o as callers see it at now: credits as they stand, [] for no rate
// limits.
func (o *OwnerLimits) at(now time.Time) *OwnerLimits {
	out := *o
	out.RateLimits = nonNilLimits(slices.Clone(o.RateLimits))
	out.Credits = o.Credits.At(now)
	return &out
}

// OwnerLimitsInput changes an owner's limits: rateLimits a list ([] for
// none), credits null (unlimited) or {remaining, refill}, each optional as
// in a key's PATCH. An absent field stays as it is.
type OwnerLimitsInput struct {
	RateLimits json.RawMessage `json:"rateLimits"`
	Credits    json.RawMessage `json:"credits"`
}

// GetOwnerLimits reads the limits an owner of the caller's project shares.
// An owner never given any has none: rateLimits [], credits null.
func (s *Service) GetOwnerLimits(ctx context.Context, caller Caller, owner string) (*OwnerLimits, error) {
	if err := s.requireProjectAdmin(caller); err != nil {
		return nil, err
	}
	if err := ValidateOwner(owner); err != nil {
		return nil, err
	}
	o, err := s.ownerLimits(ctx, caller.Project, owner)
	if err != nil {
		return nil, err
	}
	return o.at(s.clock()), nil
}

// ownerLimits reads an owner's limits; one never given any has none.
func (s *Service) ownerLimits(ctx context.Context, project, owner string) (*OwnerLimits, error) {
	o, err := s.store.GetOwnerLimits(ctx, project, owner)
	if errors.Is(err, ErrNotFound) {
		return &OwnerLimits{Project: project, Owner: owner}, nil
	}
	return o, err
}

// PutOwnerLimits sets the limits an owner of the caller's project shares,
// then flags every active key of the owner so that the authorizer counts
// the owner's limits for each (or, once none are left, stops), before it
// answers. If it cannot finish flagging it fails with ErrUnavailable;
// calling it again carries on.
func (s *Service) PutOwnerLimits(ctx context.Context, caller Caller, owner string, in OwnerLimitsInput) (*OwnerLimits, error) {
	if err := s.requireProjectAdmin(caller); err != nil {
		return nil, err
	}
	if err := ValidateOwner(owner); err != nil {
		return nil, err
	}
	change, err := parseLimitsChange(in.RateLimits, in.Credits)
	switch {
	case err != nil:
		return nil, err
	case change.empty():
		return nil, invalid("", "no field to set (rateLimits, credits)")
	case change.rateLimits != nil && *change.rateLimits == nil:
		return nil, invalid("rateLimits", "want a list, [] for none: an owner has no tier to follow")
	}
	g, err := s.grantorOf(ctx, caller, s.clock())
	if err != nil {
		return nil, err
	}
	policy := editRetries
	if change.credits != nil {
		policy = spendingRetries
	}
	var set *OwnerLimits
	err = retryOnConflict(ctx, policy, func() error {
		cur, err := s.ownerLimits(ctx, caller.Project, owner)
		if err != nil {
			return err
		}
		now := s.clock()
		next, counted, changes, err := setOwnerLimits(cur, change, now)
		if err != nil {
			return err
		}
		err = g.mayLimitOwner(owner, allowance{cur.RateLimits, cur.Credits.At(now)}, allowance{next.RateLimits, next.Credits})
		if err != nil || len(changes) == 0 {
			set = cur
			return err
		}
		next.UpdatedAt = &now
		ev := s.eventOn(caller, ActionOwnerLimitsUpdated, caller.Project, OwnerTarget(owner), now, changes)
		tx := Tx{Owners: []OwnerWrite{{Limits: next, Counted: counted}}, Events: []*AuditEvent{ev}, Caller: caller.Check(now)}
		if err := s.apply(ctx, tx); err != nil {
			return err
		}
		next.Version++
		set = next
		return nil
	})
	if err != nil {
		return nil, whileSpending(err, "credits")
	}
	if err := s.flagOwnersKeys(ctx, caller, owner); err != nil {
		return nil, err
	}
	return set.at(s.clock()), nil
}

// setOwnerLimits is cur with change set, the Counted its write needs (nil
// unless credits change) and what changed.
func setOwnerLimits(cur *OwnerLimits, change limitsChange, now time.Time) (*OwnerLimits, *Counted, map[string]Change, error) {
	next := *cur
	changes := map[string]Change{}
	if r := change.rateLimits; r != nil && !slices.Equal(*r, cur.RateLimits) {
		changes["rateLimits"] = Change{From: nonNilLimits(cur.RateLimits), To: *r}
		next.RateLimits = *r
	}
	var counted *Counted
	if change.credits != nil {
		at := cur.Credits.At(now)
		credits, err := change.credits.on(at, now)
		if err != nil {
			return nil, nil, nil, err
		}
		if !equalCredits(credits, at) {
			changes["credits"] = Change{From: at, To: credits}
			next.Credits = credits
			counted = &Counted{Credits: cur.Credits}
		}
	}
	return &next, counted, changes, nil
}

// flagOwnerLimited sets k's OwnerLimited from its owner's stored limits,
// and returns the check its write must make: that they are still those.
func (s *Service) flagOwnerLimited(ctx context.Context, k *Key) ([]OwnerCheck, error) {
	k.OwnerLimited = false
	if k.Owner == "" {
		return nil, nil
	}
	o, err := s.ownerLimits(ctx, k.Project, k.Owner)
	if err != nil {
		return nil, err
	}
	k.OwnerLimited = o.limited()
	return []OwnerCheck{{Project: k.Project, Owner: k.Owner, Version: o.Version}}, nil
}

// flagOwnersKeys walks the owner's active keys and writes, in
// transactions of up to MaxTxKeys, the OwnerLimited flag that the owner's
// limits call for on each key that lacks it, pass after pass until one
// changes nothing. Each transaction requires the owner's limits it was
// computed from still stored: after a concurrent change of them, or of a
// key, the next pass reads both again. The flag is not shown to callers,
// so it writes no event of its own; the owner's event tells of the change.
func (s *Service) flagOwnersKeys(ctx context.Context, caller Caller, owner string) error {
	for pass := 0; pass < ownerPasses; pass++ {
		o, err := s.ownerLimits(ctx, caller.Project, owner)
		if err != nil {
			return err
		}
		want := o.limited()
		checks := []OwnerCheck{{Project: caller.Project, Owner: owner, Version: o.Version}}
		quiet := true
		err = s.eachPage(ctx, caller.Project, KeyFilter{Owner: owner, Status: StatusActive}, MaxTxKeys, func(page []*Key) error {
			tx := Tx{OwnerChecks: checks, Caller: caller.Check(s.clock())}
			for _, k := range page {
				if k.OwnerLimited != want {
					plan := planOf(k)
					k.OwnerLimited = want
					advanceLimitsVersion(k, plan)
					tx.Update = append(tx.Update, k)
				}
			}
			if len(tx.Update) == 0 {
				return nil
			}
			quiet = false
			if err := s.apply(ctx, tx); !errors.Is(err, ErrConflict) {
				return err
			}
			return nil // a key or the owner's limits changed: the next pass sees them
		})
		if err != nil {
			return fmt.Errorf("%w: flagging the keys of %s: %w", ErrUnavailable, owner, err)
		}
		if quiet {
			return nil
		}
	}
	return fmt.Errorf("%w: the keys of %s kept changing while they were flagged; calling again carries on", ErrUnavailable, owner)
}
