// Package config reads keygate's configuration from the environment, once
// per process, in one place: every variable's name, default and validation
// is here, and the rest of the code receives plain values.
package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/keys"
)

// Environment variables, as template.yaml sets them.
const (
	EnvTableName          = "TABLE_NAME"
	EnvEndpoint           = "DYNAMODB_ENDPOINT" // DynamoDB Local; unset means AWS
	EnvKeyPrefix          = "KEYGATE_KEY_PREFIX"
	EnvTiers              = "KEYGATE_TIERS"
	EnvScopes             = "KEYGATE_SCOPES"
	EnvRateWindowSeconds  = "KEYGATE_RATE_WINDOW_SECONDS"
	EnvRetentionDays      = "KEYGATE_RETENTION_DAYS"
	EnvAuditRetentionDays = "KEYGATE_AUDIT_RETENTION_DAYS"
	EnvRouteScopes        = "KEYGATE_ROUTE_SCOPES"
	// EnvCachedResults is "true" when API Gateway caches the authorizer's
	// results (template.yaml's KeygateCachedAuthorizer).
	EnvCachedResults = "KEYGATE_AUTHORIZER_CACHED"
)

// DefaultTableName is the table when TABLE_NAME is unset, as for `make run`.
const DefaultTableName = "keygate"

// Config is everything a keygate process is configured with.
type Config struct {
	Keys keys.Config
	// Table is the DynamoDB table; Endpoint, when set, points the client at
	// DynamoDB Local instead of AWS.
	Table    string
	Endpoint string
	// RouteScopes are the scopes the operator's routes need, from
	// KEYGATE_ROUTE_SCOPES: keygate's own routes come on top (pkg/app).
	RouteScopes authorizer.RouteScopes
	// CachedResults is set when API Gateway caches the authorizer's answers.
	CachedResults bool
}

// Default is the configuration with every variable unset.
func Default() Config {
	return Config{Keys: keys.DefaultConfig(), Table: DefaultTableName, RouteScopes: authorizer.RouteScopes{}}
}

// WithTable is c on another table, as tests and tools use it.
func (c Config) WithTable(table string) Config {
	c.Table = table
	return c
}

// Load reads the configuration through getenv (os.Getenv in a process); an
// unset or blank variable takes its default. An error names the variable.
func Load(getenv func(string) string) (Config, error) {
	cfg := Default()
	k := &cfg.Keys
	var errs []error
	read := func(name string, parse func(string) error) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			if err := parse(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	}
	read(EnvTableName, func(v string) error { cfg.Table = v; return nil })
	read(EnvEndpoint, func(v string) error { cfg.Endpoint = v; return nil })
	read(EnvKeyPrefix, func(v string) error { k.KeyPrefix = v; return nil })
	read(EnvTiers, func(v string) (err error) { k.Tiers, err = parseTiers(v); return err })
	read(EnvScopes, func(v string) error { k.Scopes = splitList(v); return nil })
	read(EnvRateWindowSeconds, seconds(&k.RateWindow, time.Second))
	read(EnvRetentionDays, seconds(&k.Retention, 24*time.Hour))
	read(EnvAuditRetentionDays, seconds(&k.AuditRetention, 24*time.Hour))
	read(EnvCachedResults, func(v string) error { cfg.CachedResults = v == "true"; return nil })
	if len(errs) > 0 {
		return Config{}, errs[0]
	}
	if err := k.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s/%s/%s: %w", EnvKeyPrefix, EnvTiers, EnvScopes, err)
	}
	routes, err := authorizer.ParseRouteScopes(getenv(EnvRouteScopes), *k)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", EnvRouteScopes, err)
	}
	cfg.RouteScopes = routes
	return cfg, nil
}

// seconds parses a positive whole number of units into *d.
func seconds(d *time.Duration, unit time.Duration) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("want a positive whole number, not %q", v)
		}
		*d = time.Duration(n) * unit
		return nil
	}
}

// parseTiers reads "name:code:limit,...".
func parseTiers(s string) ([]keys.Tier, error) {
	var tiers []keys.Tier
	for _, entry := range splitList(s) {
		parts := strings.Split(entry, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("tier %q: want name:code:limit", entry)
		}
		limit, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil || limit <= 0 {
			return nil, fmt.Errorf("tier %q: limit %q: want a positive whole number", parts[0], parts[2])
		}
		tiers = append(tiers, keys.Tier{Name: parts[0], Code: parts[1], Limit: limit})
	}
	return tiers, nil
}

func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		out = append(out, strings.TrimSpace(item))
	}
	return out
}
