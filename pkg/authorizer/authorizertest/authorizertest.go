// Package authorizertest helps test code that uses pkg/authorizer: an
// in-memory Store, the contract every authorizer.Store keeps
// (RunStoreContract), which pkg/dynamo runs too, and deterministic test keys.
package authorizertest

import (
	"bytes"
	"context"
	"crypto/sha256"
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
// Like pkg/dynamo's item, a key counts in one window at a time: the latest
// it was used in.
type Store struct {
	mu    sync.Mutex
	keys  map[string]*stored
	calls int
	err   error
}

type stored struct {
	key  keys.Key
	last int64 // start of the latest window counted in, Unix seconds; 0 before any use
	uses int64 // uses counted in window last
}

var (
	_ authorizer.Store = (*Store)(nil)
	_ Seeder           = (*Store)(nil)
)

// NewStore returns an empty Store.
func NewStore() *Store { return &Store{keys: map[string]*stored{}} }

// Add stores k as the key raw, setting its ID and Hash, and returns its id.
func (s *Store) Add(raw string, k keys.Key) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	k.Hash = token.Hash(raw)
	k.ID = token.ID(k.Hash)
	s.keys[k.ID] = &stored{key: k}
	return k.ID
}

// SetUses makes the window starting at start the key's latest, with n uses.
func (s *Store) SetUses(id string, start time.Time, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.keys[id]
	e.last, e.uses = start.Unix(), n
}

// FailWith makes every later UseKey and ReturnUse fail with err; nil heals
// the store.
func (s *Store) FailWith(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
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
	s.keys[k.ID] = &stored{key: *k}
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

// UseKey implements authorizer.Store.
func (s *Store) UseKey(_ context.Context, req authorizer.UseRequest) (authorizer.UseResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return authorizer.UseResult{}, s.err
	}
	e, ok := s.keys[req.ID]
	if !ok || e.key.Hash != req.Hash || req.Project != "" && e.key.Project != req.Project || e.key.GoneAt(req.Now) {
		return authorizer.UseResult{Outcome: authorizer.NotFound}, nil
	}
	k := e.key
	switch {
	case k.Status != keys.StatusActive:
		return authorizer.UseResult{Outcome: authorizer.Revoked, Key: &k}, nil
	// Milliseconds, as pkg/dynamo stores expiresAt and compares it.
	case k.ExpiresAt != nil && k.ExpiresAt.UnixMilli() <= req.Now.UnixMilli():
		return authorizer.UseResult{Outcome: authorizer.Expired, Key: &k}, nil
	case !k.HoldsScopes(req.Scopes):
		return authorizer.UseResult{Outcome: authorizer.InsufficientScope, Key: &k}, nil
	}
	res := authorizer.UseResult{Key: &k}
	w := req.Window
	if e.last > w.Start.Unix() {
		// The request is behind the key: it counts in the key's window, so
		// that no window passes more than its limit.
		w = authorizer.Window{Start: time.Unix(e.last, 0).UTC(), Length: w.Length}
		res.Window = w
	}
	uses := int64(0)
	if e.last == w.Start.Unix() {
		uses = e.uses
	}
	if uses >= req.Limit {
		res.Outcome, res.Count = authorizer.RateLimited, uses
		return res, nil
	}
	now := req.Now
	e.last, e.uses = w.Start.Unix(), uses+1
	e.key.Usage = keys.Usage{TotalRequests: k.Usage.TotalRequests + 1, LastUsed: &now}
	k = e.key
	res.Outcome, res.Count = authorizer.Allowed, e.uses
	return res, nil
}

// ReturnUse implements authorizer.Store. As in pkg/dynamo, nothing goes
// back once the total is zero, and the window's count only while w is
// the key's latest window.
func (s *Store) ReturnUse(_ context.Context, req authorizer.UseRequest, w authorizer.Window) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return s.err
	}
	e, ok := s.keys[req.ID]
	if !ok || e.key.Hash != req.Hash || e.key.Usage.TotalRequests <= 0 {
		return nil
	}
	if e.last == w.Start.Unix() && e.uses > 0 {
		e.uses--
	}
	e.key.Usage.TotalRequests--
	return nil
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
	"admin":         {tierCode: "in", key: keys.Key{Tier: "internal", Project: "acme", Owner: "ops", Scopes: []string{"admin", "verify"}}},
	"reader":        {tierCode: "pk", key: keys.Key{Tier: "public", Project: "acme", Owner: "alice", Scopes: []string{"contracts"}, Metadata: []byte(`{"plan":"pro"}`)}},
	"revoked":       {tierCode: "pk", key: keys.Key{Tier: "public", Project: "acme", Status: keys.StatusRevoked}},
	"expired":       {tierCode: "pk", key: keys.Key{Tier: "public", Project: "acme", ExpiresAt: ptr(EventTime.Add(-time.Hour))}},
	"limited":       {tierCode: "pk", key: keys.Key{Tier: "public", Project: "acme"}, uses: 100},
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

// SeedEventKeys stores the event files' keys in s, with the uses they have
// at EventTime in windows of length window.
func SeedEventKeys(s *Store, window time.Duration) {
	sec := int64(window / time.Second)
	start := time.Unix(EventTime.Unix()-EventTime.Unix()%sec, 0)
	for label, k := range eventKeys {
		if label == "unknown" {
			continue
		}
		k.key.Name = label
		if k.key.Status == "" {
			k.key.Status = keys.StatusActive
		}
		id := s.Add(EventKey(label), k.key)
		s.SetUses(id, start, k.uses)
	}
}

func ptr[T any](v T) *T { return &v }
