package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/keys"
)

func TestRotateKey(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{TTL: true})
	old := e.create(&admin, `{"name":"svc","tier":"partner","scopes":["contracts"],"ipAllowlist":["192.0.2.1"],"owner":"alice","metadata":{"env":"prod"}}`)

	r := e.do(&admin, "POST", "/v1/api-keys/"+old.ID+"/rotate", `{"gracePeriodSeconds":3600}`)
	must(t, r.Status == 201, "rotate: %d %+v", r.Status, r.Error)
	next := decode[keyView](t, r.Data)
	must(t, next.Key != "" && next.ID != old.ID && next.RotatedFrom == old.ID, "successor: %+v", next)
	must(t, next.Name == old.Name && next.Tier == old.Tier && next.Owner == old.Owner && slices.Equal(next.Scopes, old.Scopes) &&
		slices.Equal(next.IPAllowlist, old.IPAllowlist) && string(next.Metadata) == string(old.Metadata), "successor differs: %+v vs %+v", next, old)

	got := decode[keyView](t, e.do(&admin, "GET", "/v1/api-keys/"+old.ID, "").Data)
	must(t, got.RotatedTo == next.ID && got.Status == "active" && got.ExpiresAt.Equal(e.clock.Now().Add(time.Hour)), "old key after rotation: %+v", got)

	for _, tc := range []struct{ name, id, body string }{
		{"already rotated", old.ID, `{}`},
	} {
		r := e.do(&admin, "POST", "/v1/api-keys/"+tc.id+"/rotate", tc.body)
		must(t, r.Status == 409, "%s: %d %+v", tc.name, r.Status, r.Error)
	}
	e.clock.Advance(time.Hour)
	got = decode[keyView](t, e.do(&admin, "GET", "/v1/api-keys/"+old.ID, "").Data)
	must(t, got.Status == "expired", "old key after grace: %s", got.Status)

	// Grace 0 ends the old key at once; a revoked or expired key cannot rotate.
	zero := e.do(&admin, "POST", "/v1/api-keys/"+next.ID+"/rotate", `{"gracePeriodSeconds":0}`)
	must(t, zero.Status == 201, "rotate with grace 0: %d", zero.Status)
	must(t, decode[keyView](t, e.do(&admin, "GET", "/v1/api-keys/"+next.ID, "").Data).Status == "expired", "grace 0 left the key usable")
	must(t, e.do(&admin, "POST", "/v1/api-keys/"+next.ID+"/rotate", `{}`).Status == 409, "rotated an expired key")
	revoked := e.create(&admin, `{"name":"r","tier":"public"}`)
	e.do(&admin, "DELETE", "/v1/api-keys/"+revoked.ID, "")
	must(t, e.do(&admin, "POST", "/v1/api-keys/"+revoked.ID+"/rotate", "").Status == 409, "rotated a revoked key")

	before := e.snapshot()
	fresh := e.create(&admin, `{"name":"f","tier":"public"}`)
	before = e.snapshot()
	for _, body := range []string{`{"gracePeriodSeconds":-1}`, `{"gracePeriodSeconds":604801}`, `{"gracePeriodSeconds":"1"}`, `{"grace":1}`} {
		r := e.do(&admin, "POST", "/v1/api-keys/"+fresh.ID+"/rotate", body)
		must(t, r.Status == 400, "rotate %s: %d", body, r.Status)
	}
	must(t, e.snapshot() == before, "a refused rotation wrote to the table")
	// The default grace is a day.
	def := e.do(&admin, "POST", "/v1/api-keys/"+fresh.ID+"/rotate", "")
	must(t, def.Status == 201, "rotate with no body: %d %+v", def.Status, def.Error)
	got = decode[keyView](t, e.do(&admin, "GET", "/v1/api-keys/"+fresh.ID, "").Data)
	must(t, got.ExpiresAt.Equal(e.clock.Now().Add(24*time.Hour)), "default grace: %v", got.ExpiresAt)
}

func TestRevokeOwner(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{TTL: true})
	// More keys than one transaction and one page hold.
	const n = keys.MaxTxKeys*2 + 7
	for i := range n {
		e.create(&admin, fmt.Sprintf(`{"name":"k%d","tier":"public","owner":"leaver"}`, i))
	}
	stay := e.create(&admin, `{"name":"stays","tier":"public","owner":"stayer"}`)
	other := caller{project: "globex", keyID: "key_000000000000000000000002", scopes: "admin"}
	theirs := e.create(&other, `{"name":"theirs","tier":"public","owner":"leaver"}`)

	r := e.do(&admin, "POST", "/v1/owners/leaver/revoke", "")
	must(t, r.Status == 200, "revoke owner: %d %+v", r.Status, r.Error)
	must(t, string(r.Data) == fmt.Sprintf(`{"revoked":%d}`, n), "revoked: %s", r.Data)
	r = e.do(&admin, "POST", "/v1/owners/leaver/revoke", "")
	must(t, string(r.Data) == `{"revoked":0}`, "second call: %s", r.Data)

	active := decode[[]keyView](t, e.do(&admin, "GET", "/v1/api-keys?owner=leaver&status=active", "").Data)
	must(t, len(active) == 0, "%d keys of the leaver still active", len(active))
	must(t, decode[keyView](t, e.do(&admin, "GET", "/v1/api-keys/"+stay.ID, "").Data).Status == "active", "another owner's key was revoked")
	must(t, decode[keyView](t, e.do(&other, "GET", "/v1/api-keys/"+theirs.ID, "").Data).Status == "active", "another project's key was revoked")

	events := e.auditAll(&admin, "action=owner.revoked")
	must(t, len(events) == n, "%d owner.revoked events, want %d", len(events), n)
	must(t, e.do(&admin, "POST", "/v1/owners/-x/revoke", "").Status == 400, "bad owner accepted")
}

type eventView struct {
	ID       string         `json:"id"`
	Project  string         `json:"project"`
	Actor    string         `json:"actor"`
	Action   string         `json:"action"`
	Target   string         `json:"target"`
	Changes  map[string]any `json:"changes"`
	SourceIP string         `json:"sourceIp"`
	Time     time.Time      `json:"time"`
}

func (e *env) auditAll(c *caller, query string) []eventView {
	e.t.Helper()
	var all []eventView
	cursor := ""
	for pages := 0; ; pages++ {
		must(e.t, pages < 100, "audit pagination does not end")
		target := "/v1/audit?limit=7&" + query
		if cursor != "" {
			target += "&cursor=" + cursor
		}
		r := e.do(c, "GET", target, "")
		must(e.t, r.Status == 200, "audit %s: %d %+v", target, r.Status, r.Error)
		all = append(all, decode[[]eventView](e.t, r.Data)...)
		if r.NextCursor == "" {
			return all
		}
		cursor = r.NextCursor
	}
}

func TestAuditTrail(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{TTL: true})
	k := e.create(&admin, `{"name":"a","tier":"public"}`)
	e.clock.Advance(time.Second)
	e.do(&admin, "PATCH", "/v1/api-keys/"+k.ID, `{"name":"b"}`)
	e.clock.Advance(time.Second)
	rot := decode[keyView](t, e.do(&admin, "POST", "/v1/api-keys/"+k.ID+"/rotate", `{"gracePeriodSeconds":0}`).Data)
	e.clock.Advance(time.Second)
	e.do(&admin, "DELETE", "/v1/api-keys/"+rot.ID, "")
	other := caller{project: "globex", keyID: "key_000000000000000000000002", scopes: "admin"}
	e.create(&other, `{"name":"theirs","tier":"public"}`)

	all := e.auditAll(&admin, "")
	actions := make([]string, len(all))
	for i, ev := range all {
		actions[i] = ev.Action
		must(t, ev.Project == "acme" && ev.Actor == admin.keyID && ev.SourceIP == "198.51.100.7", "event %+v", ev)
		must(t, i == 0 || !ev.Time.After(all[i-1].Time), "events not newest first")
	}
	// Rotation writes the old key's rotation and the new key's creation.
	want := []string{keys.ActionRevoked, keys.ActionCreated, keys.ActionRotated, keys.ActionUpdated, keys.ActionCreated}
	if !slices.Equal(actions, want) && !slices.Equal(actions, []string{want[0], want[2], want[1], want[3], want[4]}) {
		t.Fatalf("actions = %v, want %v", actions, want)
	}
	upd := e.auditAll(&admin, "action=key.updated")
	must(t, len(upd) == 1 && upd[0].Target == k.ID, "filter by action: %+v", upd)
	must(t, fmt.Sprint(upd[0].Changes["name"]) == "map[from:a to:b]", "changes: %v", upd[0].Changes)
	byKey := e.auditAll(&admin, "keyId="+k.ID)
	must(t, len(byKey) == 3, "filter by key: %d events", len(byKey))
	theirs := e.auditAll(&other, "")
	must(t, len(theirs) == 1 && theirs[0].Project == "globex", "other project sees %+v", theirs)
	for _, bad := range []string{"action=key.deleted", "keyId=nope", "limit=500", "cursor=xyz"} {
		must(t, e.do(&admin, "GET", "/v1/audit?"+bad, "").Status == 400, "audit?%s accepted", bad)
	}
}

// authorize runs the authorizer core on raw, as the gateway would for GET /v1/whoami.
func (e *env) authorize(raw string) authorizer.Outcome {
	e.t.Helper()
	d, err := e.app.Authorizer.Decide(context.Background(), authorizer.Request{Key: raw, SourceIP: "198.51.100.7", Route: "GET /v1/whoami"})
	must(e.t, err == nil, "authorize: %v", err)
	return d.Outcome
}

func TestRotationAgainstTheAuthorizer(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{TTL: true})
	old := e.create(&admin, `{"name":"svc","tier":"public"}`)
	must(t, e.authorize(old.Key) == authorizer.Allowed, "fresh key refused")

	next := decode[keyView](t, e.do(&admin, "POST", "/v1/api-keys/"+old.ID+"/rotate", `{"gracePeriodSeconds":600}`).Data)
	must(t, e.authorize(old.Key) == authorizer.Allowed, "old key refused within its grace period")
	must(t, e.authorize(next.Key) == authorizer.Allowed, "new key refused")
	e.clock.Advance(599 * time.Second)
	must(t, e.authorize(old.Key) == authorizer.Allowed, "old key refused a second before the grace ends")
	e.clock.Advance(time.Second)
	must(t, e.authorize(old.Key) == authorizer.Expired, "old key allowed once the grace has passed")
	must(t, e.authorize(next.Key) == authorizer.Allowed, "new key refused after the grace")

	// Grace 0: the old key is refused on its very next request.
	third := decode[keyView](t, e.do(&admin, "POST", "/v1/api-keys/"+next.ID+"/rotate", `{"gracePeriodSeconds":0}`).Data)
	must(t, e.authorize(next.Key) == authorizer.Expired, "grace 0 left the old key working")
	must(t, e.authorize(third.Key) == authorizer.Allowed, "rotated key refused")
}

func TestRevokeOwnerAgainstTheAuthorizer(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{TTL: true})
	var raws []string
	for i := range keys.MaxTxKeys + 3 {
		raws = append(raws, e.create(&admin, fmt.Sprintf(`{"name":"k%d","tier":"public","owner":"leaver"}`, i)).Key)
	}
	for _, raw := range raws[:3] {
		must(t, e.authorize(raw) == authorizer.Allowed, "key refused before the owner left")
	}
	must(t, string(e.do(&admin, "POST", "/v1/owners/leaver/revoke", "").Data) == fmt.Sprintf(`{"revoked":%d}`, len(raws)), "owner revoke count")
	for i, raw := range raws {
		if got := e.authorize(raw); got != authorizer.Revoked {
			t.Errorf("key %d after its owner was revoked: %s", i, got)
		}
	}
}

// A key may change or rotate only keys whose scopes it holds all of, or
// it could mint itself powers through a rotation; revoking needs admin only.
func TestWeakAdminCannotManageStrongerKeys(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{TTL: true})
	strong := e.create(&admin, `{"name":"strong","tier":"public","scopes":["contracts"]}`)
	weak := caller{project: "acme", keyID: "key_000000000000000000000003", scopes: "admin"}
	e.seedCaller(weak)
	before := e.snapshot()
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/v1/api-keys/" + strong.ID + "/rotate", `{}`},
		{"PATCH", "/v1/api-keys/" + strong.ID, `{"ipAllowlist":[]}`},
		{"PATCH", "/v1/api-keys/" + strong.ID, `{"name":"mine"}`},
	} {
		r := e.do(&weak, tc.method, tc.path, tc.body)
		must(t, r.Status == 403 && strings.Contains(r.Error.Message, "contracts"), "%s %s %s: %d %+v", tc.method, tc.path, tc.body, r.Status, r.Error)
	}
	must(t, e.snapshot() == before, "a refused change wrote to the table")
	must(t, e.do(&weak, "PATCH", "/v1/api-keys/"+strong.ID, `{"status":"revoked"}`).Status == 200, "a weaker admin cannot revoke")
}

// A rotated-out key's grace can shrink but never grow, and the successor
// keeps the old key's expiry.
func TestRotatedKeyCannotBeRevived(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{TTL: true})
	old := e.create(&admin, `{"name":"svc","tier":"public","expiresAt":"`+e.at(48*time.Hour)+`"}`)
	next := decode[keyView](t, e.do(&admin, "POST", "/v1/api-keys/"+old.ID+"/rotate", `{"gracePeriodSeconds":3600}`).Data)
	must(t, next.ExpiresAt != nil && next.ExpiresAt.Equal(e.clock.Now().Add(48*time.Hour)), "successor expiry %v", next.ExpiresAt)
	for _, body := range []string{`{"expiresAt":null}`, `{"expiresAt":"` + e.at(2*time.Hour) + `"}`} {
		r := e.do(&admin, "PATCH", "/v1/api-keys/"+old.ID, body)
		must(t, r.Status == 409, "%s on a rotated key: %d %+v", body, r.Status, r.Error)
	}
	r := e.do(&admin, "PATCH", "/v1/api-keys/"+old.ID, `{"expiresAt":"`+e.at(time.Minute)+`"}`)
	must(t, r.Status == 200, "shortening the grace: %d %+v", r.Status, r.Error)
}

// An owner revoke that runs out of time stops between transactions and
// says so with a 503; calling again finishes the job.
func TestRevokeOwnerStopsBeforeItsDeadline(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{TTL: true})
	for i := range 3 {
		e.create(&admin, fmt.Sprintf(`{"name":"k%d","tier":"public","owner":"leaver"}`, i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second) // inside the margin
	defer cancel()
	n, err := e.app.Service.RevokeOwner(ctx, keys.OperatorCaller("acme"), "leaver", false)
	must(t, n == 0 && errors.Is(err, keys.ErrUnavailable), "near the deadline: %d, %v", n, err)
	n, err = e.app.Service.RevokeOwner(context.Background(), keys.OperatorCaller("acme"), "leaver", false)
	must(t, n == 3 && err == nil, "second call: %d, %v", n, err)
}
