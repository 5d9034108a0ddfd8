package dynamo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keygate/keygate/pkg/app"
	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/authorizer/authorizertest"
	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

// The tests in this file run keygate's authorizer on DynamoDB Local, as
// the authorizer function does, and inspect what its writes left in the
// key item: window counters and usage, and the requests and capacity they
// took. What every authorizer.Store does is authorizertest's contract,
// which TestAuthorizerStoreContract runs.

// Each decision takes the DynamoDB requests it should, and only an allowed
// one leaves a count.
func TestAuthorizationOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(e *dbEnv) (raw string, req authorizer.Request)
		want     authorizer.Outcome
		requests int64
		counted  int64
	}{
		{"allowed", func(e *dbEnv) (string, authorizer.Request) {
			raw := e.create(keys.CreateInput{Tier: "public", Scopes: []string{"contracts"}})
			return raw, authorizer.Request{Scopes: []string{"contracts"}}
		}, authorizer.Allowed, 1, 1},
		{"malformed: no request at all", func(e *dbEnv) (string, authorizer.Request) {
			raw := e.create(keys.CreateInput{Tier: "public"})
			// A checksum typo: the last character changed, whatever it was.
			return raw, authorizer.Request{Key: raw[:len(raw)-1] + string(raw[len(raw)-1]^1)}
		}, authorizer.MalformedKey, 0, 0},
		{"unknown", func(e *dbEnv) (string, authorizer.Request) {
			raw := e.create(keys.CreateInput{Tier: "public"})
			return raw, authorizer.Request{Key: authorizertest.Key("kg", "pk", "never stored")}
		}, authorizer.NotFound, 1, 0},
		{"another project's key", func(e *dbEnv) (string, authorizer.Request) {
			return e.createIn("globex", keys.CreateInput{Tier: "public"}), authorizer.Request{Project: "acme"}
		}, authorizer.NotFound, 1, 0},
		{"own project's key", func(e *dbEnv) (string, authorizer.Request) {
			return e.create(keys.CreateInput{Tier: "public"}), authorizer.Request{Project: "acme"}
		}, authorizer.Allowed, 1, 1},
		{"revoked", func(e *dbEnv) (string, authorizer.Request) {
			raw := e.create(keys.CreateInput{Tier: "public"})
			if err := e.svc.Revoke(context.Background(), keys.OperatorCaller("acme"), token.ID(token.Hash(raw))); err != nil {
				e.t.Fatal(err)
			}
			return raw, authorizer.Request{}
		}, authorizer.Revoked, 1, 0},
		{"expired, not yet deleted", func(e *dbEnv) (string, authorizer.Request) {
			raw := e.create(keys.CreateInput{Tier: "public", ExpiresAt: aws.String(e.clock.Now().Add(time.Minute).Format(time.RFC3339))})
			e.clock.Advance(time.Minute)
			return raw, authorizer.Request{}
		}, authorizer.Expired, 1, 0},
		{"rate limited", func(e *dbEnv) (string, authorizer.Request) {
			raw := e.create(keys.CreateInput{Tier: "tiny"})
			for range 3 {
				if d, _ := e.decide(authorizer.Request{Key: raw}); d.Outcome != authorizer.Allowed {
					e.t.Fatalf("use within the limit: %s", d.Outcome)
				}
			}
			return raw, authorizer.Request{}
		}, authorizer.RateLimited, 1, 3},
		{"insufficient scope: refused by the write, not counted", func(e *dbEnv) (string, authorizer.Request) {
			return e.create(keys.CreateInput{Tier: "public", Scopes: []string{"contracts"}}), authorizer.Request{Scopes: []string{"payments"}}
		}, authorizer.InsufficientScope, 1, 0},
		{"insufficient scope, no scopes at all", func(e *dbEnv) (string, authorizer.Request) {
			return e.create(keys.CreateInput{Tier: "public"}), authorizer.Request{Scopes: []string{"contracts"}}
		}, authorizer.InsufficientScope, 1, 0},
		{"IP not allowed: counted, then returned", func(e *dbEnv) (string, authorizer.Request) {
			raw := e.create(keys.CreateInput{Tier: "public", IPAllowlist: []string{"2001:db8::/32", "203.0.113.7"}})
			return raw, authorizer.Request{SourceIP: "203.0.113.8"}
		}, authorizer.IPNotAllowed, 2, 0},
		{"IP allowed", func(e *dbEnv) (string, authorizer.Request) {
			raw := e.create(keys.CreateInput{Tier: "public", IPAllowlist: []string{"2001:db8::/32", "203.0.113.7"}})
			return raw, authorizer.Request{SourceIP: "::ffff:203.0.113.7"}
		}, authorizer.Allowed, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newDBEnv(t)
			raw, req := tt.setup(e)
			if req.Key == "" {
				req.Key = raw
			}
			d, requests := e.decide(req)
			if d.Outcome != tt.want {
				t.Errorf("outcome %s, want %s", d.Outcome, tt.want)
			}
			// A key with an allowlist (the cases with a source IP) has its
			// details read once, on the container's first sight of it.
			var reads int64
			if req.SourceIP != "" {
				reads = 1
			}
			if requests != tt.requests+reads || e.requests.Of("UpdateItem") != tt.requests || e.requests.Of("GetItem") != reads {
				t.Errorf("%d DynamoDB requests (%d UpdateItem, %d GetItem), want %d UpdateItem and %d GetItem",
					requests, e.requests.Of("UpdateItem"), e.requests.Of("GetItem"), tt.requests, reads)
			}
			if got := e.totalRequests(raw); got != tt.counted {
				t.Errorf("totalRequests %d, want %d", got, tt.counted)
			}
			if tt.counted == 0 {
				for name, n := range e.windowCounters(raw) {
					if n != 0 {
						t.Errorf("window counter %s = %d after a refusal, want 0", name, n)
					}
				}
			}
			if tt.want == authorizer.RateLimited && d.RetryAfter != 450*time.Second {
				t.Errorf("retry after %v, want 450s", d.RetryAfter)
			}
		})
	}
}

// TestIPRefusalsCannotLockOutTheOwner: whoever holds a leaked IP-pinned key
// sends more requests than its limit from elsewhere; the owner's next
// requests, from the allowed address, still pass, and only they count.
func TestIPRefusalsCannotLockOutTheOwner(t *testing.T) {
	e := newDBEnv(t)
	raw := e.create(keys.CreateInput{Tier: "tiny", IPAllowlist: []string{"203.0.113.0/24"}})
	for range 5 { // tiny allows 3 per window
		if d, _ := e.decide(authorizer.Request{Key: raw, SourceIP: "198.51.100.9"}); d.Outcome != authorizer.IPNotAllowed {
			t.Fatalf("request from outside the allowlist: %s", d.Outcome)
		}
	}
	for i := range 3 {
		if d, _ := e.decide(authorizer.Request{Key: raw, SourceIP: "203.0.113.5"}); d.Outcome != authorizer.Allowed {
			t.Fatalf("owner's request %d after the refusals: %s, want allowed", i+1, d.Outcome)
		}
	}
	if got := e.totalRequests(raw); got != 3 {
		t.Errorf("totalRequests %d, want 3: refusals must not count", got)
	}
}

// TestConcurrentRateLimitIsExact sends 4N concurrent authorizations
// of a key with limit N in one window: exactly N pass and are counted.
func TestConcurrentRateLimitIsExact(t *testing.T) {
	e := newDBEnv(t)
	raw := e.create(keys.CreateInput{Tier: "fifty"})
	const limit, attempts, workers = 50, 4 * 50, hammerWorkers
	outcomes := make(chan authorizer.Outcome, attempts)
	errs := make(chan error, attempts)
	jobs := make(chan struct{}, attempts)
	for range attempts {
		jobs <- struct{}{}
	}
	close(jobs)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range jobs {
				d, err := e.auth.Decide(context.Background(), authorizer.Request{Key: raw})
				if err != nil {
					errs <- err
					continue
				}
				outcomes <- d.Outcome
			}
		})
	}
	wg.Wait()
	close(outcomes)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	count := map[authorizer.Outcome]int{}
	for o := range outcomes {
		count[o]++
	}
	if count[authorizer.Allowed] != limit || count[authorizer.RateLimited] != attempts-limit {
		t.Errorf("outcomes %v, want %d allowed and %d rate limited", count, limit, attempts-limit)
	}
	if got := e.totalRequests(raw); got != limit {
		t.Errorf("totalRequests %d, want %d", got, limit)
	}
	if got := e.windowCounters(raw); len(got) != 1 || got[dynamo.CounterAttr(tierCounter, e.windowStart())] != limit {
		t.Errorf("window counters %v, want the current one at %d", got, limit)
	}
	if got := e.requests.Total(); got != attempts {
		t.Errorf("%d DynamoDB requests for %d authorizations, want one each", got, attempts)
	}
}

// TestRevokedOnNextRequest revokes a key through the service: the
// very next authorization refuses it.
func TestRevokedOnNextRequest(t *testing.T) {
	e := newDBEnv(t)
	raw := e.create(keys.CreateInput{Tier: "public"})
	if d, _ := e.decide(authorizer.Request{Key: raw}); d.Outcome != authorizer.Allowed {
		t.Fatalf("before revocation: %s", d.Outcome)
	}
	if err := e.svc.Revoke(context.Background(), keys.OperatorCaller("acme"), token.ID(token.Hash(raw))); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.decide(authorizer.Request{Key: raw}); d.Outcome != authorizer.Revoked {
		t.Errorf("after revocation: %s, want revoked", d.Outcome)
	}
	if got := e.totalRequests(raw); got != 1 {
		t.Errorf("totalRequests %d, want 1", got)
	}
}

// TestExpiredItemStillStored checks that a key past expiresAt is
// refused while its item is still in the table (TTL is off here, and slow
// in production).
func TestExpiredItemStillStored(t *testing.T) {
	e := newDBEnv(t)
	raw := e.create(keys.CreateInput{Tier: "public", ExpiresAt: aws.String(e.clock.Now().Add(time.Second).Format(time.RFC3339))})
	if d, _ := e.decide(authorizer.Request{Key: raw}); d.Outcome != authorizer.Allowed {
		t.Fatalf("before expiry: %s", d.Outcome)
	}
	e.clock.Advance(time.Second)
	if d, _ := e.decide(authorizer.Request{Key: raw}); d.Outcome != authorizer.Expired {
		t.Errorf("at expiry: %s, want expired", d.Outcome)
	}
	if e.item(raw) == nil {
		t.Fatal("the item is gone; the test needs it stored")
	}
}

// TestWindowRollover walks a key through many windows: each
// authorization costs one request, across window boundaries too, except
// the first after an idle gap longer than K (4) windows, which costs two;
// the item never holds more than the current window's counter.
func TestWindowRollover(t *testing.T) {
	e := newDBEnv(t)
	raw := e.create(keys.CreateInput{Tier: "tiny"})
	var total int64
	// step authorizes n times in the current window, wanting the first to
	// cost firstRequests.
	step := func(n int, firstRequests int64) {
		t.Helper()
		for i := range n {
			d, requests := e.decide(authorizer.Request{Key: raw})
			wantRequests := int64(1)
			if i == 0 {
				wantRequests = firstRequests
			}
			want := authorizer.Allowed
			if i >= 3 {
				want = authorizer.RateLimited
			} else {
				total++
			}
			if d.Outcome != want || requests != wantRequests {
				t.Fatalf("%v, use %d: %s in %d requests, want %s in %d", e.clock.Now(), i+1, d.Outcome, requests, want, wantRequests)
			}
		}
		current := dynamo.CounterAttr(tierCounter, e.windowStart())
		if got := e.windowCounters(raw); len(got) != 1 || got[current] != min(int64(n), 3) {
			t.Fatalf("%v: window counters %v, want only %s = %d", e.clock.Now(), got, current, min(n, 3))
		}
		if got := number(t, e.item(raw), dynamo.LastWindowAttr(tierCounter)); got != e.windowStart() {
			t.Fatalf("lastWindow %d, want %d", got, e.windowStart())
		}
	}
	step(4, 1) // the limit, then refused
	for range 12 {
		e.clock.Advance(window)
		step(2, 1)
	}
	for gap := 2; gap <= 4; gap++ { // gaps of up to K windows: one request
		e.clock.Advance(time.Duration(gap) * window)
		step(4, 1)
	}
	for _, gap := range []int{5, 9, 400} { // longer gaps: the sweep
		e.clock.Advance(time.Duration(gap) * window)
		step(3, 2)
	}
	if got := e.totalRequests(raw); got != total {
		t.Errorf("totalRequests %d, want %d", got, total)
	}
}

// TestIdleGapRace authorizes one key from many goroutines at once
// after a long idle gap: every authorization is counted exactly once and
// the sweep leaves a single counter.
func TestIdleGapRace(t *testing.T) {
	e := newDBEnv(t)
	raw := e.create(keys.CreateInput{Tier: "huge"})
	if d, _ := e.decide(authorizer.Request{Key: raw}); d.Outcome != authorizer.Allowed {
		t.Fatal(d.Outcome)
	}
	e.clock.Advance(100 * window)
	e.requests.Reset()
	// 8 at once race the sweep of the stale counters; more would queue on
	// the one item past the authorizer's budget (hammerWorkers).
	const n, workers = 40, 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	jobs := make(chan struct{}, n)
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	for range workers {
		wg.Go(func() {
			for range jobs {
				d, err := e.auth.Decide(context.Background(), authorizer.Request{Key: raw})
				if err == nil && d.Outcome != authorizer.Allowed {
					err = fmt.Errorf("outcome %s", d.Outcome)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := e.totalRequests(raw); got != n+1 {
		t.Errorf("totalRequests %d, want %d", got, n+1)
	}
	current := dynamo.CounterAttr(tierCounter, e.windowStart())
	if got := e.windowCounters(raw); len(got) != 1 || got[current] != n {
		t.Errorf("window counters %v, want only %s = %d", got, current, n)
	}
	if got := e.requests.Total(); got < n || got > 3*n {
		t.Errorf("%d requests for %d authorizations", got, n)
	}
}

// TestUnavailableFailsClosed points the production client at a
// closed port: the authorization fails with ErrUnavailable, within the
// client's bounds, and is never allowed.
func TestUnavailableFailsClosed(t *testing.T) {
	t.Parallel()
	client, err := app.NewDynamoDB(context.Background(), "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	auth := authorizer.New(dbConfig, dynamo.New(client, "keygate"), slog.New(slog.DiscardHandler))
	raw := authorizertest.Key("kg", "pk", "never stored")
	start := time.Now()
	d, err := auth.Decide(context.Background(), authorizer.Request{Key: raw})
	if !errors.Is(err, keys.ErrUnavailable) || d.Outcome == authorizer.Allowed {
		t.Errorf("got %s, %v; want ErrUnavailable", d.Outcome, err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("took %v, more than the authorizer's 5 s timeout", elapsed)
	}
}

// TestLateRequestAfterWindowRollover replays the reviewer's
// sequence with a limit of 1: a request stamped with window S reaches
// DynamoDB after the first request of window S+W, whose write removed
// w<S>. It must not recreate w<S> (a second use in S) nor move lastWindow
// back: it is counted in the key's current window S+W, where the limit is
// already reached.
func TestLateRequestAfterWindowRollover(t *testing.T) {
	e := newDBEnv(t)
	raw := e.create(keys.CreateInput{Tier: "single"})
	s := time.Unix(e.windowStart(), 0).UTC()
	next := s.Add(window)
	late := next.Add(-time.Millisecond) // stamped in S, arriving after S+W began
	steps := []struct {
		at       time.Time
		want     authorizer.Outcome
		requests int64
	}{
		{s.Add(time.Minute), authorizer.Allowed, 1},
		{s.Add(2 * time.Minute), authorizer.RateLimited, 1},
		{next, authorizer.Allowed, 1},
		// The late request finds lastWindow ahead of its window and runs
		// once more in the key's window: two requests.
		{late, authorizer.RateLimited, 2},
		{next.Add(time.Second), authorizer.RateLimited, 1},
	}
	for i, st := range steps {
		e.clock.Set(st.at)
		d, requests := e.decide(authorizer.Request{Key: raw})
		if d.Outcome != st.want || requests != st.requests {
			t.Errorf("step %d at %v: %s in %d requests, want %s in %d", i+1, st.at, d.Outcome, requests, st.want, st.requests)
		}
		if st.at.Equal(late) && (d.RateLimit == nil || !d.RateLimit.Reset.Equal(next.Add(window)) || d.RetryAfter != window+time.Millisecond) {
			t.Errorf("late request: rate limit %+v, retry after %v; want the reset of window S+W, %v", d.RateLimit, d.RetryAfter, next.Add(window))
		}
	}
	if got := e.totalRequests(raw); got != 2 {
		t.Errorf("totalRequests %d, want 2", got)
	}
	current := dynamo.CounterAttr(tierCounter, next.Unix())
	if got := e.windowCounters(raw); len(got) != 1 || got[current] != 1 {
		t.Errorf("window counters %v, want only %s = 1", got, current)
	}
	if got := number(t, e.item(raw), dynamo.LastWindowAttr(tierCounter)); got != next.Unix() {
		t.Errorf("lastWindow %d, want %d: it moved backwards", got, next.Unix())
	}
}

// TestLateRequestCountsInKeysWindow: a late request of window S
// that the key's current window S+W still has room for is allowed and
// counted there, with that window's budget and reset, so S+W passes
// exactly its limit.
func TestLateRequestCountsInKeysWindow(t *testing.T) {
	e := newDBEnv(t)
	raw := e.create(keys.CreateInput{Tier: "tiny"}) // limit 3
	s := time.Unix(e.windowStart(), 0).UTC()
	next := s.Add(window)
	late := next.Add(-time.Millisecond)
	steps := []struct {
		at        time.Time
		want      authorizer.Outcome
		remaining int64
	}{
		{s.Add(time.Minute), authorizer.Allowed, 2},
		{next, authorizer.Allowed, 2},
		{late, authorizer.Allowed, 1}, // counted in S+W
		{next.Add(time.Second), authorizer.Allowed, 0},
		{next.Add(2 * time.Second), authorizer.RateLimited, 0},
	}
	for i, st := range steps {
		e.clock.Set(st.at)
		d, _ := e.decide(authorizer.Request{Key: raw})
		if d.Outcome != st.want || d.RateLimit == nil || d.RateLimit.Remaining != st.remaining {
			t.Errorf("step %d at %v: %s, rate limit %+v; want %s with %d remaining", i+1, st.at, d.Outcome, d.RateLimit, st.want, st.remaining)
			continue
		}
		if wantReset := windowOf(st.at).Add(window); st.at.Equal(late) {
			if !d.RateLimit.Reset.Equal(next.Add(window)) {
				t.Errorf("late request: reset %v, want %v, the end of the window it was counted in", d.RateLimit.Reset, next.Add(window))
			}
		} else if !d.RateLimit.Reset.Equal(wantReset) {
			t.Errorf("step %d: reset %v, want %v", i+1, d.RateLimit.Reset, wantReset)
		}
	}
	if got := e.totalRequests(raw); got != 4 {
		t.Errorf("totalRequests %d, want 4", got)
	}
	current := dynamo.CounterAttr(tierCounter, next.Unix())
	if got := e.windowCounters(raw); len(got) != 1 || got[current] != 3 {
		t.Errorf("window counters %v, want only %s = 3", got, current)
	}
	if got := number(t, e.item(raw), dynamo.LastWindowAttr(tierCounter)); got != next.Unix() {
		t.Errorf("lastWindow %d, want %d", got, next.Unix())
	}
}

func windowOf(at time.Time) time.Time {
	sec := int64(window / time.Second)
	return time.Unix(at.Unix()-at.Unix()%sec, 0).UTC()
}

// TestAuthorizationCostsOneWriteUnit checks, with the capacity
// DynamoDB reports, that an authorization costs exactly one write unit,
// within a window and across a window boundary alike, whatever the key's
// name, metadata and allowlist: it writes the key item alone, which holds
// none of them, and the indexes, which are the details item's, see nothing.
// The largest key has every field at its maximum, an owner of the longest
// id, and five limits with credits.
func TestAuthorizationCostsOneWriteUnit(t *testing.T) {
	var allowlist []string
	for i := range keys.MaxAllowlist {
		allowlist = append(allowlist, fmt.Sprintf("2001:db8:%x:abcd:1234:5678:9abc:0/112", 0x1000+i))
	}
	largest := keys.CreateInput{
		Tier: "public", Owner: "o" + strings.Repeat("w", 127), Scopes: []string{"contracts"},
		Name:        strings.Repeat("𝔨", keys.MaxNameLen),
		IPAllowlist: allowlist,
		Metadata:    json.RawMessage(`{"m":"` + strings.Repeat("x", keys.MaxMetadataBytes-8) + `"}`),
		RateLimits: json.RawMessage(`[{"name":"a","limit":1000000,"windowSeconds":1},{"name":"b","limit":1000000,"windowSeconds":60},` +
			`{"name":"c","limit":100000000,"windowSeconds":3600},{"name":"d","limit":1000000000,"windowSeconds":86400},{"name":"e","limit":1000000000,"windowSeconds":2592000}]`),
		Credits: json.RawMessage(`{"remaining":1000000000,"refill":{"interval":"daily","amount":1000000000}}`),
	}
	for name, in := range map[string]keys.CreateInput{
		"small":   {Tier: "public", Owner: "alice", Scopes: []string{"contracts"}},
		"largest": largest,
	} {
		t.Run(name, func(t *testing.T) {
			e := newDBEnv(t)
			raw := e.create(in)
			details := e.details(raw)
			for _, attr := range []string{dynamo.AttrGSI1PK, dynamo.AttrGSI2PK} {
				if _, ok := details[attr]; !ok {
					t.Fatalf("the details item has no %s: the key must be in both indexes for this test", attr)
				}
				if _, ok := e.item(raw)[attr]; ok {
					t.Fatalf("the key item has %s: an authorization would write the index", attr)
				}
			}
			req := authorizer.Request{Key: raw, Scopes: []string{"contracts"}, SourceIP: "2001:db8:1000:abcd:1234:5678:9abc:7"}
			// The container's first sight learns the key's plan and reads
			// its details (its allowlist); every use after is one write.
			if d, _ := e.decide(req); d.Outcome != authorizer.Allowed {
				t.Fatalf("first sight: %s", d.Outcome)
			}
			for i, advance := range []time.Duration{0, time.Second, window} {
				e.clock.Advance(advance)
				d, requests := e.decide(req)
				// After a gap of more than windowsSwept windows of a limit
				// (the largest key's 1 s limit, across the tier's window),
				// the first write learns which counters to sweep.
				if d.Outcome != authorizer.Allowed || requests != 1 && (advance < window || requests != 2) {
					t.Fatalf("authorization %d: %s in %d requests, want Allowed in 1", i+1, d.Outcome, requests)
				}
				if len(in.IPAllowlist) > 0 && len(d.Key.IPAllowlist) != len(in.IPAllowlist) {
					t.Fatalf("authorization %d: the key's allowlist %v, want %d entries", i+1, d.Key.IPAllowlist, len(in.IPAllowlist))
				}
				got := e.requests.Capacity("UpdateItem")
				var indexes float64
				for _, v := range got.Indexes {
					indexes += v
				}
				// The capacity of the write that counted (a refused
				// condition reports none).
				if got.Total != 1 || got.Table != 1 || indexes != 0 {
					t.Errorf("authorization %d consumed %v units in all, %v on the table, %v on indexes (%v); want 1, 1 and none",
						i+1, got.Total, got.Table, indexes, got.Indexes)
				}
			}
		})
	}
}

// TestLeaseClaimCostsOneWriteUnit: in leased mode a claim is the same one
// write on the key item, so it too costs one write unit for the largest
// key, however many uses it claims.
func TestLeaseClaimCostsOneWriteUnit(t *testing.T) {
	e := newDBEnv(t)
	var allowlist []string
	for i := range keys.MaxAllowlist {
		allowlist = append(allowlist, fmt.Sprintf("2001:db8:%x:abcd:1234:5678:9abc:0/112", 0x1000+i))
	}
	raw := e.create(keys.CreateInput{
		Tier: "huge", Owner: "o" + strings.Repeat("w", 127), Mode: aws.String(string(keys.ModeLeased)),
		Name: strings.Repeat("𝔨", keys.MaxNameLen), IPAllowlist: allowlist,
		Metadata: json.RawMessage(`{"m":"` + strings.Repeat("x", keys.MaxMetadataBytes-8) + `"}`),
	})
	req := authorizer.Request{Key: raw, SourceIP: "2001:db8:1000:abcd:1234:5678:9abc:7"}
	var claims, units float64
	for i := range 50 {
		e.clock.Advance(20 * time.Millisecond)
		d, _ := e.decide(req)
		if d.Outcome != authorizer.Allowed {
			t.Fatalf("use %d: %s", i+1, d.Outcome)
		}
		claims += float64(e.requests.Of("UpdateItem"))
		units += e.requests.Capacity("UpdateItem").Total
	}
	if claims == 0 || claims >= 50 || units != claims {
		t.Errorf("50 leased uses: %v claims consumed %v write units; want fewer claims than uses, one unit each", claims, units)
	}
}

// TestStoredHashIsWhatAuthenticates: an item whose id matches the presented
// key but whose stored hash differs (the id holds only 96 bits of the hash)
// is NOT_FOUND, shows nothing of the stored key and counts nothing, whether
// that item is active or revoked. Both the write's hash condition and the
// refusal's constant-time comparison are needed for this.
func TestStoredHashIsWhatAuthenticates(t *testing.T) {
	for _, status := range []keys.Status{keys.StatusActive, keys.StatusRevoked} {
		t.Run(string(status), func(t *testing.T) {
			e := newDBEnv(t)
			presented := authorizertest.Key("kg", "pk", "presented")
			now := e.clock.Now()
			impostor := &keys.Key{
				ID: token.ID(token.Hash(presented)), Hash: token.Hash(authorizertest.Key("kg", "pk", "stored")),
				Name: "stored", Tier: "public", Project: "acme", Status: status, CreatedAt: now, UpdatedAt: now,
				Metadata: json.RawMessage(`{"secret":"of the stored key"}`), IPAllowlist: []string{"203.0.113.7"},
			}
			if status == keys.StatusRevoked {
				impostor.RevokedAt = &now
			}
			if err := dynamo.New(e.raw, e.table).Apply(context.Background(), keys.Tx{Create: []*keys.Key{impostor}}); err != nil {
				t.Fatal(err)
			}
			for _, project := range []string{"", "acme"} { // the authorizer, and verify
				d, _ := e.decide(authorizer.Request{Key: presented, Project: project})
				if d.Outcome != authorizer.NotFound || d.Key != nil || d.RateLimit != nil {
					t.Errorf("project %q: outcome %s, key %+v, rate limit %+v; want NOT_FOUND and nothing of the stored key", project, d.Outcome, d.Key, d.RateLimit)
				}
				if n := e.requests.Of("GetItem"); n != 0 {
					t.Errorf("project %q: %d reads of the stored key's details, want none", project, n)
				}
			}
			if got := e.totalRequests(presented); got != 0 {
				t.Errorf("totalRequests %d, want 0", got)
			}
			if w := e.windowCounters(presented); len(w) != 0 {
				t.Errorf("window counters %v, want none", w)
			}
		})
	}
}
