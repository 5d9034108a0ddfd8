package authorizer

import (
	"context"
	"crypto/sha256"
	"time"

	"github.com/keygate/keygate/pkg/keys"
)

// Store checks and counts one use of a key. pkg/dynamo implements it with
// a single strongly consistent conditional write.
type Store interface {
	// UseKey counts one use of the key if, and only if, the key exists with
	// this hash (and project, when set), is active, is not expired, holds
	// every scope of Scopes and has fewer than Limit uses in the window.
	// Otherwise it counts nothing and says why, in this order: NotFound,
	// Revoked, Expired, InsufficientScope, RateLimited. An error is a
	// failure of the store, never a refusal.
	UseKey(ctx context.Context, req UseRequest) (UseResult, error)
	// ReturnUse takes back a use UseKey counted in window, for a request
	// refused after the count (its IP): the window's count and the key's
	// totalRequests go down by one. A window already gone leaves its count
	// alone; a key with no use counted (totalRequests 0) changes not at all.
	ReturnUse(ctx context.Context, req UseRequest, window Window) error
}

// UseRequest is one use of a key to count.
type UseRequest struct {
	ID   string
	Hash [sha256.Size]byte
	// Project, when set, makes a key of another project NotFound.
	Project string
	// Scopes the key must hold: the route's, checked in the same write, so
	// a request refused for scope is not counted.
	Scopes []string
	// Limit is the tier's number of requests per window; the tier code is
	// part of the key, so it is known before any lookup.
	Limit  int64
	Window Window
	Now    time.Time
}

// UseResult is what UseKey found.
type UseResult struct {
	// Outcome is Allowed when the use was counted; otherwise NotFound,
	// Revoked, Expired, InsufficientScope or RateLimited.
	Outcome Outcome
	// Key is the key as stored: after the use when counted, as found
	// otherwise; nil when NotFound.
	Key *keys.Key
	// Count is how many uses the window holds, this one included, when
	// Allowed or RateLimited; 0 otherwise.
	Count int64
	// Window is the window Count is of, when not the request's: a store
	// that finds the key already counting in a later window (the request's
	// clock is behind, or it arrived late) counts the use there. The zero
	// Window means the request's.
	Window Window
}
