// Package authorizer decides, with one DynamoDB request, whether a request
// carrying an API key may pass: the key exists, matches its stored hash, is
// active and unexpired, has room in every rate limit and credits for the
// route's cost, holds the route's scopes and comes from an allowed IP.
package authorizer

// Authorizer context keys: what the authorizer hands every function through
// API Gateway (requestContext.authorizer), all strings.
const (
	ContextKeyID              = "keyId"
	ContextProject            = "project"
	ContextOwner              = "owner"
	ContextTier               = "tier"
	ContextScopes             = "scopes"      // comma-separated
	ContextExpiresAt          = "expiresAt"   // Unix milliseconds; absent if the key never expires
	ContextIPAllowlist        = "ipAllowlist" // comma-separated; absent if the key has none
	ContextRateLimitLimit     = "rateLimitLimit"
	ContextRateLimitRemaining = "rateLimitRemaining"
	ContextRateLimitReset     = "rateLimitReset" // Unix seconds
	// ContextRateLimitResetAfter, in a Deny's context only, is the seconds
	// from the decision to the reset: the RateLimit-Reset header of the
	// refusal API Gateway answers itself, which cannot do arithmetic.
	ContextRateLimitResetAfter = "rateLimitResetAfter"
	// ContextCreditsRemaining is what the key can still spend: the lesser
	// of its credits and its owner's; absent when both are unlimited.
	ContextCreditsRemaining = "creditsRemaining"
	ContextErrorCode        = "errorCode"
	ContextRetryAfter       = "retryAfter" // seconds
	// ContextSession is the console session a request came through; only
	// the console sets it (pkg/console), never the authorizer.
	ContextSession = "session"
)
