package keys

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// Tx is a set of writes that succeed or fail together.
type Tx struct {
	// Create holds keys that must not exist yet.
	Create []*Key
	// Update holds keys whose stored Version must still be Key.Version; their
	// management fields are written and the version advances. Usage counters
	// and rate windows, which the authorizer owns, are never touched.
	Update []*Key
	// Revoke holds keys to revoke: their status, revokedAt, updatedAt and
	// purge time are written on the sole condition that the key exists in
	// its project and is still active, so that no edit can make a revoke
	// fail. The version advances.
	Revoke []*Key
	Events []*AuditEvent
	// Counted holds, by key id, what the authorizer had counted on keys of
	// Update when they were read. Only an Update with one writes the key's
	// credits (remaining, refill, next refill), which the authorizer spends
	// without changing the version; it requires the stored counts to be
	// these still, so that no use counted in between is lost or undone.
	Counted map[string]Counted
	// Owners holds owners' limits to write: rate limits always, credits when
	// its Counted is set (as for keys). Each requires the stored version to
	// be Limits.Version (0: no item) and advances it; the authorizer's
	// counters on the item stay as they are.
	Owners []OwnerWrite
	// OwnerChecks require owners' limits to be at a version still: a key
	// whose owner-limited flag was computed from a read of them is written
	// only if no change of the owner's limits landed since.
	OwnerChecks []OwnerCheck
	// OwnerRevoked, when set, records that an owner was revoked at a time:
	// what the owner's customer portal sessions opened earlier end on.
	OwnerRevoked *OwnerRevocation
	// Caller, when set, is the calling key, which must still be active and
	// unexpired in its project when the Tx is written, or the Tx fails with
	// ErrCallerInactive: a key revoked while its request was in flight (or
	// cached by API Gateway) cannot create or change keys after its revoke.
	// A Tx that writes the calling key's own item needs no such check.
	Caller *CallerCheck
}

// Counted is what the authorizer had counted on a key or owner, as read.
type Counted struct {
	// Credits are the credits as stored (nil: unlimited), due refill and
	// all: their remaining and next refill must be stored still.
	Credits *Credits
	// Uses, when set, is the key's total of uses, which must be stored
	// still: no use, of any cost, was counted since the read.
	Uses *int64
}

// OwnerWrite sets an owner's limits.
type OwnerWrite struct {
	Limits *OwnerLimits
	// Counted, when set, makes the write set the owner's credits too, on
	// the condition that the stored ones are these still.
	Counted *Counted
}

// OwnerCheck requires an owner's limits at Version (0: none stored).
type OwnerCheck struct {
	Project, Owner string
	Version        int64
}

// OwnerRevocation is an owner revoke, as the owner's sessions see it.
type OwnerRevocation struct {
	Project, Owner string
	At             time.Time
}

// CallerCheck names the calling key a Tx requires active at Now.
type CallerCheck struct {
	ID, Project string
	Now         time.Time
}

// touches reports whether tx writes the key id.
func (tx Tx) touches(id string) bool {
	for _, list := range [][]*Key{tx.Create, tx.Update, tx.Revoke} {
		for _, k := range list {
			if k.ID == id {
				return true
			}
		}
	}
	return false
}

// CallerToCheck is the caller check a store must make for tx: nil when
// there is none, or when tx writes the caller's own item (a transaction
// may not touch an item twice, and that write is conditioned already).
func (tx Tx) CallerToCheck() *CallerCheck {
	if tx.Caller == nil || tx.touches(tx.Caller.ID) {
		return nil
	}
	return tx.Caller
}

// MaxTxKeys is how many keys one Tx may change, each with its event, within
// DynamoDB's limit of 100 items per transaction: a key is two items (its
// authorization's and its details'), and there is room for the check of
// the calling key (Tx.Caller) and an owner's item.
const MaxTxKeys = 32

// KeyFilter narrows a listing.
type KeyFilter struct {
	Status Status // "" for any
	Owner  string
	Tier   string
	// CreatedBy is the id of the key that created the keys, or ActorOperator.
	CreatedBy string
	// Search is part of the name, in any case. It and UnusedForDays are
	// matched on the keys read (Matches), as the indexes hold neither the
	// name nor lastUsed, which every authorization writes.
	Search string
	// UnusedForDays, when above 0, keeps the keys created more than that
	// many days ago and not used since: those to review and revoke.
	UnusedForDays int
}

// MaxUnusedForDays bounds KeyFilter.UnusedForDays: ten years.
const MaxUnusedForDays = 3650

// Matches reports whether k passes the filter's Search and UnusedForDays,
// which a store checks on the keys it reads.
func (f KeyFilter) Matches(k *Key, now time.Time) bool {
	if f.Search != "" && !strings.Contains(strings.ToLower(k.Name), strings.ToLower(f.Search)) {
		return false
	}
	if f.UnusedForDays > 0 {
		since := now.AddDate(0, 0, -f.UnusedForDays)
		if !k.CreatedAt.Before(since) || k.Usage.LastUsed != nil && !k.Usage.LastUsed.Before(since) {
			return false
		}
	}
	return true
}

// ReadFiltered reports whether the filter has parts a store checks on the
// keys it reads (Matches) rather than in its query.
func (f KeyFilter) ReadFiltered() bool { return f.Search != "" || f.UnusedForDays > 0 }

// Query names a listing of the filter: a page cursor serves no other.
func (f KeyFilter) Query(project string) string {
	return strings.Join([]string{"keys", project, string(f.Status), f.Owner, f.Tier, f.CreatedBy, f.Search, strconv.Itoa(f.UnusedForDays)}, "\x00")
}

// ListQuery asks for one page of a project's keys, newest first. Limit is
// at least 1 (PageLimit gives callers' limits).
type ListQuery struct {
	Project string
	Filter  KeyFilter
	Limit   int
	Cursor  string
	Now     time.Time
}

// AuditQuery asks for one page of a project's audit events, newest first;
// Limit as ListQuery's.
type AuditQuery struct {
	Project string
	Target  string
	Action  string
	Limit   int
	Cursor  string
	Now     time.Time
}

// Store is the persistence keygate's domain needs.
type Store interface {
	// Apply writes a Tx atomically. A key to create that exists, or a key to
	// update whose version moved or that is gone, fails it with ErrConflict.
	Apply(ctx context.Context, tx Tx) error
	// GetKey reads a key with a strongly consistent read; ErrNotFound if absent.
	GetKey(ctx context.Context, id string) (*Key, error)
	// ListKeys returns a page and the cursor of the next one ("" at the end).
	// An invalid cursor is an *InvalidError on field "cursor".
	ListKeys(ctx context.Context, q ListQuery) ([]*Key, string, error)
	ListAudit(ctx context.Context, q AuditQuery) ([]*AuditEvent, string, error)
	// GetOwnerLimits reads an owner's limits with a strongly consistent
	// read; ErrNotFound if none were ever stored.
	GetOwnerLimits(ctx context.Context, project, owner string) (*OwnerLimits, error)
	// OwnerRevokedAt is when an owner was last revoked (Tx.OwnerRevoked),
	// read strongly consistent; the zero time if never.
	OwnerRevokedAt(ctx context.Context, project, owner string) (time.Time, error)
}
