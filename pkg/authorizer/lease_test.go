package authorizer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/authorizer/authorizertest"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

// fleet is N warm containers of one function, each its own Authorizer
// with its own memory and its own clock (skewed from the fleet's), over
// one store: how Lambda runs the authorizer at scale.
type fleet struct {
	t          *testing.T
	cfg        keys.Config
	store      *authorizertest.Store
	now        time.Time // the true time
	skews      []time.Duration
	containers []*authorizer.Authorizer
}

// hotTier is the leased tier of these tests: limit a second.
func hotTier(limit int64) keys.Tier {
	t := keys.WindowTier("hot", "ht", limit, time.Second)
	t.Mode = keys.ModeLeased
	return t
}

func newFleet(t *testing.T, n int, tier keys.Tier, skew time.Duration, seed uint64) *fleet {
	cfg := keys.DefaultConfig()
	cfg.Tiers = append(cfg.Tiers, tier)
	f := &fleet{t: t, cfg: cfg, store: authorizertest.NewStore(), now: time.Date(2030, 1, 15, 10, 0, 0, 0, time.UTC)}
	rng := rand.New(rand.NewPCG(seed, 1))
	for range n {
		var s time.Duration
		if skew > 0 {
			s = time.Duration(rng.Int64N(int64(2*skew+1))) - skew
		}
		f.skews = append(f.skews, s)
		f.containers = append(f.containers, f.container(len(f.skews)-1))
	}
	return f
}

// container is a fresh container i: empty memory, container i's clock.
func (f *fleet) container(i int) *authorizer.Authorizer {
	clock := func() time.Time { return f.now.Add(f.skews[i]) }
	return authorizer.New(f.cfg, f.store, slog.New(slog.DiscardHandler), authorizer.WithClock(clock))
}

// key stores a key of tier code, after edit, and returns its raw value.
func (f *fleet) key(code, label string, edit func(*keys.Key)) string {
	raw := authorizertest.Key(keys.DefaultKeyPrefix, code, label)
	tier, _ := f.cfg.TierByCode(code)
	k := keys.Key{Tier: tier.Name, Project: "acme", Status: keys.StatusActive, Scopes: []string{"contracts"},
		RateLimitsFromTier: true}
	if edit != nil {
		edit(&k)
	}
	f.store.Add(raw, k)
	return raw
}

func (f *fleet) decide(i int, req authorizer.Request) authorizer.Decision {
	f.t.Helper()
	d, err := f.containers[i].Decide(context.Background(), req)
	if err != nil {
		f.t.Fatalf("container %d: %v", i, err)
	}
	return d
}

// load is a run's traffic: rate requests a second in all, for seconds,
// to containers picked round the fleet or at random; churn replaces a
// random container by a fresh one (the old one dies holding its lease)
// every churn requests.
type load struct {
	rate, seconds int
	random        bool
	churn         int
}

// tally is what a run decided.
type tally struct {
	requests, allowed int
	admitted          map[time.Time]int // allowed, by the end of the window counted in
	offered           map[time.Time]int // requests, by the end of their true window
	calls             int               // store requests
}

func (f *fleet) run(raw string, l load, seed uint64) tally {
	f.t.Helper()
	rng := rand.New(rand.NewPCG(seed, 2))
	res := tally{admitted: map[time.Time]int{}, offered: map[time.Time]int{}}
	start, calls := f.now, f.store.Calls()
	req := authorizer.Request{Key: raw, Scopes: []string{"contracts"}, Cost: 1, SourceIP: "198.51.100.7"}
	for i := range l.rate * l.seconds {
		f.now = start.Add(time.Duration(i) * time.Second / time.Duration(l.rate))
		if l.churn > 0 && i%l.churn == l.churn-1 {
			dead := rng.IntN(len(f.containers))
			f.containers[dead] = f.container(dead)
		}
		c := i % len(f.containers)
		if l.random {
			c = rng.IntN(len(f.containers))
		}
		d := f.decide(c, req)
		res.requests++
		res.offered[authorizer.WindowAt(f.now, time.Second).End()]++
		switch d.Outcome {
		case authorizer.Allowed:
			res.allowed++
			res.admitted[d.RateLimit.Reset]++
		case authorizer.RateLimited, authorizer.UsageExceeded:
		default:
			f.t.Fatalf("request %d: %s", i, d.Outcome)
		}
	}
	f.now = start.Add(time.Duration(l.seconds) * time.Second)
	res.calls = f.store.Calls() - calls
	return res
}

// underAdmission is, in % of the limit, what the limit would have let
// through and was refused: per window, the lesser of the requests and the
// limit, less those admitted.
func (r tally) underAdmission(limit int64) float64 {
	var missed, budget float64
	for end, n := range r.offered {
		missed += float64(min(int64(n), limit) - int64(r.admitted[end]))
		budget += float64(limit)
	}
	return 100 * missed / budget
}

func TestLeasedNeverOverAdmits(t *testing.T) {
	const limit = 2000
	tests := []struct {
		name       string
		containers int
		load       load
		skew       time.Duration
		// maxUnder bounds under-admission (%), maxCalls store requests per
		// decision; 0 checks neither (churn loses leases by design).
		maxUnder, maxCalls float64
	}{
		{name: "10,000/s on 50 containers", containers: 50, load: load{rate: 10000, seconds: 4}, maxUnder: 2, maxCalls: 0.05},
		{name: "2,000/s, at the limit", containers: 50, load: load{rate: 2000, seconds: 4}, maxUnder: 5, maxCalls: 0.1},
		{name: "500/s, under the limit", containers: 50, load: load{rate: 500, seconds: 4}, maxUnder: 0.01},
		{name: "random containers", containers: 50, load: load{rate: 10000, seconds: 4, random: true}, maxUnder: 2, maxCalls: 0.05},
		{name: "clocks skewed ±100 ms", containers: 50, load: load{rate: 10000, seconds: 4, random: true}, skew: 100 * time.Millisecond},
		// A container dies every 1,000 requests, five a second: each
		// takes what its lease held with it.
		{name: "containers dying with their leases", containers: 20, load: load{rate: 5000, seconds: 4, random: true, churn: 1000}},
		{name: "all of it", containers: 50, load: load{rate: 10000, seconds: 4, random: true, churn: 997}, skew: 100 * time.Millisecond},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t, tc.containers, hotTier(limit), tc.skew, uint64(i))
			raw := f.key("ht", "hot", nil)
			res := f.run(raw, tc.load, uint64(i))
			for end, n := range res.admitted {
				if n > limit {
					t.Errorf("window ending %s admitted %d, over the limit of %d", end.Format(time.StampMilli), n, limit)
				}
			}
			under := res.underAdmission(limit)
			perDecision := float64(res.calls) / float64(res.requests)
			t.Logf("%d requests, %d allowed, under-admission %.2f%%, %.4f store requests per decision", res.requests, res.allowed, under, perDecision)
			if tc.maxUnder > 0 && under > tc.maxUnder {
				t.Errorf("under-admission %.2f%%, want at most %.2f%%", under, tc.maxUnder)
			}
			if tc.maxCalls > 0 && perDecision > tc.maxCalls {
				t.Errorf("%.4f store requests per decision, want at most %.2f", perDecision, tc.maxCalls)
			}
			if stored := f.store.TotalRequests(token.ID(token.Hash(raw))); stored < int64(res.allowed) {
				t.Errorf("the store counted %d uses, fewer than the %d allowed", stored, res.allowed)
			}
		})
	}
}

// Credits are a budget across windows: however the containers claim
// them, no more are spent than the key holds.
func TestLeasedNeverOverspendsCredits(t *testing.T) {
	f := newFleet(t, 20, hotTier(1_000_000), 100*time.Millisecond, 7)
	raw := f.key("ht", "credits", func(k *keys.Key) { k.Credits = &keys.Credits{Remaining: 5000} })
	res := f.run(raw, load{rate: 5000, seconds: 3, random: true, churn: 101}, 7)
	if res.allowed > 5000 {
		t.Errorf("%d allowed at a cost of 1 with 5,000 credits", res.allowed)
	}
	if res.allowed < 4000 {
		t.Errorf("%d allowed of 5,000 credits: containers dying hold at most a block each", res.allowed)
	}
	if c := f.store.Credits(t, token.ID(token.Hash(raw))); c.Remaining < 0 {
		t.Errorf("credits %d, below zero", c.Remaining)
	}
}

// Every use a lease claims is either spent or given back: once the
// container's leases end and it takes back what they left, the stored
// total is exactly what was allowed.
func TestLeaseGivesBackWhatItLeft(t *testing.T) {
	f := newFleet(t, 1, hotTier(1000), 0, 1)
	raw := f.key("ht", "giveback", nil)
	id := token.ID(token.Hash(raw))
	res := f.run(raw, load{rate: 200, seconds: 3}, 1)
	if res.allowed != 600 {
		t.Fatalf("%d allowed of 600 under the limit", res.allowed)
	}
	// The key goes exact: its next claim learns it, the decision after
	// that writes as exact mode does and takes back the rest.
	f.store.Edit(id, func(k *keys.Key) { k.Mode, k.ModeFromTier = keys.ModeExact, false })
	req := authorizer.Request{Key: raw, Scopes: []string{"contracts"}, Cost: 1}
	for range 2 {
		f.now = f.now.Add(authorizer.LeaseLifetime)
		if d := f.decide(0, req); d.Outcome != authorizer.Allowed {
			t.Fatalf("after the change of mode: %s", d.Outcome)
		}
	}
	if got := f.store.TotalRequests(id); got != 602 {
		t.Errorf("stored total %d, want the 602 allowed", got)
	}
	calls := f.store.Calls()
	f.decide(0, req)
	if f.store.Calls() != calls+1 {
		t.Errorf("a key in exact mode: %d store requests for a decision, want 1", f.store.Calls()-calls)
	}
}

// A key's own mode wins over its tier's, either way.
func TestLeasedModeOfTheKey(t *testing.T) {
	exactTier := keys.WindowTier("plain", "pl", 1000, time.Second)
	f := newFleet(t, 1, hotTier(1000), 0, 1)
	f.cfg.Tiers = append(f.cfg.Tiers, exactTier)
	f.containers[0] = f.container(0)
	for _, tc := range []struct {
		code     string
		own      keys.Mode
		maxCalls int
	}{
		{"pl", keys.ModeLeased, 20}, // blocks of 1, 3, 7, 15...: a handful of claims
		{"ht", keys.ModeExact, 100},
		{"ht", "", 20},
		{"pl", "", 100},
	} {
		raw := f.key(tc.code, fmt.Sprintf("mode %s %s", tc.code, tc.own), func(k *keys.Key) {
			k.Mode = tc.own
		})
		calls := f.store.Calls()
		req := authorizer.Request{Key: raw, Scopes: []string{"contracts"}}
		for i := range 100 {
			f.now = f.now.Add(time.Millisecond)
			if d := f.decide(0, req); d.Outcome != authorizer.Allowed {
				t.Fatalf("tier %s, own mode %q, request %d: %s", tc.code, tc.own, i, d.Outcome)
			}
		}
		if n := f.store.Calls() - calls; n > tc.maxCalls || tc.maxCalls == 100 && n != 100 {
			t.Errorf("tier %s, own mode %q: %d store requests for 100 decisions, want at most %d", tc.code, tc.own, n, tc.maxCalls)
		}
	}
}

// Every change of a key reaches every container within LeaseLifetime:
// the time from the change to the last Allow a change refuses, across the
// fleet, is under it; and a key's expiry holds to the millisecond.
func TestLeasedSeesChangesWithinTheLifetime(t *testing.T) {
	tests := []struct {
		name   string
		change func(k *keys.Key, at time.Time)
		want   authorizer.Outcome
		within time.Duration
	}{
		{"revoked", func(k *keys.Key, at time.Time) { k.Status, k.RevokedAt = keys.StatusRevoked, &at }, authorizer.Revoked, authorizer.LeaseLifetime},
		{"scope removed", func(k *keys.Key, _ time.Time) { k.Scopes = []string{"vaults"} }, authorizer.InsufficientScope, authorizer.LeaseLifetime},
		{"allowlist narrowed", func(k *keys.Key, _ time.Time) { k.IPAllowlist = []string{"203.0.113.0/24"} }, authorizer.IPNotAllowed, authorizer.LeaseLifetime},
		{"limit lowered to none left", func(k *keys.Key, _ time.Time) {
			k.RateLimits, k.RateLimitsFromTier, k.LimitsVersion = []keys.RateLimit{{Name: "day", Limit: 1, WindowSeconds: 86400}}, false, 2
		}, authorizer.RateLimited, authorizer.LeaseLifetime},
		{"expiry brought forward", func(k *keys.Key, at time.Time) { k.ExpiresAt = &at }, authorizer.Expired, authorizer.LeaseLifetime},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t, 10, hotTier(100_000), 100*time.Millisecond, uint64(i))
			raw := f.key("ht", "change", func(k *keys.Key) { k.IPAllowlist = []string{"198.51.100.0/24"} })
			f.run(raw, load{rate: 2000, seconds: 2}, uint64(i)) // every container holds a lease
			req := authorizer.Request{Key: raw, Scopes: []string{"contracts"}, SourceIP: "198.51.100.7"}
			changed := f.now
			f.store.Edit(token.ID(token.Hash(raw)), func(k *keys.Key) { tc.change(k, changed) })
			var lastAllow time.Duration = -1
			for step := time.Duration(0); step <= 2*authorizer.LeaseLifetime; step += 5 * time.Millisecond {
				f.now = changed.Add(step)
				for c := range f.containers {
					switch d := f.decide(c, req); {
					case d.Outcome == authorizer.Allowed:
						lastAllow = step
					case d.Outcome != tc.want:
						t.Fatalf("container %d, %s after: %s, want %s", c, step, d.Outcome, tc.want)
					}
				}
			}
			t.Logf("last Allow %s after the change", lastAllow)
			if lastAllow >= tc.within {
				t.Errorf("a container allowed %s after the change, want under %s", lastAllow, tc.within)
			}
		})
	}
}

// A refusal for a full window is answered from memory until the lease
// would have ended, with the time to the window's end.
func TestLeasedRemembersRefusals(t *testing.T) {
	tier := hotTier(1)
	tier.RateLimits = []keys.RateLimit{{Name: "minute", Limit: 3, WindowSeconds: 60}}
	f := newFleet(t, 1, tier, 0, 1)
	raw := f.key("ht", "refusals", nil)
	req := authorizer.Request{Key: raw, Scopes: []string{"contracts"}}
	for range 3 {
		f.now = f.now.Add(time.Millisecond)
		f.decide(0, req)
	}
	calls := f.store.Calls()
	end := authorizer.WindowAt(f.now, time.Minute).End()
	for step := range 10 {
		f.now = f.now.Add(50 * time.Millisecond)
		d := f.decide(0, req)
		if d.Outcome != authorizer.RateLimited || d.RetryAfter != end.Sub(f.now) {
			t.Fatalf("step %d: %s, retry after %s; want rate_limited, %s", step, d.Outcome, d.RetryAfter, end.Sub(f.now))
		}
	}
	if n := f.store.Calls() - calls; n != 1 {
		t.Errorf("%d store requests for 10 refusals within a lease's lifetime, want 1", n)
	}
}

// An expiry the lease knows holds to the millisecond, as in exact mode.
func TestLeasedExpiryIsExact(t *testing.T) {
	f := newFleet(t, 10, hotTier(100_000), 0, 1)
	end := f.now.Add(2*time.Second + 300*time.Millisecond)
	raw := f.key("ht", "expiring", func(k *keys.Key) { k.ExpiresAt = &end })
	f.run(raw, load{rate: 2000, seconds: 2}, 1)
	req := authorizer.Request{Key: raw, Scopes: []string{"contracts"}}
	for f.now = end.Add(-5 * time.Millisecond); f.now.Before(end.Add(5 * time.Millisecond)); f.now = f.now.Add(time.Millisecond) {
		want := authorizer.Allowed
		if !f.now.Before(end) {
			want = authorizer.Expired
		}
		for c := range f.containers {
			if d := f.decide(c, req); d.Outcome != want {
				t.Fatalf("container %d at %s of the expiry: %s, want %s", c, f.now.Sub(end), d.Outcome, want)
			}
		}
	}
}

// BenchmarkLeaseHit is a decision a lease makes from memory: the key's
// checksum and hash, the lease's checks, the decision's log line (to a
// discarding handler).
func BenchmarkLeaseHit(b *testing.B) {
	cfg := keys.DefaultConfig()
	cfg.Tiers = append(cfg.Tiers, hotTier(1<<40))
	store := authorizertest.NewStore()
	raw := authorizertest.Key(keys.DefaultKeyPrefix, "ht", "bench")
	store.Add(raw, keys.Key{Tier: "hot", Project: "acme", Status: keys.StatusActive, Scopes: []string{"contracts"},
		IPAllowlist: []string{"198.51.100.0/24"}, RateLimitsFromTier: true})
	now := time.Date(2030, 1, 15, 10, 0, 0, 0, time.UTC)
	auth := authorizer.New(cfg, store, slog.New(slog.DiscardHandler), authorizer.WithClock(func() time.Time { return now }))
	req := authorizer.Request{Key: raw, Scopes: []string{"contracts"}, SourceIP: "198.51.100.7", Cost: 1}
	for range 64 { // the blocks grow to a second's worth
		now = now.Add(time.Millisecond)
		if _, err := auth.Decide(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	calls := store.Calls()
	b.ReportAllocs()
	for b.Loop() {
		d, err := auth.Decide(context.Background(), req)
		if err != nil || d.Outcome != authorizer.Allowed {
			b.Fatal(d.Outcome, err)
		}
	}
	if b.N > 1 && store.Calls()-calls > b.N/100+2 {
		b.Errorf("%d store requests for %d decisions: not lease hits", store.Calls()-calls, b.N)
	}
}

// A decision from a lease logs as one: fromLease, and no DynamoDB
// metrics, since it made no request.
func TestLeaseHitLogLine(t *testing.T) {
	cfg := keys.DefaultConfig()
	cfg.Tiers = append(cfg.Tiers, hotTier(1000))
	store := authorizertest.NewStore()
	raw := authorizertest.Key(keys.DefaultKeyPrefix, "ht", "logged")
	store.Add(raw, keys.Key{Tier: "hot", Project: "acme", Status: keys.StatusActive, RateLimitsFromTier: true})
	now := time.Date(2030, 1, 15, 10, 0, 0, 0, time.UTC)
	var logs bytes.Buffer
	auth := authorizer.New(cfg, store, slog.New(slog.NewJSONHandler(&logs, nil)), authorizer.WithClock(func() time.Time { return now }))
	var lines []map[string]any
	for range 3 { // a claim of 1, a claim of 3, a hit
		now = now.Add(time.Millisecond)
		logs.Reset()
		if _, err := auth.Decide(context.Background(), authorizer.Request{Key: raw}); err != nil {
			t.Fatal(err)
		}
		var line map[string]any
		if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
			t.Fatalf("%v: %s", err, logs.String())
		}
		lines = append(lines, line)
	}
	claim, hit := lines[1], lines[2]
	if claim["fromLease"] != nil || claim["dynamodbLatencyMs"] == nil {
		t.Errorf("a claim's line: %v", claim)
	}
	if hit["fromLease"] != true || hit["dynamodbLatencyMs"] != nil || hit["outcome"] != "allowed" {
		t.Errorf("a lease hit's line: %v", hit)
	}
}
