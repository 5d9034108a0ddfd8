package authorizertest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

// Seeder sets up keys in a store under RunStoreContract and reads back
// what it counted, by that store's own means: key management's writes for
// pkg/dynamo (KeyStoreSeeder), direct access for the fake.
type Seeder interface {
	// Create stores k as it is: id, hash, status, times and usage.
	Create(t *testing.T, k *keys.Key)
	// Revoke revokes the active key k.ID of k.Project as a keys.Tx.Revoke
	// of k does: k's RevokedAt, UpdatedAt and PurgeAt are written.
	Revoke(t *testing.T, k *keys.Key)
	// Update writes k's limits, credits, owner flag and LimitsVersion as a
	// keys.Tx.Update of k does; k.Version must be the stored one.
	Update(t *testing.T, k *keys.Key)
	// Rotate rotates old to next as key management does: next is created
	// with old's budget (window counters and credits), and old, which
	// reads expired from graceEnd, counts its uses on next until then.
	Rotate(t *testing.T, old, next *keys.Key, graceEnd time.Time)
	// SetOwnerLimits gives owner of project limits shared by its keys
	// (those whose OwnerLimited is set).
	SetOwnerLimits(t *testing.T, project, owner string, limits []keys.RateLimit, credits *keys.Credits)
	// Usage is the stored key's usage; Credits its credits and
	// OwnerCredits an owner's, as stored (a due refill not yet made).
	Usage(t *testing.T, id string) keys.Usage
	Credits(t *testing.T, id string) *keys.Credits
	OwnerCredits(t *testing.T, project, owner string) *keys.Credits
}

// KeyStoreSeeder seeds through s, one keys.Tx a call, as key management
// writes keys: for a store that is both a keys.Store and an
// authorizer.Store, as pkg/dynamo's is.
func KeyStoreSeeder(s keys.Store) Seeder { return keyStoreSeeder{s} }

type keyStoreSeeder struct{ s keys.Store }

func (ks keyStoreSeeder) Create(t *testing.T, k *keys.Key) {
	t.Helper()
	if err := ks.s.Apply(t.Context(), keys.Tx{Create: []*keys.Key{k}}); err != nil {
		t.Fatalf("create %s: %v", k.ID, err)
	}
}

func (ks keyStoreSeeder) Revoke(t *testing.T, k *keys.Key) {
	t.Helper()
	if err := ks.s.Apply(t.Context(), keys.Tx{Revoke: []*keys.Key{k}}); err != nil {
		t.Fatalf("revoke %s: %v", k.ID, err)
	}
}

func (ks keyStoreSeeder) Update(t *testing.T, k *keys.Key) {
	t.Helper()
	// Credits are written only with the counts they were computed from.
	counted := map[string]keys.Counted{k.ID: {Credits: ks.get(t, k.ID).Credits}}
	if err := ks.s.Apply(t.Context(), keys.Tx{Update: []*keys.Key{k}, Counted: counted}); err != nil {
		t.Fatalf("update %s: %v", k.ID, err)
	}
}

func (ks keyStoreSeeder) Rotate(t *testing.T, old, next *keys.Key, graceEnd time.Time) {
	t.Helper()
	stored := ks.get(t, old.ID)
	next.Meter, next.Credits = stored.Meter, stored.Credits.Clone()
	next.GraceHash, next.GraceUntil = stored.Hash, &graceEnd
	o := *stored
	o.RotatedTo, o.ExpiresAt = next.ID, &graceEnd
	counted := map[string]keys.Counted{old.ID: {Credits: stored.Credits, Uses: &stored.Usage.TotalRequests}}
	if err := ks.s.Apply(t.Context(), keys.Tx{Create: []*keys.Key{next}, Update: []*keys.Key{&o}, Counted: counted}); err != nil {
		t.Fatalf("rotate %s: %v", old.ID, err)
	}
}

func (ks keyStoreSeeder) SetOwnerLimits(t *testing.T, project, owner string, limits []keys.RateLimit, credits *keys.Credits) {
	t.Helper()
	cur, err := ks.s.GetOwnerLimits(t.Context(), project, owner)
	if errors.Is(err, keys.ErrNotFound) {
		cur, err = &keys.OwnerLimits{Project: project, Owner: owner}, nil
	}
	if err != nil {
		t.Fatalf("owner limits of %s: %v", owner, err)
	}
	now := time.Now()
	next := &keys.OwnerLimits{Project: project, Owner: owner, RateLimits: limits, Credits: credits, UpdatedAt: &now, Version: cur.Version}
	w := keys.OwnerWrite{Limits: next, Counted: &keys.Counted{Credits: cur.Credits}}
	if err := ks.s.Apply(t.Context(), keys.Tx{Owners: []keys.OwnerWrite{w}}); err != nil {
		t.Fatalf("set owner limits of %s: %v", owner, err)
	}
}

func (ks keyStoreSeeder) OwnerCredits(t *testing.T, project, owner string) *keys.Credits {
	t.Helper()
	o, err := ks.s.GetOwnerLimits(t.Context(), project, owner)
	if err != nil {
		t.Fatalf("owner limits of %s: %v", owner, err)
	}
	return o.Credits
}

func (ks keyStoreSeeder) get(t *testing.T, id string) *keys.Key {
	t.Helper()
	k, err := ks.s.GetKey(t.Context(), id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return k
}

func (ks keyStoreSeeder) Usage(t *testing.T, id string) keys.Usage {
	t.Helper()
	return ks.get(t, id).Usage
}

func (ks keyStoreSeeder) Credits(t *testing.T, id string) *keys.Credits {
	t.Helper()
	return ks.get(t, id).Credits
}

// RunStoreContract runs, as parallel subtests, the behaviour every
// authorizer.Store must have: UseKey's outcomes in their order, what it
// counts and what it leaves alone, ReturnUse, and rate windows. newStore
// returns an empty store of the kind under test and its Seeder; each
// subtest takes its own.
//
// Times are whole milliseconds, in windows a day in the real future, so
// that a table with TTL enabled deletes nothing while the tests run.
func RunStoreContract(t *testing.T, newStore func(t *testing.T) (authorizer.Store, Seeder)) {
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
	{"an unknown key is not found", unknownKey},
	{"a key stored with another hash is not found", otherHash},
	{"another project's key is not found", otherProject},
	{"a key past its purge time is not found", purgedKey},
	{"a revoked key is refused from its next use", revokedKey},
	{"an expired key is refused from its expiry", expiredKey},
	{"a key lacking a scope is refused, uncounted", lackingScope},
	{"a key at its limit is refused, uncounted", rateLimited},
	{"refusals come in the contract's order", refusalOrder},
	{"an allowed use counts once, in the window and the total", allowedUse},
	{"a returned use gives back the count and the total", returnedUse},
	{"a return never takes a count below zero", returnBelowZero},
	{"a return with another hash changes nothing", returnOtherHash},
	{"a return after the window rolled over gives back the total alone", returnAfterRollover},
	{"each window has its own budget", windowRollover},
	{"a use behind the key's window counts in the key's window", behindWindow},
	{"a use must fit every limit of the key and counts in each", everyLimit},
	{"a key without limits of its own follows its tier's; an empty list is no limit", tierLimits},
	{"a change of limits applies from the next use; spent budget carries over by name and length", changedLimits},
	{"credits pay each use's cost; a cost beyond them is refused, spending nothing", creditsSpent},
	{"credits refill once, at their time", creditsRefill},
	{"a refusal for one budget spends none of the others", refusalsSpendNothing},
	{"a returned use gives back its credits", returnedCredits},
	{"an owner's limits are shared by its keys", sharedOwnerLimits},
	{"an owner's credits are shared by its keys", sharedOwnerCredits},
	{"a rotated key's budget continues on its successor", rotatedBudget},
	{"a block counts all its uses, or none when a window lacks room for them", blockUses},
	{"a block takes back what the last lease left unspent, in the same write", blockGiveBack},
	{"unspent uses go back only into their window and item, credits only into their period", blockGiveBackBounds},
	{"a returned block gives back all its uses and credits", returnedBlock},
	{"a block counts on the owner's limits too; the owner's refusal leaves nothing counted", ownerBlock},
	{"a block whose give-back outweighs it still needs room under a lowered limit", blockGiveBackLoweredLimit},
	{"unspent credits do not go back on top of credits a management change set", blockGiveBackCreditsSet},
	{"after the owner refused a block, the owner's part of its give-back goes back alone", ownerRefusedGiveBack},
}

// contractWindow is the rate window's length throughout the contract.
const contractWindow = 15 * time.Minute

type fixture struct {
	*testing.T
	store authorizer.Store
	seed  Seeder
	ctx   context.Context
	now   time.Time // the middle of a window
	n     int       // keys handed out
}

func newFixture(t *testing.T, newStore func(*testing.T) (authorizer.Store, Seeder)) *fixture {
	store, seed := newStore(t)
	start := authorizer.WindowAt(time.Now().Add(24*time.Hour), contractWindow).Start
	return &fixture{T: t, store: store, seed: seed, ctx: context.Background(), now: start.Add(contractWindow / 2)}
}

// at is a time relative to f.now.
func (f *fixture) at(d time.Duration) time.Time { return f.now.Add(d) }

// create stores an active key of project acme holding scope contracts and
// following its tier's limits, after edit (if any) changed it.
func (f *fixture) create(edit func(k *keys.Key)) *keys.Key {
	f.Helper()
	f.n++
	hash := sha256.Sum256(fmt.Appendf(nil, "contract key %d", f.n))
	created := f.now.Add(-time.Hour)
	k := &keys.Key{
		ID: token.ID(hash), Hash: hash, Name: fmt.Sprintf("key %d", f.n), Start: "kg_pk_test", Tier: "public",
		Scopes: []string{"contracts"}, Project: "acme", Status: keys.StatusActive,
		CreatedAt: created, UpdatedAt: created, CreatedBy: keys.ActorOperator, RateLimitsFromTier: true,
	}
	if edit != nil {
		edit(k)
	}
	f.seed.Create(f.T, k)
	return k
}

// revoke revokes k now, to be purged at purgeAt (nil: never).
func (f *fixture) revoke(k *keys.Key, purgeAt *time.Time) {
	f.Helper()
	r := *k
	r.RevokedAt, r.UpdatedAt, r.PurgeAt = ptr(f.now), f.now, purgeAt
	f.seed.Revoke(f.T, &r)
}

// use is a use of k at time at, costing 1, needing scopes, within limit
// for a key that follows its tier's.
func use(k *keys.Key, at time.Time, limit int64, scopes ...string) authorizer.UseRequest {
	return authorizer.UseRequest{
		ID: k.ID, Hash: k.Hash, Scopes: scopes, Cost: 1, Now: at,
		TierLimits: []keys.RateLimit{{Name: keys.DefaultLimitName, Limit: limit, WindowSeconds: int64(contractWindow / time.Second)}},
	}
}

// windowOf is the window of req's first tier limit.
func windowOf(req authorizer.UseRequest) authorizer.Window {
	return authorizer.WindowAt(req.Now, req.TierLimits[0].Window())
}

// result is what a UseKey should return. count and window, of the first
// limit, are checked when the use is allowed or rate limited; the zero
// window is the request's.
type result struct {
	outcome authorizer.Outcome
	count   int64
	window  authorizer.Window
}

func allowed(count int64) result             { return result{outcome: authorizer.Allowed, count: count} }
func limited(count int64) result             { return result{outcome: authorizer.RateLimited, count: count} }
func refused(o authorizer.Outcome) result    { return result{outcome: o} }
func sameWindow(a, b authorizer.Window) bool { return a.Start.Equal(b.Start) && a.Length == b.Length }

// try runs req and checks its result; a key not found shows nothing of
// the stored key, and any other outcome shows it.
func (f *fixture) try(what string, req authorizer.UseRequest, want result) authorizer.UseResult {
	f.Helper()
	got, err := f.store.UseKey(f.ctx, req)
	if err != nil {
		f.Fatalf("%s: UseKey: %v", what, err)
	}
	if got.Outcome != want.outcome {
		f.Errorf("%s: outcome %s, want %s", what, got.Outcome, want.outcome)
	}
	switch {
	case want.outcome == authorizer.NotFound && got.Key != nil:
		f.Errorf("%s: not found, yet shows the stored key %s", what, got.Key.ID)
	case want.outcome != authorizer.NotFound && got.Key == nil:
		f.Errorf("%s: no key, want the stored key %s", what, req.ID)
	case want.outcome != authorizer.NotFound && got.Key.ID != req.ID:
		f.Errorf("%s: key %s, want %s", what, got.Key.ID, req.ID)
	}
	if want.outcome == authorizer.Allowed || want.outcome == authorizer.RateLimited {
		if want.window == (authorizer.Window{}) {
			want.window = windowOf(req)
		}
		switch {
		case len(got.Limits) == 0:
			f.Errorf("%s: no limit counted, want %d in %+v", what, want.count, want.window)
		case got.Limits[0].Count != want.count || !sameWindow(got.Limits[0].Window, want.window):
			f.Errorf("%s: count %d in window %+v, want %d in %+v", what, got.Limits[0].Count, got.Limits[0].Window, want.count, want.window)
		}
	}
	return got
}

// giveBack returns a use UseKey counted.
func (f *fixture) giveBack(req authorizer.UseRequest, used authorizer.UseResult) {
	f.Helper()
	if err := f.store.ReturnUse(f.ctx, req, used); err != nil {
		f.Fatalf("ReturnUse: %v", err)
	}
}

// countedAt is what UseKey answers for a use of req counted in its window.
func countedAt(req authorizer.UseRequest) authorizer.UseResult {
	return authorizer.UseResult{Outcome: authorizer.Allowed, Limits: []authorizer.LimitCount{{RateLimit: req.TierLimits[0], Window: windowOf(req), Count: 1}}}
}

func (f *fixture) wantTotal(what string, k *keys.Key, n int64) {
	f.Helper()
	if got := f.seed.Usage(f.T, k.ID).TotalRequests; got != n {
		f.Errorf("%s: totalRequests %d, want %d", what, got, n)
	}
}

// otherHashOf is a request for k's id with another hash: the id holds
// only 96 bits of the hash.
func otherHashOf(req authorizer.UseRequest) authorizer.UseRequest {
	req.Hash[len(req.Hash)-1] ^= 1
	return req
}

func unknownKey(f *fixture) {
	f.create(nil) // the store holds a key, only not this one
	hash := sha256.Sum256([]byte("never stored"))
	unknown := use(&keys.Key{ID: token.ID(hash), Hash: hash}, f.now, 10)
	f.try("a key never stored", unknown, refused(authorizer.NotFound))
	unknown.Project = "acme"
	f.try("a key never stored, in a project", unknown, refused(authorizer.NotFound))
}

// The full stored hash is what authenticates, whatever the key's status;
// a refusal counts nothing.
func otherHash(f *fixture) {
	active := f.create(nil)
	revoked := f.create(func(k *keys.Key) {
		k.Status, k.RevokedAt, k.PurgeAt = keys.StatusRevoked, ptr(f.at(-time.Minute)), ptr(f.at(time.Hour))
	})
	for _, k := range []*keys.Key{active, revoked} {
		for _, project := range []string{"", "acme"} {
			req := otherHashOf(use(k, f.now, 10))
			req.Project = project
			f.try(fmt.Sprintf("%s key, project %q", k.Status, project), req, refused(authorizer.NotFound))
		}
		f.wantTotal(string(k.Status)+" key", k, 0)
	}
	f.try("the active key with its own hash", use(active, f.now, 10), allowed(1))
}

func otherProject(f *fixture) {
	k := f.create(nil)
	req := use(k, f.now, 10)
	req.Project = "globex"
	f.try("use for project globex", req, refused(authorizer.NotFound))
	f.wantTotal("after the refusal", k, 0)
	req.Project = "acme"
	f.try("use for its own project", req, allowed(1))
	f.wantTotal("after the use", k, 1)
}

// TTL deletes only within days: past its purge time a key is gone, though
// its item is still there.
func purgedKey(f *fixture) {
	for _, tc := range []struct {
		name    string
		status  keys.Status // revoked, or active and expired
		purgeIn time.Duration
		want    authorizer.Outcome
	}{
		{"revoked, purged a second ago", keys.StatusRevoked, -time.Second, authorizer.NotFound},
		{"revoked, purged now", keys.StatusRevoked, 0, authorizer.NotFound},
		{"revoked, purged in a second", keys.StatusRevoked, time.Second, authorizer.Revoked},
		{"expired, purged now", keys.StatusActive, 0, authorizer.NotFound},
		{"expired, purged in a second", keys.StatusActive, time.Second, authorizer.Expired},
	} {
		k := f.create(func(k *keys.Key) {
			k.Status, k.PurgeAt = tc.status, ptr(f.at(tc.purgeIn))
			if tc.status == keys.StatusRevoked {
				k.RevokedAt = ptr(f.at(-time.Hour))
			} else {
				k.ExpiresAt = ptr(f.at(-time.Hour))
			}
		})
		f.try(tc.name, use(k, f.now, 10), refused(tc.want))
		f.wantTotal(tc.name, k, 0)
	}
}

// What the key counted before its revocation stays counted.
func revokedKey(f *fixture) {
	k := f.create(nil)
	f.try("before revocation", use(k, f.now, 10), allowed(1))
	f.revoke(k, nil)
	res := f.try("after revocation", use(k, f.now, 10), refused(authorizer.Revoked))
	if res.Key != nil && res.Key.Status != keys.StatusRevoked {
		f.Errorf("after revocation: the key reads %s, want revoked", res.Key.Status)
	}
	f.wantTotal("after the refusal", k, 1)
}

// An expired key is refused while its item is still stored: the store
// must not wait for TTL.
func expiredKey(f *fixture) {
	k := f.create(func(k *keys.Key) { k.ExpiresAt = ptr(f.at(time.Second)) })
	for _, step := range []struct {
		name  string
		after time.Duration
		want  result
	}{
		{"a second before expiry", 0, allowed(1)},
		{"a millisecond before expiry", time.Second - time.Millisecond, allowed(2)},
		{"at expiry", time.Second, refused(authorizer.Expired)},
		{"a minute after expiry", time.Minute, refused(authorizer.Expired)},
	} {
		f.try(step.name, use(k, f.at(step.after), 10), step.want)
	}
	f.wantTotal("after the refusals", k, 2)
}

// The route's scopes are checked in the write that counts: a refusal for
// scope spends none of the window's budget.
func lackingScope(f *fixture) {
	k := f.create(nil)
	bare := f.create(func(k *keys.Key) { k.Scopes = nil })
	f.try("one scope of two", use(k, f.now, 10, "contracts", "admin"), refused(authorizer.InsufficientScope))
	f.try("a key without scopes", use(bare, f.now, 10, "contracts"), refused(authorizer.InsufficientScope))
	f.wantTotal("the key after its refusal", k, 0)
	f.wantTotal("the bare key after its refusal", bare, 0)
	f.try("a scope the key holds", use(k, f.now, 10, "contracts"), allowed(1))
	f.try("no scope needed", use(bare, f.now, 10), allowed(1))
}

func rateLimited(f *fixture) {
	k := f.create(nil)
	for i := range int64(3) {
		f.try(fmt.Sprintf("use %d of 3", i+1), use(k, f.at(time.Duration(i)*time.Second), 3), allowed(i+1))
	}
	for range 2 {
		f.try("use beyond the limit", use(k, f.at(time.Minute), 3), limited(3))
	}
	f.wantTotal("after the refusals", k, 3)
	f.try("use within a higher limit", use(k, f.at(time.Minute), 4), allowed(4))
}

// A key refused for several reasons is refused for the first in the
// contract's order: NotFound, Revoked, Expired, InsufficientScope,
// RateLimited.
func refusalOrder(f *fixture) {
	const limit = 2
	fill := func(k *keys.Key) {
		f.Helper()
		for i := range int64(limit) {
			f.try("use up to the limit", use(k, f.now, limit), allowed(i+1))
		}
	}
	for _, tc := range []struct {
		name  string
		setup func() (*keys.Key, authorizer.UseRequest)
		want  authorizer.Outcome
	}{
		{"another project's revoked key", func() (*keys.Key, authorizer.UseRequest) {
			k := f.create(nil)
			f.revoke(k, ptr(f.at(time.Hour)))
			req := use(k, f.now, limit)
			req.Project = "globex"
			return k, req
		}, authorizer.NotFound},
		{"a revoked key past its expiry", func() (*keys.Key, authorizer.UseRequest) {
			k := f.create(func(k *keys.Key) { k.ExpiresAt = ptr(f.at(-time.Hour)) })
			f.revoke(k, ptr(f.at(time.Hour)))
			return k, use(k, f.now, limit)
		}, authorizer.Revoked},
		{"a revoked key at its limit, lacking a scope", func() (*keys.Key, authorizer.UseRequest) {
			k := f.create(nil)
			fill(k)
			f.revoke(k, ptr(f.at(time.Hour)))
			return k, use(k, f.now, limit, "admin")
		}, authorizer.Revoked},
		{"an expired key at its limit, lacking a scope", func() (*keys.Key, authorizer.UseRequest) {
			k := f.create(func(k *keys.Key) { k.ExpiresAt = ptr(f.at(time.Minute)) })
			fill(k)
			return k, use(k, f.at(time.Minute), limit, "admin")
		}, authorizer.Expired},
		{"a key at its limit, lacking a scope", func() (*keys.Key, authorizer.UseRequest) {
			k := f.create(nil)
			fill(k)
			return k, use(k, f.now, limit, "admin")
		}, authorizer.InsufficientScope},
	} {
		k, req := tc.setup()
		before := f.seed.Usage(f.T, k.ID).TotalRequests
		f.try(tc.name, req, refused(tc.want))
		f.wantTotal(tc.name, k, before)
	}
}

// An allowed use shows the key as it is after the use.
func allowedUse(f *fixture) {
	k := f.create(func(k *keys.Key) {
		k.Scopes = []string{"admin", "contracts"}
		k.Usage = keys.Usage{TotalRequests: 41, LastUsed: ptr(f.at(-time.Hour))}
	})
	res := f.try("first use", use(k, f.now, 10, "contracts"), allowed(1))
	if got := res.Key; got != nil && (got.Usage.TotalRequests != 42 || got.Usage.LastUsed == nil || !got.Usage.LastUsed.Equal(f.now) ||
		got.Project != k.Project || got.Tier != k.Tier || got.Status != k.Status || !slices.Equal(got.Scopes, k.Scopes)) {
		f.Errorf("first use shows the key %+v, want the stored key with usage {42 %v}", got, f.now)
	}
	if got := f.seed.Usage(f.T, k.ID); got.TotalRequests != 42 || got.LastUsed == nil || !got.LastUsed.Equal(f.now) {
		f.Errorf("usage after the first use: %d, last used %v; want 42, %v", got.TotalRequests, got.LastUsed, f.now)
	}
	f.try("second use, every scope", use(k, f.at(time.Second), 10, "admin", "contracts"), allowed(2))
	f.try("third use, no scope", use(k, f.at(2*time.Second), 10), allowed(3))
	f.wantTotal("after three uses", k, 44)
}

// The authorizer returns a use it counted, then refused (an IP allowlist):
// the window's budget comes back.
func returnedUse(f *fixture) {
	k := f.create(nil)
	req := use(k, f.now, 2)
	f.try("first use", req, allowed(1))
	f.giveBack(req, f.try("second use", req, allowed(2)))
	f.wantTotal("after the return", k, 1)
	f.try("use after the return", req, allowed(2))
	f.try("use beyond the limit", req, limited(2))
	f.wantTotal("after the next use", k, 2)
}

func returnBelowZero(f *fixture) {
	unused := f.create(nil)
	req := use(unused, f.now, 10)
	f.giveBack(req, countedAt(req))
	f.wantTotal("an unused key after a return", unused, 0)
	f.try("the unused key's first use", req, allowed(1))

	k := f.create(nil)
	req = use(k, f.now, 10)
	used := f.try("one use", req, allowed(1))
	f.giveBack(req, used)
	f.giveBack(req, used)
	f.wantTotal("one use returned twice", k, 0)
	f.try("the next use", req, allowed(1))
	f.wantTotal("after the next use", k, 1)
}

func returnOtherHash(f *fixture) {
	k := f.create(nil)
	req := use(k, f.now, 10)
	f.giveBack(otherHashOf(req), f.try("first use", req, allowed(1)))
	f.wantTotal("after a return with another hash", k, 1)
	f.try("second use", req, allowed(2))
}

// A return for a window the key has left takes back the total only: the
// current window's count is of other uses.
func returnAfterRollover(f *fixture) {
	k := f.create(nil)
	first := use(k, f.now, 10)
	used := f.try("use in window S", first, allowed(1))
	next := use(k, f.at(contractWindow), 10)
	f.try("use in window S+W", next, allowed(1))
	f.giveBack(first, used)
	f.wantTotal("after returning the use in S", k, 1)
	f.try("another use in S+W", next, allowed(2))
	f.wantTotal("after it", k, 2)
}

func windowRollover(f *fixture) {
	k := f.create(nil)
	for _, step := range []struct {
		name  string
		after time.Duration
		want  result
	}{
		{"window S", 0, allowed(1)},
		{"S again", time.Second, limited(1)},
		{"the last millisecond of S", contractWindow/2 - time.Millisecond, limited(1)},
		{"the first instant of S+W", contractWindow / 2, allowed(1)},
		{"S+W again", contractWindow, limited(1)},
		{"S+2W", 2 * contractWindow, allowed(1)},
		{"after 100 idle windows", 102 * contractWindow, allowed(1)},
	} {
		f.try(step.name, use(k, f.at(step.after), 1), step.want)
	}
	f.wantTotal("after the steps", k, 4)
}

// A request stamped with a window before the key's (its clock is behind,
// or it arrived late) counts in the key's window and says so: no window
// passes more than its limit, and none gets a second budget.
func behindWindow(f *fixture) {
	k := f.create(nil)
	next := authorizer.WindowAt(f.at(contractWindow), contractWindow)
	late := use(k, next.Start.Add(-time.Millisecond), 2)
	for _, step := range []struct {
		name string
		req  authorizer.UseRequest
		want result
	}{
		{"use in S", use(k, f.now, 2), allowed(1)},
		{"use in S+W", use(k, next.Start, 2), allowed(1)},
		{"late use stamped S", late, result{outcome: authorizer.Allowed, count: 2, window: next}},
		{"late use stamped S, S+W full", late, result{outcome: authorizer.RateLimited, count: 2, window: next}},
		{"use in S+W, full", use(k, next.Start.Add(time.Second), 2), limited(2)},
	} {
		f.try(step.name, step.req, step.want)
	}
	f.wantTotal("after the steps", k, 3)
}

// limited is a key with limits of its own, made after edit.
func (f *fixture) limited(limits []keys.RateLimit, edit func(k *keys.Key)) *keys.Key {
	return f.create(func(k *keys.Key) {
		k.RateLimits, k.RateLimitsFromTier, k.LimitsVersion = limits, false, 1
		if edit != nil {
			edit(k)
		}
	})
}

// useOwn is a use of a key with limits of its own, costing cost.
func useOwn(k *keys.Key, at time.Time, cost int64) authorizer.UseRequest {
	req := use(k, at, 1)
	req.TierLimits, req.Cost = nil, cost
	return req
}

// tryCounts runs req and checks its outcome and every limit's count.
func (f *fixture) tryCounts(what string, req authorizer.UseRequest, want authorizer.Outcome, counts ...int64) authorizer.UseResult {
	f.Helper()
	got, err := f.store.UseKey(f.ctx, req)
	if err != nil {
		f.Fatalf("%s: UseKey: %v", what, err)
	}
	var gotCounts []int64
	for _, l := range got.Limits {
		gotCounts = append(gotCounts, l.Count)
	}
	if got.Outcome != want || !slices.Equal(gotCounts, counts) {
		f.Errorf("%s: %s with counts %v, want %s with %v", what, got.Outcome, gotCounts, want, counts)
	}
	return got
}

func (f *fixture) wantCredits(what string, k *keys.Key, remaining int64) {
	f.Helper()
	if c := f.seed.Credits(f.T, k.ID); c == nil || c.Remaining != remaining {
		f.Errorf("%s: credits %+v, want %d remaining", what, c, remaining)
	}
}

var (
	perMinute = keys.RateLimit{Name: "burst", Limit: 2, WindowSeconds: 60}
	perWindow = keys.RateLimit{Name: "sustained", Limit: 3, WindowSeconds: int64(contractWindow / time.Second)}
)

func everyLimit(f *fixture) {
	k := f.limited([]keys.RateLimit{perMinute, perWindow}, nil)
	minute := authorizer.WindowAt(f.now, time.Minute).End()
	f.tryCounts("first use", useOwn(k, f.now, 1), authorizer.Allowed, 1, 1)
	f.tryCounts("second use", useOwn(k, f.now, 1), authorizer.Allowed, 2, 2)
	got := f.tryCounts("the burst limit is full", useOwn(k, f.now, 1), authorizer.RateLimited, 2, 2)
	if got.Refused != 0 {
		f.Errorf("refused by limit %d, want 0 (burst)", got.Refused)
	}
	f.tryCounts("the next minute", useOwn(k, minute, 1), authorizer.Allowed, 1, 3)
	got = f.tryCounts("the sustained limit is full", useOwn(k, minute, 1), authorizer.RateLimited, 1, 3)
	if got.Refused != 1 {
		f.Errorf("refused by limit %d, want 1 (sustained)", got.Refused)
	}
	f.wantTotal("after the refusals", k, 3)
}

func tierLimits(f *fixture) {
	k := f.create(func(k *keys.Key) { k.RateLimitsFromTier = true })
	f.try("a tier limit of 1", use(k, f.now, 1), allowed(1))
	f.try("again", use(k, f.now, 1), limited(1))
	f.try("the tier's limit raised", use(k, f.now, 2), allowed(2))
	none := f.limited([]keys.RateLimit{}, nil)
	for i := range 5 {
		f.tryCounts(fmt.Sprintf("unlimited use %d, whatever the tier's", i+1), use(none, f.now, 1), authorizer.Allowed)
	}
}

func changedLimits(f *fixture) {
	k := f.limited([]keys.RateLimit{perWindow}, nil)
	for i := range int64(2) {
		f.tryCounts("use under 3", useOwn(k, f.now, 1), authorizer.Allowed, i+1)
	}
	k.RateLimits, k.LimitsVersion = []keys.RateLimit{{Name: "sustained", Limit: 2, WindowSeconds: perWindow.WindowSeconds}}, 2
	f.seed.Update(f.T, k)
	k.Version++
	f.tryCounts("the same limit lowered to 2: 2 spent", useOwn(k, f.now, 1), authorizer.RateLimited, 2)
	k.RateLimits, k.LimitsVersion = []keys.RateLimit{{Name: "sustained", Limit: 2, WindowSeconds: 2 * perWindow.WindowSeconds}}, 3
	f.seed.Update(f.T, k)
	k.Version++
	f.tryCounts("another length: a fresh budget", useOwn(k, f.now, 1), authorizer.Allowed, 1)
	k.RateLimits, k.RateLimitsFromTier, k.LimitsVersion = nil, true, 4
	f.seed.Update(f.T, k)
	f.try("back to the tier's limit of 1", use(k, f.now, 1), allowed(1))
	f.try("the tier's limit full", use(k, f.now, 1), limited(1))
}

func creditsSpent(f *fixture) {
	k := f.limited([]keys.RateLimit{}, func(k *keys.Key) { k.Credits = &keys.Credits{Remaining: 5} })
	for _, step := range []struct {
		cost      int64
		want      authorizer.Outcome
		remaining int64
	}{
		{3, authorizer.Allowed, 2},
		{3, authorizer.UsageExceeded, 2},
		{0, authorizer.Allowed, 2},
		{2, authorizer.Allowed, 0},
		{1, authorizer.UsageExceeded, 0},
		{0, authorizer.Allowed, 0},
	} {
		what := fmt.Sprintf("cost %d", step.cost)
		got := f.tryCounts(what, useOwn(k, f.now, step.cost), step.want)
		if got.Credits == nil || got.Credits.Remaining != step.remaining {
			f.Errorf("%s: answers credits %+v, want %d remaining", what, got.Credits, step.remaining)
		}
		f.wantCredits(what, k, step.remaining)
	}
	f.wantTotal("after the refusals", k, 4)
}

func creditsRefill(f *fixture) {
	due := f.at(time.Hour)
	k := f.limited([]keys.RateLimit{}, func(k *keys.Key) {
		k.Credits = &keys.Credits{Remaining: 1, Refill: &keys.Refill{Interval: keys.RefillDaily, Amount: 10}, NextRefillAt: &due}
	})
	f.tryCounts("before the refill", useOwn(k, f.now, 1), authorizer.Allowed)
	f.tryCounts("spent, before the refill", useOwn(k, due.Add(-time.Millisecond), 1), authorizer.UsageExceeded)
	got := f.tryCounts("at the refill", useOwn(k, due, 3), authorizer.Allowed)
	next := keys.Refill{Interval: keys.RefillDaily}.NextAfter(due)
	if c := got.Credits; c == nil || c.Remaining != 7 || c.NextRefillAt == nil || !c.NextRefillAt.Equal(next) {
		f.Errorf("at the refill: credits %+v, want 7 remaining, next refill %v", c, next)
	}
	f.tryCounts("after the refill", useOwn(k, due.Add(time.Minute), 7), authorizer.Allowed)
	f.tryCounts("no second refill in the period", useOwn(k, due.Add(2*time.Minute), 1), authorizer.UsageExceeded)
	f.wantCredits("after the refill", k, 0)
}

func refusalsSpendNothing(f *fixture) {
	k := f.limited([]keys.RateLimit{{Name: "one", Limit: 1, WindowSeconds: 60}}, func(k *keys.Key) { k.Credits = &keys.Credits{Remaining: 3} })
	f.tryCounts("a use", useOwn(k, f.now, 1), authorizer.Allowed, 1)
	f.tryCounts("rate limited", useOwn(k, f.now, 1), authorizer.RateLimited, 1)
	f.wantCredits("rate limited spends no credit", k, 2)
	next := authorizer.WindowAt(f.now, time.Minute).End()
	f.tryCounts("usage exceeded", useOwn(k, next, 5), authorizer.UsageExceeded, 0)
	f.tryCounts("usage exceeded counts in no window", useOwn(k, next, 2), authorizer.Allowed, 1)
	f.wantCredits("after", k, 0)
	f.wantTotal("after", k, 2)
}

func returnedCredits(f *fixture) {
	k := f.limited([]keys.RateLimit{perWindow}, func(k *keys.Key) { k.Credits = &keys.Credits{Remaining: 10} })
	req := useOwn(k, f.now, 4)
	f.giveBack(req, f.tryCounts("a use costing 4", req, authorizer.Allowed, 1))
	f.wantCredits("after the return", k, 10)
	f.wantTotal("after the return", k, 0)
	f.tryCounts("the window's count came back too", req, authorizer.Allowed, 1)
}

// owned are n keys of one owner that carry the owner's limits.
func (f *fixture) owned(n int, owner string, limits []keys.RateLimit, credits *keys.Credits) []*keys.Key {
	f.seed.SetOwnerLimits(f.T, "acme", owner, limits, credits)
	var out []*keys.Key
	for range n {
		out = append(out, f.limited([]keys.RateLimit{perWindow}, func(k *keys.Key) { k.Owner, k.OwnerLimited = owner, true }))
	}
	return out
}

func sharedOwnerLimits(f *fixture) {
	shared := keys.RateLimit{Name: "shared", Limit: 4, WindowSeconds: 60}
	ks := f.owned(3, "o-limits", []keys.RateLimit{shared}, nil)
	for i := range 4 {
		f.tryCounts(fmt.Sprintf("use %d, key %d", i+1, i%3), useOwn(ks[i%3], f.now, 1), authorizer.Allowed, int64(i/3+1), int64(i+1))
	}
	got := f.tryCounts("the owner's limit is full", useOwn(ks[1], f.now, 1), authorizer.RateLimited, 1, 4)
	if got.Refused != 1 || len(got.Limits) != 2 || !got.Limits[1].Owner || got.Limits[0].Owner {
		f.Errorf("refused by %d of %+v, want 1, the owner's", got.Refused, got.Limits)
	}
	f.wantTotal("the refused key", ks[1], 1)
	f.tryCounts("the key's own count came back", useOwn(ks[1], authorizer.WindowAt(f.now, time.Minute).End(), 1), authorizer.Allowed, 2, 1)
	other := f.limited([]keys.RateLimit{perWindow}, func(k *keys.Key) { k.Owner = "o-limits" })
	f.tryCounts("a key not carrying the owner's limits", useOwn(other, f.now, 1), authorizer.Allowed, 1)
}

func sharedOwnerCredits(f *fixture) {
	ks := f.owned(2, "o-credits", []keys.RateLimit{}, &keys.Credits{Remaining: 5})
	f.tryCounts("key 0 spends 2", useOwn(ks[0], f.now, 2), authorizer.Allowed, 1)
	got := f.tryCounts("key 1 spends 2", useOwn(ks[1], f.now, 2), authorizer.Allowed, 1)
	if got.OwnerCredits == nil || got.OwnerCredits.Remaining != 1 {
		f.Errorf("owner credits %+v, want 1 remaining", got.OwnerCredits)
	}
	f.tryCounts("the owner's credits fall short", useOwn(ks[0], f.now, 2), authorizer.UsageExceeded, 1)
	f.wantTotal("key 0 after its refusal", ks[0], 1)
	f.tryCounts("key 0's own window count came back", useOwn(ks[0], f.now, 1), authorizer.Allowed, 2)
	if c := f.seed.OwnerCredits(f.T, "acme", "o-credits"); c == nil || c.Remaining != 0 {
		f.Errorf("owner credits %+v, want 0", c)
	}
}

func rotatedBudget(f *fixture) {
	old := f.limited([]keys.RateLimit{perWindow}, func(k *keys.Key) { k.Credits = &keys.Credits{Remaining: 10} })
	f.tryCounts("the old key, before rotation", useOwn(old, f.now, 4), authorizer.Allowed, 1)
	successor := *old
	successor.Hash = sha256.Sum256([]byte("successor of " + old.ID))
	successor.ID, successor.RotatedFrom, successor.CreatedAt, successor.Usage = token.ID(successor.Hash), old.ID, f.now, keys.Usage{}
	end := f.at(time.Minute)
	f.seed.Rotate(f.T, old, &successor, end)
	f.tryCounts("the successor continues the budget", useOwn(&successor, f.now, 4), authorizer.Allowed, 2)
	got := f.tryCounts("the old key within its grace counts on the successor", useOwn(old, f.now, 1), authorizer.Allowed, 3)
	if got.Key == nil || got.Key.ID != old.ID {
		f.Errorf("the old key's use shows key %+v, want the old key", got.Key)
	}
	f.tryCounts("the shared window is full", useOwn(&successor, f.now, 1), authorizer.RateLimited, 3)
	f.tryCounts("for the old key too", useOwn(old, f.now, 1), authorizer.RateLimited, 3)
	f.wantCredits("the successor's credits", &successor, 1)
	f.tryCounts("the old key after its grace", useOwn(old, end, 1), authorizer.Expired)
	f.wantTotal("the old key's uses within its grace count on the successor", old, 1)
	f.wantTotal("the successor", &successor, 2)
}

// block is a lease's claim of k's budget: uses at once, costing cost in all.
func block(k *keys.Key, at time.Time, uses, cost int64) authorizer.UseRequest {
	req := useOwn(k, at, cost)
	req.Uses = uses
	return req
}

// unspent is what a lease that claimed used leaves when uses and credits
// of it are left.
func unspent(k *keys.Key, used authorizer.UseResult, uses, credits int64) authorizer.Unspent {
	u := authorizer.Unspent{Item: k.ID, Uses: uses, Limits: used.Limits, Credits: credits, Version: used.Version, OwnerVersion: used.OwnerVersion}
	if used.Credits != nil {
		u.CreditsPeriod = used.Credits.NextRefillAt
	}
	if used.OwnerCredits != nil {
		u.OwnerCreditsPeriod = used.OwnerCredits.NextRefillAt
	}
	return u
}

func blockUses(f *fixture) {
	ten := keys.RateLimit{Name: "ten", Limit: 10, WindowSeconds: 60}
	k := f.limited([]keys.RateLimit{ten}, func(k *keys.Key) { k.Credits = &keys.Credits{Remaining: 100} })
	f.tryCounts("a block of 4", block(k, f.now, 4, 8), authorizer.Allowed, 4)
	f.wantTotal("a block of 4", k, 4)
	f.wantCredits("a block of 4 costing 8", k, 92)
	f.tryCounts("a block of 7 with room for 6", block(k, f.now, 7, 7), authorizer.RateLimited, 4)
	f.tryCounts("a block of 6", block(k, f.now, 6, 6), authorizer.Allowed, 10)
	f.wantTotal("after the refusal", k, 10)
	f.wantCredits("after the refusal", k, 86)
	fresh := f.limited([]keys.RateLimit{ten}, nil)
	f.tryCounts("a block larger than the limit, in a window never used", block(fresh, f.now, 11, 0), authorizer.RateLimited, 0)
	f.tryCounts("a block of the whole limit", block(fresh, f.now, 10, 0), authorizer.Allowed, 10)
	f.tryCounts("a block beyond the credits", block(k, authorizer.WindowAt(f.now, time.Minute).End(), 2, 87), authorizer.UsageExceeded, 0)
}

func blockGiveBack(f *fixture) {
	ten := keys.RateLimit{Name: "ten", Limit: 10, WindowSeconds: 60}
	k := f.limited([]keys.RateLimit{ten}, func(k *keys.Key) { k.Credits = &keys.Credits{Remaining: 100} })
	first := f.tryCounts("a block of 5", block(k, f.now, 5, 10), authorizer.Allowed, 5)
	next := block(k, f.now, 3, 6)
	next.GiveBack = unspent(k, first, 2, 4) // 3 of the 5 and 6 of the 10 credits spent
	got := f.tryCounts("the next block, 2 uses and 4 credits back", next, authorizer.Allowed, 6)
	if !got.GaveBack {
		f.Error("the next block: GaveBack unset")
	}
	f.wantTotal("after the give-back", k, 6)
	f.wantCredits("after the give-back", k, 88)
	full := f.tryCounts("the rest of the window", block(k, f.now, 4, 0), authorizer.Allowed, 10)
	again := block(k, f.now, 2, 0)
	f.tryCounts("a full window", again, authorizer.RateLimited, 10)
	again.GiveBack = unspent(k, full, 2, 0)
	f.tryCounts("a full window, with room its unspent uses make", again, authorizer.Allowed, 10)
	f.wantTotal("the unspent uses given back", k, 10)
}

func blockGiveBackBounds(f *fixture) {
	ten := keys.RateLimit{Name: "ten", Limit: 10, WindowSeconds: 60}
	due := authorizer.WindowAt(f.now, time.Minute).End().Add(time.Minute)
	k := f.limited([]keys.RateLimit{ten}, func(k *keys.Key) {
		k.Credits = &keys.Credits{Remaining: 50, Refill: &keys.Refill{Interval: keys.RefillDaily, Amount: 100}, NextRefillAt: &due}
	})
	first := f.tryCounts("a block of 4", block(k, f.now, 4, 4), authorizer.Allowed, 4)
	other := block(k, authorizer.WindowAt(f.now, time.Minute).End(), 1, 1)
	other.GiveBack = unspent(k, first, 3, 3)
	second := f.tryCounts("the next window: its count owes nothing to the last", other, authorizer.Allowed, 1)
	f.wantTotal("uses go back from the total whatever the window", k, 2)
	f.wantCredits("credits go back within their period", k, 48)
	refilled := block(k, due, 1, 1)
	refilled.GiveBack = unspent(k, second, 0, 1)
	f.tryCounts("after a refill", refilled, authorizer.Allowed, 1)
	f.wantCredits("credits of the last period do not go back into a refilled one", k, 99)
	elsewhere := block(k, due, 1, 0)
	elsewhere.GiveBack = unspent(&keys.Key{ID: "another"}, second, 1, 5)
	f.tryCounts("unspent of another item", elsewhere, authorizer.Allowed, 2)
	f.wantTotal("unspent of another item", k, 4)
	f.wantCredits("unspent of another item", k, 99)
}

func returnedBlock(f *fixture) {
	k := f.limited([]keys.RateLimit{perWindow}, func(k *keys.Key) { k.Credits = &keys.Credits{Remaining: 10} })
	req := block(k, f.now, 3, 6)
	f.giveBack(req, f.tryCounts("a block of 3 costing 6", req, authorizer.Allowed, 3))
	f.wantCredits("after the return", k, 10)
	f.wantTotal("after the return", k, 0)
	f.tryCounts("the window's count came back too", req, authorizer.Allowed, 3)
}

func ownerBlock(f *fixture) {
	shared := keys.RateLimit{Name: "shared", Limit: 5, WindowSeconds: 60}
	ks := f.owned(2, "o-blocks", []keys.RateLimit{shared}, nil)
	f.tryCounts("key 0 claims 3", block(ks[0], f.now, 3, 0), authorizer.Allowed, 3, 3)
	got := f.tryCounts("key 1 claims 3 of the owner's 2 left", block(ks[1], f.now, 3, 0), authorizer.RateLimited, 0, 3)
	if got.Refused != 1 {
		f.Errorf("refused by limit %d, want 1 (the owner's)", got.Refused)
	}
	f.wantTotal("key 1 after the owner's refusal", ks[1], 0)
	f.tryCounts("key 1 claims the 2 left", block(ks[1], f.now, 2, 0), authorizer.Allowed, 2, 5)
}

func blockGiveBackLoweredLimit(f *fixture) {
	ten := keys.RateLimit{Name: "ten", Limit: 10, WindowSeconds: 60}
	k := f.limited([]keys.RateLimit{ten}, nil)
	first := f.tryCounts("a block of 8", block(k, f.now, 8, 0), authorizer.Allowed, 8)
	k.RateLimits, k.LimitsVersion = []keys.RateLimit{{Name: "ten", Limit: 4, WindowSeconds: 60}}, 2
	f.seed.Update(f.T, k)
	k.Version++
	// 5 of the 8 spent: the limit lowered to 4 has no room left, whatever
	// the lease gives back, for a block of 2 as for one of 3.
	for _, uses := range []int64{2, 3} {
		next := block(k, f.now, uses, 0)
		next.GiveBack = unspent(k, first, 3, 0)
		f.tryCounts(fmt.Sprintf("a block of %d giving back 3 under a limit of 4", uses), next, authorizer.RateLimited, 8)
	}
	next := block(k, f.now, 1, 0)
	f.tryCounts("a use under a limit of 4", next, authorizer.RateLimited, 8)
	f.wantTotal("nothing counted", k, 8)
}

func blockGiveBackCreditsSet(f *fixture) {
	hundred := keys.RateLimit{Name: "hundred", Limit: 100, WindowSeconds: 60}
	k := f.limited([]keys.RateLimit{hundred}, func(k *keys.Key) { k.Credits = &keys.Credits{Remaining: 100} })
	first := f.tryCounts("a block of 10 costing 10", block(k, f.now, 10, 10), authorizer.Allowed, 10)
	k.Credits = &keys.Credits{Remaining: 5}
	f.seed.Update(f.T, k)
	k.Version++
	next := block(k, f.now, 1, 1)
	next.GiveBack = unspent(k, first, 9, 9)
	f.tryCounts("the next block, 9 uses and 9 credits back", next, authorizer.Allowed, 2)
	f.wantCredits("the credits set to 5, less the block's cost", k, 4)
	f.wantTotal("the uses go back", k, 2)

	ks := f.owned(1, "o-credits-set", []keys.RateLimit{}, &keys.Credits{Remaining: 100})
	first = f.tryCounts("a block of 3 costing 10 of the owner's", block(ks[0], f.now, 3, 10), authorizer.Allowed, 3)
	f.seed.SetOwnerLimits(f.T, "acme", "o-credits-set", []keys.RateLimit{}, &keys.Credits{Remaining: 5})
	next = block(ks[0], f.now, 1, 1)
	next.GiveBack = unspent(ks[0], first, 2, 9)
	f.tryCounts("the next block of the owner's", next, authorizer.Allowed, 2)
	if c := f.seed.OwnerCredits(f.T, "acme", "o-credits-set"); c == nil || c.Remaining != 4 {
		f.Errorf("owner credits %+v, want the 5 set less the block's cost", c)
	}
}

func ownerRefusedGiveBack(f *fixture) {
	ks := f.owned(2, "o-refused-back", []keys.RateLimit{}, &keys.Credits{Remaining: 100})
	first := f.tryCounts("a block of 2 costing 10", block(ks[0], f.now, 2, 10), authorizer.Allowed, 2)
	f.tryCounts("the other key spends the owner's 90 left", block(ks[1], f.now, 1, 90), authorizer.Allowed, 1)
	next := block(ks[0], f.now, 1, 11)
	next.GiveBack = unspent(ks[0], first, 1, 9)
	got := f.tryCounts("the owner's credits fall short of 11 less the 9 back", next, authorizer.UsageExceeded, 1)
	if !got.GaveBack {
		f.Fatal("the key's write took its part back: GaveBack unset")
	}
	f.wantTotal("the key's part went back", ks[0], 1)
	again := block(ks[0], f.now, 1, 5)
	again.GiveBack = next.GiveBack.After(got)
	f.tryCounts("the owner's part goes back alone", again, authorizer.Allowed, 2)
	f.wantTotal("the key's part is not taken back twice", ks[0], 2)
	if c := f.seed.OwnerCredits(f.T, "acme", "o-refused-back"); c == nil || c.Remaining != 4 {
		f.Errorf("owner credits %+v, want the 9 back less 5", c)
	}
}
