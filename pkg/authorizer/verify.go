package authorizer

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/keygate/keygate/pkg/keys"
)

// VerifyInput asks whether a key presented to a server not behind API
// Gateway may be used.
type VerifyInput struct {
	Key string
	// Scopes the key must hold; each must be a configured scope.
	Scopes []string
	// IP is the address the key was presented from, as the server saw it.
	// A key with an IP allowlist verifies only with an IP the allowlist
	// admits: without one, it is IP_NOT_ALLOWED, as at the gateway a key
	// cannot be used from an unknown address. A key without an allowlist
	// ignores it.
	IP string
	// Cost is the credits the use spends: nil for DefaultCost, 0 to check
	// without spending.
	Cost *int64
}

// Verify decides, with the same core and the same single write as the
// authorizer, whether a key of project may be used; a verification counts
// as one use of the key. A key of another project is NotFound and is not
// counted. Invalid input is a *keys.InvalidError.
func (a *Authorizer) Verify(ctx context.Context, project string, in VerifyInput) (Decision, error) {
	if in.Key == "" {
		return Decision{}, &keys.InvalidError{Field: "key", Message: "required"}
	}
	if err := a.cfg.CheckScopes(in.Scopes); err != nil {
		return Decision{}, err
	}
	if in.IP != "" {
		if _, err := netip.ParseAddr(in.IP); err != nil {
			return Decision{}, &keys.InvalidError{Field: "ip", Message: "want an IPv4 or IPv6 address"}
		}
	}
	cost := int64(DefaultCost)
	if in.Cost != nil {
		cost = *in.Cost
		if cost < 0 || cost > keys.MaxCost {
			return Decision{}, &keys.InvalidError{Field: "cost", Message: fmt.Sprintf("want 0-%d", keys.MaxCost)}
		}
	}
	return a.Decide(ctx, Request{Key: in.Key, Project: project, Scopes: in.Scopes, SourceIP: in.IP, Route: "verify", Cost: cost})
}
