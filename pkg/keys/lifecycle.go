package keys

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Rotation grace periods, in seconds.
const (
	DefaultGraceSeconds = 86400
	MaxGraceSeconds     = 7 * 86400
)

// Rotate issues a successor to a key of the caller's project, with the same
// name, tier, scopes, allowlist, metadata, owner and expiry. The old key
// keeps working for grace, then reads expired; grace 0 refuses it at once.
// Each links the other.
func (s *Service) Rotate(ctx context.Context, caller Caller, id string, graceSeconds int) (*Created, error) {
	if err := s.authorize(caller); err != nil {
		return nil, err
	}
	if graceSeconds < 0 || graceSeconds > MaxGraceSeconds {
		return nil, invalid("gracePeriodSeconds", "want 0-%d", MaxGraceSeconds)
	}
	var created *Created
	err := retryOnConflict(func() error {
		old, err := s.load(ctx, caller, id)
		if err != nil {
			return err
		}
		now := s.clock()
		switch {
		case old.StatusAt(now) != StatusActive:
			return &ConflictError{"API key is " + string(old.StatusAt(now)) + " and cannot be rotated"}
		case old.RotatedTo != "":
			return &ConflictError{"API key was already rotated to " + old.RotatedTo}
		}
		if err := canManage(caller, old); err != nil {
			return err
		}
		tier, ok := s.cfg.TierByName(old.Tier)
		if !ok {
			return &ConflictError{"API key's tier " + old.Tier + " is no longer configured"}
		}
		// A rotation replaces the secret, not the policy: the successor
		// keeps the old key's expiry too.
		next := &Key{
			Name: old.Name, Tier: old.Tier, Scopes: old.Scopes, Project: old.Project, Owner: old.Owner,
			Status: StatusActive, IPAllowlist: old.IPAllowlist, Metadata: old.Metadata, ExpiresAt: old.ExpiresAt,
			CreatedAt: now, UpdatedAt: now, RotatedFrom: old.ID,
		}
		raw, err := s.issue(next, tier)
		if err != nil {
			return err
		}
		end := now.Add(time.Duration(graceSeconds) * time.Second)
		changes := map[string]Change{"rotatedTo": {To: next.ID}}
		if old.ExpiresAt == nil || end.Before(*old.ExpiresAt) {
			changes["expiresAt"] = Change{From: old.ExpiresAt, To: end}
			old.ExpiresAt = &end
		}
		old.RotatedTo = next.ID
		old.UpdatedAt = now
		old.PurgeAt = purgeTime(old, s.cfg.Retention)
		createdChanges := createdChanges(next)
		createdChanges["rotatedFrom"] = Change{To: old.ID}
		err = s.store.Apply(ctx, Tx{
			Create: []*Key{next},
			Update: []*Key{old},
			Events: []*AuditEvent{s.event(caller, ActionRotated, old, now, changes), s.event(caller, ActionCreated, next, now, createdChanges)},
		})
		if err != nil {
			return err
		}
		created = &Created{Key: s.present(next, now), RawKey: raw}
		return nil
	})
	return created, err
}

// Bounds of an owner revoke.
const (
	// ownerRevokePasses bounds the walks over an owner's keys: a key created
	// while the first walk ran, or not yet in the index when it started, is
	// found by the next; walking stops after a walk that revoked nothing.
	ownerRevokePasses = 3
	// deadlineMargin is the time an owner revoke keeps in hand before its
	// context's deadline (the Lambda timeout): it stops between
	// transactions rather than being killed in one, and says how far it got.
	deadlineMargin = 3 * time.Second
)

// RevokeOwner revokes every active key of an owner in the caller's project,
// as when a team member leaves, and returns how many it revoked. It walks
// the owner's keys page by page and revokes each page in one transaction,
// with an event per key. If it cannot finish (a persistent conflict, or
// time running out) it returns what it revoked with an ErrUnavailable
// error: calling it again carries on, and once no key is left it revokes 0.
func (s *Service) RevokeOwner(ctx context.Context, caller Caller, owner string) (int, error) {
	if err := s.authorize(caller); err != nil {
		return 0, err
	}
	if err := ValidateOwner(owner); err != nil {
		return 0, err
	}
	revoked := 0
	for pass := 0; pass < ownerRevokePasses; pass++ {
		n, err := s.revokeOwnerPass(ctx, caller, owner)
		revoked += n
		if err != nil {
			return revoked, fmt.Errorf("%w: revoked %d keys of %s, then: %w", ErrUnavailable, revoked, owner, err)
		}
		if n == 0 {
			break
		}
	}
	return revoked, nil
}

// revokeOwnerPass walks the owner's active keys once, revoking page by page.
func (s *Service) revokeOwnerPass(ctx context.Context, caller Caller, owner string) (int, error) {
	revoked := 0
	cursor := ""
	for {
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < deadlineMargin {
			return revoked, context.DeadlineExceeded
		}
		page, next, err := s.store.ListKeys(ctx, ListQuery{
			Project: caller.Project, Filter: KeyFilter{Owner: owner, Status: StatusActive},
			Limit: MaxTxKeys, Cursor: cursor, Now: s.clock(),
		})
		if err != nil {
			return revoked, err
		}
		n, err := s.revokeBatch(ctx, caller, page)
		revoked += n
		if err != nil || next == "" {
			return revoked, err
		}
		cursor = next
	}
}

// revokeBatch revokes keys in one transaction. When one moved on since it
// was read, it re-reads each key and tries again with those still active.
func (s *Service) revokeBatch(ctx context.Context, caller Caller, batch []*Key) (int, error) {
	revoked := 0
	retry := false
	err := retryOnConflict(func() error {
		if retry {
			fresh, err := s.reload(ctx, batch)
			if err != nil {
				return err
			}
			batch = fresh
		}
		retry = true
		now := s.clock()
		tx := Tx{}
		for _, k := range batch {
			if k.StatusAt(now) != StatusActive {
				continue
			}
			changes := map[string]Change{}
			revoke(k, now, changes)
			k.UpdatedAt = now
			k.PurgeAt = purgeTime(k, s.cfg.Retention)
			tx.Update = append(tx.Update, k)
			tx.Events = append(tx.Events, s.event(caller, ActionOwnerRevoked, k, now, changes))
		}
		if len(tx.Update) == 0 {
			return nil
		}
		if err := s.store.Apply(ctx, tx); err != nil {
			return err
		}
		revoked = len(tx.Update)
		return nil
	})
	return revoked, err
}

// reload reads keys again, consistently; a key gone since is left out.
func (s *Service) reload(ctx context.Context, batch []*Key) ([]*Key, error) {
	fresh := make([]*Key, 0, len(batch))
	for _, k := range batch {
		k, err := s.store.GetKey(ctx, k.ID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		fresh = append(fresh, k)
	}
	return fresh, nil
}

// AuditInput asks for a page of the caller's project's audit events.
type AuditInput struct {
	Target string
	Action string
	Limit  int
	Cursor string
}

// ListAudit pages through the caller's project's audit events, newest first.
func (s *Service) ListAudit(ctx context.Context, caller Caller, in AuditInput) (Page[*AuditEvent], error) {
	if err := s.authorize(caller); err != nil {
		return Page[*AuditEvent]{}, err
	}
	limit, err := PageLimit(in.Limit)
	if err != nil {
		return Page[*AuditEvent]{}, err
	}
	switch in.Action {
	case "", ActionCreated, ActionUpdated, ActionRevoked, ActionRotated, ActionOwnerRevoked:
	default:
		return Page[*AuditEvent]{}, invalid("action", "want one of %s, %s, %s, %s, %s", ActionCreated, ActionUpdated, ActionRevoked, ActionRotated, ActionOwnerRevoked)
	}
	if in.Target != "" && !validKeyID(in.Target) {
		return Page[*AuditEvent]{}, invalid("keyId", "not a key id")
	}
	items, next, err := s.store.ListAudit(ctx, AuditQuery{Project: caller.Project, Target: in.Target, Action: in.Action, Limit: limit, Cursor: in.Cursor, Now: s.clock()})
	if err != nil {
		return Page[*AuditEvent]{}, err
	}
	return Page[*AuditEvent]{Items: items, NextCursor: next}, nil
}
