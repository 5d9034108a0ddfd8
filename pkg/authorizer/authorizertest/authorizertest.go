// Package authorizertest helps test code that uses pkg/authorizer: an
// in-memory Store, the contract every authorizer.Store keeps
// (RunStoreContract), which pkg/dynamo runs too, and deterministic test keys.
package authorizertest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

// Secret is the secret of the test key named label: the SHA-256 of the
// label. This is the one place the derivation lives; a test that makes the
// key through keys.Service (keys.WithRandom over these bytes) gets the very
// key Key returns.
func Secret(label string) [sha256.Size]byte {
	return sha256.Sum256([]byte("keygate test key: " + label))
}

// Key is the test key named label: a well-formed key with the prefix and
// tier code whose secret is Secret(label), so that tests and the event files
// under events/ agree on it. Test keys are public by design: never issue
// one.
func Key(prefix, tierCode, label string) string {
	secret := Secret(label)
	k, err := token.Generate(bytes.NewReader(secret[:]), prefix, tierCode)
	if err != nil {
		panic(err) // the reader always holds 32 bytes
	}
	return k
}

// Store is an in-memory authorizer.Store that keeps the contract as
// pkg/dynamo does (RunStoreContract holds both to it), and counts its calls.
// Like pkg/dynamo's items, a key's and an owner's meter count each limit in
// one window at a time: the latest it was used in.
type Store struct {
	mu     sync.Mutex
	keys   map[string]*stored
	owners map[string]*ownerLimits
	calls  int
	err    error
	// throttled are the ids of keys whose item DynamoDB throttles.
	throttled map[string]bool
}

type stored struct {
	key   keys.Key
	meter meter
	// graceHash, on a rotation's successor, is the old key's hash, whose
	// uses count here until graceUntil.
	graceHash  *[sha256.Size]byte
	graceUntil time.Time
}

type ownerLimits struct {
	limits  []keys.RateLimit
	credits *keys.Credits
	meter   meter
	version int64 // up by one with each SetOwnerLimits, as the owner's item's
}

// meter is the window counters of a key's or an owner's limits, by
// keys.RateLimit.Counter().
type meter map[string]*window

type window struct {
	last int64 // start of the latest window counted in, Unix seconds
	uses int64 // uses counted in window last
}

var (
	_ authorizer.Store = (*Store)(nil)
	_ Seeder           = (*Store)(nil)
)

// NewStore returns an empty Store.
func NewStore() *Store { return &Store{keys: map[string]*stored{}, owners: map[string]*ownerLimits{}} }

// Add stores k as the key raw, setting its ID and Hash, and returns its id.
func (s *Store) Add(raw string, k keys.Key) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	k.Hash = token.Hash(raw)
	k.ID = token.ID(k.Hash)
	s.keys[k.ID] = &stored{key: k, meter: meter{}}
	return k.ID
}

// SetUses makes the window starting at start the latest of the key's limit
// named counter (keys.RateLimit.Counter), with n uses.
func (s *Store) SetUses(id, counter string, start time.Time, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[id].meter[counter] = &window{last: start.Unix(), uses: n}
}

// Edit changes the stored key id as a management change does: what edit
// sets, and a new version.
func (s *Store) Edit(id string, edit func(k *keys.Key)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	edit(&s.keys[id].key)
	s.keys[id].key.Version++
}

// FailWith makes every later UseKey and ReturnUse fail with err; nil heals
// the store.
func (s *Store) FailWith(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// Throttle makes every later UseKey of the key id answer as pkg/dynamo
// does when DynamoDB throttles the key's item: RateLimited, Throttled,
// nothing checked or counted; false ends it.
func (s *Store) Throttle(id string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.throttled == nil {
		s.throttled = map[string]bool{}
	}
	s.throttled[id] = on
}

// Calls is how many times UseKey and ReturnUse were called.
func (s *Store) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// TotalRequests is the key's usage counter.
func (s *Store) TotalRequests(id string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[id].key.Usage.TotalRequests
}

// Create implements Seeder: it stores k as it is.
func (s *Store) Create(t *testing.T, k *keys.Key) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[k.ID]; ok {
		t.Fatalf("authorizertest: create %s: it exists", k.ID)
	}
	s.keys[k.ID] = &stored{key: *k, meter: meter{}}
	s.keys[k.ID].key.Credits = k.Credits.Clone()
}

// Update implements Seeder: k's limits, credits and their version are
// written, as keys.Tx.Update does; its counters stay.
func (s *Store) Update(t *testing.T, k *keys.Key) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.keys[k.ID]
	if !ok || e.key.Version != k.Version {
		t.Fatalf("authorizertest: update %s: no key at version %d", k.ID, k.Version)
	}
	e.key.RateLimits, e.key.RateLimitsFromTier, e.key.Credits = k.RateLimits, k.RateLimitsFromTier, k.Credits.Clone()
	e.key.OwnerLimited, e.key.LimitsVersion = k.OwnerLimited, k.LimitsVersion
	e.key.Version++
}

// Revoke implements Seeder with keys.Tx.Revoke's condition and writes.
func (s *Store) Revoke(t *testing.T, k *keys.Key) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.keys[k.ID]
	if !ok || e.key.Project != k.Project || e.key.Status != keys.StatusActive {
		t.Fatalf("authorizertest: revoke %s: no active key of project %q", k.ID, k.Project)
	}
	e.key.Status, e.key.RevokedAt, e.key.UpdatedAt, e.key.PurgeAt = keys.StatusRevoked, k.RevokedAt, k.UpdatedAt, k.PurgeAt
	e.key.Version++
}

// Rotate implements Seeder: next is stored with old's counters and
// credits, and old's uses count on it until graceEnd.
func (s *Store) Rotate(t *testing.T, old, next *keys.Key, graceEnd time.Time) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.keys[old.ID]
	if !ok || e.key.RotatedTo != "" {
		t.Fatalf("authorizertest: rotate %s: no key, or rotated already", old.ID)
	}
	copied := meter{}
	for name, w := range e.meter {
		copied[name] = &window{last: w.last, uses: w.uses}
	}
	n := &stored{key: *next, meter: copied, graceUntil: graceEnd}
	n.key.Credits = e.key.Credits.Clone()
	if graceEnd.After(next.CreatedAt) {
		n.graceHash = &e.key.Hash
	}
	s.keys[next.ID] = n
	e.key.RotatedTo, e.key.ExpiresAt = next.ID, &graceEnd
	e.key.Version++
}

// SetOwnerLimits implements Seeder.
func (s *Store) SetOwnerLimits(t *testing.T, project, owner string, limits []keys.RateLimit, credits *keys.Credits) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	ref := project + "#" + owner
	o, ok := s.owners[ref]
	if !ok {
		o = &ownerLimits{meter: meter{}}
		s.owners[ref] = o
	}
	o.limits, o.credits = limits, credits.Clone()
	o.version++
}

// Usage implements Seeder.
func (s *Store) Usage(t *testing.T, id string) keys.Usage {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.keys[id]
	if !ok {
		t.Fatalf("authorizertest: usage of %s: no such key", id)
	}
	return e.key.Usage
}

// Credits implements Seeder.
func (s *Store) Credits(t *testing.T, id string) *keys.Credits {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[id].key.Credits.Clone()
}

// OwnerCredits implements Seeder.
func (s *Store) OwnerCredits(t *testing.T, project, owner string) *keys.Credits {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.owners[project+"#"+owner].credits.Clone()
}

// UseKey implements authorizer.Store.
func (s *Store) UseKey(_ context.Context, req authorizer.UseRequest) (authorizer.UseResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return authorizer.UseResult{}, s.err
	}
	if s.throttled[req.ID] {
		return authorizer.UseResult{Outcome: authorizer.RateLimited, Throttled: true}, nil
	}
	e, ok := s.keys[req.ID]
	if !ok || e.key.Hash != req.Hash || req.Project != "" && e.key.Project != req.Project || e.key.GoneAt(req.Now) {
		return authorizer.UseResult{Outcome: authorizer.NotFound}, nil
	}
	k := e.key
	if o := refusal(&k, req); o != authorizer.Allowed {
		return authorizer.UseResult{Outcome: o, Key: &k}, nil
	}
	on := e
	if k.RotatedTo != "" {
		// Within its grace (refusal checked the expiry), the key's uses
		// count on its successor's item.
		on = s.keys[k.RotatedTo]
		if on == nil || on.graceHash == nil || *on.graceHash != req.Hash || !req.Now.Before(on.graceUntil) {
			return authorizer.UseResult{Outcome: authorizer.Expired, Key: &k}, nil
		}
		if o := refusal(&on.key, req); o != authorizer.Allowed {
			return authorizer.UseResult{Outcome: o, Key: &k}, nil
		}
	}
	limits := on.key.RateLimits
	if on.key.RateLimitsFromTier {
		limits = req.TierLimits
	}
	back, keyBack := req.GiveBack.For(on.key.ID), req.GiveBack.ForKey(on.key.ID)
	res := authorizer.UseResult{Key: &k, CountedOn: on.key.ID}
	own := on.meter.check(limits, on.key.Credits, false, req, keyBack, on.key.Version)
	res.Limits, res.Credits, res.Outcome, res.Refused = own.counts, own.credits, own.outcome, own.refused
	if res.Outcome != authorizer.Allowed {
		return res, nil
	}
	var owner *ownerLimits
	var theirs checked
	if on.key.OwnerLimited {
		if owner = s.owners[on.key.Project+"#"+on.key.Owner]; owner != nil {
			theirs = owner.meter.check(owner.limits, owner.credits, true, req, back, owner.version)
			res.Refused = len(res.Limits) + theirs.refused
			res.Limits, res.OwnerCredits, res.Outcome = append(res.Limits, theirs.counts...), theirs.credits, theirs.outcome
		}
	}
	// As pkg/dynamo writes the key's item first: what the last lease left
	// goes back to it even when the owner then refuses.
	res.GaveBack = true
	now := req.Now
	n := req.Count()
	if res.Outcome != authorizer.Allowed {
		res.Limits = append(own.apply(on.meter, on.key.Credits, 0, 0), theirs.counts...)
		res.Credits = on.key.Credits.Clone()
		on.key.Usage = keys.Usage{TotalRequests: on.key.Usage.TotalRequests - keyBack.Uses, LastUsed: &now}
		if on == e {
			k = e.key
		}
		return res, nil
	}
	res.Limits = res.Limits[:0]
	res.Limits = append(res.Limits, own.apply(on.meter, on.key.Credits, n, req.Cost)...)
	if owner != nil {
		res.Limits = append(res.Limits, theirs.apply(owner.meter, owner.credits, n, req.Cost)...)
	}
	res.Credits, res.OwnerCredits = on.key.Credits.Clone(), owner.creditsOrNil()
	res.Version = on.key.Version
	if owner != nil {
		res.OwnerVersion = owner.version
	}
	on.key.Usage = keys.Usage{TotalRequests: on.key.Usage.TotalRequests + n - keyBack.Uses, LastUsed: &now}
	if on == e {
		k = e.key
	}
	return res, nil
}

// refusal is why k may not be used, limits aside, in the contract's order.
func refusal(k *keys.Key, req authorizer.UseRequest) authorizer.Outcome {
	switch {
	case k.Status != keys.StatusActive:
		return authorizer.Revoked
	// Milliseconds, as pkg/dynamo stores expiresAt and compares it.
	case k.ExpiresAt != nil && k.ExpiresAt.UnixMilli() <= req.Now.UnixMilli():
		return authorizer.Expired
	case !k.HoldsScopes(req.Scopes):
		return authorizer.InsufficientScope
	}
	return authorizer.Allowed
}

func (o *ownerLimits) creditsOrNil() *keys.Credits {
	if o == nil {
		return nil
	}
	return o.credits.Clone()
}

// checked is what check found on one item: each limit's window and count,
// what goes back of a lease's unspent uses in each, the credits, and the
// outcome.
type checked struct {
	counts      []authorizer.LimitCount
	backs       []int64
	creditsBack int64
	credits     *keys.Credits
	outcome     authorizer.Outcome
	refused     int
}

// check finds each limit's window and count, refilling credits that are
// due (as the store's refill write does, whatever the outcome), and
// decides: RateLimited (and by which), UsageExceeded or Allowed, for the
// request's uses net of what back returns. It counts nothing.
func (m meter) check(limits []keys.RateLimit, credits *keys.Credits, owner bool, req authorizer.UseRequest, back authorizer.Unspent, version int64) checked {
	out := checked{counts: make([]authorizer.LimitCount, len(limits)), backs: make([]int64, len(limits)), outcome: authorizer.Allowed}
	for i, l := range limits {
		w := authorizer.WindowAt(req.Now, l.Window())
		c := authorizer.LimitCount{RateLimit: l, Owner: owner, Window: w}
		if last := m[l.Counter()]; last != nil {
			if last.last > w.Start.Unix() {
				// The request is behind the limit's window: it counts in
				// the latest, so that no window passes more than its limit.
				c.Window = authorizer.Window{Start: time.Unix(last.last, 0).UTC(), Length: w.Length}
			}
			if last.last == c.Window.Start.Unix() {
				c.Count = last.uses
			}
		}
		for _, b := range back.Limits {
			if b.Owner == owner && b.Counter() == l.Counter() && b.Window.Start.Equal(c.Window.Start) && c.Count >= back.Uses {
				out.backs[i] = back.Uses
			}
		}
		// Whatever goes back, the count after must be within the limit: a
		// limit lowered below the count has no room, given back or not.
		if d := req.Count() - out.backs[i]; c.Count > l.Limit-d && out.outcome == authorizer.Allowed {
			out.outcome, out.refused = authorizer.RateLimited, i
		}
		out.counts[i] = c
	}
	if credits != nil {
		if credits.Refill != nil && credits.NextRefillAt != nil && !req.Now.Before(*credits.NextRefillAt) && out.outcome == authorizer.Allowed {
			*credits = *credits.At(req.Now)
		}
		period, claimed := back.CreditsPeriod, back.Version
		if owner {
			period, claimed = back.OwnerCreditsPeriod, back.OwnerVersion
		}
		// Not after a refill, nor after a management change of the item,
		// which may have set the credits held from then on.
		if back.Credits > 0 && equalTimes(period, credits.NextRefillAt) && claimed == version {
			out.creditsBack = back.Credits
		}
		if out.outcome == authorizer.Allowed && credits.Remaining < req.Cost-out.creditsBack {
			out.outcome = authorizer.UsageExceeded
		}
	}
	out.credits = credits.Clone()
	return out
}

func equalTimes(a, b *time.Time) bool {
	return a == nil && b == nil || a != nil && b != nil && a.Equal(*b)
}

// apply counts n uses and spends cost, less what goes back, on the item
// checked, and returns the counts after.
func (c checked) apply(m meter, credits *keys.Credits, n, cost int64) []authorizer.LimitCount {
	counts := slices.Clone(c.counts)
	for i := range counts {
		w := m[counts[i].Counter()]
		if w == nil || w.last != counts[i].Window.Start.Unix() {
			w = &window{last: counts[i].Window.Start.Unix()}
			m[counts[i].Counter()] = w
		}
		w.uses += n - c.backs[i]
		counts[i].Count = w.uses
	}
	if credits != nil {
		credits.Remaining -= cost - c.creditsBack
	}
	return counts
}

// ReturnUse implements authorizer.Store. As in pkg/dynamo, nothing goes
// back once the total is below the uses, a window's count only while it is
// the limit's latest, and the credits with them.
func (s *Store) ReturnUse(_ context.Context, req authorizer.UseRequest, used authorizer.UseResult) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return s.err
	}
	on, ok := s.keys[cmp.Or(used.CountedOn, req.ID)]
	if !ok {
		return nil
	}
	hash := &on.key.Hash
	if on.key.ID != req.ID {
		hash = on.graceHash
	}
	n := req.Count()
	if hash == nil || *hash != req.Hash || on.key.Usage.TotalRequests < n {
		return nil
	}
	on.key.Usage.TotalRequests -= n
	if on.meter.giveBack(used.Limits, false, n) && on.key.Credits != nil {
		on.key.Credits.Remaining += req.Cost
	}
	if o := s.owners[on.key.Project+"#"+on.key.Owner]; o != nil && on.key.OwnerLimited {
		if o.meter.giveBack(used.Limits, true, n) && o.credits != nil {
			o.credits.Remaining += req.Cost
		}
	}
	return nil
}

// giveBack takes n uses back from every window of counts that are owner's
// (or not), if each is still its limit's latest; it reports whether it did.
func (m meter) giveBack(counts []authorizer.LimitCount, owner bool, n int64) bool {
	var windows []*window
	for _, c := range counts {
		if c.Owner != owner {
			continue
		}
		w := m[c.Counter()]
		if w == nil || w.last != c.Window.Start.Unix() || w.uses < n {
			return false
		}
		windows = append(windows, w)
	}
	for _, w := range windows {
		w.uses -= n
	}
	return true
}

// EventTime is the time the event files under events/ are decided at.
var EventTime = time.Date(2030, time.January, 15, 10, 7, 30, 0, time.UTC)

// EventPrefix is the key prefix of the event files' keys: the default.
const EventPrefix = keys.DefaultKeyPrefix

// eventKeys are the keys the event files carry, by label. "unknown" is
// well-formed but never stored.
var eventKeys = map[string]struct {
	tierCode string
	key      keys.Key
	uses     int64 // uses in the window of EventTime
}{
	"admin":   {tierCode: "in", key: keys.Key{Tier: "internal", Project: "acme", Owner: "ops", Scopes: []string{"admin", "verify"}}},
	"reader":  {tierCode: "pk", key: keys.Key{Tier: "public", Project: "acme", Owner: "alice", Scopes: []string{"contracts"}, Metadata: []byte(`{"plan":"pro"}`)}},
	"revoked": {tierCode: "pk", key: keys.Key{Tier: "public", Project: "acme", Status: keys.StatusRevoked}},
	"expired": {tierCode: "pk", key: keys.Key{Tier: "public", Project: "acme", ExpiresAt: ptr(EventTime.Add(-time.Hour))}},
	"limited": {tierCode: "pk", key: keys.Key{Tier: "public", Project: "acme"}, uses: 100},
	"spent": {tierCode: "pk", key: keys.Key{Tier: "public", Project: "acme", LimitsVersion: 1, Credits: &keys.Credits{
		Remaining: 0, Refill: &keys.Refill{Interval: keys.RefillMonthly, Amount: 1000, RefillDay: 1}, NextRefillAt: ptr(time.Date(2030, time.February, 1, 0, 0, 0, 0, time.UTC)),
	}}},
	"allowlisted":   {tierCode: "pk", key: keys.Key{Tier: "public", Project: "acme", IPAllowlist: []string{"203.0.113.0/24", "2001:db8::/32"}}},
	"other-project": {tierCode: "pk", key: keys.Key{Tier: "public", Project: "globex"}},
	"unknown":       {tierCode: "pk"},
}

// EventKey is the raw key the event files carry for label.
func EventKey(label string) string {
	k, ok := eventKeys[label]
	if !ok {
		panic("authorizertest: no event key " + label)
	}
	return Key(EventPrefix, k.tierCode, label)
}

// SeedEventKeys stores the event files' keys in s, following their tiers'
// limits, with the uses they have at EventTime in windows of length window
// of the limit named "window".
func SeedEventKeys(s *Store, window time.Duration) {
	start := authorizer.WindowAt(EventTime, window).Start
	counter := keys.RateLimit{Name: keys.DefaultLimitName, WindowSeconds: int64(window / time.Second)}.Counter()
	for label, k := range eventKeys {
		if label == "unknown" {
			continue
		}
		k.key.Name = label
		if k.key.Status == "" {
			k.key.Status = keys.StatusActive
		}
		k.key.RateLimitsFromTier = true
		id := s.Add(EventKey(label), k.key)
		s.SetUses(id, counter, start, k.uses)
	}
}

func ptr[T any](v T) *T { return &v }
