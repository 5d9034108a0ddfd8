package keys

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/pkg/token"
)

// Rotation grace periods, in seconds.
const (
	DefaultGraceSeconds = 86400
	MaxGraceSeconds     = 7 * 86400
)

// Rotate issues a successor to a key of the caller's project, with the same
// name, tier, scopes, allowlist, metadata, owner, expiry and limits. The
// old key keeps working for grace, then reads expired; grace 0 refuses it
// at once. Each links the other.
//
// The successor continues the old key's budget: it starts with the old
// item's window counters (Key.Meter) and credits, copied verbatim, and
// during the grace the old key's uses count on the successor's item
// (GraceHash). So that no use is lost in between, the old item is written
// only if no use was counted since it was read (Tx.Counted); a key in use
// throughout every retry makes the rotation fail with a conflict.
func (s *Service) Rotate(ctx context.Context, caller Caller, id string, graceSeconds int) (*Created, error) {
	if err := s.requireAdmin(caller); err != nil {
		return nil, err
	}
	if graceSeconds < 0 || graceSeconds > MaxGraceSeconds {
		return nil, invalid("gracePeriodSeconds", "want 0-%d", MaxGraceSeconds)
	}
	g, err := s.grantorOf(ctx, caller, s.clock())
	if err != nil {
		return nil, err
	}
	var created *Created
	err = retryOnConflict(ctx, spendingRetries, func() error {
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
		if err := s.predecessorDone(ctx, caller, old, now); err != nil {
			return err
		}
		if err := canManage(caller, old); err != nil {
			return err
		}
		// The successor keeps old's expiry: a time-boxed caller may rotate
		// only a key that ends no later than itself.
		if err := caller.mayGrantUntil(old.ExpiresAt); err != nil {
			return err
		}
		if err := caller.mayGrantReach(old.IPAllowlist); err != nil {
			return err
		}
		tier, ok := s.cfg.TierByName(old.Tier)
		if !ok {
			return &ConflictError{"API key's tier " + old.Tier + " is no longer configured"}
		}
		if err := g.mayMakeFor(old.Owner); err != nil {
			return err
		}
		given, _ := s.allowanceOf(old, now)
		if err := g.mayGive("", nil, given); err != nil {
			return err
		}
		// A rotation replaces the secret, not the policy: the successor
		// keeps the old key's expiry and limits, and its budget.
		next := &Key{
			Name: old.Name, Tier: old.Tier, Scopes: old.Scopes, Project: old.Project, Owner: old.Owner,
			Status: StatusActive, IPAllowlist: old.IPAllowlist, Metadata: old.Metadata, ExpiresAt: old.ExpiresAt,
			CreatedAt: now, UpdatedAt: now, RotatedFrom: old.ID, CreatedBy: caller.creator(),
			RateLimits: slices.Clone(old.RateLimits), RateLimitsFromTier: old.RateLimitsFromTier, Credits: old.Credits.Clone(),
			Mode:         ownMode(old),
			OwnerLimited: old.OwnerLimited, LimitsVersion: old.LimitsVersion, Meter: maps.Clone(old.Meter),
		}
		plan := planOf(next)
		checks, err := s.flagOwnerLimited(ctx, next) // a flag not yet written to old by an owner's walk
		if err != nil {
			return err
		}
		advanceLimitsVersion(next, plan)
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
		if graceSeconds > 0 {
			next.GraceHash, next.GraceUntil = old.Hash, old.ExpiresAt
		}
		old.RotatedTo = next.ID
		old.UpdatedAt = now
		old.PurgeAt = purgeTime(old, s.cfg.Retention)
		createdChanges := createdChanges(next)
		createdChanges["rotatedFrom"] = Change{To: old.ID}
		err = s.apply(ctx, Tx{
			Caller:      caller.Check(now),
			Create:      []*Key{next},
			Update:      []*Key{old},
			Counted:     map[string]Counted{old.ID: {Credits: old.Credits, Uses: &old.Usage.TotalRequests}},
			OwnerChecks: checks,
			Events:      []*AuditEvent{s.event(caller, ActionRotated, old, now, changes), s.event(caller, ActionCreated, next, now, createdChanges)},
		})
		if err != nil {
			return err
		}
		created = &Created{Key: s.present(next, now), RawKey: raw}
		return nil
	})
	return created, whileSpending(err, "rotation")
}

// Bounds of an owner revoke.
const (
	// ownerPasses bounds each walk of an owner's keys (a revoke, a flag of
	// its limits): a key created while one pass ran, or not yet in the
	// index when it started, is found by the next; walking stops after a
	// pass that changed nothing.
	ownerPasses = 3
	// deadlineMargin is the time an owner revoke keeps in hand before its
	// context's deadline (the Lambda timeout): it stops between
	// transactions rather than being killed in one, and says how far it got.
	deadlineMargin = 3 * time.Second
)

// predecessorDone refuses to rotate a key whose own predecessor is still
// within its grace: the predecessor's uses count on this key's item, and a
// second rotation would split the one budget in two.
func (s *Service) predecessorDone(ctx context.Context, caller Caller, k *Key, now time.Time) error {
	if k.RotatedFrom == "" {
		return nil
	}
	prev, err := s.load(ctx, caller, k.RotatedFrom)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return err
	case prev.RotatedTo == k.ID && prev.StatusAt(now) == StatusActive:
		until := "for good"
		if prev.ExpiresAt != nil {
			until = "until " + prev.ExpiresAt.Format(time.RFC3339)
		}
		return &ConflictError{"API key's predecessor " + prev.ID + " is still in its grace period " + until + ": rotate once it ends, or revoke it or shorten its grace first"}
	}
	return nil
}

// RevokeOwner revokes every active key of an owner in the caller's project,
// as when a team member leaves, and returns how many it revoked. It walks
// the owner's keys page by page and revokes each page in one transaction,
// with an event per key. With includeCreated it then revokes every active
// key those keys created, transitively, and the successors of their
// rotations. If it cannot finish (a persistent conflict, or time running
// out) it returns what it revoked with an ErrUnavailable error: calling it
// again carries on, and once no key is left it revokes 0.
func (s *Service) RevokeOwner(ctx context.Context, caller Caller, owner string, includeCreated bool) (int, error) {
	if err := s.requireProjectAdmin(caller); err != nil {
		return 0, err
	}
	if err := ValidateOwner(owner); err != nil {
		return 0, err
	}
	// First the mark that ends the owner's portal sessions at once, whether
	// or not the walks below finish.
	mark := &OwnerRevocation{Project: caller.Project, Owner: owner, At: s.clock()}
	if err := s.apply(ctx, Tx{OwnerRevoked: mark, Caller: caller.Check(mark.At)}); err != nil {
		return 0, err
	}
	revoke := func(page []*Key) (int, error) { return s.revokeBatch(ctx, caller, page) }
	walks := s.ownerWalks(ctx, caller, owner, includeCreated, revoke)
	// Each walk runs again until one revokes nothing: a key created while
	// it ran, or not yet in the index it reads, is found by the next.
	revoked := 0
	for _, walk := range walks {
		for pass := 0; pass < ownerPasses; pass++ {
			n, err := walk()
			revoked += n
			if err != nil {
				return revoked, fmt.Errorf("%w: revoked %d keys of %s, then: %w", ErrUnavailable, revoked, owner, err)
			}
			if n == 0 {
				break
			}
		}
	}
	return revoked, nil
}

// OwnerRevokeCount is how many keys RevokeOwner would revoke now, found by
// the same walks, revoking nothing: what a confirmation shows. Each key
// counts once, however many walks find it.
func (s *Service) OwnerRevokeCount(ctx context.Context, caller Caller, owner string, includeCreated bool) (int, error) {
	if err := s.requireProjectAdmin(caller); err != nil {
		return 0, err
	}
	if err := ValidateOwner(owner); err != nil {
		return 0, err
	}
	now := s.clock()
	found := map[string]bool{}
	count := func(page []*Key) (int, error) {
		for _, k := range page {
			if k.StatusAt(now) == StatusActive {
				found[k.ID] = true
			}
		}
		return 0, nil
	}
	for _, walk := range s.ownerWalks(ctx, caller, owner, includeCreated, count) {
		if _, err := walk(); err != nil {
			return 0, err
		}
	}
	return len(found), nil
}

// ownerWalks are the walks of an owner revoke, each handing act the keys
// to revoke, a transaction's worth at a time; act returns how many it
// revoked.
func (s *Service) ownerWalks(ctx context.Context, caller Caller, owner string, includeCreated bool, act func([]*Key) (int, error)) []func() (int, error) {
	walks := []func() (int, error){func() (int, error) { return s.revokeOwnersKeys(ctx, caller, owner, act) }}
	if includeCreated {
		walks = append(walks, func() (int, error) { return s.revokeCreated(ctx, caller, owner, act) })
	}
	return walks
}

// revokeOwnersKeys walks the owner's active keys once, a page per act.
func (s *Service) revokeOwnersKeys(ctx context.Context, caller Caller, owner string, act func([]*Key) (int, error)) (int, error) {
	revoked := 0
	err := s.eachPage(ctx, caller.Project, KeyFilter{Owner: owner, Status: StatusActive}, MaxTxKeys, func(page []*Key) error {
		n, err := act(page)
		revoked += n
		return err
	})
	return revoked, err
}

// revokeCreated walks down from the owner's keys, of any status, to the
// keys each created and to each one's rotation successor, revoking those
// still active: a departing member's keys cannot leave keys of theirs
// behind under another owner, or none.
func (s *Service) revokeCreated(ctx context.Context, caller Caller, owner string, act func([]*Key) (int, error)) (int, error) {
	var queue []string
	held := map[string]bool{} // ids read by a listing, so already at hand
	enqueued := map[string]bool{}
	visit := func(k *Key) {
		held[k.ID] = true
		for _, id := range []string{k.ID, k.RotatedTo} {
			if id != "" && !enqueued[id] {
				enqueued[id] = true
				queue = append(queue, id)
			}
		}
	}
	err := s.eachPage(ctx, caller.Project, KeyFilter{Owner: owner}, MaxPageSize, func(page []*Key) error {
		for _, k := range page {
			visit(k)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	revoked := 0
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		var batch []*Key
		if !held[id] { // a rotation successor no listing has shown yet
			k, err := s.load(ctx, caller, id)
			switch {
			case err == nil:
				visit(k)
				batch = append(batch, k)
			case !errors.Is(err, ErrNotFound):
				return revoked, err
			}
		}
		err := s.eachPage(ctx, caller.Project, KeyFilter{CreatedBy: id}, MaxTxKeys, func(page []*Key) error {
			for _, k := range page {
				visit(k)
			}
			batch = append(batch, page...)
			return nil
		})
		if err != nil {
			return revoked, err
		}
		for chunk := range slices.Chunk(batch, MaxTxKeys) {
			n, err := act(chunk)
			revoked += n
			if err != nil {
				return revoked, err
			}
		}
	}
	return revoked, nil
}

// eachPage hands fn the caller's project's keys that pass filter, a page of
// at most limit at a time, stopping early (DeadlineExceeded) when the
// context's deadline is nearer than deadlineMargin.
func (s *Service) eachPage(ctx context.Context, project string, filter KeyFilter, limit int, fn func([]*Key) error) error {
	cursor := ""
	for {
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < deadlineMargin {
			return context.DeadlineExceeded
		}
		page, next, err := s.store.ListKeys(ctx, ListQuery{Project: project, Filter: filter, Limit: limit, Cursor: cursor, Now: s.clock()})
		if err != nil {
			return err
		}
		if err := fn(page); err != nil || next == "" {
			return err
		}
		cursor = next
	}
}

// revokeBatch revokes keys in one transaction. When one was revoked or
// deleted since it was read, it re-reads each key and tries again with
// those still active; edits of the keys cannot make it fail (Tx.Revoke).
func (s *Service) revokeBatch(ctx context.Context, caller Caller, batch []*Key) (int, error) {
	revoked := 0
	retry := false
	err := retryOnConflict(ctx, revokeRetries, func() error {
		if retry {
			fresh, err := s.reload(ctx, batch)
			if err != nil {
				return err
			}
			batch = fresh
		}
		retry = true
		now := s.clock()
		tx := Tx{Caller: caller.Check(now)}
		for _, k := range batch {
			if k.StatusAt(now) != StatusActive {
				continue
			}
			changes := map[string]Change{}
			revoke(k, now, changes)
			k.UpdatedAt = now
			k.PurgeAt = purgeTime(k, s.cfg.Retention)
			tx.Revoke = append(tx.Revoke, k)
			tx.Events = append(tx.Events, s.event(caller, ActionOwnerRevoked, k, now, changes))
		}
		if len(tx.Revoke) == 0 {
			return nil
		}
		if err := s.apply(ctx, tx); err != nil {
			return err
		}
		revoked = len(tx.Revoke)
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
	if err := s.requireProjectAdmin(caller); err != nil {
		return Page[*AuditEvent]{}, err
	}
	limit, err := PageLimit(in.Limit)
	if err != nil {
		return Page[*AuditEvent]{}, err
	}
	if in.Action != "" && !slices.Contains(auditActions, in.Action) {
		return Page[*AuditEvent]{}, invalid("action", "want one of %s", strings.Join(auditActions, ", "))
	}
	if in.Target != "" && !token.ValidID(in.Target) {
		return Page[*AuditEvent]{}, invalid("keyId", "not a key id")
	}
	items, next, err := s.store.ListAudit(ctx, AuditQuery{Project: caller.Project, Target: in.Target, Action: in.Action, Limit: limit, Cursor: in.Cursor, Now: s.clock()})
	if err != nil {
		return Page[*AuditEvent]{}, err
	}
	return Page[*AuditEvent]{Items: items, NextCursor: next}, nil
}
