// Package authorizertest helps test code that uses pkg/authorizer: an
// in-memory Store and deterministic test keys.
package authorizertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"sync"
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

// Store is an in-memory authorizer.Store that follows the contract as
// pkg/dynamo does, and counts its calls.
type Store struct {
	mu    sync.Mutex
	keys  map[string]*stored
	calls int
	err   error
}

type stored struct {
	key     keys.Key
	windows map[int64]int64 // uses per window start, in Unix seconds
}

// NewStore returns an empty Store.
func NewStore() *Store { return &Store{keys: map[string]*stored{}} }

// Add stores k as the key raw, setting its ID and Hash, and returns its id.
func (s *Store) Add(raw string, k keys.Key) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	k.Hash = token.Hash(raw)
	k.ID = token.ID(k.Hash)
	s.keys[k.ID] = &stored{key: k, windows: map[int64]int64{}}
	return k.ID
}

// SetUses sets how many uses the key has in the window starting at start.
func (s *Store) SetUses(id string, start time.Time, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[id].windows[start.Unix()] = n
}

// FailWith makes every later UseKey fail with err; nil heals the store.
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

// UseKey implements authorizer.Store.
func (s *Store) UseKey(_ context.Context, req authorizer.UseRequest) (authorizer.UseResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return authorizer.UseResult{}, s.err
	}
	e, ok := s.keys[req.ID]
	if !ok || e.key.Hash != req.Hash || req.Project != "" && e.key.Project != req.Project {
		return authorizer.UseResult{Outcome: authorizer.NotFound}, nil
	}
	k := e.key
	uses := e.windows[req.Window.Start.Unix()]
	switch {
	case k.Status != keys.StatusActive:
		return authorizer.UseResult{Outcome: authorizer.Revoked, Key: &k}, nil
	case k.ExpiresAt != nil && !req.Now.Before(*k.ExpiresAt):
		return authorizer.UseResult{Outcome: authorizer.Expired, Key: &k}, nil
	case !k.HoldsScopes(req.Scopes):
		return authorizer.UseResult{Outcome: authorizer.InsufficientScope, Key: &k}, nil
	case uses >= req.Limit:
		return authorizer.UseResult{Outcome: authorizer.RateLimited, Key: &k, Count: uses}, nil
	}
	e.windows[req.Window.Start.Unix()] = uses + 1
	now := req.Now
	e.key.Usage = keys.Usage{TotalRequests: k.Usage.TotalRequests + 1, LastUsed: &now}
	k = e.key
	return authorizer.UseResult{Outcome: authorizer.Allowed, Key: &k, Count: uses + 1}, nil
}

// ReturnUse implements authorizer.Store.
func (s *Store) ReturnUse(_ context.Context, req authorizer.UseRequest, w authorizer.Window) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return s.err
	}
	e, ok := s.keys[req.ID]
	if !ok || e.key.Hash != req.Hash {
		return nil
	}
	if n := e.windows[w.Start.Unix()]; n > 0 {
		e.windows[w.Start.Unix()] = n - 1
	}
	if e.key.Usage.TotalRequests > 0 {
		e.key.Usage.TotalRequests--
	}
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
