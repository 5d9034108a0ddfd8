// Package keystest is an in-memory keys.Store for tests, and the contract
// every keys.Store must keep (RunStoreContract), which pkg/dynamo runs too:
// tests on the fake then hold for the DynamoDB store.
package keystest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keygate/keygate/pkg/keys"
)

// maxTxItems is DynamoDB's limit of items in one transaction, which
// pkg/dynamo's Apply is bound by.
const maxTxItems = 100

// Store is an in-memory keys.Store with pkg/dynamo's conditions. Nothing it
// holds is shared with callers: keys and events are copied in and out.
// Times are kept as given (pkg/dynamo keeps milliseconds, purge times
// rounded up to the second), and TTL never deletes anything.
type Store struct {
	mu     sync.Mutex
	keys   map[string]*keys.Key
	owners map[string]*keys.OwnerLimits // by ownerItem
	// revoked holds when owners were revoked, by ownerItem.
	revoked map[string]time.Time
	events  map[string]*keys.AuditEvent // by project and sort key
	cursors Cursors
	writes  int
	fail    error
}

var _ keys.Store = (*Store)(nil)

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{keys: map[string]*keys.Key{}, owners: map[string]*keys.OwnerLimits{}, revoked: map[string]time.Time{}, events: map[string]*keys.AuditEvent{}, cursors: NewCursors()}
}

// Writes is how many Apply calls have succeeded, so that a test can tell
// that an operation wrote nothing.
func (s *Store) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// FailWith makes every later Apply fail with err and write nothing, until
// FailWith(nil).
func (s *Store) FailWith(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

// Apply writes tx atomically: every condition is checked against the state
// before tx, as in a DynamoDB transaction, and a failed one writes nothing.
// Seed stores k as it is, outside any Tx and not counted in Writes: a key
// a test needs to exist, such as the calling key of the changes it makes.
func (s *Store) Seed(k *keys.Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[k.ID] = cloneKey(k)
}

func (s *Store) Apply(ctx context.Context, tx keys.Tx) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	events, err := storedEvents(tx.Events)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if err := checkItems(tx); err != nil {
		return err
	}
	if c := tx.CallerToCheck(); c != nil {
		stored, ok := s.keys[c.ID]
		if !ok || stored.Project != c.Project || stored.StatusAt(c.Now) != keys.StatusActive || stored.GoneAt(c.Now) {
			return keys.ErrCallerInactive
		}
	}
	for _, k := range tx.Create {
		if _, ok := s.keys[k.ID]; ok {
			return conflict("create", k.ID, "exists")
		}
	}
	for _, k := range tx.Update {
		stored, ok := s.keys[k.ID]
		switch {
		case !ok:
			return conflict("update", k.ID, "does not exist")
		case stored.Version != k.Version:
			return conflict("update", k.ID, fmt.Sprintf("version is %d, not %d", stored.Version, k.Version))
		case stored.Project != k.Project:
			return conflict("update", k.ID, "is in another project")
		}
		if c, ok := tx.Counted[k.ID]; ok {
			if why := changedCounts(stored.Credits, stored.Usage.TotalRequests, c); why != "" {
				return conflict("update", k.ID, why)
			}
		}
	}
	for _, w := range tx.Owners {
		o := w.Limits
		stored, ok := s.owners[ownerItem(o.Project, o.Owner)]
		switch {
		case !ok && o.Version != 0:
			return conflict("write owner limits", o.Owner, "has none stored")
		case ok && stored.Version != o.Version:
			return conflict("write owner limits", o.Owner, fmt.Sprintf("version is %d, not %d", stored.Version, o.Version))
		}
		if w.Counted != nil {
			var credits *keys.Credits
			if ok {
				credits = stored.Credits
			}
			if why := changedCounts(credits, 0, *w.Counted); why != "" {
				return conflict("write owner limits", o.Owner, why)
			}
		}
	}
	for _, c := range tx.OwnerChecks {
		var version int64
		if stored, ok := s.owners[ownerItem(c.Project, c.Owner)]; ok {
			version = stored.Version
		}
		if version != c.Version {
			return conflict("check owner limits", c.Owner, fmt.Sprintf("version is %d, not %d", version, c.Version))
		}
	}
	for _, k := range tx.Revoke {
		stored, ok := s.keys[k.ID]
		switch {
		case !ok:
			return conflict("revoke", k.ID, "does not exist")
		case stored.Project != k.Project:
			return conflict("revoke", k.ID, "is in another project")
		case stored.Status != keys.StatusActive:
			return conflict("revoke", k.ID, "is "+string(stored.Status))
		}
	}
	for _, e := range tx.Events {
		if _, ok := s.events[eventItem(e)]; ok {
			return conflict("put event", e.ID, "exists")
		}
	}

	for _, k := range tx.Create {
		s.keys[k.ID] = cloneKey(k)
	}
	for _, k := range tx.Update {
		_, counted := tx.Counted[k.ID]
		update(s.keys[k.ID], k, counted)
	}
	for _, w := range tx.Owners {
		writeOwner(s.owners, w)
	}
	if r := tx.OwnerRevoked; r != nil {
		s.revoked[ownerItem(r.Project, r.Owner)] = r.At
	}
	for _, k := range tx.Revoke {
		revoke(s.keys[k.ID], k)
	}
	for _, e := range events {
		s.events[eventItem(e)] = e
	}
	s.writes++
	return nil
}

// checkItems refuses what DynamoDB refuses before evaluating any condition
// (a ValidationException, not a conflict): no item, more than it takes, or
// one item twice.
func checkItems(tx keys.Tx) error {
	n := len(tx.Create) + len(tx.Update) + len(tx.Revoke) + len(tx.Events) + len(tx.Owners) + len(tx.OwnerChecks)
	if tx.CallerToCheck() != nil {
		n++
	}
	if tx.OwnerRevoked != nil {
		n++
	}
	if n == 0 || n > maxTxItems {
		return fmt.Errorf("keystest: a transaction takes 1-%d items, not %d", maxTxItems, n)
	}
	seen := map[string]bool{}
	items := make([]string, 0, n)
	for _, k := range slices.Concat(tx.Create, tx.Update, tx.Revoke) {
		items = append(items, "KEY#"+k.ID)
	}
	for _, w := range tx.Owners {
		items = append(items, ownerItem(w.Limits.Project, w.Limits.Owner))
	}
	for _, c := range tx.OwnerChecks {
		items = append(items, ownerItem(c.Project, c.Owner))
	}
	for _, e := range tx.Events {
		items = append(items, eventItem(e))
	}
	for _, item := range items {
		if seen[item] {
			return fmt.Errorf("keystest: a transaction cannot include multiple operations on one item (%s)", item)
		}
		seen[item] = true
	}
	return nil
}

func conflict(op, id, why string) error {
	return fmt.Errorf("%w: %s %s: it %s", keys.ErrConflict, op, id, why)
}

// update writes k's management fields over stored, as pkg/dynamo's
// updateKey does: never usage, the meter, nor what is fixed at creation;
// credits only with counted.
func update(stored, k *keys.Key, counted bool) {
	c := cloneKey(k)
	stored.Name, stored.Status, stored.UpdatedAt = c.Name, c.Status, c.UpdatedAt
	stored.Scopes, stored.IPAllowlist, stored.Metadata = c.Scopes, c.IPAllowlist, c.Metadata
	stored.ExpiresAt, stored.RevokedAt, stored.RotatedTo, stored.PurgeAt = c.ExpiresAt, c.RevokedAt, c.RotatedTo, c.PurgeAt
	stored.RateLimits, stored.RateLimitsFromTier = c.RateLimits, c.RateLimitsFromTier
	stored.LimitsVersion, stored.OwnerLimited = c.LimitsVersion, c.OwnerLimited
	stored.Mode = c.Mode
	if c.ModeFromTier { // as presented: the mode shown is its tier's
		stored.Mode = ""
	}
	if counted {
		stored.Credits = c.Credits
	}
	stored.Version++
}

// changedCounts tells how stored counts differ from those counted, "" if
// they do not: remaining credits and next refill, and uses when counted.
func changedCounts(credits *keys.Credits, uses int64, counted keys.Counted) string {
	read := counted.Credits
	switch {
	case (credits == nil) != (read == nil):
		return "has other credits than read"
	case credits != nil && (credits.Remaining != read.Remaining || !sameTime(credits.NextRefillAt, read.NextRefillAt)):
		return fmt.Sprintf("has %d credits (next refill %v), not %d (%v)", credits.Remaining, credits.NextRefillAt, read.Remaining, read.NextRefillAt)
	case counted.Uses != nil && uses != *counted.Uses:
		return fmt.Sprintf("has %d uses, not %d", uses, *counted.Uses)
	}
	return ""
}

func sameTime(a, b *time.Time) bool {
	return a == nil && b == nil || a != nil && b != nil && a.Equal(*b)
}

// writeOwner writes an owner's limits as pkg/dynamo does: rate limits
// always (a list, [] for none), credits when counted; the version advances.
func writeOwner(owners map[string]*keys.OwnerLimits, w keys.OwnerWrite) {
	o := cloneOwner(w.Limits)
	item := ownerItem(o.Project, o.Owner)
	stored, ok := owners[item]
	if !ok {
		stored = &keys.OwnerLimits{Project: o.Project, Owner: o.Owner}
		owners[item] = stored
	}
	stored.RateLimits, stored.UpdatedAt = o.RateLimits, o.UpdatedAt
	if w.Counted != nil {
		stored.Credits = o.Credits
	}
	stored.Version++
}

func ownerItem(project, owner string) string { return "OWNERLIMITS#" + project + "#" + owner }

// revoke writes what a Tx.Revoke writes, and nothing else.
func revoke(stored, k *keys.Key) {
	c := cloneKey(k)
	stored.Status = keys.StatusRevoked
	stored.RevokedAt, stored.UpdatedAt, stored.PurgeAt = c.RevokedAt, c.UpdatedAt, c.PurgeAt
	stored.Version++
}

// storedEvents copies events as pkg/dynamo stores them: changes become
// JSON and read back as json.RawMessage values, so tests see what the
// DynamoDB store returns.
func storedEvents(events []*keys.AuditEvent) ([]*keys.AuditEvent, error) {
	out := make([]*keys.AuditEvent, len(events))
	for i, e := range events {
		changes, err := e.MarshalChanges()
		if err != nil {
			return nil, fmt.Errorf("encode audit changes: %w", err)
		}
		c := *e
		c.Changes = nil
		if changes != "" {
			var raw map[string]struct{ From, To json.RawMessage }
			if err := json.Unmarshal([]byte(changes), &raw); err != nil {
				return nil, fmt.Errorf("decode audit changes: %w", err)
			}
			c.Changes = make(map[string]keys.Change, len(raw))
			for field, ch := range raw {
				c.Changes[field] = keys.Change{From: ch.From, To: ch.To}
			}
		}
		out[i] = &c
	}
	return out, nil
}

// GetKey returns a copy of the key; ErrNotFound if absent. Like pkg/dynamo
// it returns a key past its purge time: calling it gone is the domain's.
func (s *Store) GetKey(ctx context.Context, id string) (*keys.Key, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok {
		return nil, keys.ErrNotFound
	}
	return cloneKey(k), nil
}

// GetOwnerLimits returns a copy of an owner's limits; ErrNotFound if none
// were stored.
func (s *Store) GetOwnerLimits(ctx context.Context, project, owner string) (*keys.OwnerLimits, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.owners[ownerItem(project, owner)]
	if !ok {
		return nil, keys.ErrNotFound
	}
	return cloneOwner(o), nil
}

// OwnerRevokedAt is when an owner was last revoked; zero if never.
func (s *Store) OwnerRevokedAt(ctx context.Context, project, owner string) (time.Time, error) {
	if err := ctxErr(ctx); err != nil {
		return time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revoked[ownerItem(project, owner)], nil
}

// MeterCounter is the window counter CountUse counts on.
const MeterCounter = "w.contract.60.0"

// CountUse counts one use of key id as the authorizer does, outside any
// Tx and without moving its version: one more use, one on MeterCounter,
// and cost spent from its credits, which must cover it (if it has any).
func (s *Store) CountUse(ctx context.Context, id string, cost int64) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	switch {
	case !ok:
		return keys.ErrNotFound
	case k.Credits != nil && k.Credits.Remaining < cost:
		return fmt.Errorf("keystest: %s has %d credits, not %d", id, k.Credits.Remaining, cost)
	case k.Credits != nil:
		k.Credits.Remaining -= cost
	}
	k.Usage.TotalRequests++
	if k.Meter == nil {
		k.Meter = map[string]int64{}
	}
	k.Meter[MeterCounter]++
	return nil
}

// ListKeys pages through a project's keys, newest first, leaving out keys
// past their purge time.
func (s *Store) ListKeys(ctx context.Context, q keys.ListQuery) ([]*keys.Key, string, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, "", err
	}
	f := q.Filter
	switch f.Status {
	case "", keys.StatusActive, keys.StatusExpired, keys.StatusRevoked:
	default:
		return nil, "", fmt.Errorf("keystest: no status %q", f.Status)
	}
	query := f.Query(q.Project)
	s.mu.Lock()
	defer s.mu.Unlock()
	var matched []*keys.Key
	for _, k := range s.keys {
		if k.Project == q.Project && !k.GoneAt(q.Now) &&
			(f.Status == "" || k.StatusAt(q.Now) == f.Status) &&
			(f.Owner == "" || k.Owner == f.Owner) &&
			(f.Tier == "" || k.Tier == f.Tier) &&
			(f.CreatedBy == "" || k.CreatedBy == f.CreatedBy) && f.Matches(k, q.Now) {
			matched = append(matched, k)
		}
	}
	items, next, err := paginate(s, matched, func(k *keys.Key) string { return sortKey(k.CreatedAt, k.ID) }, query, q.Limit, q.Cursor)
	if err != nil {
		return nil, "", err
	}
	out := make([]*keys.Key, len(items))
	for i, k := range items {
		out[i] = cloneKey(k)
	}
	return out, next, nil
}

// ListAudit pages through a project's audit events, newest first, leaving
// out events past their purge time.
func (s *Store) ListAudit(ctx context.Context, q keys.AuditQuery) ([]*keys.AuditEvent, string, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, "", err
	}
	query := strings.Join([]string{"audit", q.Project, q.Target, q.Action}, "\x00")
	s.mu.Lock()
	defer s.mu.Unlock()
	var matched []*keys.AuditEvent
	for _, e := range s.events {
		if e.Project == q.Project && q.Now.Before(e.PurgeAt) &&
			(q.Target == "" || e.Target == q.Target) &&
			(q.Action == "" || e.Action == q.Action) {
			matched = append(matched, e)
		}
	}
	items, next, err := paginate(s, matched, func(e *keys.AuditEvent) string { return sortKey(e.Time, e.ID) }, query, q.Limit, q.Cursor)
	if err != nil {
		return nil, "", err
	}
	out := make([]*keys.AuditEvent, len(items))
	for i, e := range items {
		out[i] = cloneEvent(e)
	}
	return out, next, nil
}

// paginate sorts items newest first by sort key and returns up to limit of
// those after the cursor, with the cursor of the next page.
func paginate[T any](s *Store, items []T, sk func(T) string, query string, limit int, cursor string) ([]T, string, error) {
	if limit < 1 {
		return nil, "", fmt.Errorf("keystest: limit %d: want at least 1", limit)
	}
	slices.SortFunc(items, func(a, b T) int { return cmp.Compare(sk(b), sk(a)) })
	if cursor != "" {
		after, err := s.cursors.Decode(query, cursor)
		if err != nil {
			return nil, "", err
		}
		items = slices.DeleteFunc(items, func(it T) bool { return sk(it) >= after })
	}
	if len(items) <= limit {
		return items, "", nil
	}
	items = items[:limit]
	return items, s.cursors.Encode(query, sk(items[limit-1])), nil
}

// sortKey orders as pkg/dynamo's sort keys do: time in milliseconds, then id.
func sortKey(t time.Time, id string) string { return fmt.Sprintf("%013d#%s", t.UnixMilli(), id) }

func eventItem(e *keys.AuditEvent) string {
	return "AUDIT#" + e.Project + "\x00" + sortKey(e.Time, e.ID)
}

// ctxErr fails a call on a done context as pkg/dynamo does: unavailable.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", keys.ErrUnavailable, err)
	}
	return nil
}

// cloneKey copies k deeply. Empty lists and metadata read back as nil, as
// pkg/dynamo, which does not store empty attributes, returns them; rate
// limits are nil for a key that follows its tier, a list otherwise.
func cloneKey(k *keys.Key) *keys.Key {
	c := *k
	c.Scopes = cloneStrings(k.Scopes)
	c.IPAllowlist = cloneStrings(k.IPAllowlist)
	c.Metadata = cloneRaw(k.Metadata)
	c.Usage.LastUsed = cloneTime(k.Usage.LastUsed)
	c.ExpiresAt = cloneTime(k.ExpiresAt)
	c.RevokedAt = cloneTime(k.RevokedAt)
	c.PurgeAt = cloneTime(k.PurgeAt)
	c.RateLimits = cloneLimits(k.RateLimits, k.RateLimitsFromTier)
	c.Credits = k.Credits.Clone()
	c.Meter = nil
	if len(k.Meter) > 0 {
		c.Meter = maps.Clone(k.Meter)
	}
	c.GraceUntil = cloneTime(k.GraceUntil)
	return &c
}

// cloneOwner copies o deeply; its rate limits are a list, [] for none.
func cloneOwner(o *keys.OwnerLimits) *keys.OwnerLimits {
	c := *o
	c.RateLimits = cloneLimits(o.RateLimits, false)
	c.Credits = o.Credits.Clone()
	c.UpdatedAt = cloneTime(o.UpdatedAt)
	return &c
}

func cloneLimits(l []keys.RateLimit, fromTier bool) []keys.RateLimit {
	if fromTier {
		return nil
	}
	return append([]keys.RateLimit{}, l...)
}

// cloneEvent copies a stored event, whose change values are json.RawMessage.
func cloneEvent(e *keys.AuditEvent) *keys.AuditEvent {
	c := *e
	if e.Changes != nil {
		c.Changes = make(map[string]keys.Change, len(e.Changes))
		for field, ch := range e.Changes {
			c.Changes[field] = keys.Change{From: cloneRaw(ch.From.(json.RawMessage)), To: cloneRaw(ch.To.(json.RawMessage))}
		}
	}
	return &c
}

func cloneStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

func cloneRaw(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}
