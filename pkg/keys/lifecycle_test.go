package keys_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/keys/keystest"
	"github.com/keygate/keygate/pkg/token"
)

func TestRotate(t *testing.T) {
	e := newEnv(t)
	old := e.create(op, keys.CreateInput{
		Tier: "partner", Scopes: []string{"admin", "contracts"}, IPAllowlist: []string{"10.0.0.0/8"},
		Metadata: json.RawMessage(`{"team":"core"}`), Owner: "alice", ExpiresAt: stamp(30 * 24 * time.Hour),
	})
	e.clock.Advance(time.Hour)
	now := t0.Add(time.Hour)
	rotator := keyCaller("admin", "contracts")
	next, err := e.svc.Rotate(e.ctx, rotator, old.ID, 600)
	if err != nil {
		t.Fatal(err)
	}

	// The successor keeps the policy, with a new secret.
	n := e.stored(next.ID)
	if n.ID == old.ID || n.Name != old.Name || n.Tier != old.Tier || !slices.Equal(n.Scopes, old.Scopes) ||
		!slices.Equal(n.IPAllowlist, old.IPAllowlist) || string(n.Metadata) != string(old.Metadata) || n.Owner != old.Owner ||
		!n.ExpiresAt.Equal(*old.ExpiresAt) || n.Status != keys.StatusActive || !n.CreatedAt.Equal(now) {
		t.Errorf("successor %s\nof %s", describe(n), describe(old))
	}
	if n.RotatedFrom != old.ID || n.CreatedBy != rotator.KeyID || n.Hash != token.Hash(next.RawKey) || !strings.HasPrefix(next.RawKey, "kg_pt_") {
		t.Errorf("successor rotatedFrom %q, createdBy %q, raw key %q", n.RotatedFrom, n.CreatedBy, next.RawKey)
	}
	// The old key ends after the grace, and links its successor.
	o := e.stored(old.ID)
	end := now.Add(600 * time.Second)
	if o.RotatedTo != n.ID || !o.ExpiresAt.Equal(end) || !o.PurgeAt.Equal(end.Add(retention)) || !o.UpdatedAt.Equal(now) || o.Version != 1 {
		t.Errorf("old key %s, purge %v", describe(o), show(o.PurgeAt))
	}
	if e.store.Writes() != 2 {
		t.Errorf("%d writes, want the creation and one for the rotation", e.store.Writes())
	}
	if got := e.actions(old.ID); !slices.Equal(got, []string{keys.ActionRotated, keys.ActionCreated}) {
		t.Errorf("old key's events %v", got)
	}
	created := e.events(n.ID)
	if changes, _ := created[0].MarshalChanges(); len(created) != 1 || created[0].Action != keys.ActionCreated || !strings.Contains(changes, `"rotatedFrom":{"from":null,"to":"`+old.ID+`"}`) {
		t.Errorf("successor's events %v, changes %s", created, changes)
	}
}

// The old key's life ends at the sooner of its own expiry and the grace.
func TestRotateGrace(t *testing.T) {
	for _, tc := range []struct {
		name    string
		expires *string
		grace   int
		want    time.Duration // after now
	}{
		{"grace", nil, 600, 600 * time.Second},
		{"no grace: ends now", nil, 0, 0},
		{"default grace", nil, keys.DefaultGraceSeconds, 24 * time.Hour},
		{"longest grace", nil, keys.MaxGraceSeconds, 7 * 24 * time.Hour},
		{"own expiry sooner", stamp(time.Hour + time.Minute), 600, time.Minute},
		{"grace sooner", stamp(30 * 24 * time.Hour), 600, 600 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			old := e.create(op, keys.CreateInput{ExpiresAt: tc.expires})
			e.clock.Advance(time.Hour)
			next, err := e.svc.Rotate(e.ctx, op, old.ID, tc.grace)
			if err != nil {
				t.Fatal(err)
			}
			wantTime(t, "old key's expiresAt", e.stored(old.ID).ExpiresAt, at(time.Hour+tc.want))
			wantTime(t, "successor's expiresAt", next.ExpiresAt, old.ExpiresAt)
			want := keys.StatusActive
			if tc.want == 0 {
				want = keys.StatusExpired
			}
			if got, err := e.svc.Get(e.ctx, op, old.ID); err != nil || got.Status != want {
				t.Errorf("old key now: %v, %v; want %s", got, err, want)
			}
		})
	}
}

func TestRotateRefuses(t *testing.T) {
	boxed := timeBoxed(keyCaller("admin", "contracts"), 24*time.Hour)
	for _, tc := range []struct {
		name  string
		setup callerFunc
		grace int
		want  error
	}{
		{"negative grace", as(op), -1, &keys.InvalidError{Field: "gracePeriodSeconds"}},
		{"grace beyond the longest", as(op), keys.MaxGraceSeconds + 1, &keys.InvalidError{Field: "gracePeriodSeconds"}},
		{"rotated already", func(e *env, k *keys.Key) keys.Caller {
			if _, err := e.svc.Rotate(e.ctx, op, k.ID, 600); err != nil {
				e.Fatal(err)
			}
			return op
		}, 600, &keys.ConflictError{Message: "already rotated"}},
		{"revoked", func(e *env, k *keys.Key) keys.Caller {
			if err := e.svc.Revoke(e.ctx, op, k.ID); err != nil {
				e.Fatal(err)
			}
			return op
		}, 600, &keys.ConflictError{Message: "revoked"}},
		{"expired", func(e *env, _ *keys.Key) keys.Caller { e.clock.Advance(30 * 24 * time.Hour); return op }, 600, &keys.ConflictError{Message: "expired"}},
		{"caller lacks a scope of the key", as(keyCaller("admin")), 600, &keys.ForbiddenError{Message: `holds scope "contracts"`}},
		{"time-boxed caller, key that outlives it", as(boxed), 600, &keys.ForbiddenError{Message: "calling key expires"}},
		{"time-boxed caller, key that never expires", func(e *env, k *keys.Key) keys.Caller {
			if _, err := e.svc.Update(e.ctx, op, k.ID, keys.UpdateInput{ExpiresAt: json.RawMessage("null")}); err != nil {
				e.Fatal(err)
			}
			return boxed
		}, 600, &keys.ForbiddenError{Message: "calling key expires"}},
		{"caller without admin", as(keyCaller("contracts")), 600, &keys.ForbiddenError{Message: "scope admin required"}},
		{"another project's key", as(keys.OperatorCaller("globex")), 600, keys.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			k := e.target()
			caller := tc.setup(e, k)
			events := len(e.events(""))
			e.unchanged(k.ID, func() {
				next, err := e.svc.Rotate(e.ctx, caller, k.ID, tc.grace)
				wantErr(t, err, tc.want)
				if next != nil {
					t.Errorf("Rotate returned %v", describe(next.Key))
				}
			})
			if n := len(e.events("")); n != events {
				t.Errorf("%d events, want %d", n, events)
			}
		})
	}
}

// A time-boxed key may rotate a key that ends no later than itself; the
// successor ends then too.
func TestRotateByTimeBoxedCaller(t *testing.T) {
	e := newEnv(t)
	k := e.create(op, keys.CreateInput{Scopes: []string{"contracts"}, ExpiresAt: stamp(12 * time.Hour)})
	next, err := e.svc.Rotate(e.ctx, timeBoxed(keyCaller("admin", "contracts"), 12*time.Hour), k.ID, 600)
	if err != nil {
		t.Fatal(err)
	}
	wantTime(t, "successor's expiresAt", next.ExpiresAt, at(12*time.Hour))
}

// ownerKeys creates n keys of owner in project acme.
func (e *env) ownerKeys(owner string, n int) []string {
	e.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.create(op, keys.CreateInput{Owner: owner}).ID
	}
	return ids
}

func (e *env) status(id string) keys.Status {
	e.Helper()
	return e.stored(id).StatusAt(e.clock.Now())
}

// An owner's keys are revoked page by page, a transaction per page, across
// every page; other owners' and projects' keys stay. 160 keys are more than
// walks that each stopped after their first page would reach.
func TestRevokeOwnerAllPages(t *testing.T) {
	e := newEnv(t)
	alice := e.ownerKeys("alice", 160)
	bob := e.ownerKeys("bob", 5)
	elsewhere := e.create(keys.OperatorCaller("globex"), keys.CreateInput{Owner: "alice"})
	e.clock.Advance(time.Minute)
	writes := e.store.Writes()

	n, err := e.svc.RevokeOwner(e.ctx, op, "alice", false)
	if err != nil || n != 160 {
		t.Fatalf("RevokeOwner = %d, %v; want 160", n, err)
	}
	// The mark that ends the owner's portal sessions, then full pages.
	pages := (160 + keys.MaxTxKeys - 1) / keys.MaxTxKeys
	if got := e.store.Writes() - writes; got != 1+pages {
		t.Errorf("%d transactions, want %d (the owner's mark, pages of %d)", got, 1+pages, keys.MaxTxKeys)
	}
	if at, err := e.store.OwnerRevokedAt(e.ctx, "acme", "alice"); err != nil || !at.Equal(e.clock.Now()) {
		t.Errorf("alice revoked at %v (%v), want now", at, err)
	}
	for _, id := range alice {
		if s := e.status(id); s != keys.StatusRevoked {
			t.Fatalf("alice's key %s is %s", id, s)
		}
	}
	for _, id := range append(bob, elsewhere.ID) {
		if s := e.status(id); s != keys.StatusActive {
			t.Errorf("key %s is %s, want active", id, s)
		}
	}
	if evs := e.events(alice[0]); evs[0].Action != keys.ActionOwnerRevoked || evs[0].Actor != keys.ActorOperator {
		t.Errorf("event %+v, want owner.revoked by the operator", evs[0])
	}
	// Once no key is left, it revokes none and writes its mark alone.
	if n, err := e.svc.RevokeOwner(e.ctx, op, "alice", false); n != 0 || err != nil || e.store.Writes()-writes != 1+pages+1 {
		t.Errorf("second RevokeOwner = %d, %v", n, err)
	}
}

// With includeCreated, revoking an owner reaches every key their keys
// created, transitively, and rotation successors, of any owner.
func TestRevokeOwnerIncludeCreated(t *testing.T) {
	for _, tc := range []struct {
		includeCreated bool
		revoked        []string
	}{
		{false, []string{"A"}},
		{true, []string{"A", "B", "C", "B2", "D", "E"}},
	} {
		e := newEnv(t)
		named := map[string]*keys.Key{}
		mk := func(name string, by keys.Caller, owner string) *keys.Key {
			k := e.create(by, keys.CreateInput{Name: name, Owner: owner, Scopes: []string{"admin"}})
			named[name] = k
			return k
		}
		a := mk("A", op, "alice")
		b := mk("B", callerOf(a), "carol")
		mk("C", callerOf(b), "") // carol's too, from its creator
		next, err := e.svc.Rotate(e.ctx, op, b.ID, 600)
		if err != nil {
			t.Fatal(err)
		}
		named["B2"] = next.Key
		mk("D", callerOf(next.Key), "dave")
		// Alice's revoked key is walked too: a key it made stays reachable.
		a2 := mk("A2", op, "alice")
		mk("E", callerOf(a2), "erin")
		if err := e.svc.Revoke(e.ctx, op, a2.ID); err != nil {
			t.Fatal(err)
		}
		mk("U", op, "erin")

		n, err := e.svc.RevokeOwner(e.ctx, op, "alice", tc.includeCreated)
		if err != nil || n != len(tc.revoked) {
			t.Errorf("includeCreated %v: RevokeOwner = %d, %v; want %d", tc.includeCreated, n, err, len(tc.revoked))
		}
		for name, k := range named {
			want := keys.StatusActive
			if name == "A2" || slices.Contains(tc.revoked, name) {
				want = keys.StatusRevoked
			}
			if s := e.status(k.ID); s != want {
				t.Errorf("includeCreated %v: key %s is %s, want %s", tc.includeCreated, name, s, want)
			}
		}
	}
}

func TestRevokeOwnerRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		caller keys.Caller
		owner  string
		want   error
	}{
		{"caller without admin", keyCaller("contracts", "payments"), "alice", &keys.ForbiddenError{Message: "scope admin required"}},
		{"bad owner", op, "a/b", &keys.InvalidError{Field: "owner"}},
		{"no owner", op, "", &keys.InvalidError{Field: "owner"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			k := e.create(op, keys.CreateInput{Owner: "alice"})
			e.unchanged(k.ID, func() {
				n, err := e.svc.RevokeOwner(e.ctx, tc.caller, tc.owner, true)
				wantErr(t, err, tc.want)
				if n != 0 {
					t.Errorf("revoked %d", n)
				}
			})
		})
	}
}

// failingStore fails the Apply numbered failOn (from 1) with ErrUnavailable.
type failingStore struct {
	*keystest.Store
	failOn, applies int
}

func (s *failingStore) Apply(ctx context.Context, tx keys.Tx) error {
	s.applies++
	if s.applies == s.failOn {
		return keys.ErrUnavailable
	}
	return s.Store.Apply(ctx, tx)
}

// An owner revoke that fails part way says how far it got, and running it
// again finishes the job.
func TestRevokeOwnerResumes(t *testing.T) {
	e := newEnv(t)
	alice := e.ownerKeys("alice", 120)
	e.use(&failingStore{Store: e.store, failOn: 3}) // the owner's mark, the first page, then the second page fails
	n, err := e.svc.RevokeOwner(e.ctx, op, "alice", false)
	wantErr(t, err, keys.ErrUnavailable)
	if n != keys.MaxTxKeys || !strings.Contains(err.Error(), fmt.Sprintf("revoked %d keys of alice", keys.MaxTxKeys)) {
		t.Errorf("RevokeOwner = %d, %v; want the first page revoked", n, err)
	}
	n, err = e.svc.RevokeOwner(e.ctx, op, "alice", false)
	if rest := len(alice) - keys.MaxTxKeys; err != nil || n != rest {
		t.Errorf("RevokeOwner again = %d, %v; want the other %d", n, err, rest)
	}
	for _, id := range alice {
		if s := e.status(id); s != keys.StatusRevoked {
			t.Fatalf("key %s is %s", id, s)
		}
	}
}

// racingStore runs race just before the first Apply, or before every one
// with always: a change that lands between an operation's read and its
// write.
type racingStore struct {
	keys.Store
	race   func()
	always bool
}

func (s *racingStore) Apply(ctx context.Context, tx keys.Tx) error {
	if race := s.race; race != nil {
		if !s.always {
			s.race = nil
		}
		race()
	}
	return s.Store.Apply(ctx, tx)
}

// A key revoked by someone else meanwhile makes the page's transaction
// conflict; the page is read again and the others are still revoked.
func TestRevokeOwnerRacesARevoke(t *testing.T) {
	e := newEnv(t)
	alice := e.ownerKeys("alice", 5)
	e.clock.Advance(time.Minute) // so that the revoke's event lists first
	e.use(&racingStore{Store: e.store, race: func() {
		if err := e.svc.Revoke(e.ctx, op, alice[2]); err != nil {
			t.Fatal(err)
		}
	}})
	n, err := e.svc.RevokeOwner(e.ctx, op, "alice", false)
	if err != nil || n != 4 {
		t.Fatalf("RevokeOwner = %d, %v; want the 4 others", n, err)
	}
	for _, id := range alice {
		if s := e.status(id); s != keys.StatusRevoked {
			t.Errorf("key %s is %s", id, s)
		}
	}
	if got := e.actions(alice[2]); !slices.Equal(got, []string{keys.ActionRevoked, keys.ActionCreated}) {
		t.Errorf("the raced key's events %v, want it revoked once, by the other revoke", got)
	}
}

func TestListAudit(t *testing.T) {
	e := newEnv(t)
	k1 := e.target()
	e.clock.Advance(time.Millisecond)
	k2 := e.target()
	e.clock.Advance(time.Millisecond)
	if _, err := e.svc.Update(e.ctx, op, k1.ID, keys.UpdateInput{Name: strp("renamed")}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Millisecond)
	if err := e.svc.Revoke(e.ctx, op, k2.ID); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in   keys.AuditInput
		want []string // target action
	}{
		{keys.AuditInput{}, []string{k2.ID + " " + keys.ActionRevoked, k1.ID + " " + keys.ActionUpdated, k2.ID + " " + keys.ActionCreated, k1.ID + " " + keys.ActionCreated}},
		{keys.AuditInput{Target: k2.ID}, []string{k2.ID + " " + keys.ActionRevoked, k2.ID + " " + keys.ActionCreated}},
		{keys.AuditInput{Action: keys.ActionCreated}, []string{k2.ID + " " + keys.ActionCreated, k1.ID + " " + keys.ActionCreated}},
		{keys.AuditInput{Target: k1.ID, Action: keys.ActionRevoked}, nil},
	} {
		var got []string
		in := tc.in
		in.Limit = 1
		for {
			page, err := e.svc.ListAudit(e.ctx, op, in)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range page.Items {
				got = append(got, ev.Target+" "+ev.Action)
			}
			if page.NextCursor == "" {
				break
			}
			in.Cursor = page.NextCursor
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("ListAudit(%+v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestListAuditRefuses(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		caller keys.Caller
		in     keys.AuditInput
		want   error
	}{
		{"unknown action", op, keys.AuditInput{Action: "key.deleted"}, &keys.InvalidError{Field: "action"}},
		{"target not a key id", op, keys.AuditInput{Target: "nope"}, &keys.InvalidError{Field: "keyId"}},
		{"limit too large", op, keys.AuditInput{Limit: keys.MaxPageSize + 1}, &keys.InvalidError{Field: "limit"}},
		{"negative limit", op, keys.AuditInput{Limit: -1}, &keys.InvalidError{Field: "limit"}},
		{"bad cursor", op, keys.AuditInput{Cursor: "xyz"}, &keys.InvalidError{Field: "cursor"}},
		{"caller without admin", keyCaller("contracts"), keys.AuditInput{}, &keys.ForbiddenError{Message: "scope admin required"}},
		{"caller without a project", keys.Caller{Operator: true}, keys.AuditInput{}, keys.ErrUnauthorized},
	} {
		_, err := e.svc.ListAudit(e.ctx, tc.caller, tc.in)
		t.Run(tc.name, func(t *testing.T) { wantErr(t, err, tc.want) })
	}
}
