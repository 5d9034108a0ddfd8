package authorizer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/authorizer/authorizertest"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

// fixture is an Authorizer over the fake store holding the event files'
// keys, at the event files' time.
type fixture struct {
	store *authorizertest.Store
	auth  *authorizer.Authorizer
	logs  *bytes.Buffer
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	cfg := keys.DefaultConfig()
	store := authorizertest.NewStore()
	authorizertest.SeedEventKeys(store, cfg.RateWindow)
	logs := &bytes.Buffer{}
	clock := func() time.Time { return authorizertest.EventTime }
	auth := authorizer.New(cfg, store, slog.New(slog.NewJSONHandler(logs, nil)), authorizer.WithClock(clock))
	return &fixture{store: store, auth: auth, logs: logs}
}

func keyID(label string) string { return token.ID(token.Hash(authorizertest.EventKey(label))) }

// windowEnd is the end of the 15-minute window holding EventTime (10:07:30).
var windowEnd = time.Date(2030, time.January, 15, 10, 15, 0, 0, time.UTC)

// malformed is the reader's key with its last character changed, which
// breaks the checksum.
func malformed() string {
	k := authorizertest.EventKey("reader")
	return k[:len(k)-1] + string(k[len(k)-1]^1)
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name    string
		req     authorizer.Request
		label   string // the stored key the request presents, if any
		want    authorizer.Outcome
		calls   int   // store requests
		counted int64 // uses counted
		limit   *authorizer.RateLimit
	}{
		{name: "allowed", req: authorizer.Request{Scopes: []string{"contracts"}}, label: "reader", want: authorizer.Allowed, calls: 1, counted: 1,
			limit: &authorizer.RateLimit{Name: "window", Limit: 100, Remaining: 99, Reset: windowEnd}},
		{name: "allowed, route needs no scope", label: "reader", want: authorizer.Allowed, calls: 1, counted: 1,
			limit: &authorizer.RateLimit{Name: "window", Limit: 100, Remaining: 99, Reset: windowEnd}},
		{name: "allowed, other tier's limit", label: "admin", req: authorizer.Request{Scopes: []string{"admin"}}, want: authorizer.Allowed, calls: 1, counted: 1,
			limit: &authorizer.RateLimit{Name: "window", Limit: 10000, Remaining: 9999, Reset: windowEnd}},
		{name: "missing", req: authorizer.Request{Key: ""}, want: authorizer.MissingKey},
		{name: "bad checksum", req: authorizer.Request{Key: malformed()}, want: authorizer.MalformedKey},
		{name: "other prefix", req: authorizer.Request{Key: authorizertest.Key("sk", "pk", "reader")}, want: authorizer.MalformedKey},
		{name: "tier code not configured", req: authorizer.Request{Key: authorizertest.Key("kg", "zz", "reader")}, want: authorizer.MalformedKey},
		{name: "truncated", req: authorizer.Request{Key: authorizertest.EventKey("reader")[:40]}, want: authorizer.MalformedKey},
		{name: "unknown", req: authorizer.Request{Key: authorizertest.EventKey("unknown")}, want: authorizer.NotFound, calls: 1},
		{name: "another project's key", req: authorizer.Request{Project: "globex"}, label: "reader", want: authorizer.NotFound, calls: 1},
		{name: "revoked", label: "revoked", want: authorizer.Revoked, calls: 1},
		{name: "expired", label: "expired", want: authorizer.Expired, calls: 1},
		{name: "rate limited, not counted", label: "limited", want: authorizer.RateLimited, calls: 1,
			limit: &authorizer.RateLimit{Name: "window", Limit: 100, Remaining: 0, Reset: windowEnd}},
		// Refusals spend no budget (see Authorizer): scope is refused by the
		// write itself; an IP refusal's use is returned by a second request.
		{name: "insufficient scope, not counted", req: authorizer.Request{Scopes: []string{"contracts", "admin"}}, label: "reader", want: authorizer.InsufficientScope, calls: 1},
		{name: "IP not allowed, returned", req: authorizer.Request{SourceIP: "198.51.100.7"}, label: "allowlisted", want: authorizer.IPNotAllowed, calls: 2,
			limit: &authorizer.RateLimit{Name: "window", Limit: 100, Remaining: 100, Reset: windowEnd}},
		{name: "IP unknown, allowlist set", label: "allowlisted", want: authorizer.IPNotAllowed, calls: 2,
			limit: &authorizer.RateLimit{Name: "window", Limit: 100, Remaining: 100, Reset: windowEnd}},
		{name: "IP in allowlist", req: authorizer.Request{SourceIP: "2001:db8::5"}, label: "allowlisted", want: authorizer.Allowed, calls: 1, counted: 1,
			limit: &authorizer.RateLimit{Name: "window", Limit: 100, Remaining: 99, Reset: windowEnd}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			req := tt.req
			if tt.label != "" {
				req.Key = authorizertest.EventKey(tt.label)
			}
			d, err := f.auth.Decide(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != tt.want {
				t.Errorf("outcome %s, want %s", d.Outcome, tt.want)
			}
			if got := f.store.Calls(); got != tt.calls {
				t.Errorf("%d store requests, want %d", got, tt.calls)
			}
			if tt.label != "" {
				if got := f.store.TotalRequests(keyID(tt.label)); got != tt.counted {
					t.Errorf("counted %d uses, want %d", got, tt.counted)
				}
			}
			if fmt.Sprint(d.RateLimit) != fmt.Sprint(tt.limit) {
				t.Errorf("rate limit %+v, want %+v", d.RateLimit, tt.limit)
			}
			wantRetry := time.Duration(0)
			if tt.want == authorizer.RateLimited {
				wantRetry = 450 * time.Second
			}
			if d.RetryAfter != wantRetry {
				t.Errorf("retry after %v, want %v", d.RetryAfter, wantRetry)
			}
			checkDecisionKey(t, d, tt.label)
		})
	}
}

// checkDecisionKey checks that a decision shows the stored key exactly when
// the key was found in reach, and its id once it was well-formed.
func checkDecisionKey(t *testing.T, d authorizer.Decision, label string) {
	t.Helper()
	found := d.Outcome != authorizer.NotFound && d.Outcome != authorizer.MissingKey && d.Outcome != authorizer.MalformedKey
	if found != (d.Key != nil) {
		t.Errorf("outcome %s with key %+v", d.Outcome, d.Key)
	}
	if found && d.Key.ID != keyID(label) {
		t.Errorf("key id %s, want %s", d.Key.ID, keyID(label))
	}
	wellFormed := d.Outcome != authorizer.MissingKey && d.Outcome != authorizer.MalformedKey
	if wellFormed != (d.KeyID != "") {
		t.Errorf("outcome %s with key id %q", d.Outcome, d.KeyID)
	}
}

// nextEnd is the end of the window after EventTime's.
var nextEnd = windowEnd.Add(15 * time.Minute)

// A store that counts a use in the key's later window (the request's clock
// is behind, or it arrived late) says so, and the decision's budget, reset
// and retry are of that window.
func TestDecideInTheStoresWindow(t *testing.T) {
	tests := []struct {
		name  string
		uses  int64 // the key's uses in the next window
		want  authorizer.Outcome
		limit *authorizer.RateLimit
		retry time.Duration
	}{
		{"room left", 98, authorizer.Allowed, &authorizer.RateLimit{Name: "window", Limit: 100, Remaining: 1, Reset: nextEnd}, 0},
		{"full", 100, authorizer.RateLimited, &authorizer.RateLimit{Name: "window", Limit: 100, Remaining: 0, Reset: nextEnd}, nextEnd.Sub(authorizertest.EventTime)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.store.SetUses(keyID("reader"), "window.900", windowEnd, tt.uses)
			d, err := f.auth.Decide(context.Background(), authorizer.Request{Key: authorizertest.EventKey("reader")})
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != tt.want || fmt.Sprint(d.RateLimit) != fmt.Sprint(tt.limit) || d.RetryAfter != tt.retry {
				t.Errorf("%s, rate limit %+v, retry after %v; want %s, %+v, %v", d.Outcome, d.RateLimit, d.RetryAfter, tt.want, tt.limit, tt.retry)
			}
		})
	}
}

// An IP refusal gives its use back to the window it was counted in, the
// store's, not the request's.
func TestIPRefusalReturnsToTheWindowCounted(t *testing.T) {
	f := newFixture(t)
	f.store.SetUses(keyID("allowlisted"), "window.900", windowEnd, 5)
	req := authorizer.Request{Key: authorizertest.EventKey("allowlisted")}
	steps := []struct {
		sourceIP string
		outcome  authorizer.Outcome
		limit    *authorizer.RateLimit
	}{
		{"198.51.100.7", authorizer.IPNotAllowed, &authorizer.RateLimit{Name: "window", Limit: 100, Remaining: 95, Reset: nextEnd}},
		{"203.0.113.9", authorizer.Allowed, &authorizer.RateLimit{Name: "window", Limit: 100, Remaining: 94, Reset: nextEnd}},
	}
	for _, w := range steps {
		req.SourceIP = w.sourceIP
		d, err := f.auth.Decide(context.Background(), req)
		if err != nil || d.Outcome != w.outcome || fmt.Sprint(d.RateLimit) != fmt.Sprint(w.limit) {
			t.Errorf("from %s: %s, rate limit %+v, %v; want %s, %+v", w.sourceIP, d.Outcome, d.RateLimit, err, w.outcome, w.limit)
		}
	}
}

func TestDecideFailsClosed(t *testing.T) {
	f := newFixture(t)
	f.store.FailWith(fmt.Errorf("update item: %w: %w", keys.ErrUnavailable, context.DeadlineExceeded))
	d, err := f.auth.Decide(context.Background(), authorizer.Request{Key: authorizertest.EventKey("reader")})
	if !errors.Is(err, keys.ErrUnavailable) {
		t.Errorf("err = %v, want ErrUnavailable", err)
	}
	if d.Outcome == authorizer.Allowed {
		t.Error("allowed on a store failure")
	}
}

// TestDecideThrottled: a key whose item DynamoDB throttles is refused as
// rate limited, for a second, and logged as such; another key is not.
func TestDecideThrottled(t *testing.T) {
	f := newFixture(t)
	f.store.Throttle(keyID("reader"), true)
	d, err := f.auth.Decide(context.Background(), authorizer.Request{Key: authorizertest.EventKey("reader")})
	if err != nil || d.Outcome != authorizer.RateLimited || !d.Throttled || d.RetryAfter != time.Second || d.Key != nil {
		t.Errorf("got %+v, %v; want rate_limited, throttled, retry after 1s, no key", d, err)
	}
	var rec struct {
		Level, Msg, KeyID, Outcome, Reason string
	}
	if err := json.Unmarshal(f.logs.Bytes(), &rec); err != nil {
		t.Fatalf("log %q: %v", f.logs, err)
	}
	if rec.Level != "WARN" || rec.KeyID != keyID("reader") || rec.Outcome != "rate_limited" || rec.Reason != "throttled by DynamoDB on this key's partition" {
		t.Errorf("logged %+v", rec)
	}
	if d, err := f.auth.Decide(context.Background(), authorizer.Request{Key: authorizertest.EventKey("admin")}); err != nil || d.Outcome != authorizer.Allowed || d.Throttled {
		t.Errorf("another key: %+v, %v; want allowed", d, err)
	}
}

func TestVerify(t *testing.T) {
	reader := authorizertest.EventKey("reader")
	tests := []struct {
		name    string
		project string
		in      authorizer.VerifyInput
		want    authorizer.Outcome
		counted int64
	}{
		{"valid", "acme", authorizer.VerifyInput{Key: reader, Scopes: []string{"contracts"}}, authorizer.Allowed, 1},
		{"another project's key is not found, not counted", "globex", authorizer.VerifyInput{Key: reader}, authorizer.NotFound, 0},
		{"missing scope is not counted", "acme", authorizer.VerifyInput{Key: reader, Scopes: []string{"payments"}}, authorizer.InsufficientScope, 0},
		{"an IP is checked only against an allowlist", "acme", authorizer.VerifyInput{Key: reader, IP: "192.0.2.1"}, authorizer.Allowed, 1},
		{"malformed", "acme", authorizer.VerifyInput{Key: malformed()}, authorizer.MalformedKey, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			d, err := f.auth.Verify(context.Background(), tt.project, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != tt.want {
				t.Errorf("outcome %s, want %s", d.Outcome, tt.want)
			}
			if got := f.store.TotalRequests(keyID("reader")); got != tt.counted {
				t.Errorf("counted %d, want %d", got, tt.counted)
			}
		})
	}
}

func TestVerifyAllowlist(t *testing.T) {
	key := authorizertest.EventKey("allowlisted")
	tests := []struct {
		ip   string
		want authorizer.Outcome
	}{
		{"203.0.113.200", authorizer.Allowed},
		{"::ffff:203.0.113.200", authorizer.Allowed},
		{"198.51.100.7", authorizer.IPNotAllowed},
		// Without the client's address an allowlisted key cannot pass.
		{"", authorizer.IPNotAllowed},
	}
	for _, tt := range tests {
		f := newFixture(t)
		d, err := f.auth.Verify(context.Background(), "acme", authorizer.VerifyInput{Key: key, IP: tt.ip})
		if err != nil || d.Outcome != tt.want {
			t.Errorf("ip %q: %s, %v; want %s", tt.ip, d.Outcome, err, tt.want)
		}
	}
}

func TestVerifyRefusesInvalidInput(t *testing.T) {
	reader := authorizertest.EventKey("reader")
	tests := []struct {
		in    authorizer.VerifyInput
		field string
	}{
		{authorizer.VerifyInput{}, "key"},
		{authorizer.VerifyInput{Key: reader, Scopes: []string{"contracts", "nonsense"}}, "scopes"},
		{authorizer.VerifyInput{Key: reader, IP: "203.0.113.0/24"}, "ip"},
		{authorizer.VerifyInput{Key: reader, IP: "localhost"}, "ip"},
	}
	for _, tt := range tests {
		f := newFixture(t)
		_, err := f.auth.Verify(context.Background(), "acme", tt.in)
		var invalid *keys.InvalidError
		if !errors.As(err, &invalid) || invalid.Field != tt.field {
			t.Errorf("%+v: err = %v, want an InvalidError on %s", tt.in, err, tt.field)
		}
		if f.store.Calls() != 0 {
			t.Errorf("%+v: %d store requests for invalid input", tt.in, f.store.Calls())
		}
	}
}

func TestDecisionLog(t *testing.T) {
	f := newFixture(t)
	reader := authorizertest.EventKey("reader")
	ctx := context.Background()
	reqs := []authorizer.Request{
		{Key: reader, Route: "GET /v1/whoami"},
		{Key: reader, Scopes: []string{"admin"}, Route: "POST /v1/api-keys"},
		{Key: malformed(), Route: "GET /v1/whoami"},
	}
	for _, req := range reqs {
		if _, err := f.auth.Decide(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	f.store.FailWith(keys.ErrUnavailable)
	if _, err := f.auth.Decide(ctx, authorizer.Request{Key: reader, Route: "GET /v1/whoami"}); err == nil {
		t.Fatal("no error from a failing store")
	}
	lines := decodeLines(t, f.logs)
	want := []struct{ level, keyID, outcome string }{
		{"INFO", keyID("reader"), "allowed"},
		{"INFO", keyID("reader"), "insufficient_scope"},
		{"INFO", "", "malformed_key"},
		{"ERROR", keyID("reader"), "error"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d log lines for %d decisions:\n%s", len(lines), len(want), f.logs)
	}
	for i, w := range want {
		l := lines[i]
		if l["level"] != w.level || l["keyId"] != w.keyID || l["outcome"] != w.outcome || l["route"] == nil || l["latencyMs"] == nil {
			t.Errorf("line %d = %v, want level %s, keyId %q, outcome %s, route and latencyMs", i, l, w.level, w.keyID, w.outcome)
		}
	}
	assertNoSecrets(t, f.logs.String(), reader, malformed())
}

// BenchmarkAuthorize is the authorizer's in-process hot path: a REST or
// HTTP API event through header extraction, token check, hashing, the
// store (in memory), the scope and IP checks, the policy and the log line
// (JSON, discarded).
func BenchmarkAuthorize(b *testing.B) {
	cfg := keys.DefaultConfig()
	cfg.Tiers = append(cfg.Tiers, keys.WindowTier("bench", "bn", 1<<62, 15*time.Minute))
	store := authorizertest.NewStore()
	raw := authorizertest.Key(cfg.KeyPrefix, "bn", "bench")
	store.Add(raw, keys.Key{Tier: "bench", Project: "acme", Owner: "alice", Status: keys.StatusActive,
		Scopes: []string{"contracts", "payments"}, IPAllowlist: []string{"198.51.100.0/24", "2001:db8::/32"}})
	auth := authorizer.New(cfg, store, slog.New(slog.DiscardHandler))
	h := authorizer.NewHandler(auth, authorizer.RouteScopes{"GET /v1/contracts/{id}": {"contracts"}})
	rest, http := benchEvents(raw)
	ctx := context.Background()

	b.Run("rest", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			resp, err := h.REST(ctx, rest)
			if err != nil || resp.PolicyDocument.Statement[0].Effect != "Allow" {
				b.Fatalf("%+v, %v", resp, err)
			}
		}
	})
	b.Run("http", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			resp, err := h.HTTP(ctx, http)
			if err != nil || !resp.IsAuthorized {
				b.Fatalf("%+v, %v", resp, err)
			}
		}
	})
	// As deployed: the decision's line encoded as JSON, then thrown away.
	logged := authorizer.NewHandler(authorizer.New(cfg, store, slog.New(slog.NewJSONHandler(io.Discard, nil))),
		authorizer.RouteScopes{"GET /v1/contracts/{id}": {"contracts"}})
	b.Run("rest, JSON log", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			resp, err := logged.REST(ctx, rest)
			if err != nil || resp.PolicyDocument.Statement[0].Effect != "Allow" {
				b.Fatalf("%+v, %v", resp, err)
			}
		}
	})
}
