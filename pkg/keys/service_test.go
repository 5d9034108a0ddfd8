package keys_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/keys/keystest"
	"github.com/keygate/keygate/pkg/token"
)

// t0 is where every test's clock starts.
var t0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

// retention is how long a key that ended stays before it is purged.
var retention = keys.DefaultConfig().Retention

var op = keys.OperatorCaller("acme")

// env is a Service on the fake store, with a clock that moves only when told.
type env struct {
	*testing.T
	ctx   context.Context
	cfg   keys.Config
	store *keystest.Store
	clock *testclock.Clock
	svc   *keys.Service
}

func newEnv(t *testing.T) *env {
	e := &env{T: t, ctx: context.Background(), cfg: keys.DefaultConfig(), store: keystest.NewStore(), clock: testclock.New(t0)}
	e.use(e.store)
	// keyCaller's key exists, active: every change a key makes requires it.
	e.store.Seed(&keys.Key{ID: keyCallerID, Name: "caller", Tier: "internal", Project: "acme", Status: keys.StatusActive, CreatedAt: t0.Add(-time.Hour), UpdatedAt: t0.Add(-time.Hour)})
	return e
}

// use puts the service on s, which may wrap e.store.
func (e *env) use(s keys.Store) {
	e.svc = keys.NewService(e.cfg, s, keys.WithClock(e.clock.Now))
}

// create issues a key; name and tier default to "svc" and "public".
func (e *env) create(c keys.Caller, in keys.CreateInput) *keys.Key {
	e.Helper()
	in.Name, in.Tier = cmp.Or(in.Name, "svc"), cmp.Or(in.Tier, "public")
	created, err := e.svc.Create(e.ctx, c, in)
	if err != nil {
		e.Fatalf("Create(%+v): %v", in, err)
	}
	return created.Key
}

// target is the key most tests change: admin and contracts, pinned to
// 10.0.0.0/8, expiring in 30 days.
func (e *env) target() *keys.Key {
	e.Helper()
	return e.create(op, keys.CreateInput{Scopes: []string{"admin", "contracts"}, IPAllowlist: []string{"10.0.0.0/8"}, ExpiresAt: stamp(30 * 24 * time.Hour)})
}

func (e *env) stored(id string) *keys.Key {
	e.Helper()
	k, err := e.store.GetKey(e.ctx, id)
	if err != nil {
		e.Fatalf("GetKey(%s): %v", id, err)
	}
	return k
}

// events are the audit events of target ("" for all), newest first.
func (e *env) events(target string) []*keys.AuditEvent {
	e.Helper()
	evs, next, err := e.store.ListAudit(e.ctx, keys.AuditQuery{Project: "acme", Target: target, Limit: 100, Now: e.clock.Now()})
	if err != nil || next != "" {
		e.Fatalf("ListAudit: next %q, %v", next, err)
	}
	return evs
}

func (e *env) actions(target string) []string {
	e.Helper()
	var out []string
	for _, ev := range e.events(target) {
		out = append(out, ev.Action)
	}
	return out
}

// unchanged fails if fn writes anything, or the key with that id changes.
func (e *env) unchanged(id string, fn func()) {
	e.Helper()
	writes, before := e.store.Writes(), describe(e.stored(id))
	fn()
	if n := e.store.Writes() - writes; n != 0 {
		e.Errorf("wrote %d times, want nothing written", n)
	}
	if after := describe(e.stored(id)); after != before {
		e.Errorf("key changed:\n%s\nwant\n%s", after, before)
	}
}

func describe(k *keys.Key) string {
	j, _ := json.Marshal(k)
	return string(j) + " version " + strconv.FormatInt(k.Version, 10)
}

// callerOf is key k calling, as the authorizer hands it on.
func callerOf(k *keys.Key) keys.Caller {
	return keys.Caller{Project: k.Project, KeyID: k.ID, Owner: k.Owner, Scopes: k.Scopes, ExpiresAt: k.ExpiresAt}
}

// keyCaller is a key of project acme holding scopes, which no test changes.
func keyCaller(scopes ...string) keys.Caller {
	return keys.Caller{Project: "acme", KeyID: keyCallerID, Owner: "alice", Scopes: scopes}
}

const keyCallerID = "key_0000000000000000000000a1"

// callerFunc gives a table test's caller, from the env and the key acted on.
type callerFunc func(e *env, k *keys.Key) keys.Caller

// self is the key acting on itself.
func self(_ *env, k *keys.Key) keys.Caller { return callerOf(k) }

// as is caller c, whatever the key.
func as(c keys.Caller) callerFunc { return func(*env, *keys.Key) keys.Caller { return c } }

func timeBoxed(c keys.Caller, d time.Duration) keys.Caller {
	c.ExpiresAt = at(d)
	return c
}

// at is t0 + d.
func at(d time.Duration) *time.Time {
	t := t0.Add(d)
	return &t
}

// stamp is t0 + d in RFC 3339, as CreateInput takes it.
func stamp(d time.Duration) *string {
	s := t0.Add(d).Format(time.RFC3339Nano)
	return &s
}

// rawStamp is t0 + d as UpdateInput takes it.
func rawStamp(d time.Duration) json.RawMessage { return json.RawMessage(strconv.Quote(*stamp(d))) }

func strp(s string) *string { return &s }

func list(s ...string) *[]string {
	if s == nil {
		s = []string{}
	}
	return &s
}

// wantErr checks err against want: an *InvalidError on want's field, a
// *ForbiddenError or *ConflictError whose message holds want's, or an
// error wrapping want.
func wantErr(t *testing.T, err, want error) {
	t.Helper()
	switch want := want.(type) {
	case *keys.InvalidError:
		var got *keys.InvalidError
		if !errors.As(err, &got) || got.Field != want.Field {
			t.Errorf("err = %v, want an InvalidError on field %q", err, want.Field)
		}
	case *keys.ForbiddenError:
		var got *keys.ForbiddenError
		if !errors.As(err, &got) || !strings.Contains(got.Message, want.Message) {
			t.Errorf("err = %v, want a ForbiddenError saying %q", err, want.Message)
		}
	case *keys.ConflictError:
		var got *keys.ConflictError
		if !errors.As(err, &got) || !strings.Contains(got.Message, want.Message) {
			t.Errorf("err = %v, want a ConflictError saying %q", err, want.Message)
		}
	default:
		if !errors.Is(err, want) {
			t.Errorf("err = %v, want %v", err, want)
		}
	}
}

func wantTime(t *testing.T, what string, got, want *time.Time) {
	t.Helper()
	if (got == nil) != (want == nil) || got != nil && !got.Equal(*want) {
		t.Errorf("%s = %v, want %v", what, show(got), show(want))
	}
}

func show(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.Format(time.RFC3339Nano)
}

func TestCreateRefuses(t *testing.T) {
	admin := keyCaller("admin", "contracts")
	valid := keys.CreateInput{Name: "svc", Tier: "public", Scopes: []string{"contracts"}}
	if _, err := newEnv(t).svc.Create(context.Background(), admin, valid); err != nil {
		t.Fatalf("the valid input is refused: %v", err)
	}
	with := func(change func(*keys.CreateInput)) keys.CreateInput {
		in := valid
		change(&in)
		return in
	}
	for _, tc := range []struct {
		name   string
		caller keys.Caller
		in     keys.CreateInput
		want   error
	}{
		{"blank name", admin, with(func(in *keys.CreateInput) { in.Name = "  " }), &keys.InvalidError{Field: "name"}},
		{"long name", admin, with(func(in *keys.CreateInput) { in.Name = strings.Repeat("n", keys.MaxNameLen+1) }), &keys.InvalidError{Field: "name"}},
		{"bidi override in name", admin, with(func(in *keys.CreateInput) { in.Name = "pay\u202eroll" }), &keys.InvalidError{Field: "name"}},
		{"no tier", admin, with(func(in *keys.CreateInput) { in.Tier = "" }), &keys.InvalidError{Field: "tier"}},
		{"unknown tier", admin, with(func(in *keys.CreateInput) { in.Tier = "gold" }), &keys.InvalidError{Field: "tier"}},
		{"bad owner", admin, with(func(in *keys.CreateInput) { in.Owner = "a/b" }), &keys.InvalidError{Field: "owner"}},
		{"unknown scope", admin, with(func(in *keys.CreateInput) { in.Scopes = []string{"root"} }), &keys.InvalidError{Field: "scopes"}},
		{"unknown mode", admin, with(func(in *keys.CreateInput) { in.Mode = strp("fast") }), &keys.InvalidError{Field: "mode"}},
		{"mode in capitals", admin, with(func(in *keys.CreateInput) { in.Mode = strp("LEASED") }), &keys.InvalidError{Field: "mode"}},
		{"mode with an invisible character", admin, with(func(in *keys.CreateInput) { in.Mode = strp("leased\u200b") }), &keys.InvalidError{Field: "mode"}},
		{"bad allowlist entry", admin, with(func(in *keys.CreateInput) { in.IPAllowlist = []string{"10.0.0.0/33"} }), &keys.InvalidError{Field: "ipAllowlist"}},
		{"metadata not an object", admin, with(func(in *keys.CreateInput) { in.Metadata = json.RawMessage(`[1]`) }), &keys.InvalidError{Field: "metadata"}},
		{"metadata key twice", admin, with(func(in *keys.CreateInput) { in.Metadata = json.RawMessage(`{"a":1,"a":2}`) }), &keys.InvalidError{Field: "metadata.a"}},
		{"expiry not a time", admin, with(func(in *keys.CreateInput) { in.ExpiresAt = strp("tomorrow") }), &keys.InvalidError{Field: "expiresAt"}},
		{"expiry now", admin, with(func(in *keys.CreateInput) { in.ExpiresAt = stamp(0) }), &keys.InvalidError{Field: "expiresAt"}},
		{"scope the caller lacks", admin, with(func(in *keys.CreateInput) { in.Scopes = []string{"contracts", "payments"} }), &keys.ForbiddenError{Message: `cannot grant scope "payments"`}},
		{"caller without admin", keyCaller("contracts"), valid, &keys.ForbiddenError{Message: "scope admin required"}},
		{"caller without a project", keys.Caller{Operator: true}, valid, keys.ErrUnauthorized},
		{"expiry after the time-boxed caller's", timeBoxed(admin, 24*time.Hour), with(func(in *keys.CreateInput) { in.ExpiresAt = stamp(24*time.Hour + time.Millisecond) }), &keys.ForbiddenError{Message: "calling key expires"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			created, err := e.svc.Create(e.ctx, tc.caller, tc.in)
			wantErr(t, err, tc.want)
			if created != nil || e.store.Writes() != 0 {
				t.Errorf("created %v with %d writes, want nothing", created, e.store.Writes())
			}
		})
	}
}

func TestCreate(t *testing.T) {
	admin := keyCaller("admin", "contracts")
	boxed := timeBoxed(admin, 24*time.Hour)
	for _, tc := range []struct {
		name      string
		caller    keys.Caller
		in        keys.CreateInput
		owner     string
		createdBy string
		expiresAt *time.Time
	}{
		{"by the operator", op, keys.CreateInput{}, "", keys.ActorOperator, nil},
		{"owner from the calling key", admin, keys.CreateInput{}, "alice", admin.KeyID, nil},
		{"owner given", admin, keys.CreateInput{Owner: "bob@example.com"}, "bob@example.com", admin.KeyID, nil},
		{"expiry from the time-boxed caller", boxed, keys.CreateInput{}, "alice", admin.KeyID, at(24 * time.Hour)},
		{"expiry before the caller's", boxed, keys.CreateInput{ExpiresAt: stamp(time.Hour)}, "alice", admin.KeyID, at(time.Hour)},
		{"expiry equal to the caller's", boxed, keys.CreateInput{ExpiresAt: stamp(24 * time.Hour)}, "alice", admin.KeyID, at(24 * time.Hour)},
		{"expiry in another zone, to the millisecond", op, keys.CreateInput{ExpiresAt: strp("2030-01-02T13:00:00.1239+01:00")}, "", keys.ActorOperator, at(24*time.Hour + 123*time.Millisecond)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			in := tc.in
			in.Name, in.Tier, in.Scopes = "svc", "partner", []string{"contracts"}
			created, err := e.svc.Create(e.ctx, tc.caller, in)
			if err != nil {
				t.Fatal(err)
			}
			k := e.stored(created.ID)
			if k.Owner != tc.owner || k.CreatedBy != tc.createdBy || k.Status != keys.StatusActive || !k.CreatedAt.Equal(t0) {
				t.Errorf("owner %q, createdBy %q, status %s, createdAt %v; want %q, %q, active, %v", k.Owner, k.CreatedBy, k.Status, k.CreatedAt, tc.owner, tc.createdBy, t0)
			}
			wantTime(t, "expiresAt", k.ExpiresAt, tc.expiresAt)
			var purge *time.Time
			if tc.expiresAt != nil {
				purge = at(tc.expiresAt.Sub(t0) + retention)
			}
			wantTime(t, "purgeAt", k.PurgeAt, purge)
			// The raw key is the stored key's only secret, and it names it.
			raw := created.RawKey
			if !strings.HasPrefix(raw, "kg_pt_") || k.Hash != token.Hash(raw) || k.ID != token.ID(k.Hash) || k.Start != token.DisplayPrefix(raw) || created.ID != k.ID {
				t.Errorf("raw key %q does not match the stored key %s (start %q)", raw, k.ID, k.Start)
			}
			evs := e.events(k.ID)
			if len(evs) != 1 || evs[0].Action != keys.ActionCreated || evs[0].Actor != tc.createdBy || !evs[0].Time.Equal(t0) || e.store.Writes() != 1 {
				t.Errorf("events %v after %d writes, want one key.created by %s", evs, e.store.Writes(), tc.createdBy)
			}
		})
	}
}

func TestCreateNormalizes(t *testing.T) {
	e := newEnv(t)
	k := e.create(op, keys.CreateInput{
		Name: "  Billing  ", Scopes: []string{"contracts", "admin", "contracts"},
		IPAllowlist: []string{" 10.1.2.3/8 ", "2001:DB8::1", "10.0.0.0/8"}, Metadata: json.RawMessage(`{ "team" : "core" }`),
	})
	got := e.stored(k.ID)
	if got.Name != "Billing" || !slices.Equal(got.Scopes, []string{"admin", "contracts"}) ||
		!slices.Equal(got.IPAllowlist, []string{"10.0.0.0/8", "2001:db8::1"}) || string(got.Metadata) != `{"team":"core"}` {
		t.Errorf("stored %s", describe(got))
	}
	changes, _ := e.events(k.ID)[0].MarshalChanges()
	want := `{"ipAllowlist":{"from":null,"to":["10.0.0.0/8","2001:db8::1"]},"metadata":{"from":null,"to":{"team":"core"}},"name":{"from":null,"to":"Billing"},"scopes":{"from":null,"to":["admin","contracts"]},"tier":{"from":null,"to":"public"}}`
	if changes != want {
		t.Errorf("event changes = %s\nwant %s", changes, want)
	}
}

// Get and Revoke answer ErrNotFound for any key the caller may not see, so
// that ids cannot be probed.
func TestGet(t *testing.T) {
	e := newEnv(t)
	k := e.target()
	e.clock.Advance(30 * 24 * time.Hour)
	got, err := e.svc.Get(e.ctx, op, k.ID)
	if err != nil || got.Status != keys.StatusExpired {
		t.Fatalf("Get of a key past its expiry: %v, %v; want status expired", got, err)
	}
	if s := e.stored(k.ID).Status; s != keys.StatusActive {
		t.Errorf("stored status = %s: presenting the key changed the store", s)
	}
	for _, tc := range []struct {
		name   string
		caller keys.Caller
		id     string
		after  time.Duration
	}{
		{"another project's key", keys.OperatorCaller("globex"), k.ID, 0},
		{"unknown id", op, "key_000000000000000000000000", 0},
		{"malformed id", op, "key_nope", 0},
		{"purged key", op, k.ID, retention},
	} {
		e.clock.Advance(tc.after)
		if _, err := e.svc.Get(e.ctx, tc.caller, tc.id); !errors.Is(err, keys.ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", tc.name, err)
		}
	}
}

func TestList(t *testing.T) {
	e := newEnv(t)
	var all []string
	for i := range 7 {
		in := keys.CreateInput{}
		if i%2 == 0 {
			in.ExpiresAt = stamp(time.Hour)
		}
		all = append(all, e.create(op, in).ID)
		e.clock.Advance(time.Millisecond)
	}
	slices.Reverse(all)
	all = append(all, keyCallerID) // the oldest key: see newEnv
	e.clock.Advance(time.Hour)

	var listed []string
	in := keys.ListInput{Limit: 3}
	for {
		page, err := e.svc.List(e.ctx, op, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page.Items {
			listed = append(listed, k.ID)
			want := keys.StatusActive
			if k.ExpiresAt != nil {
				want = keys.StatusExpired
			}
			if k.Status != want {
				t.Errorf("%s listed %s, want %s", k.ID, k.Status, want)
			}
		}
		if page.NextCursor == "" {
			break
		}
		in.Cursor = page.NextCursor
	}
	if !slices.Equal(listed, all) {
		t.Errorf("listed %v, want %v", listed, all)
	}
	page, err := e.svc.List(e.ctx, op, keys.ListInput{Filter: keys.KeyFilter{Status: keys.StatusExpired}})
	if err != nil || len(page.Items) != 4 {
		t.Errorf("expired keys: %d, %v; want 4", len(page.Items), err)
	}
}

func TestListRefuses(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		caller keys.Caller
		in     keys.ListInput
		want   error
	}{
		{"unknown status", op, keys.ListInput{Filter: keys.KeyFilter{Status: "paused"}}, &keys.InvalidError{Field: "status"}},
		{"unknown tier", op, keys.ListInput{Filter: keys.KeyFilter{Tier: "gold"}}, &keys.InvalidError{Field: "tier"}},
		{"bad owner", op, keys.ListInput{Filter: keys.KeyFilter{Owner: "a/b"}}, &keys.InvalidError{Field: "owner"}},
		{"creator not a key", op, keys.ListInput{Filter: keys.KeyFilter{CreatedBy: "bob"}}, &keys.InvalidError{Field: "createdBy"}},
		{"limit too large", op, keys.ListInput{Limit: keys.MaxPageSize + 1}, &keys.InvalidError{Field: "limit"}},
		{"negative limit", op, keys.ListInput{Limit: -1}, &keys.InvalidError{Field: "limit"}},
		{"bad cursor", op, keys.ListInput{Cursor: "xyz"}, &keys.InvalidError{Field: "cursor"}},
		{"caller without admin", keyCaller("contracts"), keys.ListInput{}, &keys.ForbiddenError{Message: "scope admin required"}},
	} {
		_, err := e.svc.List(e.ctx, tc.caller, tc.in)
		t.Run(tc.name, func(t *testing.T) { wantErr(t, err, tc.want) })
	}
}

func TestUpdateRefuses(t *testing.T) {
	revoked := func(e *env, k *keys.Key) keys.Caller {
		if err := e.svc.Revoke(e.ctx, op, k.ID); err != nil {
			e.Fatal(err)
		}
		return op
	}
	for _, tc := range []struct {
		name  string
		setup callerFunc
		in    keys.UpdateInput
		want  error
	}{
		{"revoked key reactivated", revoked, keys.UpdateInput{Status: strp("active")}, &keys.ConflictError{Message: "never reactivated"}},
		{"revoked key renamed", revoked, keys.UpdateInput{Name: strp("x")}, &keys.ConflictError{Message: "revoked"}},
		{"expired key renamed", func(e *env, _ *keys.Key) keys.Caller { e.clock.Advance(30 * 24 * time.Hour); return op }, keys.UpdateInput{Name: strp("x")}, &keys.ConflictError{Message: "expired"}},
		{"key extends its own expiry", self, keys.UpdateInput{ExpiresAt: rawStamp(31 * 24 * time.Hour)}, &keys.ForbiddenError{Message: "cannot extend its own life"}},
		{"key removes its own expiry", self, keys.UpdateInput{ExpiresAt: json.RawMessage("null")}, &keys.ForbiddenError{Message: "cannot extend its own life"}},
		{"key widens its own allowlist", self, keys.UpdateInput{IPAllowlist: list("10.0.0.0/7")}, &keys.ForbiddenError{Message: "cannot widen its own allowlist"}},
		{"key adds to its own allowlist", self, keys.UpdateInput{IPAllowlist: list("10.0.0.0/8", "192.0.2.1")}, &keys.ForbiddenError{Message: "cannot widen its own allowlist"}},
		{"key clears its own allowlist", self, keys.UpdateInput{IPAllowlist: list()}, &keys.ForbiddenError{Message: "cannot widen its own allowlist"}},
		{"key puts itself in leased mode", self, keys.UpdateInput{Mode: json.RawMessage(`"leased"`)}, &keys.ForbiddenError{Message: "cannot put itself in leased mode"}},
		{"caller lacks a scope of the key", as(keyCaller("admin")), keys.UpdateInput{Name: strp("x")}, &keys.ForbiddenError{Message: `holds scope "contracts"`}},
		{"caller grants a scope it lacks", as(keyCaller("admin", "contracts")), keys.UpdateInput{Scopes: list("admin", "payments")}, &keys.ForbiddenError{Message: `cannot grant scope "payments"`}},
		{"time-boxed caller gives a longer life", as(timeBoxed(keyCaller("admin", "contracts"), 24*time.Hour)), keys.UpdateInput{ExpiresAt: rawStamp(48 * time.Hour)}, &keys.ForbiddenError{Message: "calling key expires"}},
		{"time-boxed caller removes the expiry", as(timeBoxed(keyCaller("admin", "contracts"), 24*time.Hour)), keys.UpdateInput{ExpiresAt: json.RawMessage("null")}, &keys.ForbiddenError{Message: "calling key expires"}},
		{"rotated key's grace extended", func(e *env, k *keys.Key) keys.Caller {
			if _, err := e.svc.Rotate(e.ctx, op, k.ID, 600); err != nil {
				e.Fatal(err)
			}
			return op
		}, keys.UpdateInput{ExpiresAt: rawStamp(time.Hour)}, &keys.ConflictError{Message: "grace period"}},
		{"no field", as(op), keys.UpdateInput{}, &keys.InvalidError{Field: ""}},
		{"unknown status", as(op), keys.UpdateInput{Status: strp("paused")}, &keys.InvalidError{Field: "status"}},
		{"unknown mode", as(op), keys.UpdateInput{Mode: json.RawMessage(`"fast"`)}, &keys.InvalidError{Field: "mode"}},
		{"mode not a string", as(op), keys.UpdateInput{Mode: json.RawMessage(`1`)}, &keys.InvalidError{Field: "mode"}},
		{"expiry in the past", as(op), keys.UpdateInput{ExpiresAt: rawStamp(-time.Second)}, &keys.InvalidError{Field: "expiresAt"}},
		{"expiry not a time", as(op), keys.UpdateInput{ExpiresAt: json.RawMessage("123")}, &keys.InvalidError{Field: "expiresAt"}},
		{"metadata not an object", as(op), keys.UpdateInput{Metadata: json.RawMessage(`"x"`)}, &keys.InvalidError{Field: "metadata"}},
		{"another project's key", as(keys.OperatorCaller("globex")), keys.UpdateInput{Name: strp("x")}, keys.ErrNotFound},
		{"caller without admin", as(keyCaller("contracts")), keys.UpdateInput{Name: strp("x")}, &keys.ForbiddenError{Message: "scope admin required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			k := e.target()
			caller := tc.setup(e, k)
			e.unchanged(k.ID, func() {
				got, err := e.svc.Update(e.ctx, caller, k.ID, tc.in)
				wantErr(t, err, tc.want)
				if got != nil {
					t.Errorf("Update returned %v", describe(got))
				}
			})
		})
	}
}

func TestUpdate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		caller  callerFunc
		in      keys.UpdateInput
		action  string
		changes []string
		check   func(k *keys.Key) bool
	}{
		{"rename", as(op), keys.UpdateInput{Name: strp(" renamed ")}, keys.ActionUpdated, []string{"name"},
			func(k *keys.Key) bool { return k.Name == "renamed" }},
		{"mode of its own", as(op), keys.UpdateInput{Mode: json.RawMessage(`"leased"`)}, keys.ActionUpdated, []string{"mode"},
			func(k *keys.Key) bool { return k.Mode == keys.ModeLeased && !k.ModeFromTier }},
		{"key shortens its own expiry", self, keys.UpdateInput{ExpiresAt: rawStamp(24 * time.Hour)}, keys.ActionUpdated, []string{"expiresAt"},
			func(k *keys.Key) bool {
				return k.ExpiresAt.Equal(*at(24 * time.Hour)) && k.PurgeAt.Equal(*at(24*time.Hour + retention))
			}},
		{"key narrows its own allowlist", self, keys.UpdateInput{IPAllowlist: list("10.1.0.0/16")}, keys.ActionUpdated, []string{"ipAllowlist"},
			func(k *keys.Key) bool { return slices.Equal(k.IPAllowlist, []string{"10.1.0.0/16"}) }},
		{"another key widens the allowlist", as(keyCaller("admin", "contracts")), keys.UpdateInput{IPAllowlist: list()}, keys.ActionUpdated, []string{"ipAllowlist"},
			func(k *keys.Key) bool { return len(k.IPAllowlist) == 0 }},
		{"time-boxed caller shortens the expiry to within its own", as(timeBoxed(keyCaller("admin", "contracts"), 24*time.Hour)), keys.UpdateInput{ExpiresAt: rawStamp(12 * time.Hour)}, keys.ActionUpdated, []string{"expiresAt"},
			func(k *keys.Key) bool { return k.ExpiresAt.Equal(*at(12 * time.Hour)) }},
		{"operator removes the expiry", as(op), keys.UpdateInput{ExpiresAt: json.RawMessage("null")}, keys.ActionUpdated, []string{"expiresAt"},
			func(k *keys.Key) bool { return k.ExpiresAt == nil && k.PurgeAt == nil }},
		{"scopes narrowed", as(keyCaller("admin", "contracts")), keys.UpdateInput{Scopes: list("admin")}, keys.ActionUpdated, []string{"scopes"},
			func(k *keys.Key) bool { return slices.Equal(k.Scopes, []string{"admin"}) }},
		{"metadata compacted", as(op), keys.UpdateInput{Metadata: json.RawMessage(`{ "n" : 12345678901234567890123 }`)}, keys.ActionUpdated, []string{"metadata"},
			func(k *keys.Key) bool { return string(k.Metadata) == `{"n":12345678901234567890123}` }},
		{"status revoked", as(op), keys.UpdateInput{Status: strp("revoked")}, keys.ActionRevoked, []string{"status"},
			func(k *keys.Key) bool {
				return k.Status == keys.StatusRevoked && k.RevokedAt.Equal(*at(time.Minute)) && k.PurgeAt.Equal(*at(time.Minute + retention))
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			k := e.target()
			e.clock.Advance(time.Minute) // so that the update's event lists first
			caller := tc.caller(e, k)
			got, err := e.svc.Update(e.ctx, caller, k.ID, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			stored := e.stored(k.ID)
			if !tc.check(stored) || stored.Version != 1 || got.Version != 1 || e.store.Writes() != 2 {
				t.Errorf("stored %s after %d writes", describe(stored), e.store.Writes())
			}
			if got.Name != stored.Name || !slices.Equal(got.Scopes, stored.Scopes) {
				t.Errorf("returned %s, stored %s", describe(got), describe(stored))
			}
			ev := e.events(k.ID)[0]
			var changed []string
			for field := range ev.Changes {
				changed = append(changed, field)
			}
			slices.Sort(changed)
			actor := cmp.Or(caller.KeyID, keys.ActorOperator)
			if ev.Action != tc.action || !slices.Equal(changed, tc.changes) || ev.Actor != actor {
				t.Errorf("event %s by %s changing %v, want %s by %s changing %v", ev.Action, ev.Actor, changed, tc.action, actor, tc.changes)
			}
		})
	}
}

// A patch that changes nothing writes nothing, however it is spelled.
func TestUpdateNoOp(t *testing.T) {
	for _, tc := range []struct {
		name    string
		revoked bool
		in      keys.UpdateInput
	}{
		{"same name", false, keys.UpdateInput{Name: strp(" svc ")}},
		{"same scopes in another order", false, keys.UpdateInput{Scopes: list("contracts", "admin", "admin")}},
		{"same allowlist in another notation", false, keys.UpdateInput{IPAllowlist: list("10.9.8.7/8")}},
		{"same expiry in another zone", false, keys.UpdateInput{ExpiresAt: json.RawMessage(`"2030-01-31T13:00:00+01:00"`)}},
		{"no metadata cleared", false, keys.UpdateInput{Metadata: json.RawMessage("null")}},
		{"active on an active key", false, keys.UpdateInput{Status: strp("active")}},
		{"revoked on a revoked key", true, keys.UpdateInput{Status: strp("revoked")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			k := e.target()
			if tc.revoked {
				if err := e.svc.Revoke(e.ctx, op, k.ID); err != nil {
					t.Fatal(err)
				}
			}
			e.unchanged(k.ID, func() {
				if got, err := e.svc.Update(e.ctx, op, k.ID, tc.in); err != nil || got.ID != k.ID {
					t.Errorf("Update = %v, %v", got, err)
				}
			})
		})
	}
}

func TestRevoke(t *testing.T) {
	e := newEnv(t)
	k := e.target()
	e.clock.Advance(time.Minute)
	// Taking power away needs admin only, not the key's other scopes.
	caller := keyCaller("admin")
	caller.SourceIP = "198.51.100.7"
	if err := e.svc.Revoke(e.ctx, caller, k.ID); err != nil {
		t.Fatal(err)
	}
	got := e.stored(k.ID)
	now := t0.Add(time.Minute)
	if got.Status != keys.StatusRevoked || !got.RevokedAt.Equal(now) || !got.UpdatedAt.Equal(now) || !got.PurgeAt.Equal(now.Add(retention)) || got.Version != 1 {
		t.Errorf("after revoke: %s, purge %v", describe(got), show(got.PurgeAt))
	}
	ev := e.events(k.ID)[0]
	changes, _ := ev.MarshalChanges()
	if ev.Action != keys.ActionRevoked || ev.Actor != caller.KeyID || ev.SourceIP != caller.SourceIP || changes != `{"status":{"from":"active","to":"revoked"}}` {
		t.Errorf("event %+v, changes %s", ev, changes)
	}
	e.clock.Advance(time.Minute)
	e.unchanged(k.ID, func() {
		if err := e.svc.Revoke(e.ctx, op, k.ID); err != nil {
			t.Errorf("second revoke: %v", err)
		}
	})
}

func TestRevokeRefusesOrSkips(t *testing.T) {
	for _, tc := range []struct {
		name   string
		after  time.Duration
		caller keys.Caller
		id     string // "" for the target
		want   error  // nil: succeeds, writing nothing
	}{
		{"expired key", 30 * 24 * time.Hour, op, "", nil},
		{"purged key", 30*24*time.Hour + retention, op, "", keys.ErrNotFound},
		{"another project's key", 0, keys.OperatorCaller("globex"), "", keys.ErrNotFound},
		{"unknown id", 0, op, "key_000000000000000000000000", keys.ErrNotFound},
		{"malformed id", 0, op, "nope", keys.ErrNotFound},
		{"caller without admin", 0, keyCaller("contracts"), "", &keys.ForbiddenError{Message: "scope admin required"}},
		{"caller without a project", 0, keys.Caller{Operator: true}, "", keys.ErrUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			k := e.target()
			e.clock.Advance(tc.after)
			e.unchanged(k.ID, func() {
				err := e.svc.Revoke(e.ctx, tc.caller, cmp.Or(tc.id, k.ID))
				if tc.want == nil && err != nil {
					t.Errorf("err = %v, want none", err)
				} else if tc.want != nil {
					wantErr(t, err, tc.want)
				}
			})
		})
	}
}

// A store that fails fails the operation, and nothing is written.
func TestStoreFailure(t *testing.T) {
	for name, run := range map[string]func(e *env, k *keys.Key) error{
		"create": func(e *env, _ *keys.Key) error {
			_, err := e.svc.Create(e.ctx, op, keys.CreateInput{Name: "x", Tier: "public"})
			return err
		},
		"update": func(e *env, k *keys.Key) error {
			_, err := e.svc.Update(e.ctx, op, k.ID, keys.UpdateInput{Name: strp("x")})
			return err
		},
		"rotate": func(e *env, k *keys.Key) error { _, err := e.svc.Rotate(e.ctx, op, k.ID, 0); return err },
		"revoke": func(e *env, k *keys.Key) error { return e.svc.Revoke(e.ctx, op, k.ID) },
		"revoke owner": func(e *env, _ *keys.Key) error {
			n, err := e.svc.RevokeOwner(e.ctx, op, "alice", true)
			if n != 0 {
				e.Errorf("revoked %d", n)
			}
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			k := e.create(op, keys.CreateInput{Owner: "alice"})
			e.store.FailWith(keys.ErrUnavailable)
			e.unchanged(k.ID, func() {
				if err := run(e, k); !errors.Is(err, keys.ErrUnavailable) {
					t.Errorf("err = %v, want ErrUnavailable", err)
				}
			})
			if n := len(e.events("")); n != 1 {
				t.Errorf("%d events, want only the creation's", n)
			}
		})
	}
}

// An edit that loses every race gives up, as a conflict, after a few tries.
func TestUpdateGivesUpOnConflicts(t *testing.T) {
	e := newEnv(t)
	k := e.target()
	e.store.FailWith(keys.ErrConflict)
	e.unchanged(k.ID, func() {
		_, err := e.svc.Update(e.ctx, op, k.ID, keys.UpdateInput{Name: strp("x")})
		wantErr(t, err, keys.ErrConflict)
	})
}

// A key cannot put itself in leased mode, which sees a revocation up to a
// second late: not by its own mode, nor by going back to a leased tier's.
func TestKeyCannotLeaseItself(t *testing.T) {
	e := newEnv(t)
	hot := keys.WindowTier("hot", "ht", 1000, time.Second)
	hot.Mode = keys.ModeLeased
	e.cfg.Tiers = append(e.cfg.Tiers, hot)
	e.use(e.store)
	exact := "exact"
	k := e.create(op, keys.CreateInput{Tier: "hot", Scopes: []string{"admin"}, Mode: &exact})
	for _, mode := range []string{`"leased"`, `null`} {
		_, err := e.svc.Update(e.ctx, callerOf(k), k.ID, keys.UpdateInput{Mode: json.RawMessage(mode)})
		wantErr(t, err, &keys.ForbiddenError{Message: "cannot put itself in leased mode"})
	}
	if got, err := e.svc.Update(e.ctx, op, k.ID, keys.UpdateInput{Mode: json.RawMessage(`null`)}); err != nil || got.Mode != keys.ModeLeased || !got.ModeFromTier {
		t.Errorf("the operator returns it to its tier's mode: %v, %v", got, err)
	}
}
