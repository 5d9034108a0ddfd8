package keystest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/keys"
)

// CountUse counts one use of a key as the authorizer does, behind the
// keys.Store's back and without moving its version: one more use, one on
// the window counter MeterCounter, and cost spent from its credits, which
// must cover it (if it has any). Store.CountUse is the fake's.
type CountUse func(ctx context.Context, id string, cost int64) error

// RunStoreContract runs, as parallel subtests, the behaviour every
// keys.Store must have: the conditions of Apply, and what GetKey, ListKeys,
// ListAudit and GetOwnerLimits return. newStore returns an empty store of
// the kind under test, and how to count a use on it; each subtest takes one
// or more of its own.
//
// Times in the contract are whole milliseconds, and purge times whole
// seconds, as pkg/dynamo stores them; they lie a day in the real future,
// so that a table with TTL enabled deletes nothing while the tests run.
func RunStoreContract(t *testing.T, newStore func(t *testing.T) (keys.Store, CountUse)) {
	for _, c := range contract {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(newFixture(t, newStore))
		})
	}
}

var contract = []struct {
	name string
	run  func(f *fixture)
}{
	{"get of an unknown key is ErrNotFound", getUnknown},
	{"create writes every field", createRoundTrip},
	{"metadata reads back byte for byte", metadataRoundTrip},
	{"create of an existing id conflicts", createExisting},
	{"update writes management fields only", updateManagementFields},
	{"update clears optional fields", updateClears},
	{"update needs the stored version and project", updateConditions},
	{"revoke writes status, times and purge time only", revokeFields},
	{"revoke needs an active key in its project", revokeConditions},
	{"revoke does not look at expiry", revokeExpired},
	{"a key revoked without a purge time stays", revokeWithoutPurge},
	{"a transaction with a failing part writes nothing", atomicity},
	{"a malformed transaction writes nothing", malformedTx},
	{"events read back as written", eventRoundTrip},
	{"stored state is not shared with callers", noAliasing},
	{"keys list newest first", listOrder},
	{"key filters", listFilters},
	{"purged keys and events are not listed", purged},
	{"key pages lose and repeat nothing", listPagination},
	{"search and unused filters, across pages", listReadFilters},
	{"an owner's revocation mark reads back, the latest", ownerRevokedMark},
	{"a cursor keeps its place while keys change", cursorPosition},
	{"a cursor serves only its own listing", cursorRefusals},
	{"audit lists newest first, with filters", auditFilters},
	{"audit pages lose and repeat nothing", auditPagination},
	{"a caller no longer active writes nothing", inactiveCaller},
	{"limits read back as written", limitsRoundTrip},
	{"an update with counts writes credits", countedUpdate},
	{"an update with counts needs them unchanged", countedConditions},
	{"credit changes racing uses lose none", countedRace},
	{"owner limits read back as written", ownerRoundTrip},
	{"an owner write needs the version it read", ownerWriteConditions},
	{"an owner check needs the version it read", ownerChecks},
	{"a rotation carries the meter, unless a use came in between", rotationMeter},
}

// bigMetadata holds what a careless store changes: a number beyond float64
// and characters an HTML-escaping encoder rewrites.
const bigMetadata = `{"n":12345678901234567890123,"h":"<&>"}`

type fixture struct {
	*testing.T
	s        keys.Store
	countUse CountUse
	newStore func(*testing.T) (keys.Store, CountUse)
	ctx      context.Context
	now      time.Time // whole seconds
	n        int       // ids handed out
}

func newFixture(t *testing.T, newStore func(*testing.T) (keys.Store, CountUse)) *fixture {
	s, countUse := newStore(t)
	return &fixture{
		T: t, s: s, countUse: countUse, newStore: newStore, ctx: context.Background(),
		now: time.Now().UTC().Add(24 * time.Hour).Truncate(time.Second),
	}
}

// sub is a fixture with a fresh store for subtest t.
func (f *fixture) sub(t *testing.T) *fixture { return newFixture(t, f.newStore) }

// at is a time relative to f.now.
func (f *fixture) at(d time.Duration) *time.Time {
	t := f.now.Add(d)
	return &t
}

// newKey is an active key of project, not yet written, created a
// millisecond after the previous one.
func (f *fixture) newKey(project string) *keys.Key {
	f.n++
	id := fmt.Sprintf("key_%024x", f.n)
	created := f.now.Add(time.Duration(f.n)*time.Millisecond - time.Hour)
	return &keys.Key{
		ID: id, Name: "key " + id[len(id)-4:], Start: "kg_pk_" + id[len(id)-4:], Tier: "public",
		Scopes: []string{"contracts"}, Project: project, Status: keys.StatusActive,
		CreatedAt: created, UpdatedAt: created, CreatedBy: keys.ActorOperator, Hash: sha256.Sum256([]byte(id)),
	}
}

// newEvent is an event of project about target, not yet written.
func (f *fixture) newEvent(project, target, action string, at time.Time) *keys.AuditEvent {
	f.n++
	return &keys.AuditEvent{
		ID: fmt.Sprintf("evt_%016x", f.n), Project: project, Actor: keys.ActorOperator, Action: action, Target: target,
		Changes: map[string]keys.Change{"name": {From: "a", To: "b"}}, Time: at, PurgeAt: f.now.Add(365 * 24 * time.Hour),
	}
}

func (f *fixture) apply(tx keys.Tx) error { return f.s.Apply(f.ctx, tx) }

func (f *fixture) mustApply(tx keys.Tx) {
	f.Helper()
	if err := f.apply(tx); err != nil {
		f.Fatalf("Apply: %v", err)
	}
}

func (f *fixture) create(ks ...*keys.Key) {
	f.Helper()
	f.mustApply(keys.Tx{Create: ks})
}

func (f *fixture) get(id string) *keys.Key {
	f.Helper()
	k, err := f.s.GetKey(f.ctx, id)
	if err != nil {
		f.Fatalf("GetKey(%s): %v", id, err)
	}
	return k
}

// maxPages bounds a walk through a listing, which a broken cursor could
// make endless.
const maxPages = 200

// listKeys walks every page of q (limit 100 and f.now unless set),
// failing on a page longer than the limit or a key listed twice.
func (f *fixture) listKeys(q keys.ListQuery) []*keys.Key {
	f.Helper()
	q.Limit = cmp.Or(q.Limit, 100)
	if q.Now.IsZero() {
		q.Now = f.now
	}
	return walk(f, q.Cursor, q.Limit, ids, func(cursor string) ([]*keys.Key, string, error) {
		q.Cursor = cursor
		return f.s.ListKeys(f.ctx, q)
	})
}

// listAudit is listKeys for events.
func (f *fixture) listAudit(q keys.AuditQuery) []*keys.AuditEvent {
	f.Helper()
	q.Limit = cmp.Or(q.Limit, 100)
	if q.Now.IsZero() {
		q.Now = f.now
	}
	return walk(f, q.Cursor, q.Limit, eventIDs, func(cursor string) ([]*keys.AuditEvent, string, error) {
		q.Cursor = cursor
		return f.s.ListAudit(f.ctx, q)
	})
}

// walk pages through a listing from cursor ("" for the first page), at
// most maxPages.
func walk[T any](f *fixture, cursor string, limit int, idsOf func([]T) []string, page func(cursor string) ([]T, string, error)) []T {
	f.Helper()
	var all []T
	for range maxPages {
		items, next, err := page(cursor)
		if err != nil {
			f.Fatalf("page after %q: %v", cursor, err)
		}
		if len(items) > limit {
			f.Fatalf("page after %q: %d items, more than the limit %d", cursor, len(items), limit)
		}
		all = append(all, items...)
		if next == "" {
			checkUnique(f.T, idsOf(all))
			return all
		}
		cursor = next
	}
	f.Fatalf("more than %d pages", maxPages)
	return nil
}

func checkUnique(t *testing.T, ids []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("%s listed twice in %v", id, ids)
		}
		seen[id] = true
	}
}

// snapshot describes every key and event of the projects, version and
// purge times included, to tell that a failed write changed nothing.
func (f *fixture) snapshot(projects ...string) string {
	f.Helper()
	var b strings.Builder
	for _, p := range projects {
		for _, k := range f.listKeys(keys.ListQuery{Project: p}) {
			j, _ := json.Marshal(k)
			fmt.Fprintf(&b, "%s version=%d hash=%x purge=%v lv=%d ownerLimited=%v meter=%v grace=%x/%v\n",
				j, k.Version, k.Hash, show(k.PurgeAt), k.LimitsVersion, k.OwnerLimited, k.Meter, k.GraceHash, show(k.GraceUntil))
		}
		for _, e := range f.listAudit(keys.AuditQuery{Project: p}) {
			j, _ := json.Marshal(e)
			fmt.Fprintf(&b, "%s purge=%v\n", j, e.PurgeAt)
		}
	}
	return b.String()
}

// unchanged fails unless the projects still read as before.
func (f *fixture) unchanged(before string, projects ...string) {
	f.Helper()
	if after := f.snapshot(projects...); after != before {
		f.Errorf("a failed write changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func ids(ks []*keys.Key) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.ID
	}
	return out
}

func eventIDs(es []*keys.AuditEvent) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// Diff lists the fields of two structs of one type that differ: times
// compare as instants; an empty list or metadata equals an absent one,
// which pkg/dynamo does not store. The webhooks' contract uses it too.
func Diff[T any](got, want *T) []string {
	var diffs []string
	g, w := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
	for i := range g.NumField() {
		gv, wv := g.Field(i).Interface(), w.Field(i).Interface()
		if !same(gv, wv) {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", g.Type().Field(i).Name, show(gv), show(wv)))
		}
	}
	return diffs
}

func same(a, b any) bool {
	switch a := a.(type) {
	case time.Time:
		return a.Equal(b.(time.Time))
	case *time.Time:
		b := b.(*time.Time)
		return a == nil && b == nil || a != nil && b != nil && a.Equal(*b)
	case keys.Usage:
		b := b.(keys.Usage)
		return a.TotalRequests == b.TotalRequests && same(a.LastUsed, b.LastUsed)
	case []string:
		return slices.Equal(a, b.([]string))
	case json.RawMessage:
		return bytes.Equal(a, b.(json.RawMessage))
	case []byte:
		return bytes.Equal(a, b.([]byte))
	case []keys.RateLimit:
		return slices.Equal(a, b.([]keys.RateLimit))
	case *keys.Credits:
		b := b.(*keys.Credits)
		return a == nil && b == nil || a != nil && b != nil && a.Remaining == b.Remaining &&
			reflect.DeepEqual(a.Refill, b.Refill) && same(a.NextRefillAt, b.NextRefillAt)
	}
	return reflect.DeepEqual(a, b)
}

// show prints what a pointer points to, and raw JSON as text.
func show(v any) any {
	switch v := v.(type) {
	case *time.Time:
		if v != nil {
			return *v
		}
	case keys.Usage:
		return fmt.Sprintf("{%d %v}", v.TotalRequests, show(v.LastUsed))
	case json.RawMessage:
		return string(v)
	case []byte:
		return string(v)
	case *keys.Credits:
		if v != nil {
			return fmt.Sprintf("{%d %+v %v}", v.Remaining, v.Refill, show(v.NextRefillAt))
		}
	}
	return v
}

func (f *fixture) wantKey(got, want *keys.Key) {
	f.Helper()
	for _, d := range Diff(got, want) {
		f.Errorf("key %s: %s", want.ID, d)
	}
}

func wantIDs(t *testing.T, what string, got []*keys.Key, want ...*keys.Key) {
	t.Helper()
	if !slices.Equal(ids(got), ids(want)) {
		t.Errorf("%s = %v, want %v", what, ids(got), ids(want))
	}
}

func wantEvents(t *testing.T, what string, got []*keys.AuditEvent, want ...*keys.AuditEvent) {
	t.Helper()
	if !slices.Equal(eventIDs(got), eventIDs(want)) {
		t.Errorf("%s = %v, want %v", what, eventIDs(got), eventIDs(want))
	}
}

func wantConflict(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, keys.ErrConflict) {
		t.Errorf("%s: err = %v, want ErrConflict", what, err)
	}
}

func getUnknown(f *fixture) {
	if _, err := f.s.GetKey(f.ctx, "key_000000000000000000000000"); !errors.Is(err, keys.ErrNotFound) {
		f.Errorf("GetKey of an unknown key: err = %v, want ErrNotFound", err)
	}
}

// fullKey sets every field of k that a store keeps.
func (f *fixture) fullKey(k *keys.Key) *keys.Key {
	k.Name, k.Tier, k.Owner = "Ünïcode name <&>", "partner", "alice@example.com"
	k.Scopes = []string{"admin", "contracts"}
	k.Usage = keys.Usage{TotalRequests: 42, LastUsed: f.at(-time.Minute + 7*time.Millisecond)}
	k.IPAllowlist = []string{"10.0.0.0/8", "2001:db8::/32"}
	k.Metadata = json.RawMessage(`{"team":"core"}`)
	k.ExpiresAt = f.at(48*time.Hour + 123*time.Millisecond)
	k.UpdatedAt = k.CreatedAt.Add(5 * time.Millisecond)
	k.RotatedFrom, k.RotatedTo, k.CreatedBy = "key_0000000000000000000000a1", "key_0000000000000000000000a2", "key_0000000000000000000000a3"
	k.Version = 3
	k.PurgeAt = f.at(49 * time.Hour)
	k.RateLimits = []keys.RateLimit{{Name: "burst", Limit: 10, WindowSeconds: 1}, {Name: "day", Limit: 10000, WindowSeconds: 86400}}
	k.Credits = &keys.Credits{Remaining: 250, Refill: &keys.Refill{Interval: keys.RefillMonthly, Amount: 1000, RefillDay: 31}, NextRefillAt: f.at(72*time.Hour + 9*time.Millisecond)}
	k.LimitsVersion, k.OwnerLimited = 4, true
	k.Meter = map[string]int64{"w.burst.1.1700000000": 3, "lw.burst.1": 1700000000, "w.day.86400.1699920000": 812, "lw.day.86400": 1699920000}
	k.GraceHash, k.GraceUntil = sha256.Sum256([]byte("predecessor")), f.at(time.Hour+3*time.Millisecond)
	return k
}

func createRoundTrip(f *fixture) {
	want := f.fullKey(f.newKey("acme"))
	f.create(cloneKey(want))
	f.wantKey(f.get(want.ID), want)
	revoked := f.newKey("acme")
	revoked.Status, revoked.RevokedAt, revoked.PurgeAt = keys.StatusRevoked, f.at(-time.Minute), f.at(30*24*time.Hour)
	f.create(cloneKey(revoked))
	f.wantKey(f.get(revoked.ID), revoked)
}

// Metadata is whatever JSON a caller stored: every read returns its bytes.
func metadataRoundTrip(f *fixture) {
	k := f.newKey("acme")
	k.Metadata = json.RawMessage(bigMetadata)
	ev := f.newEvent("acme", k.ID, keys.ActionCreated, k.CreatedAt)
	ev.Changes = map[string]keys.Change{"metadata": {To: k.Metadata}}
	f.mustApply(keys.Tx{Create: []*keys.Key{k}, Events: []*keys.AuditEvent{ev}})
	if got := f.get(k.ID).Metadata; string(got) != bigMetadata {
		f.Errorf("GetKey metadata = %s, want %s", got, bigMetadata)
	}
	if got := f.listKeys(keys.ListQuery{Project: "acme"}); len(got) != 1 || string(got[0].Metadata) != bigMetadata {
		f.Errorf("ListKeys metadata = %v, want %s", got, bigMetadata)
	}
	events := f.listAudit(keys.AuditQuery{Project: "acme"})
	if len(events) != 1 {
		f.Fatalf("ListAudit = %d events, want 1", len(events))
	}
	changes, err := events[0].MarshalChanges()
	if want := `{"metadata":{"from":null,"to":` + bigMetadata + `}}`; err != nil || changes != want {
		f.Errorf("event changes = %s, %v; want %s", changes, err, want)
	}
}

func createExisting(f *fixture) {
	k := f.newKey("acme")
	f.create(k)
	before := f.snapshot("acme")
	dup := cloneKey(k)
	dup.Name = "another"
	err := f.apply(keys.Tx{Create: []*keys.Key{dup}, Events: []*keys.AuditEvent{f.newEvent("acme", k.ID, keys.ActionCreated, f.now)}})
	wantConflict(f.T, "create of an existing id", err)
	f.unchanged(before, "acme")
}

func updateManagementFields(f *fixture) {
	stored := f.fullKey(f.newKey("acme"))
	stored.Version = 0
	f.create(cloneKey(stored))

	u := cloneKey(stored)
	// Management fields: written.
	u.Name, u.Status = "renamed", keys.StatusRevoked
	u.Scopes, u.IPAllowlist, u.Metadata = []string{"webhooks"}, []string{"192.0.2.1"}, json.RawMessage(`{"a":1}`)
	u.ExpiresAt, u.RevokedAt, u.RotatedTo = f.at(time.Hour), f.at(time.Minute), "key_0000000000000000000000b2"
	u.UpdatedAt, u.PurgeAt = f.now, f.at(31*24*time.Hour)
	u.RateLimits, u.RateLimitsFromTier, u.LimitsVersion, u.OwnerLimited = nil, true, 5, false
	// Fixed at creation, or the authorizer's: never written by an update.
	u.Tier, u.Owner, u.Start, u.CreatedBy, u.RotatedFrom = "internal", "mallory", "kg_in_zzzz", "key_0000000000000000000000b3", "key_0000000000000000000000b4"
	u.CreatedAt, u.Hash = f.now, sha256.Sum256([]byte("other"))
	u.Usage = keys.Usage{}
	// The authorizer spends credits: only an update with counts writes them.
	u.Credits, u.Meter = nil, map[string]int64{"w.burst.1.1700000001": 1}
	u.GraceHash, u.GraceUntil = [32]byte{}, nil
	f.mustApply(keys.Tx{Update: []*keys.Key{u}})

	want := cloneKey(stored)
	want.Name, want.Status, want.Scopes, want.IPAllowlist, want.Metadata = u.Name, u.Status, u.Scopes, u.IPAllowlist, u.Metadata
	want.ExpiresAt, want.RevokedAt, want.RotatedTo, want.UpdatedAt, want.PurgeAt = u.ExpiresAt, u.RevokedAt, u.RotatedTo, u.UpdatedAt, u.PurgeAt
	want.RateLimits, want.RateLimitsFromTier, want.LimitsVersion, want.OwnerLimited = nil, true, 5, false
	want.Version = 1
	f.wantKey(f.get(stored.ID), want)
	// Listings index the key by what creation fixed.
	wantIDs(f.T, "keys of owner alice", f.listKeys(keys.ListQuery{Project: "acme", Filter: keys.KeyFilter{Owner: "alice@example.com"}}), stored)
	wantIDs(f.T, "keys of tier partner", f.listKeys(keys.ListQuery{Project: "acme", Filter: keys.KeyFilter{Tier: "partner"}}), stored)
}

func updateClears(f *fixture) {
	stored := f.fullKey(f.newKey("acme"))
	stored.Version = 0
	f.create(cloneKey(stored))
	u := cloneKey(stored)
	u.Scopes, u.IPAllowlist, u.Metadata, u.ExpiresAt, u.RotatedTo, u.PurgeAt = []string{}, nil, nil, nil, "", nil
	f.mustApply(keys.Tx{Update: []*keys.Key{u}})
	got := f.get(stored.ID)
	if len(got.Scopes) != 0 || len(got.IPAllowlist) != 0 || got.Metadata != nil || got.ExpiresAt != nil || got.RotatedTo != "" || got.PurgeAt != nil {
		f.Errorf("after clearing: scopes %v, allowlist %v, metadata %s, expiresAt %v, rotatedTo %q, purgeAt %v",
			got.Scopes, got.IPAllowlist, got.Metadata, show(got.ExpiresAt), got.RotatedTo, show(got.PurgeAt))
	}
	// A key that no longer expires is active at any time.
	wantIDs(f.T, "active keys in a century", f.listKeys(keys.ListQuery{Project: "acme", Filter: keys.KeyFilter{Status: keys.StatusActive}, Now: f.now.AddDate(100, 0, 0)}), stored)
}

func updateConditions(f *fixture) {
	for _, tc := range []struct {
		name   string
		change func(f *fixture, stored *keys.Key) *keys.Key
	}{
		{"stale version", func(f *fixture, stored *keys.Key) *keys.Key {
			first := cloneKey(stored)
			first.Name = "first"
			f.mustApply(keys.Tx{Update: []*keys.Key{first}}) // stored is now a version behind
			return stored
		}},
		{"version ahead", func(_ *fixture, stored *keys.Key) *keys.Key { stored.Version++; return stored }},
		{"another project's key", func(_ *fixture, stored *keys.Key) *keys.Key { stored.Project = "globex"; return stored }},
		{"missing key", func(f *fixture, _ *keys.Key) *keys.Key { return f.newKey("acme") }},
	} {
		f.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			stored := f.newKey("acme")
			f.create(cloneKey(stored))
			u := tc.change(f, stored)
			before := f.snapshot("acme", "globex")
			u.Name = "lost"
			err := f.apply(keys.Tx{Update: []*keys.Key{u}, Events: []*keys.AuditEvent{f.newEvent("acme", u.ID, keys.ActionUpdated, f.now)}})
			wantConflict(t, "update", err)
			f.unchanged(before, "acme", "globex")
		})
	}
}

func revokeFields(f *fixture) {
	stored := f.fullKey(f.newKey("acme"))
	stored.Version = 0
	f.create(cloneKey(stored))
	edited := cloneKey(stored)
	edited.Name = "edited"
	f.mustApply(keys.Tx{Update: []*keys.Key{edited}})

	// A revoke read before the edit still lands, and writes only its own fields.
	r := cloneKey(stored)
	r.Name, r.ExpiresAt, r.Scopes, r.Usage = "stale", nil, nil, keys.Usage{}
	r.Status, r.RevokedAt, r.UpdatedAt, r.PurgeAt = keys.StatusRevoked, f.at(0), f.now, f.at(30*24*time.Hour)
	f.mustApply(keys.Tx{Revoke: []*keys.Key{r}})

	want := cloneKey(stored)
	want.Name, want.Status, want.RevokedAt, want.UpdatedAt, want.PurgeAt, want.Version = "edited", keys.StatusRevoked, r.RevokedAt, r.UpdatedAt, r.PurgeAt, 2
	f.wantKey(f.get(stored.ID), want)
}

func revokeConditions(f *fixture) {
	for _, tc := range []struct {
		name   string
		target func(f *fixture, stored *keys.Key) *keys.Key
	}{
		{"revoked key", func(f *fixture, stored *keys.Key) *keys.Key {
			r := cloneKey(stored)
			r.RevokedAt, r.UpdatedAt, r.PurgeAt = f.at(-time.Minute), f.now.Add(-time.Minute), f.at(time.Hour)
			f.mustApply(keys.Tx{Revoke: []*keys.Key{r}})
			return stored
		}},
		{"another project's key", func(_ *fixture, stored *keys.Key) *keys.Key { stored.Project = "globex"; return stored }},
		{"missing key", func(f *fixture, _ *keys.Key) *keys.Key { return f.newKey("acme") }},
	} {
		f.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			stored := f.newKey("acme")
			f.create(cloneKey(stored))
			r := tc.target(f, stored)
			before := f.snapshot("acme", "globex")
			r.RevokedAt, r.UpdatedAt, r.PurgeAt = f.at(0), f.now, f.at(2*time.Hour)
			err := f.apply(keys.Tx{Revoke: []*keys.Key{r}, Events: []*keys.AuditEvent{f.newEvent("acme", r.ID, keys.ActionRevoked, f.now)}})
			wantConflict(t, "revoke", err)
			f.unchanged(before, "acme", "globex")
		})
	}
}

// The condition is the stored status: an active key past its expiry is
// still revoked, so that its purge time follows the revoke.
func revokeExpired(f *fixture) {
	k := f.newKey("acme")
	k.ExpiresAt = f.at(-48 * time.Hour)
	f.create(cloneKey(k))
	k.RevokedAt, k.UpdatedAt, k.PurgeAt = f.at(0), f.now, f.at(time.Hour)
	f.mustApply(keys.Tx{Revoke: []*keys.Key{k}})
	if got := f.get(k.ID); got.Status != keys.StatusRevoked || got.Version != 1 {
		f.Errorf("after revoke: status %s, version %d; want revoked, 1", got.Status, got.Version)
	}
}

// A revoke with no purge time keeps the key for good: stored as a purge
// time of 0, it would read as purged since 1970 (pkg/dynamo once did).
func revokeWithoutPurge(f *fixture) {
	k := f.newKey("acme")
	f.create(cloneKey(k))
	k.RevokedAt, k.UpdatedAt, k.PurgeAt = f.at(0), f.now, nil
	f.mustApply(keys.Tx{Revoke: []*keys.Key{k}})
	if got := f.get(k.ID); got.Status != keys.StatusRevoked || got.PurgeAt != nil || got.GoneAt(f.now) {
		f.Errorf("after revoke: status %s, purgeAt %v; want revoked, never purged", got.Status, show(got.PurgeAt))
	}
	for _, filter := range []keys.KeyFilter{{}, {Status: keys.StatusRevoked}} {
		wantIDs(f.T, fmt.Sprintf("keys with %+v", filter), f.listKeys(keys.ListQuery{Project: "acme", Filter: filter}), k)
		wantIDs(f.T, fmt.Sprintf("keys with %+v in a century", filter), f.listKeys(keys.ListQuery{Project: "acme", Filter: filter, Now: f.now.AddDate(100, 0, 0)}), k)
	}
}

// Each part of a transaction that fails its condition fails all of it: the
// other parts, each fine alone, write nothing either.
func atomicity(f *fixture) {
	for _, tc := range []struct {
		name    string
		failing func(f *fixture, existing, revoked, other *keys.Key, ev *keys.AuditEvent) keys.Tx
	}{
		{"create of an existing id", func(_ *fixture, existing, _, _ *keys.Key, _ *keys.AuditEvent) keys.Tx {
			return keys.Tx{Create: []*keys.Key{cloneKey(existing)}}
		}},
		{"update with a stale version", func(_ *fixture, existing, _, _ *keys.Key, _ *keys.AuditEvent) keys.Tx {
			stale := cloneKey(existing)
			stale.Version = 7
			return keys.Tx{Update: []*keys.Key{stale}}
		}},
		{"update of another project's key", func(_ *fixture, _, _, other *keys.Key, _ *keys.AuditEvent) keys.Tx {
			o := cloneKey(other)
			o.Project = "acme"
			return keys.Tx{Update: []*keys.Key{o}}
		}},
		{"revoke of a revoked key", func(_ *fixture, _, revoked, _ *keys.Key, _ *keys.AuditEvent) keys.Tx {
			return keys.Tx{Revoke: []*keys.Key{cloneKey(revoked)}}
		}},
		{"event written before", func(_ *fixture, _, _, _ *keys.Key, ev *keys.AuditEvent) keys.Tx {
			return keys.Tx{Events: []*keys.AuditEvent{ev}}
		}},
	} {
		f.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			toUpdate, toRevoke, existing, revoked := f.newKey("acme"), f.newKey("acme"), f.newKey("acme"), f.newKey("acme")
			revoked.Status, revoked.RevokedAt, revoked.PurgeAt = keys.StatusRevoked, f.at(-time.Hour), f.at(time.Hour)
			other := f.newKey("globex")
			ev := f.newEvent("acme", existing.ID, keys.ActionCreated, f.now)
			f.mustApply(keys.Tx{Create: []*keys.Key{toUpdate, toRevoke, existing, revoked, other}, Events: []*keys.AuditEvent{ev}})
			before := f.snapshot("acme", "globex")

			fresh := f.newKey("acme")
			u := cloneKey(toUpdate)
			u.Name = "renamed"
			r := cloneKey(toRevoke)
			r.RevokedAt, r.UpdatedAt, r.PurgeAt = f.at(0), f.now, f.at(time.Hour)
			tx := tc.failing(f, existing, revoked, other, ev)
			tx.Create = append(tx.Create, fresh)
			tx.Update = append(tx.Update, u)
			tx.Revoke = append(tx.Revoke, r)
			tx.Events = append(tx.Events, f.newEvent("acme", fresh.ID, keys.ActionCreated, f.now), f.newEvent("acme", u.ID, keys.ActionUpdated, f.now))
			wantConflict(t, tc.name, f.apply(tx))
			f.unchanged(before, "acme", "globex")
			if _, err := f.s.GetKey(f.ctx, fresh.ID); !errors.Is(err, keys.ErrNotFound) {
				t.Errorf("key of the failed transaction: GetKey err = %v, want ErrNotFound", err)
			}
		})
	}
}

// What DynamoDB refuses as malformed fails and writes nothing. (Whether as
// a conflict differs: DynamoDB Local reports one item written twice under
// conditions as ConditionalCheckFailed, DynamoDB as a ValidationException.)
func malformedTx(f *fixture) {
	k := f.newKey("acme")
	f.create(k)
	before := f.snapshot("acme")
	fresh := f.newKey("acme")
	ev := f.newEvent("acme", fresh.ID, keys.ActionCreated, f.now)
	u := cloneKey(k)
	u.Name = "renamed"
	tooMany := keys.Tx{Create: []*keys.Key{fresh}}
	for range 100 {
		tooMany.Events = append(tooMany.Events, f.newEvent("acme", fresh.ID, keys.ActionCreated, f.now))
	}
	for name, tx := range map[string]keys.Tx{
		"empty":                 {},
		"one key twice":         {Update: []*keys.Key{u}, Revoke: []*keys.Key{cloneKey(k)}},
		"one key created twice": {Create: []*keys.Key{fresh, cloneKey(fresh)}},
		"one event twice":       {Create: []*keys.Key{fresh}, Events: []*keys.AuditEvent{ev, ev}},
		"101 items":             tooMany,
	} {
		if err := f.apply(tx); err == nil {
			f.Errorf("%s: Apply succeeded", name)
		}
	}
	f.unchanged(before, "acme")
}

func eventRoundTrip(f *fixture) {
	k := f.newKey("acme")
	ev := &keys.AuditEvent{
		ID: "evt_00000000000000e1", Project: "acme", Actor: "key_0000000000000000000000c1", Action: keys.ActionUpdated, Target: k.ID,
		Changes: map[string]keys.Change{
			"name":      {From: "a", To: "b <&>"},
			"scopes":    {From: []string{"admin"}, To: []string{}},
			"expiresAt": {From: nil, To: f.at(time.Hour + 5*time.Millisecond)},
		},
		SourceIP: "2001:db8::7", Time: f.now.Add(3 * time.Millisecond), PurgeAt: f.now.Add(365 * 24 * time.Hour),
	}
	plain := f.newEvent("acme", k.ID, keys.ActionCreated, f.now)
	plain.Changes = nil
	f.mustApply(keys.Tx{Create: []*keys.Key{k}, Events: []*keys.AuditEvent{ev, plain}})
	got := f.listAudit(keys.AuditQuery{Project: "acme"})
	if len(got) != 2 {
		f.Fatalf("ListAudit = %d events, want 2", len(got))
	}
	for i, want := range []*keys.AuditEvent{ev, plain} {
		g := got[i]
		if g.ID != want.ID || g.Project != want.Project || g.Actor != want.Actor || g.Action != want.Action ||
			g.Target != want.Target || g.SourceIP != want.SourceIP || !g.Time.Equal(want.Time) || !g.PurgeAt.Equal(want.PurgeAt) {
			f.Errorf("event %d = %+v, want %+v", i, g, want)
		}
		gotChanges, _ := g.MarshalChanges()
		wantChanges, _ := want.MarshalChanges()
		if gotChanges != wantChanges {
			f.Errorf("event %s changes = %s, want %s", want.ID, gotChanges, wantChanges)
		}
	}
}

// Changing what Apply was given, or what a read returned, changes nothing stored.
func noAliasing(f *fixture) {
	k := f.fullKey(f.newKey("acme"))
	want := cloneKey(k)
	ev := f.newEvent("acme", k.ID, keys.ActionCreated, f.now)
	ev.Changes = map[string]keys.Change{"metadata": {To: json.RawMessage(`{"a":1}`)}}
	f.mustApply(keys.Tx{Create: []*keys.Key{k}, Events: []*keys.AuditEvent{ev}})
	scribble := func(k *keys.Key) {
		k.Name = "scribbled"
		k.Scopes[0], k.IPAllowlist[0], k.Metadata[2] = "x", "x", 'X'
		*k.ExpiresAt, *k.PurgeAt, *k.Usage.LastUsed = time.Time{}, time.Time{}, time.Time{}
		k.RateLimits[0].Limit, k.Credits.Refill.Amount, k.Meter["lw.burst.1"] = 1, 1, 1
		*k.Credits.NextRefillAt, *k.GraceUntil = time.Time{}, time.Time{}
	}
	scribble(k)
	ev.Changes["metadata"].To.(json.RawMessage)[2] = 'X'
	f.wantKey(f.get(want.ID), want)

	scribble(f.get(want.ID))
	f.wantKey(f.get(want.ID), want)
	listed := f.listKeys(keys.ListQuery{Project: "acme"})
	if len(listed) != 1 {
		f.Fatalf("ListKeys = %v, want %s", ids(listed), want.ID)
	}
	scribble(listed[0])
	f.wantKey(f.get(want.ID), want)

	for range 2 {
		events := f.listAudit(keys.AuditQuery{Project: "acme"})
		if len(events) != 1 {
			f.Fatalf("ListAudit = %v, want %s", eventIDs(events), ev.ID)
		}
		if got, _ := events[0].MarshalChanges(); got != `{"metadata":{"from":null,"to":{"a":1}}}` {
			f.Errorf("event changes = %s, want metadata {\"a\":1}", got)
		}
		events[0].Changes["metadata"].To.(json.RawMessage)[2] = 'X'
		events[0].Changes["extra"] = keys.Change{}
	}
}

func listOrder(f *fixture) {
	ks := make([]*keys.Key, 5)
	for i := range ks {
		ks[i] = f.newKey("acme")
	}
	// Keys created in the same millisecond list by id, highest first.
	ks[1].CreatedAt, ks[3].CreatedAt = ks[2].CreatedAt, ks[2].CreatedAt
	f.create(ks...)
	f.create(f.newKey("globex"))
	wantIDs(f.T, "keys", f.listKeys(keys.ListQuery{Project: "acme"}), ks[4], ks[3], ks[2], ks[1], ks[0])
}

func listFilters(f *fixture) {
	key := func(owner, tier, createdBy string) *keys.Key {
		k := f.newKey("acme")
		k.Owner, k.Tier, k.CreatedBy = owner, tier, createdBy
		return k
	}
	op := keys.ActorOperator
	a := key("alice", "public", op)
	b := key("alice", "partner", a.ID)
	b.ExpiresAt = f.at(time.Millisecond) // active until a millisecond after now
	c := key("bob", "public", a.ID)
	c.ExpiresAt = f.at(0) // expired at now exactly
	d := key("", "public", op)
	d.ExpiresAt = f.at(-time.Hour)
	e := key("bob", "partner", op)
	e.ExpiresAt, e.Status, e.RevokedAt, e.PurgeAt = f.at(-time.Hour), keys.StatusRevoked, f.at(-2*time.Hour), f.at(time.Hour)
	g := key("alice", "public", a.ID)
	g.Status, g.RevokedAt, g.PurgeAt = keys.StatusRevoked, f.at(-time.Hour), f.at(time.Hour)
	other := f.newKey("globex")
	other.Owner, other.CreatedBy = "alice", a.ID
	f.create(a, b, c, d, e, g, other)

	later := time.Millisecond
	for _, tc := range []struct {
		filter keys.KeyFilter
		after  time.Duration // q.Now after f.now
		want   []*keys.Key
	}{
		{keys.KeyFilter{}, 0, []*keys.Key{g, e, d, c, b, a}},
		{keys.KeyFilter{Status: keys.StatusActive}, 0, []*keys.Key{b, a}},
		{keys.KeyFilter{Status: keys.StatusExpired}, 0, []*keys.Key{d, c}},
		{keys.KeyFilter{Status: keys.StatusRevoked}, 0, []*keys.Key{g, e}},
		{keys.KeyFilter{Status: keys.StatusActive}, later, []*keys.Key{a}},
		{keys.KeyFilter{Status: keys.StatusExpired}, later, []*keys.Key{d, c, b}},
		{keys.KeyFilter{Owner: "alice"}, 0, []*keys.Key{g, b, a}},
		{keys.KeyFilter{Owner: "nobody"}, 0, nil},
		{keys.KeyFilter{Tier: "partner"}, 0, []*keys.Key{e, b}},
		{keys.KeyFilter{CreatedBy: a.ID}, 0, []*keys.Key{g, c, b}},
		{keys.KeyFilter{CreatedBy: op}, 0, []*keys.Key{e, d, a}},
		{keys.KeyFilter{CreatedBy: a.ID, Owner: "alice"}, 0, []*keys.Key{g, b}},
		{keys.KeyFilter{Owner: "alice", Status: keys.StatusActive}, 0, []*keys.Key{b, a}},
		{keys.KeyFilter{Owner: "bob", Tier: "partner"}, 0, []*keys.Key{e}},
		{keys.KeyFilter{CreatedBy: a.ID, Tier: "public", Status: keys.StatusExpired}, 0, []*keys.Key{c}},
	} {
		got := f.listKeys(keys.ListQuery{Project: "acme", Filter: tc.filter, Now: f.now.Add(tc.after)})
		wantIDs(f.T, fmt.Sprintf("keys with %+v at now+%v", tc.filter, tc.after), got, tc.want...)
	}
}

// A key or event past its purge time is gone, even while the item is still
// there (TTL deletes within days).
func purged(f *fixture) {
	purgeAt := []*time.Time{f.at(-time.Second), f.at(0), f.at(time.Second), nil}
	ks := make([]*keys.Key, len(purgeAt))
	tx := keys.Tx{}
	for i, p := range purgeAt {
		ks[i] = f.newKey("acme")
		ks[i].ExpiresAt, ks[i].PurgeAt = f.at(-time.Hour), p
		tx.Create = append(tx.Create, ks[i])
		if p != nil {
			ev := f.newEvent("acme", ks[i].ID, keys.ActionCreated, ks[i].CreatedAt)
			ev.PurgeAt = *p
			tx.Events = append(tx.Events, ev)
		}
	}
	f.mustApply(tx)
	for _, filter := range []keys.KeyFilter{{}, {Status: keys.StatusExpired}, {CreatedBy: keys.ActorOperator}} {
		wantIDs(f.T, fmt.Sprintf("keys with %+v at now", filter), f.listKeys(keys.ListQuery{Project: "acme", Filter: filter}), ks[3], ks[2])
		wantIDs(f.T, fmt.Sprintf("keys with %+v a second later", filter), f.listKeys(keys.ListQuery{Project: "acme", Filter: filter, Now: f.now.Add(time.Second)}), ks[3])
	}
	wantEvents(f.T, "events at now", f.listAudit(keys.AuditQuery{Project: "acme"}), tx.Events[2])
	wantEvents(f.T, "events a second earlier", f.listAudit(keys.AuditQuery{Project: "acme", Now: f.now.Add(-time.Second)}), tx.Events[2], tx.Events[1])
}

func listPagination(f *fixture) {
	var all []*keys.Key
	for i := range 12 {
		k := f.newKey("acme")
		if i%3 == 0 {
			k.Status, k.RevokedAt, k.PurgeAt = keys.StatusRevoked, f.at(-time.Hour), f.at(time.Hour)
		}
		if i%4 == 0 {
			k.Owner = "bob"
		}
		all = append(all, k)
		if i%4 == 1 {
			f.create(f.newKey("globex"))
		}
	}
	f.create(all...)
	slices.Reverse(all)
	for _, tc := range []struct {
		filter keys.KeyFilter
		want   func(*keys.Key) bool
	}{
		{keys.KeyFilter{}, func(*keys.Key) bool { return true }},
		{keys.KeyFilter{Status: keys.StatusActive}, func(k *keys.Key) bool { return k.Status == keys.StatusActive }},
		{keys.KeyFilter{Status: keys.StatusRevoked}, func(k *keys.Key) bool { return k.Status == keys.StatusRevoked }},
		{keys.KeyFilter{Owner: "bob"}, func(k *keys.Key) bool { return k.Owner == "bob" }},
	} {
		want := slices.DeleteFunc(slices.Clone(all), func(k *keys.Key) bool { return !tc.want(k) })
		for _, limit := range []int{1, 2, 3, 5, len(want), 100} {
			got := f.listKeys(keys.ListQuery{Project: "acme", Filter: tc.filter, Limit: limit})
			wantIDs(f.T, fmt.Sprintf("keys with %+v in pages of %d", tc.filter, limit), got, want...)
		}
	}
}

// Search and UnusedForDays are matched on the keys read, which the indexes
// do not hold: whatever the page size, a listing finds every key that
// matches and no other, and pages are never longer than the limit.
func listReadFilters(f *fixture) {
	const days = 30
	month := time.Duration(days) * 24 * time.Hour
	type spec struct {
		name           string
		age, sinceUsed time.Duration // sinceUsed 0: never used
	}
	var all []*keys.Key
	for _, s := range []spec{
		{"Billing Service", 2 * month, 0},
		{"billing worker", 2 * month, month + time.Hour},
		{"BILLING report", 2 * month, time.Hour},
		{"search api", 2 * month, 0},
		{"new billing", time.Hour, 0},
		{"Größe billing", month + time.Hour, month + time.Minute},
		{"résumé parser", 2 * month, 0},
	} {
		k := f.newKey("acme")
		k.Name, k.CreatedAt, k.UpdatedAt = s.name, f.now.Add(-s.age), f.now.Add(-s.age)
		if s.sinceUsed > 0 {
			k.Usage.LastUsed = f.at(-s.sinceUsed)
		}
		all = append(all, k)
		// Keys that match nothing, between them, so that pages must read on.
		for range 3 {
			f.create(f.newKey("acme"))
		}
	}
	f.create(all...)
	other := f.newKey("globex")
	other.Name, other.CreatedAt = "billing elsewhere", f.now.Add(-2*month)
	f.create(other)

	for _, tc := range []struct {
		filter keys.KeyFilter
		want   []int // indexes into all, in listing order (by creation, newest first)
	}{
		{keys.KeyFilter{Search: "billing"}, []int{4, 5, 2, 1, 0}},
		{keys.KeyFilter{Search: "BILLING SERVICE"}, []int{0}},
		{keys.KeyFilter{Search: "grösse"}, nil}, // case folds, spelling does not
		{keys.KeyFilter{Search: "GRÖSSE"}, nil},
		{keys.KeyFilter{Search: "größe"}, []int{5}},
		{keys.KeyFilter{Search: "RÉSUMÉ"}, []int{6}},
		{keys.KeyFilter{UnusedForDays: days}, []int{5, 6, 3, 1, 0}}, // equal creation times list by id, newest first
		{keys.KeyFilter{UnusedForDays: days, Search: "billing"}, []int{5, 1, 0}},
		{keys.KeyFilter{UnusedForDays: days, Status: keys.StatusActive, Search: "api"}, []int{3}},
	} {
		var want []*keys.Key
		for _, i := range tc.want {
			want = append(want, all[i])
		}
		for _, limit := range []int{1, 2, 3, 100} {
			got := f.listKeys(keys.ListQuery{Project: "acme", Filter: tc.filter, Limit: limit})
			wantIDs(f.T, fmt.Sprintf("keys with %+v in pages of %d", tc.filter, limit), got, want...)
		}
	}
}

func ownerRevokedMark(f *fixture) {
	at := func(project, owner string) time.Time {
		t, err := f.s.OwnerRevokedAt(f.ctx, project, owner)
		if err != nil {
			f.Fatal(err)
		}
		return t
	}
	if got := at("acme", "alice"); !got.IsZero() {
		f.Fatalf("never revoked: %v, want the zero time", got)
	}
	first, later := f.now.Add(-time.Hour).Truncate(time.Millisecond), f.now.Truncate(time.Millisecond)
	f.mustApply(keys.Tx{OwnerRevoked: &keys.OwnerRevocation{Project: "acme", Owner: "alice", At: first}})
	f.mustApply(keys.Tx{OwnerRevoked: &keys.OwnerRevocation{Project: "acme", Owner: "alice", At: later}})
	if got := at("acme", "alice"); !got.Equal(later) {
		f.Errorf("revoked at %v, then at %v: reads %v", first, later, got)
	}
	if !at("globex", "alice").IsZero() || !at("acme", "alicia").IsZero() {
		f.Error("another project's or owner's mark is set")
	}
}

// A cursor is a place in the listing, not a key: keys revoked or created
// since the previous page neither stop nor shift the next one.
func cursorPosition(f *fixture) {
	ks := make([]*keys.Key, 5)
	for i := range ks {
		ks[i] = f.newKey("acme")
	}
	f.create(ks...)
	active := keys.ListQuery{Project: "acme", Filter: keys.KeyFilter{Status: keys.StatusActive}, Limit: 2, Now: f.now}
	page, next, err := f.s.ListKeys(f.ctx, active)
	if err != nil || next == "" {
		f.Fatalf("first page: %v, next %q, %v", ids(page), next, err)
	}
	wantIDs(f.T, "first page", page, ks[4], ks[3])
	for _, k := range []*keys.Key{ks[4], ks[2]} {
		r := cloneKey(k)
		r.RevokedAt, r.UpdatedAt, r.PurgeAt = f.at(0), f.now, f.at(time.Hour)
		f.mustApply(keys.Tx{Revoke: []*keys.Key{r}})
	}
	f.create(f.newKey("acme"))
	active.Cursor = next
	wantIDs(f.T, "the pages after the first", f.listKeys(active), ks[1], ks[0])
}

func cursorRefusals(f *fixture) {
	for range 3 {
		k := f.newKey("acme")
		k.Owner = "alice"
		f.create(k)
		f.mustApply(keys.Tx{Events: []*keys.AuditEvent{f.newEvent("acme", k.ID, keys.ActionCreated, k.CreatedAt)}})
	}
	alice := keys.KeyFilter{Owner: "alice"}
	_, keyCursor, err := f.s.ListKeys(f.ctx, keys.ListQuery{Project: "acme", Filter: alice, Limit: 1, Now: f.now})
	if err != nil || keyCursor == "" {
		f.Fatalf("ListKeys: next %q, %v", keyCursor, err)
	}
	_, auditCursor, err := f.s.ListAudit(f.ctx, keys.AuditQuery{Project: "acme", Action: keys.ActionCreated, Limit: 1, Now: f.now})
	if err != nil || auditCursor == "" {
		f.Fatalf("ListAudit: next %q, %v", auditCursor, err)
	}
	// The cursors are good for their own listing, at another time too.
	if _, _, err := f.s.ListKeys(f.ctx, keys.ListQuery{Project: "acme", Filter: alice, Limit: 5, Now: f.now.Add(time.Hour), Cursor: keyCursor}); err != nil {
		f.Errorf("own key cursor refused: %v", err)
	}
	if _, _, err := f.s.ListAudit(f.ctx, keys.AuditQuery{Project: "acme", Action: keys.ActionCreated, Limit: 5, Now: f.now, Cursor: auditCursor}); err != nil {
		f.Errorf("own audit cursor refused: %v", err)
	}

	tampered := func(c string) string {
		if c[0] == 'A' {
			return "B" + c[1:]
		}
		return "A" + c[1:]
	}
	elsewhere := f.sub(f.T) // another store: another table, another secret
	q := func(project string, filter keys.KeyFilter, cursor string) func(*fixture) error {
		return func(f *fixture) error {
			_, _, err := f.s.ListKeys(f.ctx, keys.ListQuery{Project: project, Filter: filter, Limit: 5, Now: f.now, Cursor: cursor})
			return err
		}
	}
	audit := func(project, target, action, cursor string) func(*fixture) error {
		return func(f *fixture) error {
			_, _, err := f.s.ListAudit(f.ctx, keys.AuditQuery{Project: project, Target: target, Action: action, Limit: 5, Now: f.now, Cursor: cursor})
			return err
		}
	}
	for _, tc := range []struct {
		name string
		in   *fixture
		list func(*fixture) error
	}{
		{"keys of another project", f, q("globex", alice, keyCursor)},
		{"keys without the owner filter", f, q("acme", keys.KeyFilter{}, keyCursor)},
		{"keys of another owner", f, q("acme", keys.KeyFilter{Owner: "bob"}, keyCursor)},
		{"keys with a status filter too", f, q("acme", keys.KeyFilter{Owner: "alice", Status: keys.StatusActive}, keyCursor)},
		{"keys with a tier filter too", f, q("acme", keys.KeyFilter{Owner: "alice", Tier: "public"}, keyCursor)},
		{"keys with a creator filter too", f, q("acme", keys.KeyFilter{Owner: "alice", CreatedBy: keys.ActorOperator}, keyCursor)},
		{"keys of another store", elsewhere, q("acme", alice, keyCursor)},
		{"keys, tampered cursor", f, q("acme", alice, tampered(keyCursor))},
		{"keys, audit cursor", f, q("acme", alice, auditCursor)},
		{"keys, garbage", f, q("acme", alice, "xyz")},
		{"keys, dotted garbage", f, q("acme", alice, "a.b")},
		{"audit of another project", f, audit("globex", "", keys.ActionCreated, auditCursor)},
		{"audit without the action filter", f, audit("acme", "", "", auditCursor)},
		{"audit of another action", f, audit("acme", "", keys.ActionRevoked, auditCursor)},
		{"audit with a target filter too", f, audit("acme", "key_000000000000000000000001", keys.ActionCreated, auditCursor)},
		{"audit of another store", elsewhere, audit("acme", "", keys.ActionCreated, auditCursor)},
		{"audit, tampered cursor", f, audit("acme", "", keys.ActionCreated, tampered(auditCursor))},
		{"audit, key cursor", f, audit("acme", "", keys.ActionCreated, keyCursor)},
	} {
		var inv *keys.InvalidError
		if err := tc.list(tc.in); !errors.As(err, &inv) || inv.Field != "cursor" {
			f.Errorf("%s: err = %v, want an InvalidError on field cursor", tc.name, err)
		}
	}
}

func auditFilters(f *fixture) {
	k1, k2 := f.newKey("acme"), f.newKey("acme")
	t0 := f.now.Add(-time.Minute)
	evs := []*keys.AuditEvent{
		f.newEvent("acme", k1.ID, keys.ActionCreated, t0),
		f.newEvent("acme", k1.ID, keys.ActionUpdated, t0.Add(time.Millisecond)),
		f.newEvent("acme", k2.ID, keys.ActionCreated, t0.Add(2*time.Millisecond)),
		f.newEvent("acme", k1.ID, keys.ActionUpdated, t0.Add(2*time.Millisecond)), // same millisecond: by id
		f.newEvent("acme", k2.ID, keys.ActionRevoked, t0.Add(3*time.Millisecond)),
	}
	f.mustApply(keys.Tx{Create: []*keys.Key{k1, k2}, Events: evs})
	f.mustApply(keys.Tx{Events: []*keys.AuditEvent{f.newEvent("globex", k1.ID, keys.ActionCreated, t0.Add(time.Second))}})
	for _, tc := range []struct {
		target, action string
		want           []*keys.AuditEvent
	}{
		{"", "", []*keys.AuditEvent{evs[4], evs[3], evs[2], evs[1], evs[0]}},
		{k1.ID, "", []*keys.AuditEvent{evs[3], evs[1], evs[0]}},
		{"", keys.ActionCreated, []*keys.AuditEvent{evs[2], evs[0]}},
		{k1.ID, keys.ActionUpdated, []*keys.AuditEvent{evs[3], evs[1]}},
		{k2.ID, keys.ActionUpdated, nil},
		{"key_000000000000000000000099", "", nil},
	} {
		got := f.listAudit(keys.AuditQuery{Project: "acme", Target: tc.target, Action: tc.action})
		wantEvents(f.T, fmt.Sprintf("events of target %q, action %q", tc.target, tc.action), got, tc.want...)
	}
}

func auditPagination(f *fixture) {
	k1, k2 := f.newKey("acme"), f.newKey("acme")
	var all []*keys.AuditEvent
	for i := range 11 {
		target := k1.ID
		if i%3 == 0 {
			target = k2.ID
		}
		all = append(all, f.newEvent("acme", target, keys.ActionUpdated, f.now.Add(time.Duration(i/2)*time.Millisecond-time.Minute)))
	}
	f.mustApply(keys.Tx{Create: []*keys.Key{k1, k2}, Events: all})
	f.mustApply(keys.Tx{Events: []*keys.AuditEvent{f.newEvent("globex", k1.ID, keys.ActionUpdated, f.now)}})
	slices.Reverse(all) // each millisecond's events are in id order
	for _, target := range []string{"", k1.ID, k2.ID} {
		want := slices.DeleteFunc(slices.Clone(all), func(e *keys.AuditEvent) bool { return target != "" && e.Target != target })
		for _, limit := range []int{1, 2, 4, len(want), 100} {
			got := f.listAudit(keys.AuditQuery{Project: "acme", Target: target, Limit: limit})
			wantEvents(f.T, fmt.Sprintf("events of target %q in pages of %d", target, limit), got, want...)
		}
	}
}

// A Tx made for a calling key requires that key active, unexpired and
// unpurged in its project when written, unless the Tx writes that key.
func inactiveCaller(f *fixture) {
	active, revoked, expired, other := f.newKey("acme"), f.newKey("acme"), f.newKey("acme"), f.newKey("globex")
	revoked.Status, revoked.RevokedAt, revoked.PurgeAt = keys.StatusRevoked, f.at(-time.Minute), f.at(time.Hour)
	expired.ExpiresAt, expired.PurgeAt = f.at(-time.Second), f.at(time.Hour)
	f.create(active, revoked, expired, other)
	check := func(id, project string) *keys.CallerCheck {
		return &keys.CallerCheck{ID: id, Project: project, Now: f.now}
	}
	for _, tc := range []struct {
		name   string
		caller *keys.CallerCheck
	}{
		{"revoked", check(revoked.ID, "acme")},
		{"expired", check(expired.ID, "acme")},
		{"absent", check("key_0000000000000000000000ff", "acme")},
		{"of another project", check(other.ID, "acme")},
	} {
		before := f.snapshot("acme")
		err := f.apply(keys.Tx{Create: []*keys.Key{f.newKey("acme")}, Caller: tc.caller})
		if !errors.Is(err, keys.ErrCallerInactive) {
			f.Errorf("caller %s: Apply = %v, want ErrCallerInactive", tc.name, err)
		}
		f.unchanged(before, "acme")
	}
	f.mustApply(keys.Tx{Create: []*keys.Key{f.newKey("acme")}, Caller: check(active.ID, "acme")})
	// A revoked key may still revoke itself: the Tx writes its own item.
	self := cloneKey(active)
	self.RevokedAt, self.UpdatedAt, self.PurgeAt = f.at(0), f.now, f.at(time.Hour)
	f.mustApply(keys.Tx{Revoke: []*keys.Key{self}, Caller: check(active.ID, "acme")})
}
