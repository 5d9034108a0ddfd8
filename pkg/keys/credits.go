package keys

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Credit operations.
const (
	CreditsIncrement = "increment"
	CreditsDecrement = "decrement"
	CreditsSet       = "set"
)

// CreditsInput adjusts a key's remaining credits: op increment, decrement
// or set, by value, an integer from 0 to MaxCredits.
type CreditsInput struct {
	Op    string          `json:"op"`
	Value json.RawMessage `json:"value"`
}

// AdjustCredits changes a key's remaining credits atomically, while the
// authorizer spends them: the write requires the credits it was computed
// from still stored (Tx.Counted) and is computed again from a fresh read
// when a use came in between. A refill that is due counts as done first,
// and is written with the change, so that the next use does not redo it
// over the new amount.
//
// A decrement below zero is refused (409), not floored: a floor would
// write, and audit, another change than the one asked for, and the caller
// learns how many remain; "set" to 0 says it outright.
func (s *Service) AdjustCredits(ctx context.Context, caller Caller, id string, in CreditsInput) (*Key, error) {
	if err := s.requireProjectAdmin(caller); err != nil {
		return nil, err
	}
	switch in.Op {
	case CreditsIncrement, CreditsDecrement, CreditsSet:
	default:
		return nil, invalid("op", "want %s, %s or %s", CreditsIncrement, CreditsDecrement, CreditsSet)
	}
	value, err := readInt("value", in.Value)
	if err != nil {
		return nil, err
	}
	if value < 0 || value > MaxCredits {
		return nil, invalid("value", "want 0-%d", int64(MaxCredits))
	}
	g, err := s.grantorOf(ctx, caller, s.clock())
	if err != nil {
		return nil, err
	}
	k, err := s.change(ctx, caller, id, asSpendingEdit, func(k *Key, now time.Time) (string, map[string]Change, error) {
		switch k.StatusAt(now) {
		case StatusRevoked:
			return "", nil, &ConflictError{"API key is revoked: its credits cannot change"}
		case StatusExpired:
			return "", nil, &ConflictError{"API key has expired: its credits cannot change"}
		}
		if err := canManage(caller, k); err != nil {
			return "", nil, err
		}
		if k.Credits == nil {
			return "", nil, &ConflictError{"API key has unlimited credits: give it credits first (PATCH credits)"}
		}
		cur := k.Credits.At(now)
		next, err := adjust(cur, in.Op, value)
		if err != nil {
			return "", nil, err
		}
		limits, _ := s.rateLimitsOf(k)
		if err := g.mayGive(k.ID, &allowance{limits, cur}, allowance{limits, next}); err != nil {
			return "", nil, err
		}
		if equalCredits(next, cur) {
			return "", nil, nil
		}
		k.Credits = next
		return ActionCreditsAdjusted, map[string]Change{"credits": {From: cur, To: next}}, nil
	})
	return k, whileSpending(err, "credits")
}

// adjust is cur after op by value.
func adjust(cur *Credits, op string, value int64) (*Credits, error) {
	next := cur.Clone()
	switch op {
	case CreditsIncrement:
		if value > MaxCredits-cur.Remaining {
			return nil, &ConflictError{fmt.Sprintf("credits would exceed %d: %d remaining", int64(MaxCredits), cur.Remaining)}
		}
		next.Remaining += value
	case CreditsDecrement:
		if value > cur.Remaining {
			return nil, &ConflictError{fmt.Sprintf("credits would go below zero: %d remaining, a decrement of %d", cur.Remaining, value)}
		}
		next.Remaining -= value
	case CreditsSet:
		next.Remaining = value
	}
	return next, nil
}
