package keys

import (
	"context"
	"errors"
	"time"
)

// Rotation grace periods, in seconds.
const (
	DefaultGraceSeconds = 86400
	MaxGraceSeconds     = 7 * 86400
)

// Rotate issues a successor to a key of the caller's project, with the same
// name, tier, scopes, allowlist, metadata and owner. The old key keeps
// working for grace, then reads expired; grace 0 refuses it at once. Each
// links the other.
func (s *Service) Rotate(ctx context.Context, caller Caller, id string, graceSeconds int) (*Created, error) {
	if err := s.authorize(caller); err != nil {
		return nil, err
	}
	if graceSeconds < 0 || graceSeconds > MaxGraceSeconds {
		return nil, invalid("gracePeriodSeconds", "want 0-%d", MaxGraceSeconds)
	}
	const attempts = 3
	for i := 0; ; i++ {
		old, err := s.load(ctx, caller, id)
		if err != nil {
			return nil, err
		}
		now := s.clock()
		switch {
		case old.StatusAt(now) != StatusActive:
			return nil, &ConflictError{"API key is " + string(old.StatusAt(now)) + " and cannot be rotated"}
		case old.RotatedTo != "":
			return nil, &ConflictError{"API key was already rotated to " + old.RotatedTo}
		}
		tier, ok := s.cfg.TierByName(old.Tier)
		if !ok {
			return nil, &ConflictError{"API key's tier " + old.Tier + " is no longer configured"}
		}
		next := &Key{
			Name: old.Name, Tier: old.Tier, Scopes: old.Scopes, Project: old.Project, Owner: old.Owner,
			Status: StatusActive, IPAllowlist: old.IPAllowlist, Metadata: old.Metadata,
			CreatedAt: now, UpdatedAt: now, RotatedFrom: old.ID,
		}
		raw, err := s.issue(next, tier)
		if err != nil {
			return nil, err
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
		created := createdChanges(next)
		created["rotatedFrom"] = Change{To: old.ID}
		err = s.store.Apply(ctx, Tx{
			Create: []*Key{next},
			Update: []*Key{old},
			Events: []*AuditEvent{s.event(caller, ActionRotated, old, now, changes), s.event(caller, ActionCreated, next, now, created)},
		})
		if errors.Is(err, ErrConflict) && i+1 < attempts {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &Created{Key: s.present(next, now), RawKey: raw}, nil
	}
}

// RevokeOwner revokes every active key of an owner in the caller's project,
// as when a team member leaves, and returns how many it revoked. It walks
// the owner's keys page by page and revokes each page in one transaction
// with an event per key; run again after a failure, it carries on where the
// last run stopped, and it revokes 0 once none is left.
func (s *Service) RevokeOwner(ctx context.Context, caller Caller, owner string) (int, error) {
	if err := s.authorize(caller); err != nil {
		return 0, err
	}
	if err := ValidateOwner(owner); err != nil {
		return 0, err
	}
	revoked := 0
	cursor := ""
	for {
		now := s.clock()
		page, next, err := s.store.ListKeys(ctx, ListQuery{
			Project: caller.Project, Filter: KeyFilter{Owner: owner, Status: StatusActive},
			Limit: MaxTxKeys, Cursor: cursor, Now: now,
		})
		if err != nil {
			return revoked, err
		}
		n, err := s.revokeBatch(ctx, caller, page)
		revoked += n
		if err != nil {
			return revoked, err
		}
		if next == "" {
			return revoked, nil
		}
		cursor = next
	}
}

// revokeBatch revokes keys in one transaction. The listing comes from an
// index, which may lag; when a key moved on since, it re-reads each key
// consistently and tries again with those still active.
func (s *Service) revokeBatch(ctx context.Context, caller Caller, batch []*Key) (int, error) {
	const attempts = 3
	for i := 0; ; i++ {
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
			return 0, nil
		}
		err := s.store.Apply(ctx, tx)
		if err == nil {
			return len(tx.Update), nil
		}
		if !errors.Is(err, ErrConflict) || i+1 >= attempts {
			return 0, err
		}
		fresh := batch[:0]
		for _, k := range tx.Update {
			k, err := s.store.GetKey(ctx, k.ID)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return 0, err
			}
			fresh = append(fresh, k)
		}
		batch = fresh
	}
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
