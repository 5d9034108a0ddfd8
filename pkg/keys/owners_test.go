package keys_test

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/keys/keystest"
)

// flags lists, for keys ids, whether each is owner-limited and its
// LimitsVersion, as "true/1".
func (e *env) flags(ids ...string) []string {
	e.Helper()
	out := make([]string, len(ids))
	for i, id := range ids {
		k := e.stored(id)
		j, _ := json.Marshal([]any{k.OwnerLimited, k.LimitsVersion})
		out[i] = string(j)
	}
	return out
}

func repeat(s string, n int) []string { return slices.Repeat([]string{s}, n) }

// An owner's limits flag every active key of the owner, across pages, and
// every key made or rotated later; removing them all unflags the keys. No
// other owner's key, nor another project's, changes.
func TestOwnerLimits(t *testing.T) {
	e := newLimitsEnv(t)
	alice := e.ownerKeys("alice", keys.MaxTxKeys+11)
	revoked := e.create(op, keys.CreateInput{Owner: "alice"}).ID
	if err := e.svc.Revoke(e.ctx, op, revoked); err != nil {
		t.Fatal(err)
	}
	others := []string{e.create(op, keys.CreateInput{Owner: "bob"}).ID, e.create(keys.OperatorCaller("globex"), keys.CreateInput{Owner: "alice"}).ID}

	none, err := e.svc.GetOwnerLimits(e.ctx, op, "alice")
	if err != nil || len(none.RateLimits) != 0 || none.RateLimits == nil || none.Credits != nil || none.UpdatedAt != nil {
		t.Fatalf("limits of an owner without any: %+v, %v", none, err)
	}

	e.clock.Advance(time.Millisecond)
	in := keys.OwnerLimitsInput{
		RateLimits: raw(`[{"name":"minute","limit":600,"windowSeconds":60}]`),
		Credits:    raw(`{"remaining":5000,"refill":{"interval":"monthly","amount":500,"refillDay":1}}`),
	}
	set, err := e.svc.PutOwnerLimits(e.ctx, keyCaller("admin"), "alice", in)
	if err != nil {
		t.Fatal(err)
	}
	feb1 := time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC)
	got, _ := e.svc.GetOwnerLimits(e.ctx, op, "alice")
	for _, o := range []*keys.OwnerLimits{set, got} {
		if o.Owner != "alice" || !slices.Equal(o.RateLimits, []keys.RateLimit{{Name: "minute", Limit: 600, WindowSeconds: 60}}) || !o.UpdatedAt.Equal(e.clock.Now()) {
			t.Errorf("owner limits %+v", o)
		}
		wantCredits(t, "owner", o.Credits, credits(5000, monthly, &feb1))
	}
	if f := e.flags(alice...); !slices.Equal(f, repeat("[true,1]", len(alice))) {
		t.Errorf("alice's keys: %v, want each flagged, LimitsVersion 1", f)
	}
	if f := e.flags(append(others, revoked)...); !slices.Equal(f, repeat("[false,0]", 3)) {
		t.Errorf("other keys: %v, want none flagged", f)
	}
	evs, _ := e.svc.ListAudit(e.ctx, op, keys.AuditInput{Action: keys.ActionOwnerLimitsUpdated})
	if len(evs.Items) != 1 || evs.Items[0].Target != keys.OwnerTarget("alice") || evs.Items[0].Actor != keyCallerID {
		t.Fatalf("owner events %+v", evs.Items)
	}
	if changes, _ := evs.Items[0].MarshalChanges(); changes != `{"credits":{"from":null,"to":{"remaining":5000,"refill":{"interval":"monthly","amount":500,"refillDay":1},"nextRefillAt":"2030-02-01T00:00:00Z"}},"rateLimits":{"from":[],"to":[{"name":"minute","limit":600,"windowSeconds":60}]}}` {
		t.Errorf("owner event changes %s", changes)
	}

	// Keys made or rotated later are flagged from the start.
	late := e.create(op, keys.CreateInput{Owner: "alice"}).ID
	next, err := e.svc.Rotate(e.ctx, op, alice[0], 60)
	if err != nil {
		t.Fatal(err)
	}
	if f := e.flags(late, next.ID); !slices.Equal(f, []string{"[true,1]", "[true,1]"}) {
		t.Errorf("a later key and a successor: %v, want flagged", f)
	}

	// The same limits again change nothing, and write nothing.
	writes := e.store.Writes()
	if _, err := e.svc.PutOwnerLimits(e.ctx, op, "alice", keys.OwnerLimitsInput{RateLimits: in.RateLimits}); err != nil || e.store.Writes() != writes {
		t.Errorf("the same limits again: %v, %d writes", err, e.store.Writes()-writes)
	}

	// No limits left: the owner keeps its item (and version), its keys are
	// no longer flagged, and a key made now is plain.
	e.clock.Advance(time.Millisecond)
	if _, err := e.svc.PutOwnerLimits(e.ctx, op, "alice", keys.OwnerLimitsInput{RateLimits: raw("[]"), Credits: raw("null")}); err != nil {
		t.Fatal(err)
	}
	got, _ = e.svc.GetOwnerLimits(e.ctx, op, "alice")
	if len(got.RateLimits) != 0 || got.Credits != nil || !got.UpdatedAt.Equal(e.clock.Now()) {
		t.Errorf("limits after removing them all: %+v", got)
	}
	if f := e.flags(append(alice[1:], late)...); !slices.Equal(f, repeat("[false,2]", len(alice))) {
		t.Errorf("alice's keys after removing her limits: %v, want unflagged, LimitsVersion 2", f)
	}
	if f := e.flags(e.create(op, keys.CreateInput{Owner: "alice"}).ID); !slices.Equal(f, []string{"[false,0]"}) {
		t.Errorf("a key of an owner without limits: %v", f)
	}
}

func TestOwnerLimitsRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		caller keys.Caller
		owner  string
		in     keys.OwnerLimitsInput
		want   error
	}{
		{"nothing to set", op, "alice", keys.OwnerLimitsInput{}, &keys.InvalidError{Field: ""}},
		{"null limits", op, "alice", keys.OwnerLimitsInput{RateLimits: raw("null")}, &keys.InvalidError{Field: "rateLimits"}},
		{"a bad limit", op, "alice", keys.OwnerLimitsInput{RateLimits: raw(`[{"name":"a","limit":1,"windowSeconds":1},{"name":"b","limit":-1,"windowSeconds":1}]`)}, &keys.InvalidError{Field: "rateLimits[1].limit"}},
		{"credits without remaining", op, "alice", keys.OwnerLimitsInput{Credits: raw(`{}`)}, &keys.InvalidError{Field: "credits.remaining"}},
		{"a bad owner", op, "al ice", keys.OwnerLimitsInput{RateLimits: raw("[]")}, &keys.InvalidError{Field: "owner"}},
		{"a caller without admin", keyCaller("contracts"), "alice", keys.OwnerLimitsInput{RateLimits: raw("[]")}, &keys.ForbiddenError{Message: "scope admin required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLimitsEnv(t)
			k := e.create(op, keys.CreateInput{Owner: "alice"})
			e.unchanged(k.ID, func() {
				_, err := e.svc.PutOwnerLimits(e.ctx, tc.caller, tc.owner, tc.in)
				wantErr(t, err, tc.want)
			})
			if _, err := e.store.GetOwnerLimits(e.ctx, "acme", "alice"); err == nil {
				t.Error("a refused change stored owner limits")
			}
		})
	}
}

// A change of the owner's limits that lands between a create's read of
// them and its write fails the write, which reads them again: the key is
// flagged.
func TestCreateRacesOwnerLimits(t *testing.T) {
	e := newLimitsEnv(t)
	other := keys.NewService(e.cfg, e.store, keys.WithClock(e.clock.Now))
	e.use(&racingStore{Store: e.store, race: func() {
		if _, err := other.PutOwnerLimits(e.ctx, op, "alice", keys.OwnerLimitsInput{Credits: raw(`{"remaining":10}`)}); err != nil {
			t.Fatal(err)
		}
	}})
	k := e.create(op, keys.CreateInput{Owner: "alice"})
	if f := e.flags(k.ID); !slices.Equal(f, []string{"[true,1]"}) {
		t.Errorf("a key created while its owner got limits: %v, want flagged", f)
	}
}

// A key edited while the owner's keys are flagged makes that page's
// transaction conflict; the next pass flags it.
func TestOwnerFlagsRaceAnEdit(t *testing.T) {
	e := newLimitsEnv(t)
	alice := e.ownerKeys("alice", 3)
	applies := 0
	e.use(&racingStore{Store: e.store, always: true, race: func() {
		if applies++; applies == 2 { // the walk's first transaction
			if _, err := keys.NewService(e.cfg, e.store, keys.WithClock(e.clock.Now)).Update(e.ctx, op, alice[1], keys.UpdateInput{Name: strp("edited")}); err != nil {
				t.Fatal(err)
			}
		}
	}})
	if _, err := e.svc.PutOwnerLimits(e.ctx, op, "alice", keys.OwnerLimitsInput{RateLimits: raw(`[{"name":"a","limit":1,"windowSeconds":1}]`)}); err != nil {
		t.Fatal(err)
	}
	if f := e.flags(alice...); !slices.Equal(f, repeat("[true,1]", 3)) || e.stored(alice[1]).Name != "edited" {
		t.Errorf("alice's keys %v, want all flagged, the edit kept", f)
	}
}

// A successor continues its predecessor's budget: the same limits,
// credits and window counters as stored, and, during the grace, the old
// key's hash, whose uses count on the successor.
func TestRotateCarriesBudget(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    keys.CreateInput
		grace int
	}{
		{"own limits and credits, with grace", keys.CreateInput{Owner: "alice", RateLimits: raw(`[{"name":"s","limit":9,"windowSeconds":1}]`), Credits: raw(`{"remaining":100,"refill":{"interval":"daily","amount":100}}`)}, 600},
		{"the tier's limits, no grace", keys.CreateInput{Tier: "metered", Owner: "alice"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLimitsEnv(t)
			if _, err := e.svc.PutOwnerLimits(e.ctx, op, "alice", keys.OwnerLimitsInput{RateLimits: raw(`[{"name":"s","limit":50,"windowSeconds":1}]`)}); err != nil {
				t.Fatal(err)
			}
			old := e.create(op, tc.in)
			for range 3 {
				if err := e.store.CountUse(e.ctx, old.ID, 2); err != nil {
					t.Fatal(err)
				}
			}
			before := e.stored(old.ID)
			next, err := e.svc.Rotate(e.ctx, op, old.ID, tc.grace)
			if err != nil {
				t.Fatal(err)
			}
			n, o := e.stored(next.ID), e.stored(old.ID)
			if n.RateLimitsFromTier != before.RateLimitsFromTier || !slices.Equal(n.RateLimits, before.RateLimits) || !n.OwnerLimited ||
				n.LimitsVersion != before.LimitsVersion || !maps.Equal(n.Meter, before.Meter) || n.Meter[keystest.MeterCounter] != 3 {
				t.Errorf("successor %s, meter %v\nof %s, meter %v", describe(n), n.Meter, describe(before), before.Meter)
			}
			wantCredits(t, "successor", n.Credits, before.Credits)
			if n.Usage.TotalRequests != 0 || o.Usage.TotalRequests != 3 {
				t.Errorf("uses: successor %d, old %d; usage stays with each key", n.Usage.TotalRequests, o.Usage.TotalRequests)
			}
			if tc.grace == 0 {
				if n.GraceUntil != nil || n.GraceHash != [32]byte{} {
					t.Errorf("a successor without grace carries the old hash until %v", show(n.GraceUntil))
				}
				return
			}
			if n.GraceHash != before.Hash || !n.GraceUntil.Equal(*o.ExpiresAt) {
				t.Errorf("successor grace %x until %v, want the old key's hash until %v", n.GraceHash, show(n.GraceUntil), show(o.ExpiresAt))
			}
		})
	}
}

// A use counted between a rotation's read and its write fails the write;
// from a fresh read the successor starts with that use counted too.
func TestRotateRacesAUse(t *testing.T) {
	e := newLimitsEnv(t)
	old := e.create(op, keys.CreateInput{Credits: raw(`{"remaining":100}`)})
	e.use(&racingStore{Store: e.store, race: func() {
		if err := e.store.CountUse(e.ctx, old.ID, 7); err != nil {
			t.Fatal(err)
		}
	}})
	next, err := e.svc.Rotate(e.ctx, op, old.ID, 60)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.stored(next.ID); n.Credits.Remaining != 93 || n.Meter[keystest.MeterCounter] != 1 {
		t.Errorf("successor credits %d, meter %v; want the raced use counted", n.Credits.Remaining, n.Meter)
	}
}

// A key in use through every attempt is not rotated: the rotation says
// why, and writes nothing.
func TestRotateGivesUpUnderUse(t *testing.T) {
	e := newLimitsEnv(t)
	old := e.create(op, keys.CreateInput{})
	e.use(&racingStore{Store: e.store, always: true, race: func() {
		if err := e.store.CountUse(e.ctx, old.ID, 0); err != nil {
			t.Error(err)
		}
	}})
	writes := e.store.Writes()
	_, err := e.svc.Rotate(e.ctx, op, old.ID, 60)
	wantErr(t, err, &keys.ConflictError{Message: "rotation: the key's uses kept changing its counts"})
	if e.store.Writes() != writes || e.stored(old.ID).RotatedTo != "" {
		t.Error("a failed rotation wrote")
	}
}
