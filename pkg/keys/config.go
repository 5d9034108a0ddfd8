package keys

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/pkg/token"
)

// Tier is a class of keys with its own code in the token and its own rate limit.
type Tier struct {
	Name  string
	Code  string
	Limit int64 // requests per rate window
}

// Config is keygate's configuration, read once per process from the
// environment that template.yaml sets.
type Config struct {
	KeyPrefix      string
	Tiers          []Tier
	Scopes         []string
	RateWindow     time.Duration
	Retention      time.Duration // how long an expired or revoked key stays listed before TTL purges it
	AuditRetention time.Duration
}

// Environment variable names, set by template.yaml.
const (
	EnvKeyPrefix          = "KEYGATE_KEY_PREFIX"
	EnvTiers              = "KEYGATE_TIERS"
	EnvScopes             = "KEYGATE_SCOPES"
	EnvRateWindowSeconds  = "KEYGATE_RATE_WINDOW_SECONDS"
	EnvRetentionDays      = "KEYGATE_RETENTION_DAYS"
	EnvAuditRetentionDays = "KEYGATE_AUDIT_RETENTION_DAYS"
)

// Defaults, as the product documents: three tiers with 100, 1,000 and 10,000
// requests per 15 minutes.
const (
	DefaultKeyPrefix          = "kg"
	DefaultTiers              = "public:pk:100,partner:pt:1000,internal:in:10000"
	DefaultScopes             = "contracts,vaults,users,payments,webhooks,admin,embed,verify"
	DefaultRateWindowSeconds  = 900
	DefaultRetentionDays      = 30
	DefaultAuditRetentionDays = 365
)

// Scopes keygate's own routes need.
const (
	ScopeAdmin  = "admin"
	ScopeVerify = "verify"
)

const day = 24 * time.Hour

// DefaultConfig is the configuration with every default.
func DefaultConfig() Config {
	cfg, err := ConfigFromEnv(func(string) string { return "" })
	if err != nil {
		panic(err) // the defaults are constants: a failure is a bug
	}
	return cfg
}

// ConfigFromEnv reads the configuration; an unset variable takes its default.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	var cfg Config
	cfg.KeyPrefix = get(EnvKeyPrefix, DefaultKeyPrefix)
	if err := token.ValidatePrefix(cfg.KeyPrefix); err != nil {
		return Config{}, fmt.Errorf("%s: %w", EnvKeyPrefix, err)
	}
	tiers, err := parseTiers(get(EnvTiers, DefaultTiers))
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", EnvTiers, err)
	}
	cfg.Tiers = tiers
	if cfg.Scopes, err = parseScopes(get(EnvScopes, DefaultScopes)); err != nil {
		return Config{}, fmt.Errorf("%s: %w", EnvScopes, err)
	}
	positive := func(name string, def int) (int, error) {
		n, err := strconv.Atoi(get(name, strconv.Itoa(def)))
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%s: want a positive whole number", name)
		}
		return n, nil
	}
	window, err := positive(EnvRateWindowSeconds, DefaultRateWindowSeconds)
	if err != nil {
		return Config{}, err
	}
	retention, err := positive(EnvRetentionDays, DefaultRetentionDays)
	if err != nil {
		return Config{}, err
	}
	auditRetention, err := positive(EnvAuditRetentionDays, DefaultAuditRetentionDays)
	if err != nil {
		return Config{}, err
	}
	cfg.RateWindow = time.Duration(window) * time.Second
	cfg.Retention = time.Duration(retention) * day
	cfg.AuditRetention = time.Duration(auditRetention) * day
	return cfg, nil
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

// parseTiers reads "name:code:limit,..." .
func parseTiers(s string) ([]Tier, error) {
	var tiers []Tier
	for _, entry := range strings.Split(s, ",") {
		parts := strings.Split(strings.TrimSpace(entry), ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("tier %q: want name:code:limit", entry)
		}
		t := Tier{Name: parts[0], Code: parts[1]}
		if !namePattern.MatchString(t.Name) {
			return nil, fmt.Errorf("tier name %q: want lowercase letters, digits, - or _", t.Name)
		}
		if err := token.ValidateTierCode(t.Code); err != nil {
			return nil, err
		}
		limit, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil || limit <= 0 {
			return nil, fmt.Errorf("tier %q: limit %q: want a positive whole number", t.Name, parts[2])
		}
		t.Limit = limit
		for _, other := range tiers {
			if other.Name == t.Name || other.Code == t.Code {
				return nil, fmt.Errorf("tier %q: name or code used twice", t.Name)
			}
		}
		tiers = append(tiers, t)
	}
	return tiers, nil
}

func parseScopes(s string) ([]string, error) {
	var scopes []string
	for _, sc := range strings.Split(s, ",") {
		sc = strings.TrimSpace(sc)
		if !namePattern.MatchString(sc) {
			return nil, fmt.Errorf("scope %q: want lowercase letters, digits, -, _ or :", sc)
		}
		if slices.Contains(scopes, sc) {
			return nil, fmt.Errorf("scope %q listed twice", sc)
		}
		scopes = append(scopes, sc)
	}
	return scopes, nil
}
