// Package keys is keygate's domain: API keys, their lifecycle and audit
// trail, and the rules every change obeys. It defines the Store it needs;
// pkg/dynamo implements it on DynamoDB.
package keys

import (
	"encoding/json"
	"slices"
	"time"
)

// Status is a key's state as callers see it.
type Status string

const (
	StatusActive  Status = "active"
	StatusRevoked Status = "revoked"
	// StatusExpired is never stored: a key reads expired as soon as its
	// expiresAt has passed, whether or not DynamoDB's TTL has deleted it yet.
	StatusExpired Status = "expired"
)

// Usage is what the authorizer counts.
type Usage struct {
	TotalRequests int64      `json:"totalRequests"`
	LastUsed      *time.Time `json:"lastUsed"`
}

// Key is an API key's record. The raw key is never part of it; Hash is the
// SHA-256 of the raw key and never leaves the service.
type Key struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Start       string          `json:"start"`
	Tier        string          `json:"tier"`
	Scopes      []string        `json:"scopes"`
	Project     string          `json:"project"`
	Owner       string          `json:"owner"`
	Status      Status          `json:"status"`
	Usage       Usage           `json:"usage"`
	IPAllowlist []string        `json:"ipAllowlist"`
	Metadata    json.RawMessage `json:"metadata"`
	ExpiresAt   *time.Time      `json:"expiresAt"`
	CreatedAt   time.Time       `json:"createdAt"`
	UpdatedAt   time.Time       `json:"updatedAt"`
	RevokedAt   *time.Time      `json:"revokedAt"`
	RotatedFrom string          `json:"rotatedFrom,omitempty"`
	RotatedTo   string          `json:"rotatedTo,omitempty"`
	// CreatedBy is the id of the key that created this one, or
	// ActorOperator; a rotation's successor names the key that rotated.
	CreatedBy string `json:"createdBy"`
	// RateLimits are the limits in effect. RateLimitsFromTier is set when
	// the key has none of its own and follows its tier's, whatever the tier
	// is configured with now; an empty list of its own means no limit.
	RateLimits         []RateLimit `json:"rateLimits"`
	RateLimitsFromTier bool        `json:"rateLimitsFromTier"`
	// Mode is how the authorizer counts the key's uses (pkg/authorizer's
	// lease.go): as stored, the key's own, "" when it follows its tier's.
	// A key as callers see it shows the mode in effect, and ModeFromTier
	// set when that is its tier's.
	Mode         Mode `json:"mode"`
	ModeFromTier bool `json:"modeFromTier"`
	// Credits is nil for unlimited.
	Credits *Credits `json:"credits"`

	// OwnerLimited is set when the key's owner has limits of its own, which
	// every use of the key must also fit in.
	OwnerLimited bool `json:"-"`
	// LimitsVersion changes whenever what the authorizer must know before
	// its write changes: RateLimits, RateLimitsFromTier, whether Credits is
	// nil, OwnerLimited. 0 means none of them differs from a plain key's
	// (tier limits, unlimited credits, no owner limits).
	LimitsVersion int64 `json:"-"`
	// Meter is the authorizer's window counters as stored, opaque to the
	// domain: a rotation carries them to the successor.
	Meter map[string]int64 `json:"-"`
	// GraceHash and GraceUntil are set on a rotation's successor while the
	// old key's grace runs: until then the old key (GraceHash is its hash)
	// spends the successor's budget, counted on the successor's item.
	GraceHash  [32]byte   `json:"-"`
	GraceUntil *time.Time `json:"-"`

	Hash [32]byte `json:"-"`
	// Version counts management changes; a change is written only if the
	// version is still the one it was computed from.
	Version int64 `json:"-"`
	// PurgeAt is when DynamoDB's TTL may delete the item; past it the key
	// is treated as gone even if the item is still there.
	PurgeAt *time.Time `json:"-"`
}

// HoldsScopes reports whether the key holds every scope of needed.
func (k *Key) HoldsScopes(needed []string) bool {
	for _, s := range needed {
		if !slices.Contains(k.Scopes, s) {
			return false
		}
	}
	return true
}

// StatusAt is the key's status at the given time.
func (k *Key) StatusAt(now time.Time) Status {
	if k.Status == StatusActive && k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
		return StatusExpired
	}
	return k.Status
}

// GoneAt reports whether the key is past its purge time: TTL would have
// deleted it, so keygate treats it as deleted.
func (k *Key) GoneAt(now time.Time) bool { return k.PurgeAt != nil && !now.Before(*k.PurgeAt) }

// purgeTime is when a key may be deleted: retention after it expired or was
// revoked, whichever comes first; nil while it can still be used forever.
func purgeTime(k *Key, retention time.Duration) *time.Time {
	var end *time.Time
	if k.ExpiresAt != nil {
		end = k.ExpiresAt
	}
	if k.RevokedAt != nil && (end == nil || k.RevokedAt.Before(*end)) {
		end = k.RevokedAt
	}
	if end == nil {
		return nil
	}
	t := end.Add(retention)
	return &t
}
