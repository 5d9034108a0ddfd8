package keys

import (
	"fmt"
	"slices"
	"time"

	"github.com/keygate/keygate/pkg/token"
)

// Config is what the domain is configured with, as plain values; pkg/config
// reads it from the environment that template.yaml sets.
type Config struct {
	KeyPrefix      string
	Tiers          []Tier
	Scopes         []string
	RateWindow     time.Duration
	Retention      time.Duration // how long an expired or revoked key stays listed before TTL purges it
	AuditRetention time.Duration
}

// DefaultKeyPrefix is the prefix of keys when none is configured.
const DefaultKeyPrefix = "kg"

// Scopes keygate's own routes need.
const (
	ScopeAdmin  = "admin"
	ScopeVerify = "verify"
)

const day = 24 * time.Hour

// DefaultConfig is the configuration with every default, as the product
// documents: three tiers with 100, 1,000 and 10,000 requests per 15 minutes.
func DefaultConfig() Config {
	const window = 15 * time.Minute
	return Config{
		KeyPrefix:      DefaultKeyPrefix,
		Tiers:          DefaultTiers(window),
		Scopes:         []string{"contracts", "vaults", "users", "payments", "webhooks", ScopeAdmin, "embed", ScopeVerify},
		RateWindow:     window,
		Retention:      30 * day,
		AuditRetention: 365 * day,
	}
}

// DefaultTiers are the three tiers of the product documents, limited over window.
func DefaultTiers(window time.Duration) []Tier {
	return []Tier{WindowTier("public", "pk", 100, window), WindowTier("partner", "pt", 1000, window), WindowTier("internal", "in", 10000, window)}
}

// Validate checks a configuration as a whole: names, codes and limits, each
// used once. A process with an invalid one must not start.
func (c Config) Validate() error {
	if err := token.ValidatePrefix(c.KeyPrefix); err != nil {
		return err
	}
	if len(c.Tiers) == 0 {
		return fmt.Errorf("no tier")
	}
	for i, t := range c.Tiers {
		if !namePattern.MatchString(t.Name) {
			return fmt.Errorf("tier name %q: want lowercase letters, digits, - or _", t.Name)
		}
		if err := token.ValidateTierCode(t.Code); err != nil {
			return err
		}
		if err := CheckRateLimits("rateLimits", t.RateLimits); err != nil {
			return fmt.Errorf("tier %q: %w", t.Name, err)
		}
		if err := CheckCredits("credits", t.Credits); err != nil {
			return fmt.Errorf("tier %q: %w", t.Name, err)
		}
		if slices.ContainsFunc(c.Tiers[:i], func(o Tier) bool { return o.Name == t.Name || o.Code == t.Code }) {
			return fmt.Errorf("tier %q: name or code used twice", t.Name)
		}
	}
	for i, s := range c.Scopes {
		if !namePattern.MatchString(s) {
			return fmt.Errorf("scope %q: want lowercase letters, digits, -, _ or :", s)
		}
		if slices.Contains(c.Scopes[:i], s) {
			return fmt.Errorf("scope %q listed twice", s)
		}
	}
	for _, own := range []string{ScopeAdmin, ScopeVerify} {
		if !slices.Contains(c.Scopes, own) {
			return fmt.Errorf("scopes must include %q: keygate's own routes need it", own)
		}
	}
	for _, d := range []time.Duration{c.RateWindow, c.Retention, c.AuditRetention} {
		if d < time.Second || d%time.Second != 0 {
			return fmt.Errorf("durations must be whole, positive seconds: %v", d)
		}
	}
	return nil
}

// TierByName finds a tier by its name.
func (c Config) TierByName(name string) (Tier, bool) {
	i := slices.IndexFunc(c.Tiers, func(t Tier) bool { return t.Name == name })
	if i < 0 {
		return Tier{}, false
	}
	return c.Tiers[i], true
}

// TierByCode finds a tier by the code its keys carry.
func (c Config) TierByCode(code string) (Tier, bool) {
	i := slices.IndexFunc(c.Tiers, func(t Tier) bool { return t.Code == code })
	if i < 0 {
		return Tier{}, false
	}
	return c.Tiers[i], true
}
