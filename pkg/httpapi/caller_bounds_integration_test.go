package httpapi_test

import (
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/ddbtest"
)

// TestPinnedKeyCannotReachBeyondItself: a key pinned to an address cannot
// widen any key's reach, its own or another's, nor make or rotate a key
// that reaches further; the keys it makes are pinned like it unless told
// narrower. And no key can give another a larger rate limit than its own.
func TestPinnedKeyCannotReachBeyondItself(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	pinned := e.create(&admin, `{"name":"office","tier":"partner","scopes":["admin","contracts"],"ipAllowlist":["10.0.0.0/24"]}`)
	me := callerOf(pinned)
	open := e.create(&admin, `{"name":"open","tier":"public","scopes":["contracts"]}`)
	forbidden := []struct{ name, method, target, body string }{
		{"create an unpinned key", "POST", "/v1/api-keys", `{"name":"c","tier":"public","ipAllowlist":[]}`},
		{"create a key reaching elsewhere", "POST", "/v1/api-keys", `{"name":"c","tier":"public","ipAllowlist":["10.0.1.1"]}`},
		{"create a key of a larger tier", "POST", "/v1/api-keys", `{"name":"c","tier":"internal"}`},
		{"unpin another key", "PATCH", "/v1/api-keys/" + open.ID, `{"ipAllowlist":["0.0.0.0/0"]}`},
		{"rotate an unpinned key", "POST", "/v1/api-keys/" + open.ID + "/rotate", `{}`},
	}
	for _, tt := range forbidden {
		before := e.snapshot()
		r := e.do(me, tt.method, tt.target, tt.body)
		must(t, r.Status == 403, "%s: %d %s, want 403", tt.name, r.Status, r.Body)
		must(t, e.snapshot() == before, "%s: a 403 wrote to the table", tt.name)
	}
	child := e.create(me, `{"name":"child","tier":"public","scopes":["contracts"]}`)
	must(t, strings.Join(child.IPAllowlist, ",") == "10.0.0.0/24", "child allowlist %v, want the creator's", child.IPAllowlist)
	narrow := e.create(me, `{"name":"narrow","tier":"partner","ipAllowlist":["10.0.0.7"]}`)
	must(t, strings.Join(narrow.IPAllowlist, ",") == "10.0.0.7", "a narrower allowlist is kept: %v", narrow.IPAllowlist)
	r := e.do(me, "PATCH", "/v1/api-keys/"+open.ID, `{"ipAllowlist":["10.0.0.9"]}`)
	must(t, r.Status == 200, "pinning another key within its own reach: %d %s", r.Status, r.Body)
}

// TestRevokedCallerCannotWriteInFlight: a key revoked after API Gateway let
// its request through (in flight, or a cached authorizer answer) can no
// longer create or change keys: the write requires the caller active.
func TestRevokedCallerCannotWriteInFlight(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	k := e.create(&admin, `{"name":"soon gone","tier":"internal","scopes":["admin"],"owner":"alice"}`)
	target := e.create(&admin, `{"name":"target","tier":"public"}`)
	stale := callerOf(k) // the authorizer's context, from before the revoke
	must(t, e.do(&admin, "DELETE", "/v1/api-keys/"+k.ID, "").Status == 200, "revoke")
	for _, tt := range []struct{ name, method, target, body string }{
		{"create", "POST", "/v1/api-keys", `{"name":"late","tier":"public"}`},
		{"update", "PATCH", "/v1/api-keys/" + target.ID, `{"name":"late"}`},
		{"rotate", "POST", "/v1/api-keys/" + target.ID + "/rotate", `{}`},
	} {
		before := e.snapshot()
		r := e.do(stale, tt.method, tt.target, tt.body)
		must(t, r.Status == 401, "%s by a revoked caller: %d %s, want 401", tt.name, r.Status, r.Body)
		must(t, e.snapshot() == before, "%s: a refused change wrote to the table", tt.name)
	}
	expiring := e.create(&admin, `{"name":"brief","tier":"internal","scopes":["admin"],"expiresAt":"`+e.at(time.Minute)+`"}`)
	e.clock.Advance(2 * time.Minute)
	r := e.do(callerOf(expiring), "POST", "/v1/api-keys", `{"name":"late","tier":"public"}`)
	must(t, r.Status == 401, "create by an expired caller: %d %s", r.Status, r.Body)
}

// TestRevokeStandsAlone: a PATCH that revokes may change nothing else, so
// that the revoke cannot lose a race with the edit beside it.
func TestRevokeStandsAlone(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	k := e.create(&admin, `{"name":"k","tier":"public"}`)
	before := e.snapshot()
	r := e.do(&admin, "PATCH", "/v1/api-keys/"+k.ID, `{"status":"revoked","name":"gone"}`)
	must(t, r.Status == 400 && strings.HasPrefix(r.Error.Message, "status:"), "revoke with a rename: %d %s", r.Status, r.Body)
	must(t, e.snapshot() == before, "a 400 wrote to the table")
	r = e.do(&admin, "PATCH", "/v1/api-keys/"+k.ID, `{"status":"revoked"}`)
	must(t, r.Status == 200 && e.status(k.ID) == "revoked", "revoke alone: %d %s", r.Status, r.Body)
}

// TestTrailingDataIsRefused: one JSON object, and nothing after it, not
// even a stray closing bracket.
func TestTrailingDataIsRefused(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	for _, body := range []string{`{"name":"a","tier":"public"}}`, `{"name":"a","tier":"public"}]`, `{"name":"a","tier":"public"} {}`, `{"name":"a","tier":"public"}x`} {
		before := e.snapshot()
		r := e.do(&admin, "POST", "/v1/api-keys", body)
		must(t, r.Status == 400, "%s: %d %s, want 400", body, r.Status, r.Body)
		must(t, e.snapshot() == before, "%s: a 400 wrote to the table", body)
	}
}
