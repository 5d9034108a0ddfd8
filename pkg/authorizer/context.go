// Package authorizer decides, with one DynamoDB request, whether a request
// carrying an API key may pass: the key exists, matches its stored hash, is
// active and unexpired, has rate budget left, holds the route's scopes and
// comes from an allowed IP.
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
	ContextErrorCode          = "errorCode"
	ContextRetryAfter         = "retryAfter" // seconds
)
