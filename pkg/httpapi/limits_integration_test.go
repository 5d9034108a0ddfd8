package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/pkg/config"
	"github.com/keygate/keygate/pkg/keys"
)

var (
	publicTier  = []keys.RateLimit{{Name: keys.DefaultLimitName, Limit: 100, WindowSeconds: 900}}
	burstAndDay = []keys.RateLimit{{Name: "burst", Limit: 10, WindowSeconds: 1}, {Name: "day", Limit: 10000, WindowSeconds: 86400}}
)

const burstAndDayJSON = `[{"name":"burst","limit":10,"windowSeconds":1},{"name":"day","limit":10000,"windowSeconds":86400}]`

func (e *env) get(id string) keyView {
	e.t.Helper()
	r := e.do(&admin, "GET", "/v1/api-keys/"+id, "")
	must(e.t, r.Status == 200, "get %s: %d %s", id, r.Status, r.Body)
	return decode[keyView](e.t, r.Data)
}

// auditEvent is an audit event as the API shows it.
type auditEvent struct {
	Actor, Action, Target string
	Changes               map[string]struct{ From, To json.RawMessage }
}

func (e *env) audit(query string) []auditEvent {
	e.t.Helper()
	r := e.do(&admin, "GET", "/v1/audit?"+query, "")
	must(e.t, r.Status == 200, "audit %s: %d %s", query, r.Status, r.Body)
	return decode[[]auditEvent](e.t, r.Data)
}

// TestKeyLimitsRoundTrip: limits and credits set at create or by PATCH show
// in every answer, as the key stands now; PATCH takes effect at once and
// is audited from and to.
func TestKeyLimitsRoundTrip(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	k := e.create(&admin, `{"name":"metered","tier":"public","rateLimits":`+burstAndDayJSON+`,"credits":{"remaining":500,"refill":{"interval":"monthly","amount":500,"refillDay":31}}}`)
	must(t, slices.Equal(k.RateLimits, burstAndDay) && !k.FromTier, "created limits %v", k.RateLimits)
	must(t, k.Credits != nil && k.Credits.Remaining == 500 && k.Credits.Refill.RefillDay == 31 && k.Credits.NextRefillAt.After(e.clock.Now()), "created credits %+v", k.Credits)
	list := withoutCallers(decode[[]keyView](t, e.do(&admin, "GET", "/v1/api-keys", "").Data))
	must(t, len(list) == 1 && slices.Equal(list[0].RateLimits, burstAndDay) && list[0].Credits.Remaining == 500, "listed %+v", list)

	r := e.do(&admin, "PATCH", "/v1/api-keys/"+k.ID, `{"rateLimits":[{"name":"burst","limit":5,"windowSeconds":1}],"credits":{"remaining":42}}`)
	must(t, r.Status == 200, "patch: %d %s", r.Status, r.Body)
	got := e.get(k.ID)
	must(t, slices.Equal(got.RateLimits, []keys.RateLimit{{Name: "burst", Limit: 5, WindowSeconds: 1}}) && got.Credits.Remaining == 42 && got.Credits.Refill != nil,
		"after patch: %v, %+v", got.RateLimits, got.Credits)
	ev := e.audit("keyId=" + k.ID + "&action=key.updated")
	must(t, len(ev) == 1, "%d update events", len(ev))
	c := ev[0].Changes
	must(t, string(c["rateLimits"].From) == burstAndDayJSON && string(c["rateLimits"].To) == `[{"name":"burst","limit":5,"windowSeconds":1}]`, "rateLimits change %s -> %s", c["rateLimits"].From, c["rateLimits"].To)
	must(t, strings.HasPrefix(string(c["credits"].From), `{"remaining":500,`) && strings.HasPrefix(string(c["credits"].To), `{"remaining":42,`), "credits change %s -> %s", c["credits"].From, c["credits"].To)

	r = e.do(&admin, "PATCH", "/v1/api-keys/"+k.ID, `{"rateLimits":null,"credits":null}`)
	must(t, r.Status == 200, "patch back: %d %s", r.Status, r.Body)
	got = e.get(k.ID)
	must(t, slices.Equal(got.RateLimits, publicTier) && got.FromTier && got.Credits == nil, "back to the tier's: %v, fromTier %v, credits %+v", got.RateLimits, got.FromTier, got.Credits)
	must(t, strings.Contains(e.do(&admin, "GET", "/v1/api-keys/"+k.ID, "").Body, `"credits":null`), "unlimited credits show as null")
}

// TestTierKeyFollowsItsTier: a key without limits of its own shows its
// tier's, as the tier is configured now, not as it was at creation.
func TestTierKeyFollowsItsTier(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	k := e.create(&admin, `{"name":"plain","tier":"public"}`)
	own := e.create(&admin, `{"name":"own","tier":"public","rateLimits":[]}`)
	must(t, slices.Equal(k.RateLimits, publicTier) && k.FromTier, "created %v", k.RateLimits)

	cfg := config.Default()
	cfg.Keys.Tiers[0].RateLimits = burstAndDay
	redeployed := e.configured(cfg)
	got := redeployed.get(k.ID)
	must(t, slices.Equal(got.RateLimits, burstAndDay) && got.FromTier, "after the tier changed: %v", got.RateLimits)
	got = redeployed.get(own.ID)
	must(t, len(got.RateLimits) == 0 && !got.FromTier, "a key of its own limits: %v", got.RateLimits)
}

// TestCreditsOperations: increment, decrement and set answer the key as
// it stands; what would go below zero, or touches unlimited credits, is a
// 409 that writes nothing.
func TestCreditsOperations(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	k := e.create(&admin, `{"name":"c","tier":"public","credits":{"remaining":10}}`)
	unlimited := e.create(&admin, `{"name":"u","tier":"public"}`)
	for _, tt := range []struct {
		body string
		want int64
	}{
		{`{"op":"increment","value":5}`, 15},
		{`{"op":"decrement","value":15}`, 0},
		{`{"op":"set","value":7}`, 7},
	} {
		r := e.do(&admin, "POST", "/v1/api-keys/"+k.ID+"/credits", tt.body)
		must(t, r.Status == 200, "%s: %d %s", tt.body, r.Status, r.Body)
		must(t, decode[keyView](t, r.Data).Credits.Remaining == tt.want && e.get(k.ID).Credits.Remaining == tt.want, "%s: %s, want %d", tt.body, r.Data, tt.want)
	}
	for _, tt := range []struct{ id, body, says string }{
		{k.ID, `{"op":"decrement","value":8}`, "credits would go below zero: 7 remaining"},
		{unlimited.ID, `{"op":"increment","value":1}`, "unlimited credits"},
	} {
		before := e.snapshot()
		r := e.do(&admin, "POST", "/v1/api-keys/"+tt.id+"/credits", tt.body)
		must(t, r.Status == 409 && strings.Contains(r.Error.Message, tt.says), "%s: %d %s", tt.body, r.Status, r.Body)
		must(t, e.snapshot() == before, "a 409 wrote to the table")
	}
	r := e.do(&admin, "POST", "/v1/api-keys/key_000000000000000000000fff/credits", `{"op":"set","value":1}`)
	must(t, r.Status == 404, "unknown key: %d", r.Status)
}

// TestConcurrentCreditIncrements: 8 increments at once all land, none
// lost, and the audit log holds each one's exact from and to: a chain.
func TestConcurrentCreditIncrements(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	k := e.create(&admin, `{"name":"c","tier":"public","credits":{"remaining":1000}}`)
	const n, step = 8, 5 // more at once outlast the retries on DynamoDB Local, at ~50 ms a request here
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			r, err := e.try(&admin, "POST", "/v1/api-keys/"+k.ID+"/credits", fmt.Sprintf(`{"op":"increment","value":%d}`, step))
			if err == nil && r.Status != 200 {
				err = fmt.Errorf("increment: %d %s", r.Status, r.Body)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err == nil, "%v", err)
	}
	must(t, e.get(k.ID).Credits.Remaining == 1000+n*step, "credits %d, want %d", e.get(k.ID).Credits.Remaining, 1000+n*step)

	var from []int64
	for _, ev := range e.audit("keyId=" + k.ID + "&action=" + keys.ActionCreditsAdjusted) {
		f, to := decode[keys.Credits](t, ev.Changes["credits"].From), decode[keys.Credits](t, ev.Changes["credits"].To)
		must(t, to.Remaining == f.Remaining+step, "event from %d to %d", f.Remaining, to.Remaining)
		from = append(from, f.Remaining)
	}
	slices.Sort(from)
	for i, f := range from {
		must(t, f == 1000+int64(i)*step, "events start from %v: want each of 1000, 1005, ... once", from)
	}
	must(t, len(from) == n, "%d events, want %d", len(from), n)
}

// TestOwnerLimitsFlagEveryKey: a PUT of owner limits answers once every
// active key of the owner is flagged, including keys created while it
// ran; GET shows the limits; the change is audited on the owner.
func TestOwnerLimitsFlagEveryKey(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	for i := range 5 {
		e.create(&admin, fmt.Sprintf(`{"name":"alice %d","tier":"public","owner":"alice"}`, i))
	}
	r := e.do(&admin, "GET", "/v1/owners/alice/limits", "")
	must(t, r.Status == 200 && string(r.Data) == `{"owner":"alice","rateLimits":[],"credits":null,"updatedAt":null}`, "limits before: %d %s", r.Status, r.Data)

	var wg sync.WaitGroup
	errs := make(chan error, 11)
	for i := range 10 {
		wg.Go(func() {
			r, err := e.try(&admin, "POST", "/v1/api-keys", fmt.Sprintf(`{"name":"late %d","tier":"public","owner":"alice"}`, i))
			if err == nil && r.Status != 201 {
				err = fmt.Errorf("create: %d %s", r.Status, r.Body)
			}
			errs <- err
		})
	}
	wg.Go(func() {
		r, err := e.try(&admin, "PUT", "/v1/owners/alice/limits", `{"rateLimits":[{"name":"minute","limit":600,"windowSeconds":60}],"credits":{"remaining":5000}}`)
		if err == nil && r.Status != 200 {
			err = fmt.Errorf("put: %d %s", r.Status, r.Body)
		}
		errs <- err
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err == nil, "%v", err)
	}
	limited := e.ownerLimited("alice")
	must(t, len(limited) == 15 && !slices.Contains(limited, false), "alice's keys flagged: %v", limited)

	got := decode[struct {
		Owner      string
		RateLimits []keys.RateLimit
		Credits    *keys.Credits
	}](t, e.do(&admin, "GET", "/v1/owners/alice/limits", "").Data)
	must(t, got.Owner == "alice" && len(got.RateLimits) == 1 && got.Credits.Remaining == 5000, "limits %+v", got)
	ev := e.audit("action=" + keys.ActionOwnerLimitsUpdated)
	must(t, len(ev) == 1 && ev[0].Target == keys.OwnerTarget("alice") && ev[0].Actor == admin.keyID && string(ev[0].Changes["rateLimits"].From) == "[]", "owner events %+v", ev)

	r = e.do(&admin, "PUT", "/v1/owners/alice/limits", `{"rateLimits":[],"credits":null}`)
	must(t, r.Status == 200 && strings.Contains(string(r.Data), `"rateLimits":[],"credits":null`), "removing alice's limits: %d %s", r.Status, r.Body)
	limited = e.ownerLimited("alice")
	must(t, len(limited) == 15 && !slices.Contains(limited, true), "alice's keys after her limits went: %v", limited)
}

// ownerLimited tells, for each active key of owner, whether the store
// holds it flagged owner-limited, which the API does not show.
func (e *env) ownerLimited(owner string) []bool {
	e.t.Helper()
	var out []bool
	for _, k := range decode[[]keyView](e.t, e.do(&admin, "GET", "/v1/api-keys?status=active&limit=100&owner="+url.QueryEscape(owner), "").Data) {
		stored, err := e.app.Store.GetKey(e.t.Context(), k.ID)
		must(e.t, err == nil, "GetKey: %v", err)
		out = append(out, stored.OwnerLimited)
	}
	return out
}

// TestLimitsInputsAreRefused: every bad limit, credit or operation is a
// 400 naming the field, nested and indexed, and writes nothing.
func TestLimitsInputsAreRefused(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	k := e.create(&admin, `{"name":"target","tier":"public","credits":{"remaining":5}}`)
	create := func(extra string) string { return `{"name":"a","tier":"public",` + extra + `}` }
	tests := []struct {
		name, method, target, body, field string
	}{
		{"limits of another type", "POST", "/v1/api-keys", create(`"rateLimits":{"name":"a"}`), "rateLimits"},
		{"a fractional limit", "POST", "/v1/api-keys", create(`"rateLimits":[{"name":"a","limit":1.5,"windowSeconds":60}]`), "rateLimits[0].limit"},
		{"a huge limit", "POST", "/v1/api-keys", create(`"rateLimits":[{"name":"a","limit":1e300,"windowSeconds":60}]`), "rateLimits[0].limit"},
		{"a limit beyond float64", "POST", "/v1/api-keys", create(`"rateLimits":[{"name":"a","limit":1e400,"windowSeconds":60}]`), "rateLimits.limit"},
		{"a negative window", "POST", "/v1/api-keys", create(`"rateLimits":[{"name":"a","limit":1,"windowSeconds":1},{"name":"b","limit":1,"windowSeconds":1},{"name":"c","limit":1,"windowSeconds":-60}]`), "rateLimits[2].windowSeconds"},
		{"a name twice", "POST", "/v1/api-keys", create(`"rateLimits":[{"name":"a","limit":1,"windowSeconds":1},{"name":"a","limit":2,"windowSeconds":2}]`), "rateLimits[1].name"},
		{"six limits", "POST", "/v1/api-keys", create(`"rateLimits":[` + strings.Repeat(`{"name":"a","limit":1,"windowSeconds":1},`, 5) + `{"name":"f","limit":1,"windowSeconds":1}]`), "rateLimits"},
		{"a key twice in a limit", "POST", "/v1/api-keys", create(`"rateLimits":[{"name":"a","limit":1,"windowSeconds":1,"limit":9}]`), "rateLimits.limit"},
		{"a case-variant key in a limit", "POST", "/v1/api-keys", create(`"rateLimits":[{"name":"a","limit":1,"windowSeconds":1,"Limit":9}]`), "rateLimits.Limit"},
		{"a case-variant field", "POST", "/v1/api-keys", create(`"RateLimits":[]`), "RateLimits"},
		{"an unknown interval", "POST", "/v1/api-keys", create(`"credits":{"remaining":1,"refill":{"interval":"hourly","amount":1}}`), "credits.refill.interval"},
		{"a refill day on a daily refill", "POST", "/v1/api-keys", create(`"credits":{"remaining":1,"refill":{"interval":"daily","amount":1,"refillDay":1}}`), "credits.refill.refillDay"},
		{"a refill day of 0", "POST", "/v1/api-keys", create(`"credits":{"remaining":1,"refill":{"interval":"monthly","amount":1,"refillDay":0}}`), "credits.refill.refillDay"},
		{"credits as a string", "POST", "/v1/api-keys", create(`"credits":"5"`), "credits"},
		{"a next refill given", "POST", "/v1/api-keys", create(`"credits":{"remaining":1,"nextRefillAt":"2031-01-01T00:00:00Z"}`), "credits.nextRefillAt"},
		{"patch: negative credits", "PATCH", "/v1/api-keys/" + k.ID, `{"credits":{"remaining":-1}}`, "credits.remaining"},
		{"patch: a refill amount as text", "PATCH", "/v1/api-keys/" + k.ID, `{"credits":{"refill":{"interval":"daily","amount":"5"}}}`, "credits.refill.amount"},
		{"patch: revoke and limits", "PATCH", "/v1/api-keys/" + k.ID, `{"status":"revoked","rateLimits":[]}`, "status"},
		{"credits: an unknown op", "POST", "/v1/api-keys/" + k.ID + "/credits", `{"op":"add","value":1}`, "op"},
		{"credits: no value", "POST", "/v1/api-keys/" + k.ID + "/credits", `{"op":"increment"}`, "value"},
		{"credits: a fraction", "POST", "/v1/api-keys/" + k.ID + "/credits", `{"op":"increment","value":0.5}`, "value"},
		{"credits: a huge value", "POST", "/v1/api-keys/" + k.ID + "/credits", `{"op":"set","value":1e300}`, "value"},
		{"credits: beyond the largest", "POST", "/v1/api-keys/" + k.ID + "/credits", `{"op":"set","value":1125899906842625}`, "value"},
		{"credits: value twice", "POST", "/v1/api-keys/" + k.ID + "/credits", `{"op":"set","value":1,"Value":9}`, "Value"},
		{"owner: null limits", "PUT", "/v1/owners/alice/limits", `{"rateLimits":null}`, "rateLimits"},
		{"owner: a bad limit", "PUT", "/v1/owners/alice/limits", `{"rateLimits":[{"name":"a","limit":0,"windowSeconds":1}]}`, "rateLimits[0].limit"},
		{"owner: credits without remaining", "PUT", "/v1/owners/alice/limits", `{"credits":{"refill":null}}`, "credits.remaining"},
		{"owner: a bad owner", "PUT", "/v1/owners/al%20ice/limits", `{"rateLimits":[]}`, "owner"},
		{"owner: an unknown field", "PUT", "/v1/owners/alice/limits", `{"rateLimits":[],"burst":1}`, "burst"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.snapshot()
			r := e.do(&admin, tt.method, tt.target, tt.body)
			must(t, r.Status == 400, "%s: %d %s, want 400", tt.body, r.Status, r.Body)
			must(t, strings.HasPrefix(r.Error.Message, tt.field+":"), "%s: message %q does not name %s", tt.body, r.Error.Message, tt.field)
			must(t, e.snapshot() == before, "a 400 wrote to the table")
		})
	}
	r := e.do(&admin, "PUT", "/v1/owners/alice/limits", `{}`)
	must(t, r.Status == 400 && strings.Contains(r.Error.Message, "no field to set"), "an empty owner PUT: %d %s", r.Status, r.Body)
}

// TestLimitsPrivileges: a key cannot give, through any route, limits
// looser or credits larger than it holds, loosen its own or its owner's,
// nor rotate a key beyond itself; what the authorizer's context claims
// changes nothing, the stored key decides. Each refusal writes nothing.
func TestLimitsPrivileges(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	must(t, e.do(&admin, "PUT", "/v1/owners/alice/limits", `{"rateLimits":[{"name":"sec","limit":10,"windowSeconds":1}]}`).Status == 200, "alice's limits")
	limited := e.create(&admin, `{"name":"limited","tier":"partner","owner":"alice","scopes":["admin","contracts"],
		"rateLimits":[{"name":"sec","limit":10,"windowSeconds":1}],"credits":{"remaining":100}}`)
	me := callerOf(limited)
	me.tier = "internal" // a context that claims more decides nothing
	loose := e.create(&admin, `{"name":"loose","tier":"public","owner":"alice","scopes":["contracts"],"rateLimits":[]}`)
	tight := e.create(&admin, `{"name":"tight","tier":"public","owner":"alice","scopes":["contracts"],"rateLimits":[{"name":"sec","limit":5,"windowSeconds":1}],"credits":{"remaining":5}}`)
	within := `"rateLimits":[{"name":"sec","limit":5,"windowSeconds":1}],"credits":{"remaining":50}`
	for _, tt := range []struct{ name, method, target, body, says string }{
		{"create with looser limits", "POST", "/v1/api-keys", `{"name":"c","tier":"public","rateLimits":[{"name":"sec","limit":11,"windowSeconds":1}],"credits":{"remaining":1}}`, "rateLimits:"},
		{"create of a looser tier", "POST", "/v1/api-keys", `{"name":"c","tier":"internal","credits":{"remaining":1}}`, "rateLimits:"},
		{"create with unlimited credits", "POST", "/v1/api-keys", `{"name":"c","tier":"public","rateLimits":[{"name":"sec","limit":5,"windowSeconds":1}],"credits":null}`, "credits:"},
		{"create with more credits", "POST", "/v1/api-keys", `{"name":"c","tier":"public","rateLimits":[{"name":"sec","limit":5,"windowSeconds":1}],"credits":{"remaining":101}}`, "credits:"},
		{"create for another owner", "POST", "/v1/api-keys", `{"name":"c","tier":"public","owner":"bob",` + within + `}`, "owner:"},
		{"loosen its own limits", "PATCH", "/v1/api-keys/" + limited.ID, `{"rateLimits":[]}`, "rateLimits:"},
		{"raise its own credits", "PATCH", "/v1/api-keys/" + limited.ID, `{"credits":{"remaining":1000}}`, "credits:"},
		{"increment its own credits", "POST", "/v1/api-keys/" + limited.ID + "/credits", `{"op":"increment","value":1}`, "credits:"},
		{"give a key more than itself", "PATCH", "/v1/api-keys/" + tight.ID, `{"credits":{"remaining":101}}`, "credits:"},
		{"rotate a key looser than itself", "POST", "/v1/api-keys/" + loose.ID + "/rotate", `{}`, "rateLimits:"},
		{"loosen its own owner's limits", "PUT", "/v1/owners/alice/limits", `{"rateLimits":[]}`, "own owner's limits"},
	} {
		before := e.snapshot()
		r := e.do(me, tt.method, tt.target, tt.body)
		must(t, r.Status == 403 && strings.Contains(r.Error.Message, tt.says), "%s: %d %s, want 403 saying %q", tt.name, r.Status, r.Body, tt.says)
		must(t, e.snapshot() == before, "%s: a 403 wrote to the table", tt.name)
	}
	child := e.create(me, `{"name":"child","tier":"public",`+within+`}`)
	must(t, child.Owner == "alice" && child.Credits.Remaining == 50, "a key within its own: %+v", child)
	for _, tt := range []struct{ method, target, body string }{
		{"POST", "/v1/api-keys/" + limited.ID + "/credits", `{"op":"decrement","value":1}`},
		{"PATCH", "/v1/api-keys/" + loose.ID, `{"rateLimits":[{"name":"sec","limit":1000,"windowSeconds":1}]}`}, // tightens it
		{"PUT", "/v1/owners/alice/limits", `{"rateLimits":[{"name":"sec","limit":5,"windowSeconds":1}]}`},
		{"PUT", "/v1/owners/bob/limits", `{"rateLimits":[]}`},
	} {
		r := e.do(me, tt.method, tt.target, tt.body)
		must(t, r.Status == 200, "%s %s %s: %d %s", tt.method, tt.target, tt.body, r.Status, r.Body)
	}
}
