package keystest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/keys"
)

// The contract's rules of limits: what key and owner items keep of them,
// and the conditions on what the authorizer counts.

// use counts a use of key id, as the authorizer would.
func (f *fixture) use(id string, cost int64) {
	f.Helper()
	if err := f.countUse(f.ctx, id, cost); err != nil {
		f.Fatalf("count a use of %s: %v", id, err)
	}
}

func credits(remaining int64, refill *keys.Refill, next *time.Time) *keys.Credits {
	return &keys.Credits{Remaining: remaining, Refill: refill, NextRefillAt: next}
}

// A key that follows its tier has no list of its own; an empty list of its
// own is no limit; listings read limits, credits and meters as GetKey does.
func limitsRoundTrip(f *fixture) {
	tier, none, plain, full := f.newKey("acme"), f.newKey("acme"), f.newKey("acme"), f.fullKey(f.newKey("acme"))
	tier.RateLimitsFromTier = true
	none.RateLimits = []keys.RateLimit{}
	plain.Credits = credits(0, nil, nil)
	all := []*keys.Key{tier, none, plain, full}
	for _, k := range all {
		f.create(cloneKey(k))
		f.wantKey(f.get(k.ID), k)
	}
	if got := f.get(tier.ID); !got.RateLimitsFromTier || got.RateLimits != nil {
		f.Errorf("a key of its tier's limits reads back with %v of its own, fromTier %v", got.RateLimits, got.RateLimitsFromTier)
	}
	if got := f.get(none.ID); got.RateLimitsFromTier {
		f.Errorf("a key without limits reads back as one following its tier")
	}
	listed := f.listKeys(keys.ListQuery{Project: "acme"})
	slices.Reverse(listed)
	wantIDs(f.T, "keys", listed, all...)
	for i, k := range listed {
		f.wantKey(k, all[i])
	}
}

// An update with the counts read writes the key's credits, whatever they
// become, with the rest of the change.
func countedUpdate(f *fixture) {
	daily := &keys.Refill{Interval: keys.RefillDaily, Amount: 50}
	for _, tc := range []struct {
		name     string
		from, to *keys.Credits
	}{
		{"set", credits(100, nil, nil), credits(40, daily, f.at(time.Hour))},
		{"give", nil, credits(7, nil, nil)},
		{"take", credits(3, daily, f.at(time.Hour)), nil},
		{"change the refill", credits(3, daily, f.at(time.Hour)), credits(3, &keys.Refill{Interval: keys.RefillMonthly, Amount: 9, RefillDay: 1}, f.at(9*time.Hour))},
	} {
		f.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			k := f.newKey("acme")
			k.Credits, k.Usage.TotalRequests = tc.from.Clone(), 9
			f.create(cloneKey(k))
			u := cloneKey(k)
			u.Credits, u.Name = tc.to.Clone(), "renamed"
			uses := int64(9)
			f.mustApply(keys.Tx{Update: []*keys.Key{u}, Counted: map[string]keys.Counted{k.ID: {Credits: tc.from, Uses: &uses}}})
			want := cloneKey(k)
			want.Credits, want.Name, want.Version = tc.to, "renamed", 1
			f.wantKey(f.get(k.ID), want)
		})
	}
}

// An update with counts that are no longer stored writes nothing: a use
// came in between (of any cost, when uses are counted), or the credits
// were refilled, given or taken since the read.
func countedConditions(f *fixture) {
	stored := credits(100, &keys.Refill{Interval: keys.RefillDaily, Amount: 100}, f.at(time.Hour))
	for _, tc := range []struct {
		name    string
		stored  *keys.Credits
		counted func(f *fixture, k *keys.Key) keys.Counted
	}{
		{"a use spent credits", stored, func(f *fixture, k *keys.Key) keys.Counted {
			f.use(k.ID, 1)
			return keys.Counted{Credits: k.Credits}
		}},
		{"a use of cost 0", stored, func(f *fixture, k *keys.Key) keys.Counted {
			f.use(k.ID, 0)
			uses := k.Usage.TotalRequests
			return keys.Counted{Credits: k.Credits, Uses: &uses}
		}},
		{"refilled since", stored, func(_ *fixture, k *keys.Key) keys.Counted {
			read := k.Credits.Clone()
			read.NextRefillAt = f.at(-time.Hour)
			return keys.Counted{Credits: read}
		}},
		{"given since", stored, func(*fixture, *keys.Key) keys.Counted { return keys.Counted{} }},
		{"taken since", nil, func(*fixture, *keys.Key) keys.Counted { return keys.Counted{Credits: stored} }},
	} {
		f.Run(tc.name, func(t *testing.T) {
			f := f.sub(t)
			k := f.newKey("acme")
			k.Credits = tc.stored.Clone()
			f.create(cloneKey(k))
			counted := tc.counted(f, k)
			before := f.snapshot("acme")
			u := cloneKey(k)
			u.Credits, u.Name = credits(5, nil, nil), "lost"
			err := f.apply(keys.Tx{Update: []*keys.Key{u}, Counted: map[string]keys.Counted{k.ID: counted}, Events: []*keys.AuditEvent{f.newEvent("acme", k.ID, keys.ActionUpdated, f.now)}})
			wantConflict(t, "update with stale counts", err)
			f.unchanged(before, "acme")
		})
	}
}

// Credit changes computed from a read and written with its counts, racing
// uses that spend credits, lose none: the end is exact.
func countedRace(f *fixture) {
	const start, writers, uses, step = 1000, 10, 20, 5
	k := f.newKey("acme")
	k.Credits = credits(start, nil, nil)
	f.create(cloneKey(k))
	var wg sync.WaitGroup
	errs := make(chan error, writers+uses)
	for range writers {
		wg.Go(func() { errs <- f.increment(k.ID, step) })
	}
	for range uses {
		wg.Go(func() { errs <- f.countUse(f.ctx, k.ID, 1) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			f.Error(err)
		}
	}
	got := f.get(k.ID)
	if got.Credits.Remaining != start+writers*step-uses || got.Usage.TotalRequests != uses || got.Version != writers {
		f.Errorf("credits %d, uses %d, version %d; want %d, %d, %d", got.Credits.Remaining, got.Usage.TotalRequests, got.Version, start+writers*step-uses, uses, writers)
	}
}

// increment adds n to a key's credits as a credits operation does: it
// reads, then writes with the counts read, and reads again while a use or
// another change moved them in between.
func (f *fixture) increment(id string, n int64) error {
	for range 1000 {
		k, err := f.s.GetKey(f.ctx, id)
		if err != nil {
			return err
		}
		u := cloneKey(k)
		u.Credits.Remaining += n
		err = f.s.Apply(f.ctx, keys.Tx{Update: []*keys.Key{u}, Counted: map[string]keys.Counted{id: {Credits: k.Credits}}})
		if !errors.Is(err, keys.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("increment of %s: a conflict every time", id)
}

func (f *fixture) getOwner(project, owner string) *keys.OwnerLimits {
	f.Helper()
	o, err := f.s.GetOwnerLimits(f.ctx, project, owner)
	if err != nil {
		f.Fatalf("GetOwnerLimits(%s, %s): %v", project, owner, err)
	}
	return o
}

// wantOwner compares owner limits as diffKey compares keys.
func (f *fixture) wantOwner(got, want *keys.OwnerLimits) {
	f.Helper()
	if got.Project != want.Project || got.Owner != want.Owner || !same(got.RateLimits, want.RateLimits) ||
		!same(got.Credits, want.Credits) || !same(got.UpdatedAt, want.UpdatedAt) || got.Version != want.Version {
		f.Errorf("owner limits %+v (credits %v, updated %v), want %+v (credits %v, updated %v)",
			*got, show(got.Credits), show(got.UpdatedAt), *want, show(want.Credits), show(want.UpdatedAt))
	}
}

func ownerRoundTrip(f *fixture) {
	if _, err := f.s.GetOwnerLimits(f.ctx, "acme", "alice@example.com"); !errors.Is(err, keys.ErrNotFound) {
		f.Errorf("limits of an owner never given any: err = %v, want ErrNotFound", err)
	}
	o := &keys.OwnerLimits{
		Project: "acme", Owner: "alice@example.com", UpdatedAt: f.at(7 * time.Millisecond),
		RateLimits: []keys.RateLimit{{Name: "minute", Limit: 600, WindowSeconds: 60}},
		Credits:    credits(5000, &keys.Refill{Interval: keys.RefillMonthly, Amount: 5000, RefillDay: 1}, f.at(10*24*time.Hour)),
	}
	f.mustApply(keys.Tx{Owners: []keys.OwnerWrite{{Limits: o, Counted: &keys.Counted{}}}})
	want := cloneOwner(o)
	want.Version = 1
	f.wantOwner(f.getOwner("acme", o.Owner), want)
	if _, err := f.s.GetOwnerLimits(f.ctx, "globex", o.Owner); !errors.Is(err, keys.ErrNotFound) {
		f.Errorf("the same owner in another project: err = %v, want ErrNotFound", err)
	}

	// Without counts, a write leaves credits as they are.
	renamed := f.getOwner("acme", o.Owner)
	renamed.RateLimits, renamed.Credits, renamed.UpdatedAt = nil, nil, f.at(time.Second)
	f.mustApply(keys.Tx{Owners: []keys.OwnerWrite{{Limits: renamed}}})
	want.RateLimits, want.UpdatedAt, want.Version = []keys.RateLimit{}, renamed.UpdatedAt, 2
	f.wantOwner(f.getOwner("acme", o.Owner), want)

	// With them, credits go too: no limits at all, and the item stays.
	none := f.getOwner("acme", o.Owner)
	read := none.Credits
	none.Credits = nil
	f.mustApply(keys.Tx{Owners: []keys.OwnerWrite{{Limits: none, Counted: &keys.Counted{Credits: read}}}})
	want.Credits, want.Version = nil, 3
	f.wantOwner(f.getOwner("acme", o.Owner), want)
}

// An owner write needs the stored version it was computed from (0: none),
// and the credits it read when it sets credits; else it writes nothing.
func ownerWriteConditions(f *fixture) {
	const owner = "bob"
	stored := &keys.OwnerLimits{Project: "acme", Owner: owner, RateLimits: []keys.RateLimit{{Name: "s", Limit: 1, WindowSeconds: 1}}, Credits: credits(10, nil, nil), UpdatedAt: f.at(0)}
	f.mustApply(keys.Tx{Owners: []keys.OwnerWrite{{Limits: stored, Counted: &keys.Counted{}}}})
	for _, tc := range []struct {
		name    string
		version int64
		project string
		counted *keys.Counted
	}{
		{"as if none were stored", 0, "acme", nil},
		{"version ahead", 2, "acme", nil},
		{"none stored in that project", 1, "globex", nil},
		{"credits spent since", 1, "acme", &keys.Counted{Credits: credits(11, nil, nil)}},
		{"credits given since", 1, "acme", &keys.Counted{}},
	} {
		before, owned := f.snapshot("acme", "globex"), f.getOwner("acme", owner)
		w := cloneOwner(stored)
		w.Project, w.Version, w.Credits, w.RateLimits = tc.project, tc.version, nil, nil
		err := f.apply(keys.Tx{Owners: []keys.OwnerWrite{{Limits: w, Counted: tc.counted}}, Events: []*keys.AuditEvent{f.newEvent(tc.project, keys.OwnerTarget(owner), keys.ActionOwnerLimitsUpdated, f.now)}})
		wantConflict(f.T, tc.name, err)
		f.unchanged(before, "acme", "globex")
		f.wantOwner(f.getOwner("acme", owner), owned)
	}
}

// A transaction with an owner check writes only while the owner's limits
// are at the version checked (0: none stored), in that project.
func ownerChecks(f *fixture) {
	check := func(project string, version int64) []keys.OwnerCheck {
		return []keys.OwnerCheck{{Project: project, Owner: "carol", Version: version}}
	}
	f.mustApply(keys.Tx{Create: []*keys.Key{f.newKey("acme")}, OwnerChecks: check("acme", 0)})
	f.mustApply(keys.Tx{Owners: []keys.OwnerWrite{{Limits: &keys.OwnerLimits{Project: "acme", Owner: "carol", UpdatedAt: f.at(0)}}}})
	for _, version := range []int64{0, 2} {
		before := f.snapshot("acme")
		k := f.newKey("acme")
		wantConflict(f.T, fmt.Sprintf("create checking owner version %d", version), f.apply(keys.Tx{Create: []*keys.Key{k}, OwnerChecks: check("acme", version)}))
		f.unchanged(before, "acme")
	}
	f.mustApply(keys.Tx{Create: []*keys.Key{f.newKey("acme")}, OwnerChecks: check("acme", 1)})
	f.mustApply(keys.Tx{Create: []*keys.Key{f.newKey("globex")}, OwnerChecks: check("globex", 0)})
}

// A rotation writes the old key only if no use was counted on it since it
// was read, so that the successor, which starts from the old key's meter
// and credits as read, misses none; then the successor holds them exactly.
func rotationMeter(f *fixture) {
	old := f.fullKey(f.newKey("acme"))
	old.Version, old.RotatedTo = 0, ""
	f.create(old)
	rotate := func(read *keys.Key) (*keys.Key, error) {
		next := f.newKey("acme")
		next.Meter, next.Credits = read.Meter, read.Credits
		next.GraceHash, next.GraceUntil = read.Hash, f.at(time.Hour)
		u := cloneKey(read)
		u.RotatedTo = next.ID
		counted := keys.Counted{Credits: read.Credits, Uses: &read.Usage.TotalRequests}
		return next, f.apply(keys.Tx{Create: []*keys.Key{next}, Update: []*keys.Key{u}, Counted: map[string]keys.Counted{old.ID: counted}})
	}

	read := f.get(old.ID)
	f.use(old.ID, 3)
	before := f.snapshot("acme")
	next, err := rotate(read)
	wantConflict(f.T, "rotation after a use", err)
	f.unchanged(before, "acme")

	read = f.get(old.ID)
	if next, err = rotate(read); err != nil {
		f.Fatalf("rotation from a fresh read: %v", err)
	}
	got := f.get(next.ID)
	if !maps.Equal(got.Meter, read.Meter) || got.Meter[MeterCounter] != 1 || !same(got.Credits, read.Credits) || got.GraceHash != read.Hash {
		f.Errorf("successor meter %v, credits %v, grace hash %x; want the old key's %v, %v, %x",
			got.Meter, show(got.Credits), got.GraceHash, read.Meter, show(read.Credits), read.Hash)
	}
	if stale := f.get(old.ID); !maps.Equal(stale.Meter, read.Meter) || stale.RotatedTo != next.ID {
		f.Errorf("old key after rotation: meter %v, rotatedTo %q", stale.Meter, stale.RotatedTo)
	}
}
