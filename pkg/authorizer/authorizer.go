package authorizer

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/metrics"
	"github.com/keygate/keygate/pkg/token"
)

// Outcome is what an authorization decided. The refusals of a key that
// authenticated (rate limited, usage exceeded, insufficient scope, IP not
// allowed) are also the errorCode of a Deny policy.
type Outcome string

const (
	Allowed           Outcome = "allowed"
	MissingKey        Outcome = "missing_key"
	MalformedKey      Outcome = "malformed_key" // bad shape, checksum or tier code; or two different keys
	NotFound          Outcome = "not_found"     // unknown, wrong hash, or another project's key
	Revoked           Outcome = "revoked"
	Expired           Outcome = "expired"
	RateLimited       Outcome = "rate_limited"
	UsageExceeded     Outcome = "usage_exceeded" // its credits, or its owner's, do not cover the cost
	InsufficientScope Outcome = "insufficient_scope"
	IPNotAllowed      Outcome = "ip_not_allowed"
)

// Request is one authorization to decide.
type Request struct {
	// Key is the raw API key presented. It is hashed, never logged.
	Key string
	// Held, when set instead of Key, presents a key by what a console
	// session recorded of it at sign-in (pkg/console), which never keeps
	// the raw key. The decision is the same as for the raw key.
	Held *HeldKey
	// Project, when set, restricts the decision to keys of that project: a
	// key of another project is NotFound and not counted (verify).
	Project string
	// Scopes are the scopes the key must hold.
	Scopes []string
	// SourceIP is the client's address, matched against the key's IP
	// allowlist; "" when unknown, which no allowlist admits.
	SourceIP string
	// Route is what the log names the request by, such as "GET /v1/whoami".
	Route string
	// Cost is what the request spends of the key's credits (and its
	// owner's); 0 spends nothing.
	Cost int64
}

// HeldKey is a key known by its hash and tier code rather than its raw
// value: the code the raw key carries, so that a change of the tiers'
// configuration refuses it as it would refuse the raw key.
type HeldKey struct {
	Hash     [32]byte
	TierCode string
}

// Decision is an authorization's result.
type Decision struct {
	Outcome Outcome
	// KeyID is the presented key's id, once the key was well-formed.
	KeyID string
	// Key is the key as stored, after this request was counted if it was;
	// nil when the key was missing, malformed or not found.
	Key *keys.Key
	// RateLimits are the budgets of every rate limit that applied, the
	// key's then its owner's; RateLimit is the tightest of them (the least
	// room left), nil when none applied.
	RateLimits []RateLimit
	RateLimit  *RateLimit
	// Credits and OwnerCredits are the credits left, nil when unlimited.
	Credits, OwnerCredits *keys.Credits
	// At is when the decision was made.
	At time.Time
	// RetryAfter is, when rate limited, how long until the window that
	// refused ends (ThrottleRetryAfter when Throttled); when usage
	// exceeded, until the credits refill (0 when they never do).
	RetryAfter time.Duration
	// Leased is set on a decision made from a lease, in memory, with no
	// request to the store (lease.go).
	Leased bool
	// Throttled is set on a RateLimited refusal that DynamoDB made rather
	// than a limit of the key: the key's item took all the writes DynamoDB
	// lets one item take in a second. Key and the budgets are then unknown.
	Throttled bool
}

// ThrottleRetryAfter is when a request DynamoDB throttled for its key's
// item may try again: DynamoDB refills a partition's units every second,
// and one second is the least a Retry-After header can say.
const ThrottleRetryAfter = time.Second

// RateLimit is the budget of one rate limit in its current window.
type RateLimit struct {
	Name      string
	Owner     bool // a limit of the key's owner, shared by all its keys
	Limit     int64
	Remaining int64
	Reset     time.Time // when the window ends
}

// CreditsRemaining is what the request's key can still spend: the lesser
// of its credits and its owner's; ok is false when both are unlimited.
func (d Decision) CreditsRemaining() (n int64, ok bool) {
	for _, c := range []*keys.Credits{d.Credits, d.OwnerCredits} {
		if c != nil && (!ok || c.Remaining < n) {
			n, ok = c.Remaining, true
		}
	}
	return n, ok
}

// Authorizer decides whether a key may make a request, with one DynamoDB
// request per well-formed key and none for a malformed one. It is the one
// core behind the REST API authorizer, the HTTP API authorizer and verify.
//
// A refused request spends none of the key's budget, so that whoever holds
// a leaked key cannot lock its owner out from an address or a route the
// key does not allow. The write's own condition refuses a rate-limited
// request and a key lacking the route's scopes. An IP allowlist (CIDRs)
// cannot be checked in a condition expression: a request from an address
// it does not admit is counted, then returned by a second write (on that
// refusal path only), so for a few milliseconds it holds one unit of the
// window's budget. lastUsed keeps the time of that refused use.
type Authorizer struct {
	cfg      keys.Config
	store    Store
	log      *slog.Logger
	now      func() time.Time
	refusals RefusalRecorder
	// emf are the metrics directives of the decisions' lines (metrics.go).
	emf metricsDirectives
	// leases are this container's leases of keys in leased mode.
	leases leases
}

// RefusalRecorder counts refusals, which write nothing to the table, so
// that usage over time shows them (pkg/usage).
type RefusalRecorder interface {
	// Record counts one decision, if it is a refusal; project is the
	// request's, "" at the gateway.
	Record(project string, d Decision, at time.Time)
	// FlushDue starts writing the counts, within a short budget and ctx,
	// if a flush is due, and returns a channel closed once it is done; nil
	// when none is due. The authorizer starts it before its own write and
	// waits for it after, so that it adds no latency unless it is the
	// slower of the two.
	FlushDue(ctx context.Context, now time.Time) <-chan struct{}
}

// Option changes an Authorizer.
type Option func(*Authorizer)

// WithMetricsNamespace publishes the decisions' metrics in namespace
// instead of metrics.DefaultNamespace.
func WithMetricsNamespace(namespace string) Option {
	return func(a *Authorizer) { a.emf = newMetricsDirectives(namespace) }
}

// WithClock sets the clock.
func WithClock(now func() time.Time) Option { return func(a *Authorizer) { a.now = now } }

// WithRefusalRecorder reports every decision to r.
func WithRefusalRecorder(r RefusalRecorder) Option { return func(a *Authorizer) { a.refusals = r } }

// New builds an Authorizer for the keys cfg describes.
func New(cfg keys.Config, store Store, log *slog.Logger, opts ...Option) *Authorizer {
	a := &Authorizer{cfg: cfg, store: store, log: log, now: time.Now, emf: newMetricsDirectives(metrics.DefaultNamespace)}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Decide authorizes one request and logs the decision. An error means the
// store failed: the caller must refuse (fail closed).
func (a *Authorizer) Decide(ctx context.Context, req Request) (Decision, error) {
	start := a.now()
	var flushed <-chan struct{}
	if a.refusals != nil {
		flushed = a.refusals.FlushDue(ctx, start)
	}
	d, st, err := a.authorize(ctx, req, start)
	a.logDecision(ctx, req, d, st, err, start, a.now().Sub(start))
	if a.refusals != nil && err == nil {
		a.refusals.Record(req.Project, d, start)
	}
	if flushed != nil {
		<-flushed // Lambda freezes the process after the answer: no write may be left running
	}
	return d, err
}

// refuseUnread logs and returns a decision made before any key was found, such as
// conflicting headers.
func (a *Authorizer) refuseUnread(ctx context.Context, req Request, o Outcome) Decision {
	d := Decision{Outcome: o}
	a.logDecision(ctx, req, d, storeUse{}, nil, a.now(), 0)
	return d
}

// storeUse is what a decision's DynamoDB requests took, for its metrics.
type storeUse struct {
	requests, errors int
	latency          time.Duration
}

// timed runs one store request and counts it in st.
func (a *Authorizer) timed(st *storeUse, request func() error) error {
	start := a.now()
	err := request()
	st.requests++
	st.latency += a.now().Sub(start)
	if err != nil {
		st.errors++
	}
	return err
}

func (a *Authorizer) authorize(ctx context.Context, req Request, now time.Time) (Decision, storeUse, error) {
	hash, tier, outcome := a.presented(req)
	if outcome != "" {
		return Decision{Outcome: outcome}, storeUse{}, nil
	}
	for {
		l := a.leases.find(token.ID(hash), tier)
		if l == nil {
			return a.decideExact(ctx, req, hash, tier, now, Unspent{})
		}
		if d, st, live, err := a.decideLeased(ctx, req, l, token.ID(hash), hash, tier, now); live {
			return d, st, err
		}
	}
}

// decideExact decides with one use counted in the store, taking back what
// a lease of the key left (back), and notes whether the key leases.
func (a *Authorizer) decideExact(ctx context.Context, req Request, hash [32]byte, tier keys.Tier, now time.Time, back Unspent) (Decision, storeUse, error) {
	d, st, _, err := a.exact(ctx, req, hash, tier, now, back)
	return d, st, err
}

// exact is decideExact, and returns what of back the store did not take.
func (a *Authorizer) exact(ctx context.Context, req Request, hash [32]byte, tier keys.Tier, now time.Time, back Unspent) (Decision, storeUse, Unspent, error) {
	var st storeUse
	id := token.ID(hash)
	use := UseRequest{ID: id, Hash: hash, Project: req.Project, Scopes: req.Scopes, TierLimits: tier.RateLimits, Cost: req.Cost, GiveBack: back, Now: now}
	var used UseResult
	err := a.timed(&st, func() (err error) { used, err = a.store.UseKey(ctx, use); return err })
	if err != nil {
		return Decision{KeyID: id}, st, Unspent{}, fmt.Errorf("authorize %s: %w", id, err) // perhaps taken back: never twice
	}
	left := back.After(used)
	d := decided(id, used, req.Cost, now)
	if used.Outcome == Allowed && !ipAllowed(used.Key.IPAllowlist, req.SourceIP) {
		d.Outcome = IPNotAllowed
		a.returnUse(ctx, &st, use, used)
		used = used.Returned(use)
		d.Key, d.Credits, d.OwnerCredits = used.Key, used.Credits, used.OwnerCredits
		d.RateLimits, d.RateLimit = budgets(used.Limits)
	}
	a.leases.learn(id, tier, used.Key)
	return d, st, left, nil
}

// decided is the decision the store's answer makes for a request costing
// cost, before what the authorizer checks itself (an allowed key's
// address): a refusal's retryAfter, and the limits' budgets.
func decided(id string, used UseResult, cost int64, now time.Time) Decision {
	d := Decision{Outcome: used.Outcome, KeyID: id, Key: used.Key, Credits: used.Credits, OwnerCredits: used.OwnerCredits, At: now}
	switch {
	case used.Throttled:
		d.Throttled, d.RetryAfter = true, ThrottleRetryAfter
	case used.Outcome == RateLimited:
		d.RetryAfter = used.Limits[used.Refused].Window.End().Sub(now)
	case used.Outcome == UsageExceeded:
		d.RetryAfter = untilRefill(used, cost, now)
	}
	d.RateLimits, d.RateLimit = budgets(used.Limits)
	return d
}

// budgets are the limits' budgets and the tightest of them.
func budgets(limits []LimitCount) ([]RateLimit, *RateLimit) {
	if len(limits) == 0 {
		return nil, nil
	}
	out := make([]RateLimit, len(limits))
	tightest := 0
	for i, l := range limits {
		out[i] = RateLimit{Name: l.Name, Owner: l.Owner, Limit: l.Limit, Remaining: l.Remaining(), Reset: l.Window.End()}
		if out[i].Remaining < out[tightest].Remaining {
			tightest = i
		}
	}
	return out, &out[tightest]
}

// untilRefill is how long until the credits that refused the cost refill:
// the key's when they fell short, else its owner's; 0 when they never do.
func untilRefill(used UseResult, cost int64, now time.Time) time.Duration {
	c := used.Credits
	if c == nil || c.Remaining >= cost {
		c = used.OwnerCredits
	}
	if c == nil || c.Refill == nil || c.NextRefillAt == nil {
		return 0
	}
	return c.NextRefillAt.Sub(now)
}

// returnUse gives back the budget a refused request took. Its failure
// leaves the refusal as it is: it costs the key one use, and is logged.
func (a *Authorizer) returnUse(ctx context.Context, st *storeUse, use UseRequest, used UseResult) {
	if err := a.timed(st, func() error { return a.store.ReturnUse(ctx, use, used) }); err != nil {
		a.log.ErrorContext(ctx, "return of a refused use failed", "keyId", use.ID, "error", err.Error())
	}
}

// presented is the request's key hash and tier, or the outcome refusing
// it: a raw key's shape and checksum are checked and its tier found, whose
// limits the store's write enforces, all without any lookup.
func (a *Authorizer) presented(req Request) (hash [32]byte, tier keys.Tier, refused Outcome) {
	code := ""
	switch {
	case req.Held != nil:
		hash, code = req.Held.Hash, req.Held.TierCode
	case req.Key == "":
		return hash, tier, MissingKey
	default:
		parsed, err := token.Parse(req.Key, a.cfg.KeyPrefix)
		if err != nil {
			return hash, tier, MalformedKey
		}
		hash, code = token.Hash(req.Key), parsed.TierCode
	}
	tier, ok := a.cfg.TierByCode(code)
	if !ok {
		return hash, tier, MalformedKey
	}
	return hash, tier, ""
}

// logDecision writes one line per decision: never the raw key or its hash,
// only the key id, which is public. The same line publishes the decision's
// metrics (metrics.go), rather than a second line for them.
func (a *Authorizer) logDecision(ctx context.Context, req Request, d Decision, st storeUse, err error, at time.Time, latency time.Duration) {
	attrs := make([]slog.Attr, 0, 12) // all of them: no growth on the hot path
	attrs = append(attrs,
		slog.String("keyId", d.KeyID),
		slog.Float64(metricLatency, milliseconds(latency)),
	)
	attrs = a.appendMetrics(attrs, req, d, st, at)
	if req.Route != "" {
		attrs = append(attrs, slog.String("route", req.Route))
	}
	if d.Leased {
		attrs = append(attrs, slog.Bool("fromLease", true)) // decided in memory (lease.go)
	}
	if err != nil {
		attrs = append(attrs, slog.String(dimOutcome, outcomeError), slog.String("error", err.Error()))
		a.log.LogAttrs(ctx, slog.LevelError, "authorization", attrs...)
		return
	}
	attrs = append(attrs, slog.String(dimOutcome, string(d.Outcome)))
	if d.Throttled {
		// Not an outage, but a key hotter than one DynamoDB item can take.
		attrs = append(attrs, slog.String("reason", "throttled by DynamoDB on this key's partition"))
		a.log.LogAttrs(ctx, slog.LevelWarn, "authorization", attrs...)
		return
	}
	a.log.LogAttrs(ctx, slog.LevelInfo, "authorization", attrs...)
}
