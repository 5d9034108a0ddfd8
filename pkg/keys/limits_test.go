package keys_test

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/keys"
)

// The limits tests' configuration: the defaults, and a tier whose keys
// start with credits.
func limitsConfig() keys.Config {
	cfg := keys.DefaultConfig()
	cfg.Tiers = append(cfg.Tiers, keys.Tier{Name: "metered", Code: "mt", RateLimits: meteredLimits, Credits: &keys.Credits{Remaining: 500, Refill: monthly}})
	return cfg
}

var (
	publicLimits  = []keys.RateLimit{{Name: keys.DefaultLimitName, Limit: 100, WindowSeconds: 900}}
	meteredLimits = []keys.RateLimit{{Name: "burst", Limit: 5, WindowSeconds: 1}, {Name: "window", Limit: 1000, WindowSeconds: 900}}
	ownLimits     = []keys.RateLimit{{Name: "burst", Limit: 10, WindowSeconds: 1}, {Name: "day", Limit: 1000, WindowSeconds: 86400}}
	daily         = &keys.Refill{Interval: keys.RefillDaily, Amount: 20}
	monthly       = &keys.Refill{Interval: keys.RefillMonthly, Amount: 500, RefillDay: 1}
)

func newLimitsEnv(t *testing.T) *env {
	e := newEnv(t)
	e.cfg = limitsConfig()
	e.use(e.store)
	return e
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func credits(remaining int64, refill *keys.Refill, next *time.Time) *keys.Credits {
	return &keys.Credits{Remaining: remaining, Refill: refill, NextRefillAt: next}
}

// wantCredits compares credits as stored: remaining, refill, next refill.
func wantCredits(t *testing.T, what string, got, want *keys.Credits) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("%s: credits %s, want %s", what, g, w)
	}
}

func TestCreateLimits(t *testing.T) {
	jan2, feb1 := time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC), time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		in       keys.CreateInput
		fromTier bool
		shown    []keys.RateLimit
		credits  *keys.Credits
		version  int64
	}{
		{"the tier's limits", keys.CreateInput{}, true, publicLimits, nil, 0},
		{"null: the tier's", keys.CreateInput{RateLimits: raw("null")}, true, publicLimits, nil, 0},
		{"no limits", keys.CreateInput{RateLimits: raw("[]")}, false, []keys.RateLimit{}, nil, 1},
		{"own limits", keys.CreateInput{RateLimits: raw(`[{"name":"burst","limit":10,"windowSeconds":1},{"name":"day","limit":1e3,"windowSeconds":86400.0}]`)}, false, ownLimits, nil, 1},
		{"the tier's credits", keys.CreateInput{Tier: "metered"}, true, meteredLimits, credits(500, monthly, &feb1), 1},
		{"no credits, whatever the tier's", keys.CreateInput{Tier: "metered", Credits: raw("null")}, true, meteredLimits, nil, 0},
		{"own credits", keys.CreateInput{Credits: raw(`{"remaining":50,"refill":{"interval":"daily","amount":20}}`)}, true, publicLimits, credits(50, daily, &jan2), 1},
		{"own credits without refill", keys.CreateInput{Credits: raw(`{"remaining":0,"refill":null}`)}, true, publicLimits, credits(0, nil, nil), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLimitsEnv(t)
			shown := e.create(op, tc.in)
			stored := e.stored(shown.ID)
			if stored.RateLimitsFromTier != tc.fromTier || !tc.fromTier && !slices.Equal(stored.RateLimits, tc.shown) || stored.LimitsVersion != tc.version || stored.OwnerLimited {
				t.Errorf("stored limits %v, fromTier %v, version %d, owner-limited %v", stored.RateLimits, stored.RateLimitsFromTier, stored.LimitsVersion, stored.OwnerLimited)
			}
			wantCredits(t, "stored", stored.Credits, tc.credits)
			if !slices.Equal(shown.RateLimits, tc.shown) || shown.RateLimitsFromTier != tc.fromTier {
				t.Errorf("shown limits %v, fromTier %v; want %v", shown.RateLimits, shown.RateLimitsFromTier, tc.shown)
			}
			wantCredits(t, "shown", shown.Credits, tc.credits)
			ev := e.events(shown.ID)[0]
			_, hasLimits := ev.Changes["rateLimits"]
			_, hasCredits := ev.Changes["credits"]
			if hasLimits == tc.fromTier || hasCredits != (tc.credits != nil) {
				t.Errorf("creation event records rateLimits %v, credits %v", hasLimits, hasCredits)
			}
		})
	}
}

// Every bad limit is refused naming its field, with its position, and
// nothing is written.
func TestCreateRefusesLimits(t *testing.T) {
	limit := func(l string) string { return `[{"name":"a","limit":` + l + `,"windowSeconds":60}]` }
	refill := func(r string) json.RawMessage { return raw(`{"remaining":1,"refill":` + r + `}`) }
	for _, tc := range []struct {
		name        string
		rateLimits  string
		credits     json.RawMessage
		field, says string
	}{
		{"limits not a list", `{"name":"a"}`, nil, "rateLimits", "want a list"},
		{"limits a string", `"100"`, nil, "rateLimits", "want a list"},
		{"a limit not an object", `[1]`, nil, "rateLimits[0]", "want an object"},
		{"a fraction", limit("1.5"), nil, "rateLimits[0].limit", "want an integer, not 1.5"},
		{"a huge number", limit("1e300"), nil, "rateLimits[0].limit", "out of range"},
		{"beyond float64", limit("1e309"), nil, "rateLimits.limit", "out of range"},
		{"a string number", limit(`"5"`), nil, "rateLimits[0].limit", "want an integer"},
		{"null", limit("null"), nil, "rateLimits[0].limit", "want an integer"},
		{"negative", limit("-1"), nil, "rateLimits[0].limit", "want 1-"},
		{"zero", limit("0"), nil, "rateLimits[0].limit", "want 1-"},
		{"beyond the largest", limit("1125899906842625"), nil, "rateLimits[0].limit", "want 1-"},
		{"missing", `[{"name":"a","windowSeconds":60}]`, nil, "rateLimits[0].limit", "required"},
		{"a field in another case", `[{"name":"a","Limit":5,"windowSeconds":60}]`, nil, "rateLimits[0].Limit", "unknown field"},
		{"a key twice", `[{"name":"a","name":"b","limit":5,"windowSeconds":60}]`, nil, "rateLimits.name", "more than once"},
		{"a window too long", `[{"name":"a","limit":5,"windowSeconds":1},{"name":"b","limit":5,"windowSeconds":1},{"name":"c","limit":5,"windowSeconds":2592001}]`, nil, "rateLimits[2].windowSeconds", "want 1-2592000"},
		{"a window of 0", `[{"name":"a","limit":5,"windowSeconds":0}]`, nil, "rateLimits[0].windowSeconds", "want 1-"},
		{"a name twice", `[{"name":"a","limit":5,"windowSeconds":1},{"name":"a","limit":9,"windowSeconds":60}]`, nil, "rateLimits[1].name", "used twice"},
		{"a name not a word", `[{"name":"Burst","limit":5,"windowSeconds":1}]`, nil, "rateLimits[0].name", "lowercase"},
		{"a name not a string", `[{"name":7,"limit":5,"windowSeconds":1}]`, nil, "rateLimits[0].name", "want a string"},
		{"six limits", `[{"name":"a","limit":1,"windowSeconds":1},{"name":"b","limit":1,"windowSeconds":1},{"name":"c","limit":1,"windowSeconds":1},{"name":"d","limit":1,"windowSeconds":1},{"name":"e","limit":1,"windowSeconds":1},{"name":"f","limit":1,"windowSeconds":1}]`, nil, "rateLimits", "at most 5"},
		{"credits a number", "", raw("100"), "credits", "want an object"},
		{"credits without remaining", "", raw(`{"refill":{"interval":"daily","amount":5}}`), "credits.remaining", "required"},
		{"negative credits", "", raw(`{"remaining":-1}`), "credits.remaining", "want 0-"},
		{"a fraction of a credit", "", raw(`{"remaining":0.5}`), "credits.remaining", "want an integer"},
		{"too many credits", "", raw(`{"remaining":1125899906842625}`), "credits.remaining", "want 0-"},
		{"a next refill given", "", raw(`{"remaining":1,"nextRefillAt":"2030-01-02T00:00:00Z"}`), "credits.nextRefillAt", "unknown field"},
		{"a weekly refill", "", refill(`{"interval":"weekly","amount":5}`), "credits.refill.interval", "want daily or monthly"},
		{"a refill without interval", "", refill(`{"amount":5}`), "credits.refill.interval", "required"},
		{"a refill of nothing", "", refill(`{"interval":"daily","amount":0}`), "credits.refill.amount", "want 1-"},
		{"a monthly refill without day", "", refill(`{"interval":"monthly","amount":5}`), "credits.refill.refillDay", "want 1-31"},
		{"a refill on day 32", "", refill(`{"interval":"monthly","amount":5,"refillDay":32}`), "credits.refill.refillDay", "want 1-31"},
		{"a daily refill with a day", "", refill(`{"interval":"daily","amount":5,"refillDay":3}`), "credits.refill.refillDay", "only a monthly refill"},
		{"a refill not an object", "", refill(`"daily"`), "credits.refill", "want an object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLimitsEnv(t)
			in := keys.CreateInput{Name: "svc", Tier: "public", Credits: tc.credits}
			if tc.rateLimits != "" {
				in.RateLimits = raw(tc.rateLimits)
			}
			_, err := e.svc.Create(e.ctx, op, in)
			wantErr(t, err, &keys.InvalidError{Field: tc.field})
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("err = %v, want it to say %q", err, tc.says)
			}
			if e.store.Writes() != 0 {
				t.Errorf("a refused create wrote %d times", e.store.Writes())
			}
		})
	}
}

func TestUpdateLimits(t *testing.T) {
	jan2, jan3, jan15 := time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC), time.Date(2030, 1, 3, 0, 0, 0, 0, time.UTC), time.Date(2030, 1, 15, 0, 0, 0, 0, time.UTC)
	own := raw(`[{"name":"burst","limit":10,"windowSeconds":1},{"name":"day","limit":1000,"windowSeconds":86400}]`)
	withDaily := raw(`{"remaining":10,"refill":{"interval":"daily","amount":20}}`)
	for _, tc := range []struct {
		name     string
		start    keys.CreateInput
		advance  time.Duration
		in       keys.UpdateInput
		fromTier bool
		limits   []keys.RateLimit
		credits  *keys.Credits
		version  int64    // LimitsVersion
		changed  []string // the event's fields; none: nothing written
		from     string   // the event's credits from, as JSON, when it has one
	}{
		{"own limits", keys.CreateInput{}, 0, keys.UpdateInput{RateLimits: own}, false, ownLimits, nil, 1, []string{"rateLimits"}, ""},
		{"back to the tier's", keys.CreateInput{RateLimits: own}, 0, keys.UpdateInput{RateLimits: raw("null")}, true, nil, nil, 2, []string{"rateLimits"}, ""},
		{"the same limits", keys.CreateInput{RateLimits: own}, 0, keys.UpdateInput{RateLimits: own}, false, ownLimits, nil, 1, nil, ""},
		{"no limits, and a name", keys.CreateInput{}, 0, keys.UpdateInput{Name: strp("n"), RateLimits: raw("[]")}, false, nil, nil, 1, []string{"name", "rateLimits"}, ""},
		{"give credits", keys.CreateInput{}, 0, keys.UpdateInput{Credits: raw(`{"remaining":10}`)}, true, nil, credits(10, nil, nil), 1, []string{"credits"}, "null"},
		{"remaining only", keys.CreateInput{Credits: withDaily}, 0, keys.UpdateInput{Credits: raw(`{"remaining":3}`)}, true, nil, credits(3, daily, &jan2), 1, []string{"credits"}, ""},
		{"the same remaining", keys.CreateInput{Credits: withDaily}, 0, keys.UpdateInput{Credits: raw(`{"remaining":10}`)}, true, nil, credits(10, daily, &jan2), 1, nil, ""},
		{"refill only", keys.CreateInput{Credits: raw(`{"remaining":10}`)}, 0, keys.UpdateInput{Credits: raw(`{"refill":{"interval":"monthly","amount":40,"refillDay":15}}`)}, true, nil,
			credits(10, &keys.Refill{Interval: keys.RefillMonthly, Amount: 40, RefillDay: 15}, &jan15), 1, []string{"credits"}, ""},
		{"refill removed", keys.CreateInput{Credits: withDaily}, 0, keys.UpdateInput{Credits: raw(`{"refill":null}`)}, true, nil, credits(10, nil, nil), 1, []string{"credits"}, ""},
		{"unlimited", keys.CreateInput{Credits: withDaily}, 0, keys.UpdateInput{Credits: raw("null")}, true, nil, nil, 2, []string{"credits"}, ""},
		// 13 hours after t0 the daily refill is due: it counts as done, and
		// the next one is tomorrow's.
		{"a due refill counts as done", keys.CreateInput{Credits: withDaily}, 13 * time.Hour, keys.UpdateInput{Credits: raw(`{"remaining":3}`)}, true, nil, credits(3, daily, &jan3), 1, []string{"credits"},
			`{"remaining":20,"refill":{"interval":"daily","amount":20},"nextRefillAt":"2030-01-03T00:00:00Z"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLimitsEnv(t)
			k := e.create(op, tc.start)
			e.clock.Advance(tc.advance + time.Millisecond) // the event lists after the creation's
			writes := e.store.Writes()
			if _, err := e.svc.Update(e.ctx, op, k.ID, tc.in); err != nil {
				t.Fatal(err)
			}
			got := e.stored(k.ID)
			if got.RateLimitsFromTier != tc.fromTier || !slices.Equal(got.RateLimits, tc.limits) || got.LimitsVersion != tc.version {
				t.Errorf("limits %v, fromTier %v, version %d; want %v, %v, %d", got.RateLimits, got.RateLimitsFromTier, got.LimitsVersion, tc.limits, tc.fromTier, tc.version)
			}
			wantCredits(t, "stored", got.Credits, tc.credits)
			if tc.changed == nil {
				if e.store.Writes() != writes {
					t.Errorf("a patch changing nothing wrote")
				}
				return
			}
			ev := e.events(k.ID)[0]
			var changed []string
			for field := range ev.Changes {
				changed = append(changed, field)
			}
			slices.Sort(changed)
			if ev.Action != keys.ActionUpdated || !slices.Equal(changed, tc.changed) {
				t.Errorf("event %s changing %v, want %v", ev.Action, changed, tc.changed)
			}
			if c, ok := ev.Changes["credits"]; ok && tc.from != "" && string(c.From.(json.RawMessage)) != tc.from {
				t.Errorf("event's credits from %s, want %s", c.From, tc.from)
			}
		})
	}
}

func TestUpdateRefusesLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   keys.UpdateInput
		want error
	}{
		{"credits without remaining, where there are none", keys.UpdateInput{Credits: raw(`{"refill":null}`)}, &keys.InvalidError{Field: "credits.remaining"}},
		{"a bad limit", keys.UpdateInput{RateLimits: raw(`[{"name":"a","limit":0,"windowSeconds":1}]`)}, &keys.InvalidError{Field: "rateLimits[0].limit"}},
		{"a revoke with limits", keys.UpdateInput{Status: strp("revoked"), RateLimits: raw("[]")}, &keys.InvalidError{Field: "status"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLimitsEnv(t)
			k := e.create(op, keys.CreateInput{})
			e.unchanged(k.ID, func() {
				_, err := e.svc.Update(e.ctx, op, k.ID, tc.in)
				wantErr(t, err, tc.want)
			})
		})
	}
}

// What a key may give, through any operation: no limit looser than its
// own, no credits beyond its own, unless the key already held them (taking
// away is always allowed), and never to itself. The calling key is read
// from the store, whatever the authorizer's context says.
func TestLimitsGrant(t *testing.T) {
	limited := keys.CreateInput{RateLimits: raw(`[{"name":"sec","limit":10,"windowSeconds":1}]`), Credits: raw(`{"remaining":100,"refill":{"interval":"monthly","amount":100,"refillDay":1}}`)}
	unlimited := keys.CreateInput{RateLimits: raw("[]"), Credits: raw("null")}
	within := keys.CreateInput{RateLimits: raw(`[{"name":"sec","limit":5,"windowSeconds":1}]`), Credits: raw(`{"remaining":100,"refill":{"interval":"monthly","amount":50,"refillDay":9}}`)}
	// Keys made by the operator, for the caller to act on.
	loose := keys.CreateInput{RateLimits: raw(`[{"name":"sec","limit":1000,"windowSeconds":1}]`), Credits: raw(`{"remaining":1000}`)}
	tight := keys.CreateInput{RateLimits: raw(`[{"name":"sec","limit":5,"windowSeconds":1}]`), Credits: raw(`{"remaining":5}`)}

	creating := func(in keys.CreateInput) func(*grantTest) error {
		in.Name, in.Tier = "svc", cmp.Or(in.Tier, "public")
		return func(g *grantTest) error { _, err := g.svc.Create(g.ctx, g.me, in); return err }
	}
	patching := func(target keys.CreateInput, in keys.UpdateInput) func(*grantTest) error {
		return func(g *grantTest) error { _, err := g.svc.Update(g.ctx, g.me, g.other(target), in); return err }
	}
	patchingSelf := func(in keys.UpdateInput) func(*grantTest) error {
		return func(g *grantTest) error { _, err := g.svc.Update(g.ctx, g.me, g.me.KeyID, in); return err }
	}
	adjusting := func(target *keys.CreateInput, opName, value string) func(*grantTest) error {
		return func(g *grantTest) error {
			id := g.me.KeyID
			if target != nil {
				id = g.other(*target)
			}
			_, err := g.svc.AdjustCredits(g.ctx, g.me, id, keys.CreditsInput{Op: opName, Value: raw(value)})
			return err
		}
	}
	rotating := func(target keys.CreateInput) func(*grantTest) error {
		return func(g *grantTest) error { _, err := g.svc.Rotate(g.ctx, g.me, g.other(target), 60); return err }
	}
	limitingOwner := func(owner string, in keys.OwnerLimitsInput) func(*grantTest) error {
		return func(g *grantTest) error { _, err := g.svc.PutOwnerLimits(g.ctx, g.me, owner, in); return err }
	}
	aliceLimited := func(g *grantTest) {
		g.must(g.svc.PutOwnerLimits(g.ctx, op, "alice", keys.OwnerLimitsInput{RateLimits: raw(`[{"name":"sec","limit":10,"windowSeconds":1}]`)}))
	}
	rateRefused := &keys.ForbiddenError{Message: "rateLimits: the calling key is limited to sec: 10 per 1 s"}
	creditsRefused := &keys.ForbiddenError{Message: "credits: the calling key holds 100 credits, refilled to 100 monthly"}
	ownerRefused := &keys.ForbiddenError{Message: `owner: the calling key's owner "alice" has shared limits`}
	selfRateRefused := &keys.ForbiddenError{Message: "rateLimits: the calling key may only lower its own limits in place"}
	selfCreditsRefused := &keys.ForbiddenError{Message: "credits: the calling key may only spend its own credits down"}
	loosenOwnRefused := &keys.ForbiddenError{Message: "the calling key may only lower its own owner's limits in place"}
	withName := func(in keys.CreateInput, change func(*keys.CreateInput)) keys.CreateInput {
		change(&in)
		return in
	}
	for _, tc := range []struct {
		name    string
		grantor keys.CreateInput // the calling key, which the operator makes
		setup   func(g *grantTest)
		act     func(g *grantTest) error
		want    error // nil: allowed
	}{
		{"create within its own", limited, nil, creating(within), nil},
		{"create with a looser limit", limited, nil, creating(withName(within, func(in *keys.CreateInput) { in.RateLimits = raw(`[{"name":"sec","limit":11,"windowSeconds":1}]`) })), rateRefused},
		{"create with a shorter window", limited, nil, creating(withName(within, func(in *keys.CreateInput) { in.RateLimits = raw(`[{"name":"sec","limit":10,"windowSeconds":0.0}]`) })), &keys.InvalidError{Field: "rateLimits[0].windowSeconds"}},
		{"create without limits", limited, nil, creating(withName(within, func(in *keys.CreateInput) { in.RateLimits = raw("[]") })), rateRefused},
		{"create of a tier looser than itself", limited, nil, creating(withName(within, func(in *keys.CreateInput) { in.RateLimits = nil })), rateRefused},
		{"create with unlimited credits", limited, nil, creating(withName(within, func(in *keys.CreateInput) { in.Credits = raw("null") })), creditsRefused},
		{"create with more credits", limited, nil, creating(withName(within, func(in *keys.CreateInput) { in.Credits = raw(`{"remaining":101}`) })), creditsRefused},
		{"create with a larger refill", limited, nil, creating(withName(within, func(in *keys.CreateInput) {
			in.Credits = raw(`{"remaining":1,"refill":{"interval":"monthly","amount":101,"refillDay":1}}`)
		})), creditsRefused},
		{"create with a more frequent refill", limited, nil, creating(withName(within, func(in *keys.CreateInput) {
			in.Credits = raw(`{"remaining":1,"refill":{"interval":"daily","amount":1}}`)
		})), creditsRefused},
		{"create with a refill, holding none", keys.CreateInput{RateLimits: raw("[]"), Credits: raw(`{"remaining":100}`)}, nil, creating(withName(within, func(in *keys.CreateInput) {
			in.Credits = raw(`{"remaining":1,"refill":{"interval":"monthly","amount":1,"refillDay":1}}`)
		})), &keys.ForbiddenError{Message: "holds 100 credits and no refill"}},
		{"a key without limits gives anything", unlimited, nil, creating(unlimited), nil},
		{"a due refill counts as done", keys.CreateInput{RateLimits: raw("[]"), Credits: raw(`{"remaining":0,"refill":{"interval":"daily","amount":100}}`)},
			func(g *grantTest) { g.clock.Advance(13 * time.Hour) }, creating(keys.CreateInput{RateLimits: raw("[]"), Credits: raw(`{"remaining":100}`)}), nil},
		{"the context's tier is no warrant", limited, func(g *grantTest) { g.me.Tier = "internal" }, creating(withName(within, func(in *keys.CreateInput) { in.Tier, in.RateLimits = "internal", nil })), rateRefused},
		{"a caller revoked since", limited, func(g *grantTest) { g.must(nil, g.svc.Revoke(g.ctx, op, g.me.KeyID)) }, creating(within), keys.ErrCallerInactive},

		{"loosen its own limits", limited, nil, patchingSelf(keys.UpdateInput{RateLimits: raw(`[{"name":"sec","limit":20,"windowSeconds":1}]`)}), selfRateRefused},
		{"follow a looser tier", limited, nil, patchingSelf(keys.UpdateInput{RateLimits: raw("null")}), selfRateRefused},
		// A fresh counter would forget what the key spent, however tight.
		{"rename its own limit", limited, nil, patchingSelf(keys.UpdateInput{RateLimits: raw(`[{"name":"sec2","limit":5,"windowSeconds":1}]`)}), selfRateRefused},
		{"lengthen its own limit's window", limited, nil, patchingSelf(keys.UpdateInput{RateLimits: raw(`[{"name":"sec","limit":10,"windowSeconds":2}]`)}), selfRateRefused},
		{"add a limit to its own", limited, nil, patchingSelf(keys.UpdateInput{RateLimits: raw(`[{"name":"sec","limit":10,"windowSeconds":1},{"name":"day","limit":50,"windowSeconds":86400}]`)}), nil},
		{"move its own refill day", limited, nil, patchingSelf(keys.UpdateInput{Credits: raw(`{"refill":{"interval":"monthly","amount":100,"refillDay":2}}`)}), selfCreditsRefused},
		{"remove its own refill", limited, nil, patchingSelf(keys.UpdateInput{Credits: raw(`{"refill":null}`)}), nil},
		{"tighten its own limits", limited, nil, patchingSelf(keys.UpdateInput{RateLimits: raw(`[{"name":"sec","limit":5,"windowSeconds":1}]`)}), nil},
		{"raise its own credits", limited, nil, patchingSelf(keys.UpdateInput{Credits: raw(`{"remaining":101}`)}), selfCreditsRefused},
		{"make its own credits unlimited", limited, nil, patchingSelf(keys.UpdateInput{Credits: raw("null")}), selfCreditsRefused},
		{"lower its own credits", limited, nil, patchingSelf(keys.UpdateInput{Credits: raw(`{"remaining":50}`)}), nil},
		{"increment its own credits", limited, nil, adjusting(nil, keys.CreditsIncrement, "1"), selfCreditsRefused},
		{"set its own credits higher", limited, nil, adjusting(nil, keys.CreditsSet, "101"), selfCreditsRefused},
		{"decrement its own credits", limited, nil, adjusting(nil, keys.CreditsDecrement, "1"), nil},
		{"set its own credits lower", limited, nil, adjusting(nil, keys.CreditsSet, "0"), nil},

		{"tighten a key looser than itself", limited, nil, patching(loose, keys.UpdateInput{RateLimits: raw(`[{"name":"sec","limit":500,"windowSeconds":1}]`), Credits: raw(`{"remaining":900}`)}), nil},
		{"loosen a key beyond itself", limited, nil, patching(tight, keys.UpdateInput{RateLimits: raw(`[{"name":"sec","limit":50,"windowSeconds":1}]`)}), rateRefused},
		{"loosen a key within itself", limited, nil, patching(tight, keys.UpdateInput{RateLimits: raw(`[{"name":"sec","limit":10,"windowSeconds":1}]`)}), nil},
		{"give a key credits beyond its own", limited, nil, adjusting(&tight, keys.CreditsIncrement, "96"), creditsRefused},
		{"give a key credits within its own", limited, nil, adjusting(&tight, keys.CreditsIncrement, "95"), nil},
		{"take credits from a richer key", limited, nil, adjusting(&loose, keys.CreditsDecrement, "1"), nil},
		{"rotate a key looser than itself", limited, nil, rotating(loose), rateRefused},
		{"rotate a key within itself", limited, nil, rotating(tight), nil},

		{"a key of a limited owner makes a key for another owner", withName(limited, func(in *keys.CreateInput) { in.Owner = "alice" }), aliceLimited,
			creating(withName(within, func(in *keys.CreateInput) { in.Owner = "bob" })), ownerRefused},
		{"a key of a limited owner makes a key for its owner", withName(limited, func(in *keys.CreateInput) { in.Owner = "alice" }), aliceLimited, creating(within), nil},
		{"a key of a limited owner rotates another owner's key", withName(limited, func(in *keys.CreateInput) { in.Owner = "alice" }), aliceLimited,
			rotating(withName(tight, func(in *keys.CreateInput) { in.Owner = "bob" })), ownerRefused},
		{"loosen its own owner's limits", withName(limited, func(in *keys.CreateInput) { in.Owner = "alice" }), aliceLimited,
			limitingOwner("alice", keys.OwnerLimitsInput{RateLimits: raw(`[{"name":"sec","limit":20,"windowSeconds":1}]`)}), loosenOwnRefused},
		{"remove its own owner's limits", withName(limited, func(in *keys.CreateInput) { in.Owner = "alice" }), aliceLimited,
			limitingOwner("alice", keys.OwnerLimitsInput{RateLimits: raw("[]"), Credits: raw("null")}), loosenOwnRefused},
		{"rename its own owner's limit", withName(limited, func(in *keys.CreateInput) { in.Owner = "alice" }), aliceLimited,
			limitingOwner("alice", keys.OwnerLimitsInput{RateLimits: raw(`[{"name":"sec2","limit":5,"windowSeconds":1}]`)}), loosenOwnRefused},
		{"tighten its own owner's limits", withName(limited, func(in *keys.CreateInput) { in.Owner = "alice" }), aliceLimited,
			limitingOwner("alice", keys.OwnerLimitsInput{RateLimits: raw(`[{"name":"sec","limit":5,"windowSeconds":1}]`), Credits: raw(`{"remaining":7}`)}), nil},
		{"set another owner's limits", withName(limited, func(in *keys.CreateInput) { in.Owner = "alice" }), aliceLimited,
			limitingOwner("bob", keys.OwnerLimitsInput{RateLimits: raw(`[{"name":"sec","limit":9999,"windowSeconds":1}]`)}), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLimitsEnv(t)
			tc.grantor.Scopes = []string{"admin", "contracts"}
			g := &grantTest{env: e, me: callerOf(e.create(op, tc.grantor)), others: map[string]string{}}
			if tc.setup != nil {
				tc.setup(g)
			}
			for _, target := range []keys.CreateInput{loose, tight, withName(tight, func(in *keys.CreateInput) { in.Owner = "bob" })} {
				g.other(target)
			}
			writes, events := e.store.Writes(), len(e.events(""))
			err := tc.act(g)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantErr(t, err, tc.want)
			if e.store.Writes() != writes || len(e.events("")) != events {
				t.Errorf("a refusal wrote")
			}
		})
	}
}

// grantTest is a TestLimitsGrant case: the calling key, and the keys it
// acts on, each made once by the operator.
type grantTest struct {
	*env
	me     keys.Caller
	others map[string]string // key id by its settings
}

func (g *grantTest) other(in keys.CreateInput) string {
	g.Helper()
	j, _ := json.Marshal(in)
	if id, ok := g.others[string(j)]; ok {
		return id
	}
	in.Scopes = []string{"contracts"}
	id := g.create(op, in).ID
	g.others[string(j)] = id
	return id
}

func (g *grantTest) must(_ any, err error) {
	g.Helper()
	if err != nil {
		g.Fatal(err)
	}
}

func TestAdjustCredits(t *testing.T) {
	jan2, jan3 := time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC), time.Date(2030, 1, 3, 0, 0, 0, 0, time.UTC)
	withDaily := raw(`{"remaining":10,"refill":{"interval":"daily","amount":20}}`)
	for _, tc := range []struct {
		name    string
		start   json.RawMessage // the key's credits
		advance time.Duration
		op      string
		value   string
		want    *keys.Credits // nil: the error
		err     error
	}{
		{"increment", withDaily, 0, keys.CreditsIncrement, "5", credits(15, daily, &jan2), nil},
		{"decrement", withDaily, 0, keys.CreditsDecrement, "4", credits(6, daily, &jan2), nil},
		{"decrement to zero", withDaily, 0, keys.CreditsDecrement, "10", credits(0, daily, &jan2), nil},
		{"set", withDaily, 0, keys.CreditsSet, "1125899906842624", credits(1<<50, daily, &jan2), nil},
		{"increment a due refill", withDaily, 13 * time.Hour, keys.CreditsIncrement, "5", credits(25, daily, &jan3), nil},
		{"decrement below zero", withDaily, 0, keys.CreditsDecrement, "11", nil, &keys.ConflictError{Message: "would go below zero: 10 remaining"}},
		{"increment beyond the largest", raw(`{"remaining":1125899906842624}`), 0, keys.CreditsIncrement, "1", nil, &keys.ConflictError{Message: "would exceed"}},
		{"a key without credits", raw("null"), 0, keys.CreditsIncrement, "1", nil, &keys.ConflictError{Message: "unlimited credits"}},
		{"an unknown op", withDaily, 0, "add", "1", nil, &keys.InvalidError{Field: "op"}},
		{"a fraction", withDaily, 0, keys.CreditsIncrement, "1.5", nil, &keys.InvalidError{Field: "value"}},
		{"a negative value", withDaily, 0, keys.CreditsIncrement, "-1", nil, &keys.InvalidError{Field: "value"}},
		{"a huge value", withDaily, 0, keys.CreditsSet, "1e300", nil, &keys.InvalidError{Field: "value"}},
		{"a string", withDaily, 0, keys.CreditsSet, `"5"`, nil, &keys.InvalidError{Field: "value"}},
		{"no value", withDaily, 0, keys.CreditsSet, "", nil, &keys.InvalidError{Field: "value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLimitsEnv(t)
			k := e.create(op, keys.CreateInput{Credits: tc.start, Scopes: []string{"contracts"}})
			e.clock.Advance(tc.advance + time.Millisecond) // the event lists after the creation's
			before := e.stored(k.ID).Credits.At(e.clock.Now())
			var value json.RawMessage
			if tc.value != "" {
				value = raw(tc.value)
			}
			if tc.err != nil {
				e.unchanged(k.ID, func() {
					_, err := e.svc.AdjustCredits(e.ctx, op, k.ID, keys.CreditsInput{Op: tc.op, Value: value})
					wantErr(t, err, tc.err)
				})
				return
			}
			got, err := e.svc.AdjustCredits(e.ctx, keyCaller("admin", "contracts"), k.ID, keys.CreditsInput{Op: tc.op, Value: value})
			if err != nil {
				t.Fatal(err)
			}
			wantCredits(t, "answered", got.Credits, tc.want)
			wantCredits(t, "stored", e.stored(k.ID).Credits, tc.want)
			ev := e.events(k.ID)[0]
			from, _ := json.Marshal(before)
			to, _ := json.Marshal(tc.want)
			c := ev.Changes["credits"]
			if ev.Action != keys.ActionCreditsAdjusted || ev.Actor != keyCallerID || len(ev.Changes) != 1 ||
				string(c.From.(json.RawMessage)) != string(from) || string(c.To.(json.RawMessage)) != string(to) {
				t.Errorf("event %s by %s: %+v; want credits from %s to %s", ev.Action, ev.Actor, ev.Changes, from, to)
			}
		})
	}
}

// Increments racing uses that spend credits lose none: each increment is
// written only over the credits it read, and the end is exact.
func TestAdjustCreditsRacesUses(t *testing.T) {
	const start, increments, uses, step = 1000, 20, 30, 5
	e := newLimitsEnv(t)
	k := e.create(op, keys.CreateInput{Credits: raw(`{"remaining":1000}`)})
	var wg sync.WaitGroup
	errs := make(chan error, increments+uses)
	for range increments {
		wg.Go(func() {
			_, err := e.svc.AdjustCredits(e.ctx, op, k.ID, keys.CreditsInput{Op: keys.CreditsIncrement, Value: raw("5")})
			errs <- err
		})
	}
	for range uses {
		wg.Go(func() { errs <- e.store.CountUse(e.ctx, k.ID, 1) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	got := e.stored(k.ID)
	if got.Credits.Remaining != start+increments*step-uses || got.Usage.TotalRequests != uses {
		t.Errorf("credits %d after %d uses, want %d", got.Credits.Remaining, got.Usage.TotalRequests, start+increments*step-uses)
	}
	if n := len(e.events(k.ID)); n != 1+increments {
		t.Errorf("%d events, want the creation's and one per increment", n)
	}
}

// A credits operation on a key spent throughout every attempt gives up
// with a conflict that says why, and writes nothing.
func TestAdjustCreditsGivesUpUnderUse(t *testing.T) {
	e := newLimitsEnv(t)
	k := e.create(op, keys.CreateInput{Credits: raw(`{"remaining":1000}`)})
	e.use(&racingStore{Store: e.store, always: true, race: func() {
		if err := e.store.CountUse(e.ctx, k.ID, 1); err != nil {
			t.Error(err)
		}
	}})
	writes := e.store.Writes()
	_, err := e.svc.AdjustCredits(e.ctx, op, k.ID, keys.CreditsInput{Op: keys.CreditsSet, Value: raw("5")})
	wantErr(t, err, &keys.ConflictError{Message: "credits: the key's uses kept changing its counts"})
	if e.store.Writes() != writes || e.stored(k.ID).Credits.Remaining == 5 {
		t.Error("a failed credits operation wrote")
	}
}
