package client

import (
	"encoding/json"
	"time"
)

// Error codes of the envelope, in Error.Code.
const (
	CodeBadRequest        = "bad_request"
	CodeUnauthorized      = "unauthorized"
	CodeForbidden         = "forbidden"
	CodeInsufficientScope = "insufficient_scope"
	CodeIPNotAllowed      = "ip_not_allowed"
	CodeNotFound          = "not_found"
	CodeConflict          = "conflict"
	CodePayloadTooLarge   = "payload_too_large"
	CodeRateLimited       = "rate_limited"
	CodeInternal          = "internal"
	CodeUnavailable       = "unavailable"
)

// Key is an API key as the API shows it: never its secret, which only
// CreatedKey holds, once.
type Key struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Start  string   `json:"start"` // the key's first characters, to recognise it
	Tier   string   `json:"tier"`
	Scopes []string `json:"scopes"`
	// Mode is how the authorizer counts the key's uses: "exact" (the
	// default) or "leased"; empty from a server that predates modes.
	// ModeFromTier is set when it is the tier's, not the key's own.
	Mode         string          `json:"mode,omitempty"`
	ModeFromTier bool            `json:"modeFromTier,omitempty"`
	Project      string          `json:"project"`
	Owner        string          `json:"owner"`
	Status       string          `json:"status"` // active, revoked or expired
	Usage        KeyUse          `json:"usage"`
	IPAllowlist  []string        `json:"ipAllowlist"`
	Metadata     json.RawMessage `json:"metadata"`
	ExpiresAt    *time.Time      `json:"expiresAt"`
	CreatedAt    time.Time       `json:"createdAt"`
	UpdatedAt    time.Time       `json:"updatedAt"`
	RevokedAt    *time.Time      `json:"revokedAt"`
	RotatedFrom  string          `json:"rotatedFrom,omitempty"`
	RotatedTo    string          `json:"rotatedTo,omitempty"`
	// CreatedBy is the id of the key that made this one, or "operator".
	CreatedBy  string      `json:"createdBy"`
	RateLimits []RateLimit `json:"rateLimits"`
	// RateLimitsFromTier is true when RateLimits are the tier's, as
	// configured now, rather than the key's own.
	RateLimitsFromTier bool     `json:"rateLimitsFromTier"`
	Credits            *Credits `json:"credits"` // nil: unlimited
}

// Key statuses.
const (
	StatusActive  = "active"
	StatusRevoked = "revoked"
	StatusExpired = "expired"
)

// Key modes.
const (
	ModeExact  = "exact"
	ModeLeased = "leased"
)

// KeyUse is how much a key was used.
type KeyUse struct {
	TotalRequests int64      `json:"totalRequests"`
	LastUsed      *time.Time `json:"lastUsed"`
}

// CreatedKey is a key just created or rotated, with its secret: this
// answer is the only place the secret ever appears.
type CreatedKey struct {
	Key
	Secret string `json:"key"`
}

// RateLimit is a number of requests per fixed window.
type RateLimit struct {
	Name          string `json:"name"`
	Limit         int64  `json:"limit"`
	WindowSeconds int64  `json:"windowSeconds"`
}

// Credits are a budget of uses and how it refills.
type Credits struct {
	Remaining    int64      `json:"remaining"`
	Refill       *Refill    `json:"refill"`
	NextRefillAt *time.Time `json:"nextRefillAt,omitempty"`
}

// Refill sets the credits to Amount every day, or every month on RefillDay.
type Refill struct {
	Interval  string `json:"interval"` // daily or monthly
	Amount    int64  `json:"amount"`
	RefillDay int    `json:"refillDay,omitempty"`
}

// CreditsInput sets credits: Remaining, and a refill (Null removes it).
// In an update each part is optional.
type CreditsInput struct {
	Remaining *int64           `json:"remaining,omitempty"`
	Refill    Nullable[Refill] `json:"refill,omitzero"`
}

// Nullable is a field of a request that is either left out (the zero
// Nullable), null (Null) or a value (Value): in keygate's API null and
// absent mean different things (null clears an expiry; absent keeps it).
type Nullable[T any] struct {
	set   bool
	null  bool
	value T
}

// Value is a Nullable holding v.
func Value[T any](v T) Nullable[T] { return Nullable[T]{set: true, value: v} }

// Null is a Nullable sent as JSON null.
func Null[T any]() Nullable[T] { return Nullable[T]{set: true, null: true} }

// IsZero reports whether n is left out, for encoding/json's omitzero.
func (n Nullable[T]) IsZero() bool { return !n.set }

// MarshalJSON is null or the value.
func (n Nullable[T]) MarshalJSON() ([]byte, error) {
	if n.null {
		return []byte("null"), nil
	}
	return json.Marshal(n.value)
}

// CreateKeyRequest is a new key's settings; Name and Tier are required.
type CreateKeyRequest struct {
	Name        string     `json:"name"`
	Tier        string     `json:"tier"`
	Scopes      []string   `json:"scopes,omitempty"`
	Mode        string     `json:"mode,omitempty"`
	IPAllowlist []string   `json:"ipAllowlist,omitempty"`
	ExpiresAt   *time.Time `json:"expiresAt,omitempty"`
	// Owner: the calling key's owner when empty.
	Owner    string          `json:"owner,omitempty"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
	// RateLimits left out or Null: the tier's; a list (empty for no limit):
	// the key's own.
	RateLimits Nullable[[]RateLimit] `json:"rateLimits,omitzero"`
	// Credits left out: the tier's; Null: unlimited.
	Credits Nullable[CreditsInput] `json:"credits,omitzero"`
}

// UpdateKeyRequest changes a key; what is left out stays as it is.
type UpdateKeyRequest struct {
	Name        *string   `json:"name,omitempty"`
	Scopes      *[]string `json:"scopes,omitempty"`
	Mode        *string   `json:"mode,omitempty"`
	IPAllowlist *[]string `json:"ipAllowlist,omitempty"`
	// Metadata Null clears it; ExpiresAt Null: never expires.
	Metadata  Nullable[json.RawMessage] `json:"metadata,omitzero"`
	ExpiresAt Nullable[time.Time]       `json:"expiresAt,omitzero"`
	// RateLimits Null: back to the tier's.
	RateLimits Nullable[[]RateLimit] `json:"rateLimits,omitzero"`
	// Credits Null: unlimited.
	Credits Nullable[CreditsInput] `json:"credits,omitzero"`
}

// ListKeysRequest filters a listing of keys; all fields are optional.
type ListKeysRequest struct {
	Status    string
	Owner     string
	Tier      string
	CreatedBy string
	// Search finds a part of the name, in any letter case.
	Search string
	// UnusedForDays keeps keys created over that many days ago and not
	// used since.
	UnusedForDays int
	// Limit is the page size, 1-100 (the server's default when 0).
	Limit int
}

// RotateKeyRequest: GracePeriodSeconds is how long the old key keeps
// working (0-604800); nil for the server's default, a day.
type RotateKeyRequest struct {
	GracePeriodSeconds *int `json:"gracePeriodSeconds,omitempty"`
}

// Credit adjustments.
const (
	CreditsIncrement = "increment"
	CreditsDecrement = "decrement"
	CreditsSet       = "set"
)

// CreditsAdjustment changes a key's remaining credits atomically.
type CreditsAdjustment struct {
	Op    string `json:"op"` // CreditsIncrement, CreditsDecrement or CreditsSet
	Value int64  `json:"value"`
}

// Page is one page of a listing; NextCursor is "" on the last.
type Page[T any] struct {
	Items      []T
	NextCursor string
}

// OwnerLimits are the limits all keys of an owner share.
type OwnerLimits struct {
	Owner      string      `json:"owner"`
	RateLimits []RateLimit `json:"rateLimits"`
	Credits    *Credits    `json:"credits"`
	UpdatedAt  *time.Time  `json:"updatedAt"` // nil: never set
}

// OwnerLimitsRequest changes an owner's limits; what is left out stays.
type OwnerLimitsRequest struct {
	RateLimits *[]RateLimit `json:"rateLimits,omitempty"`
	// Credits Null: unlimited.
	Credits Nullable[CreditsInput] `json:"credits,omitzero"`
}

// RevokeOwnerRequest: IncludeCreated also revokes the keys the owner's
// keys created, transitively; DryRun revokes nothing and counts.
type RevokeOwnerRequest struct {
	IncludeCreated bool
	DryRun         bool
}

// OwnerRevocation counts the keys an owner revoke revoked (Revoked set),
// or with DryRun would revoke (WouldRevoke set).
type OwnerRevocation struct {
	Revoked     *int `json:"revoked,omitempty"`
	WouldRevoke *int `json:"wouldRevoke,omitempty"`
}

// AuditEvent is one change, written in the same transaction as the change.
type AuditEvent struct {
	ID       string            `json:"id"`
	Project  string            `json:"project"`
	Actor    string            `json:"actor"`
	Action   string            `json:"action"`
	Target   string            `json:"target"`
	Changes  map[string]Change `json:"changes,omitempty"`
	SourceIP string            `json:"sourceIp,omitempty"`
	Session  string            `json:"session,omitempty"`
	Time     time.Time         `json:"time"`
}

// Change is a field's value before and after.
type Change struct {
	From json.RawMessage `json:"from"`
	To   json.RawMessage `json:"to"`
}

// ListAuditRequest filters the audit log; all fields are optional.
type ListAuditRequest struct {
	KeyID  string
	Action string
	Limit  int
}

// Usage granularities.
const (
	Hour = "hour"
	Day  = "day"
)

// UsageRange is a usage query's range; zero fields take the server's
// defaults (the last 48 hours by hour, the last 30 days by day).
type UsageRange struct {
	Granularity string
	From, To    time.Time
}

// UsageSeries is every bucket of a range, oldest first.
type UsageSeries struct {
	KeyID       string        `json:"keyId,omitempty"`
	Owner       string        `json:"owner,omitempty"`
	Granularity string        `json:"granularity"`
	From        time.Time     `json:"from"`
	To          time.Time     `json:"to"`
	Buckets     []UsageBucket `json:"buckets"`
}

// UsageBucket is one hour or day of a series.
type UsageBucket struct {
	Start time.Time `json:"start"`
	UsageCounts
}

// UsageCounts are the uses allowed, each kind of refusal, and the credits
// spent.
type UsageCounts struct {
	Allowed           int64 `json:"allowed"`
	RateLimited       int64 `json:"rateLimited"`
	UsageExceeded     int64 `json:"usageExceeded"`
	InsufficientScope int64 `json:"insufficientScope"`
	IPNotAllowed      int64 `json:"ipNotAllowed"`
	Revoked           int64 `json:"revoked"`
	Expired           int64 `json:"expired"`
	// NotFound counts unknown keys, in a project's totals only.
	NotFound int64 `json:"notFound,omitempty"`
	Credits  int64 `json:"credits"`
}

// Usage groupings of a project's totals.
const (
	GroupByKey   = "key"
	GroupByOwner = "owner"
	GroupByTier  = "tier"
)

// ProjectUsageRequest asks for a project's totals per key, owner or tier.
type ProjectUsageRequest struct {
	UsageRange
	GroupBy string
	Limit   int
}

// UsageTotal is one member's totals over a range: exactly one of Key,
// Owner and Tier is set, as grouped; "" counts unknown keys.
type UsageTotal struct {
	Key   *string `json:"key,omitempty"`
	Owner *string `json:"owner,omitempty"`
	Tier  *string `json:"tier,omitempty"`
	UsageCounts
	Requests int64 `json:"requests"`
}

// Member is the key id, owner or tier the total is of.
func (t UsageTotal) Member() string {
	for _, m := range []*string{t.Key, t.Owner, t.Tier} {
		if m != nil {
			return *m
		}
	}
	return ""
}

// Webhook is an endpoint subscribed to events of the project.
type Webhook struct {
	ID          string   `json:"id"`
	Project     string   `json:"project"`
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description"`
	Status      string   `json:"status"` // enabled or disabled
	// DisabledReason says why a webhook is disabled.
	DisabledReason string     `json:"disabledReason,omitempty"`
	DisabledAt     *time.Time `json:"disabledAt"`
	FailingSince   *time.Time `json:"failingSince"`
	CreatedAt      time.Time  `json:"createdAt"`
	UpdatedAt      time.Time  `json:"updatedAt"`
	CreatedBy      string     `json:"createdBy"`
}

// CreatedWebhook is a new webhook with the secret that signs its
// deliveries, shown only in this answer.
type CreatedWebhook struct {
	Webhook
	Secret string `json:"secret"`
}

// CreateWebhookRequest subscribes URL to Events.
type CreateWebhookRequest struct {
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description,omitempty"`
}

// UpdateWebhookRequest changes a webhook; what is left out stays.
// Enabled turns a disabled webhook back on, or disables it.
type UpdateWebhookRequest struct {
	URL         *string   `json:"url,omitempty"`
	Events      *[]string `json:"events,omitempty"`
	Description *string   `json:"description,omitempty"`
	Enabled     *bool     `json:"enabled,omitempty"`
}

// Delivery is an event's delivery to a webhook and how it went.
type Delivery struct {
	ID             string     `json:"id"`
	EventType      string     `json:"eventType"`
	State          string     `json:"state"`
	Attempts       int        `json:"attempts"`
	LastStatusCode int        `json:"lastStatusCode"`
	LastError      string     `json:"lastError,omitempty"`
	LastLatencyMs  int64      `json:"lastLatencyMs"`
	LastAttemptAt  *time.Time `json:"lastAttemptAt"`
	NextAttemptAt  *time.Time `json:"nextAttemptAt"`
	EventCreatedAt time.Time  `json:"eventCreatedAt"`
	CreatedAt      time.Time  `json:"createdAt"`
}

// VerifyRequest asks whether Key may be used, with Scopes, from IP, at
// Cost credits (nil: 1; 0 checks without spending).
type VerifyRequest struct {
	Key    string   `json:"key"`
	Scopes []string `json:"scopes,omitempty"`
	IP     string   `json:"ip,omitempty"`
	Cost   *int64   `json:"cost,omitempty"`
}

// Verification codes.
const (
	VerifyValid             = "VALID"
	VerifyNotFound          = "NOT_FOUND"
	VerifyRevoked           = "REVOKED"
	VerifyExpired           = "EXPIRED"
	VerifyRateLimited       = "RATE_LIMITED"
	VerifyUsageExceeded     = "USAGE_EXCEEDED"
	VerifyInsufficientScope = "INSUFFICIENT_SCOPE"
	VerifyIPNotAllowed      = "IP_NOT_ALLOWED"
)

// Verification is verify's answer. The fields describing the key are set
// only when it was found in the caller's project.
type Verification struct {
	Valid     bool            `json:"valid"`
	Code      string          `json:"code"`
	KeyID     string          `json:"keyId,omitempty"`
	Project   string          `json:"project,omitempty"`
	Owner     string          `json:"owner,omitempty"`
	Tier      string          `json:"tier,omitempty"`
	Scopes    []string        `json:"scopes"`
	Metadata  json.RawMessage `json:"metadata"`
	ExpiresAt *time.Time      `json:"expiresAt"`
	// RateLimit is the tightest of RateLimits: the key's limits, then its
	// owner's.
	RateLimit    *RateLimitState  `json:"rateLimit"`
	RateLimits   []RateLimitState `json:"rateLimits"`
	Credits      *CreditsLeft     `json:"credits"`
	OwnerCredits *CreditsLeft     `json:"ownerCredits,omitempty"`
	// RetryAfter is the seconds until a refusal that waiting cures ends.
	RetryAfter int64 `json:"retryAfter,omitempty"`
}

// RateLimitState is a limit's budget in its current window; Reset is the
// window's end in Unix seconds.
type RateLimitState struct {
	Name      string `json:"name,omitempty"`
	Owner     bool   `json:"owner,omitempty"`
	Limit     int64  `json:"limit"`
	Remaining int64  `json:"remaining"`
	Reset     int64  `json:"reset"`
}

// CreditsLeft is what remains of a budget.
type CreditsLeft struct {
	Remaining int64 `json:"remaining"`
}

// Identity is the calling key, as the authorizer describes it.
type Identity struct {
	KeyID       string          `json:"keyId"`
	Project     string          `json:"project"`
	Owner       string          `json:"owner"`
	Tier        string          `json:"tier"`
	Scopes      []string        `json:"scopes"`
	ExpiresAt   *time.Time      `json:"expiresAt"`
	IPAllowlist []string        `json:"ipAllowlist"`
	SourceIP    string          `json:"sourceIp"`
	RateLimit   *RateLimitState `json:"rateLimit,omitempty"`
	Credits     *CreditsLeft    `json:"credits,omitempty"`
}
