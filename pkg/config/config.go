// Package config reads keygate's configuration from the environment, once
// per process, in one place: every variable's name, default and validation
// is here, and the rest of the code receives plain values.
package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/leaks"
	"github.com/keygate/keygate/pkg/metrics"
	"github.com/keygate/keygate/pkg/usage"
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
	EnvRouteCosts         = "KEYGATE_ROUTE_COSTS"
	EnvUsageHourlyDays    = "KEYGATE_USAGE_HOURLY_RETENTION_DAYS"
	EnvUsageDailyDays     = "KEYGATE_USAGE_DAILY_RETENTION_DAYS"
	// EnvCachedResults is "true" when API Gateway caches the authorizer's
	// results (template.yaml's KeygateCachedAuthorizer).
	EnvCachedResults = "KEYGATE_AUTHORIZER_CACHED"
	// EnvEventBusName is the EventBridge bus events also go to; unset for none.
	EnvEventBusName = "KEYGATE_EVENT_BUS_NAME"
	// EnvWebhooksAllowLoopback is "true" where webhooks may call loopback
	// addresses, over http too: make run and tests, never AWS.
	EnvWebhooksAllowLoopback = "KEYGATE_WEBHOOKS_ALLOW_LOOPBACK"
	// EnvGitHubKeysURL serves the keys GitHub signs secret scanning reports
	// with; EnvLeakedKeyAction is revoke or restrict (pkg/leaks).
	EnvGitHubKeysURL   = "KEYGATE_GITHUB_KEYS_URL"
	EnvLeakedKeyAction = "KEYGATE_LEAKED_KEY_ACTION"
	// EnvMetricsNamespace is the CloudWatch namespace of the authorizer's
	// metrics: keygate/<stack name> in template.yaml, so that two stacks in
	// one account and region (staging, production) neither mix their
	// metrics nor trip each other's alarms.
	EnvMetricsNamespace = "KEYGATE_METRICS_NAMESPACE"
)

// DefaultTableName is the table when TABLE_NAME is unset, as for `make run`.
const DefaultTableName = "keygate"

// Config is everything a keygate process is configured with.
type Config struct {
	Keys keys.Config
	// Usage is how long usage buckets are kept.
	Usage usage.Config
	// Table is the DynamoDB table; Endpoint, when set, points the client at
	// DynamoDB Local instead of AWS.
	Table    string
	Endpoint string
	// RouteScopes are the scopes the operator's routes need, from
	// KEYGATE_ROUTE_SCOPES: keygate's own routes come on top (pkg/app).
	RouteScopes authorizer.RouteScopes
	// RouteCosts are the credits a request of each route spends, from
	// KEYGATE_ROUTE_COSTS; a route not listed costs 1.
	RouteCosts authorizer.RouteCosts
	// CachedResults is set when API Gateway caches the authorizer's answers.
	CachedResults bool
	// EventBusName is the EventBridge bus of events, "" for none.
	EventBusName string
	// WebhooksAllowLoopback lets webhooks call loopback addresses.
	WebhooksAllowLoopback bool
	// Leaks is how reports of leaked keys are taken.
	Leaks leaks.Config
	// MetricsNamespace is the CloudWatch namespace of the authorizer's metrics.
	MetricsNamespace string
}

// Default is the configuration with every variable unset.
func Default() Config {
	return Config{Keys: keys.DefaultConfig(), Usage: usage.DefaultConfig(), Table: DefaultTableName, RouteScopes: authorizer.RouteScopes{}, RouteCosts: authorizer.RouteCosts{}, Leaks: leaks.DefaultConfig(), MetricsNamespace: metrics.DefaultNamespace}
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
	read(EnvScopes, func(v string) error { k.Scopes = splitList(v); return nil })
	read(EnvRateWindowSeconds, seconds(&k.RateWindow, time.Second))
	read(EnvRetentionDays, seconds(&k.Retention, 24*time.Hour))
	read(EnvAuditRetentionDays, seconds(&k.AuditRetention, 24*time.Hour))
	read(EnvUsageHourlyDays, seconds(&cfg.Usage.HourlyRetention, 24*time.Hour))
	read(EnvUsageDailyDays, seconds(&cfg.Usage.DailyRetention, 24*time.Hour))
	// Tiers last: a tier of the old form counts over the rate window.
	k.Tiers = keys.DefaultTiers(k.RateWindow)
	read(EnvTiers, func(v string) (err error) { k.Tiers, err = parseTiers(v, k.RateWindow); return err })
	read(EnvCachedResults, func(v string) error { cfg.CachedResults = v == "true"; return nil })
	read(EnvEventBusName, func(v string) error { cfg.EventBusName = v; return nil })
	read(EnvWebhooksAllowLoopback, func(v string) error { cfg.WebhooksAllowLoopback = v == "true"; return nil })
	read(EnvGitHubKeysURL, func(v string) error { cfg.Leaks.KeysURL = v; return checkHTTPURL(v) })
	read(EnvLeakedKeyAction, func(v string) (err error) { cfg.Leaks.Action, err = keys.ParseLeakAction(v); return err })
	read(EnvMetricsNamespace, func(v string) error { cfg.MetricsNamespace = v; return metrics.CheckNamespace(v) })
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
	if cfg.RouteCosts, err = authorizer.ParseRouteCosts(getenv(EnvRouteCosts)); err != nil {
		return Config{}, fmt.Errorf("%s: %w", EnvRouteCosts, err)
	}
	return cfg, nil
}

// checkHTTPURL refuses what is not an absolute http or https URL.
func checkHTTPURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("want an absolute http(s) URL, not %q", v)
	}
	return nil
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

// parseTiers reads "name:code:limits[:credits][:mode],...". limits is
// either one number, the old form (that many requests per
// KEYGATE_RATE_WINDOW_SECONDS, a limit named "window"), or limits joined by
// "+", each [name=]N/window with the window in s, m, h or d
// ("burst=10/1s+daily=10000/1d"), or "none". credits is credits=N,
// refilled to N by /daily, /monthly or /monthly@day, or never without one
// ("credits=5000/monthly@1"). mode is exact (the default) or leased.
func parseTiers(s string, window time.Duration) ([]keys.Tier, error) {
	var tiers []keys.Tier
	for _, entry := range splitList(s) {
		parts := strings.Split(entry, ":")
		if len(parts) < 3 || len(parts) > 5 {
			return nil, fmt.Errorf("tier %q: want name:code:limits[:credits][:mode]", entry)
		}
		t := keys.Tier{Name: parts[0], Code: parts[1]}
		if last := parts[len(parts)-1]; len(parts) > 3 && !strings.HasPrefix(last, "credits=") {
			mode, err := keys.ParseMode("mode", last)
			if err != nil {
				return nil, fmt.Errorf("tier %q: %q is neither credits=N[/daily|/monthly[@day]] nor a mode (exact or leased)", t.Name, last)
			}
			t.Mode, parts = mode, parts[:len(parts)-1]
		}
		if len(parts) == 5 {
			return nil, fmt.Errorf("tier %q: want name:code:limits[:credits][:mode]", entry)
		}
		var err error
		if t.RateLimits, err = parseTierLimits(parts[2], window); err != nil {
			return nil, fmt.Errorf("tier %q: %w", t.Name, err)
		}
		if len(parts) == 4 {
			if t.Credits, err = parseTierCredits(parts[3]); err != nil {
				return nil, fmt.Errorf("tier %q: %w", t.Name, err)
			}
		}
		tiers = append(tiers, t)
	}
	return tiers, nil
}

func parseTierLimits(s string, window time.Duration) ([]keys.RateLimit, error) {
	if s == "none" {
		return []keys.RateLimit{}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return []keys.RateLimit{{Name: keys.DefaultLimitName, Limit: n, WindowSeconds: int64(window / time.Second)}}, nil
	}
	var limits []keys.RateLimit
	for spec := range strings.SplitSeq(s, "+") {
		name, rest, named := strings.Cut(spec, "=")
		if !named {
			name, rest = keys.DefaultLimitName, spec
		}
		count, per, ok := strings.Cut(rest, "/")
		n, err := strconv.ParseInt(count, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("limit %q: want [name=]N/window, such as burst=10/1s", spec)
		}
		secs, err := windowSeconds(per)
		if err != nil {
			return nil, fmt.Errorf("limit %q: %w", spec, err)
		}
		limits = append(limits, keys.RateLimit{Name: name, Limit: n, WindowSeconds: secs})
	}
	return limits, nil
}

// windowSeconds reads "30", "30s", "15m", "24h" or "7d".
func windowSeconds(s string) (int64, error) {
	units := map[byte]int64{'s': 1, 'm': 60, 'h': 3600, 'd': 86400}
	unit := int64(1)
	if len(s) > 0 {
		if u, ok := units[s[len(s)-1]]; ok {
			unit, s = u, s[:len(s)-1]
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > keys.MaxWindowSeconds/unit {
		return 0, fmt.Errorf("window: want a whole number of s, m, h or d, at most 30d")
	}
	return n * unit, nil
}

func parseTierCredits(s string) (*keys.Credits, error) {
	amount, refill, hasRefill := strings.Cut(strings.TrimPrefix(s, "credits="), "/")
	n, err := strconv.ParseInt(amount, 10, 64)
	if !strings.HasPrefix(s, "credits=") || err != nil {
		return nil, fmt.Errorf("credits %q: want credits=N, credits=N/daily, credits=N/monthly or credits=N/monthly@day", s)
	}
	c := &keys.Credits{Remaining: n}
	if hasRefill {
		interval, day, hasDay := strings.Cut(refill, "@")
		r := &keys.Refill{Interval: keys.RefillInterval(interval), Amount: n}
		if interval == string(keys.RefillMonthly) {
			r.RefillDay = 1
		}
		if hasDay {
			if r.RefillDay, err = strconv.Atoi(day); err != nil {
				return nil, fmt.Errorf("credits %q: refill day %q: want 1-31", s, day)
			}
		}
		c.Refill = r
	}
	return c, keys.CheckCredits("credits", c)
}

func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		out = append(out, strings.TrimSpace(item))
	}
	return out
}
