package authorizertest

import (
	"context"
	"crypto/sha256"
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
	// Usage is the stored key's usage.
	Usage(t *testing.T, id string) keys.Usage
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

func (ks keyStoreSeeder) Usage(t *testing.T, id string) keys.Usage {
	t.Helper()
	k, err := ks.s.GetKey(t.Context(), id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return k.Usage
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

// create stores an active key of project acme holding scope contracts,
// after edit (if any) changed it.
func (f *fixture) create(edit func(k *keys.Key)) *keys.Key {
	f.Helper()
	f.n++
	hash := sha256.Sum256(fmt.Appendf(nil, "contract key %d", f.n))
	created := f.now.Add(-time.Hour)
	k := &keys.Key{
		ID: token.ID(hash), Hash: hash, Name: fmt.Sprintf("key %d", f.n), Start: "kg_pk_test", Tier: "public",
		Scopes: []string{"contracts"}, Project: "acme", Status: keys.StatusActive,
		CreatedAt: created, UpdatedAt: created, CreatedBy: keys.ActorOperator,
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

// use is a use of k at time at, within limit, needing scopes.
func use(k *keys.Key, at time.Time, limit int64, scopes ...string) authorizer.UseRequest {
	return authorizer.UseRequest{
		ID: k.ID, Hash: k.Hash, Scopes: scopes, Limit: limit,
		Window: authorizer.WindowAt(at, contractWindow), Now: at,
	}
}

// result is what a UseKey should return. count and window are checked
// when the use is allowed or rate limited; the zero window is the request's.
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
		if got.Count != want.count || !sameWindow(got.Window, want.window) {
			f.Errorf("%s: count %d in window %+v, want %d in %+v (zero: the request's)", what, got.Count, got.Window, want.count, want.window)
		}
	}
	return got
}

// giveBack returns a use of req counted in window w.
func (f *fixture) giveBack(req authorizer.UseRequest, w authorizer.Window) {
	f.Helper()
	if err := f.store.ReturnUse(f.ctx, req, w); err != nil {
		f.Fatalf("ReturnUse: %v", err)
	}
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
	f.try("second use", req, allowed(2))
	f.giveBack(req, req.Window)
	f.wantTotal("after the return", k, 1)
	f.try("use after the return", req, allowed(2))
	f.try("use beyond the limit", req, limited(2))
	f.wantTotal("after the next use", k, 2)
}

func returnBelowZero(f *fixture) {
	unused := f.create(nil)
	req := use(unused, f.now, 10)
	f.giveBack(req, req.Window)
	f.wantTotal("an unused key after a return", unused, 0)
	f.try("the unused key's first use", req, allowed(1))

	k := f.create(nil)
	req = use(k, f.now, 10)
	f.try("one use", req, allowed(1))
	f.giveBack(req, req.Window)
	f.giveBack(req, req.Window)
	f.wantTotal("one use returned twice", k, 0)
	f.try("the next use", req, allowed(1))
	f.wantTotal("after the next use", k, 1)
}

func returnOtherHash(f *fixture) {
	k := f.create(nil)
	req := use(k, f.now, 10)
	f.try("first use", req, allowed(1))
	f.giveBack(otherHashOf(req), req.Window)
	f.wantTotal("after a return with another hash", k, 1)
	f.try("second use", req, allowed(2))
}

// A return for a window the key has left takes back the total only: the
// current window's count is of other uses.
func returnAfterRollover(f *fixture) {
	k := f.create(nil)
	first := use(k, f.now, 10)
	f.try("use in window S", first, allowed(1))
	next := use(k, f.at(contractWindow), 10)
	f.try("use in window S+W", next, allowed(1))
	f.giveBack(first, first.Window)
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
