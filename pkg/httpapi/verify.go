package httpapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/keys"
)

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

// verifyCodes gives each authorizer outcome its verification code. A
// missing or malformed key is NOT_FOUND, like an unknown one.
var verifyCodes = map[authorizer.Outcome]string{
	authorizer.Allowed:           VerifyValid,
	authorizer.MissingKey:        VerifyNotFound,
	authorizer.MalformedKey:      VerifyNotFound,
	authorizer.NotFound:          VerifyNotFound,
	authorizer.Revoked:           VerifyRevoked,
	authorizer.Expired:           VerifyExpired,
	authorizer.RateLimited:       VerifyRateLimited,
	authorizer.UsageExceeded:     VerifyUsageExceeded,
	authorizer.InsufficientScope: VerifyInsufficientScope,
	authorizer.IPNotAllowed:      VerifyIPNotAllowed,
}

// verifyInput is POST /v1/verify's body.
type verifyInput struct {
	Key    string   `json:"key"`
	Scopes []string `json:"scopes"`
	IP     string   `json:"ip"`
	// Cost is the credits the use spends: absent for 1, 0 to check the key
	// without spending any.
	Cost *int64 `json:"cost"`
}

// verification is POST /v1/verify's answer. The fields describing the key
// are set only when the key was found in the caller's project, so a key of
// another project reads exactly as an unknown one.
type verification struct {
	Valid     bool            `json:"valid"`
	Code      string          `json:"code"`
	KeyID     string          `json:"keyId,omitempty"`
	Project   string          `json:"project,omitempty"`
	Owner     string          `json:"owner,omitempty"`
	Tier      string          `json:"tier,omitempty"`
	Scopes    []string        `json:"scopes"`
	Metadata  json.RawMessage `json:"metadata"`
	ExpiresAt *time.Time      `json:"expiresAt"`
	// RateLimit is the tightest of RateLimits, which lists every limit
	// that applied: the key's, then its owner's.
	RateLimit  *rateLimitView  `json:"rateLimit"`
	RateLimits []rateLimitView `json:"rateLimits"`
	// Credits and OwnerCredits are what is left; null when unlimited.
	Credits      *creditsView `json:"credits"`
	OwnerCredits *creditsView `json:"ownerCredits,omitempty"`
	// RetryAfter is, on RATE_LIMITED or USAGE_EXCEEDED, the seconds until
	// the window that refused ends or the credits refill; absent when
	// waiting does not help.
	RetryAfter int64 `json:"retryAfter,omitempty"`
}

// rateLimitView is a limit's budget in its current window; reset is the
// window's end in Unix seconds, as the authorizer's rateLimitReset.
type rateLimitView struct {
	Name      string `json:"name,omitempty"`
	Owner     bool   `json:"owner,omitempty"`
	Limit     int64  `json:"limit"`
	Remaining int64  `json:"remaining"`
	Reset     int64  `json:"reset"`
}

type creditsView struct {
	Remaining int64 `json:"remaining"`
}

// verify tells a server that is not behind API Gateway whether a key of
// the caller's project may be used, and resolves its metadata. Any answer
// about the key is 200 with its code; a verification counts as one use of
// the verified key, as an authorization would.
func (a *API) verify(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(caller keys.Caller) (answer, error) {
		// The authorizer requires the scope already; this holds if it is ever
		// configured otherwise, as keys.Service does for admin.
		if !slices.Contains(caller.Scopes, keys.ScopeVerify) {
			return answer{}, &keys.ForbiddenError{Message: "scope verify required"}
		}
		var in verifyInput
		if err := DecodeBody(w, r, &in); err != nil {
			return answer{}, err
		}
		d, err := a.auth.Verify(r.Context(), caller.Project, authorizer.VerifyInput{Key: in.Key, Scopes: in.Scopes, IP: in.IP, Cost: in.Cost})
		return data(http.StatusOK, newVerification(d)), err
	})
}

func newVerification(d authorizer.Decision) verification {
	v := verification{Valid: d.Outcome == authorizer.Allowed, Code: verifyCodes[d.Outcome], Scopes: []string{}}
	if k := d.Key; k != nil {
		v.KeyID, v.Project, v.Owner, v.Tier = k.ID, k.Project, k.Owner, k.Tier
		v.Scopes, v.Metadata, v.ExpiresAt = nonNil(k.Scopes), k.Metadata, k.ExpiresAt
	}
	v.RateLimits = make([]rateLimitView, len(d.RateLimits))
	for i, rl := range d.RateLimits {
		v.RateLimits[i] = rateLimitView{Name: rl.Name, Owner: rl.Owner, Limit: rl.Limit, Remaining: rl.Remaining, Reset: rl.Reset.Unix()}
	}
	if rl := d.RateLimit; rl != nil {
		v.RateLimit = &rateLimitView{Name: rl.Name, Owner: rl.Owner, Limit: rl.Limit, Remaining: rl.Remaining, Reset: rl.Reset.Unix()}
	}
	if c := d.Credits; c != nil {
		v.Credits = &creditsView{Remaining: c.Remaining}
	}
	if c := d.OwnerCredits; c != nil {
		v.OwnerCredits = &creditsView{Remaining: c.Remaining}
	}
	if d.RetryAfter > 0 && (d.Outcome == authorizer.RateLimited || d.Outcome == authorizer.UsageExceeded) {
		v.RetryAfter = authorizer.RetryAfterSeconds(d.RetryAfter)
	}
	return v
}
