package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/leaks"
)

func TestLoadDefaults(t *testing.T) {
	cfg, err := Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Errorf("Load of an empty environment = %+v, want %+v", cfg, Default())
	}
	if cfg.Table != "keygate" || cfg.Endpoint != "" || cfg.CachedResults {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(Config) bool
	}{
		{name: "custom tiers", env: map[string]string{EnvTiers: "free:fr:10, pro:pr:500"},
			check: func(c Config) bool {
				return len(c.Keys.Tiers) == 2 && reflect.DeepEqual(c.Keys.Tiers[1], keys.WindowTier("pro", "pr", 500, 15*time.Minute))
			}},
		{name: "old-form tier counts over the configured window", env: map[string]string{EnvTiers: "free:fr:10", EnvRateWindowSeconds: "60"},
			check: func(c Config) bool {
				return reflect.DeepEqual(c.Keys.Tiers[0], keys.WindowTier("free", "fr", 10, time.Minute))
			}},
		{name: "default tiers count over the configured window", env: map[string]string{EnvRateWindowSeconds: "60"},
			check: func(c Config) bool { return reflect.DeepEqual(c.Keys.Tiers, keys.DefaultTiers(time.Minute)) }},
		{name: "tier with several limits and credits", env: map[string]string{EnvTiers: "pro:pr:burst=10/1s+daily=10000/1d+30/90:credits=5000/monthly@31"},
			check: func(c Config) bool {
				want := keys.Tier{Name: "pro", Code: "pr",
					RateLimits: []keys.RateLimit{{Name: "burst", Limit: 10, WindowSeconds: 1}, {Name: "daily", Limit: 10000, WindowSeconds: 86400}, {Name: "window", Limit: 30, WindowSeconds: 90}},
					Credits:    &keys.Credits{Remaining: 5000, Refill: &keys.Refill{Interval: keys.RefillMonthly, Amount: 5000, RefillDay: 31}}}
				return reflect.DeepEqual(c.Keys.Tiers[0], want)
			}},
		{name: "tier without limits, daily credits", env: map[string]string{EnvTiers: "in:in:none:credits=7/daily,mo:mo:1/1m:credits=9/monthly,once:on:5:credits=3"},
			check: func(c Config) bool {
				t := c.Keys.Tiers
				return len(t[0].RateLimits) == 0 && t[0].RateLimits != nil && *t[0].Credits.Refill == keys.Refill{Interval: keys.RefillDaily, Amount: 7} &&
					*t[1].Credits.Refill == keys.Refill{Interval: keys.RefillMonthly, Amount: 9, RefillDay: 1} && t[1].RateLimits[0].WindowSeconds == 60 &&
					t[2].Credits.Refill == nil && t[2].Credits.Remaining == 3
			}},
		{name: "custom prefix", env: map[string]string{EnvKeyPrefix: "acme"}, check: func(c Config) bool { return c.Keys.KeyPrefix == "acme" }},
		{name: "window", env: map[string]string{EnvRateWindowSeconds: "60"}, check: func(c Config) bool { return c.Keys.RateWindow == time.Minute }},
		{name: "retention in days", env: map[string]string{EnvRetentionDays: "2", EnvAuditRetentionDays: "7"},
			check: func(c Config) bool {
				return c.Keys.Retention == 48*time.Hour && c.Keys.AuditRetention == 7*24*time.Hour
			}},
		{name: "table and endpoint", env: map[string]string{EnvTableName: "t1", EnvEndpoint: "http://127.0.0.1:8000"},
			check: func(c Config) bool { return c.Table == "t1" && c.Endpoint == "http://127.0.0.1:8000" }},
		{name: "blank is unset", env: map[string]string{EnvTableName: "  "}, check: func(c Config) bool { return c.Table == DefaultTableName }},
		{name: "cached", env: map[string]string{EnvCachedResults: "true"}, check: func(c Config) bool { return c.CachedResults }},
		{name: "route scopes", env: map[string]string{EnvRouteScopes: "GET /v1/orders=contracts"},
			check: func(c Config) bool { return reflect.DeepEqual(c.RouteScopes["GET /v1/orders"], []string{"contracts"}) }},
		{name: "bad prefix", env: map[string]string{EnvKeyPrefix: "Ac_me"}, wantErr: EnvKeyPrefix},
		{name: "tier missing limit", env: map[string]string{EnvTiers: "free:fr"}, wantErr: "name:code:limit"},
		{name: "tier modes", env: map[string]string{EnvTiers: "hot:ht:10000/1s:leased,paid:pd:5:credits=9:leased,plain:pl:5:exact,old:ol:5"},
			check: func(c Config) bool {
				t := c.Keys.Tiers
				return t[0].Mode == keys.ModeLeased && t[0].RateLimits[0].Limit == 10000 && t[1].Mode == keys.ModeLeased &&
					t[1].Credits.Remaining == 9 && t[2].Mode == keys.ModeExact && t[3].Mode == ""
			}},
		{name: "tier mode unknown", env: map[string]string{EnvTiers: "hot:ht:5:fast"}, wantErr: "mode (exact or leased)"},
		{name: "tier mode twice", env: map[string]string{EnvTiers: "hot:ht:5:leased:leased"}, wantErr: "credits=N"},
		{name: "tier six parts", env: map[string]string{EnvTiers: "hot:ht:5:credits=1:leased:x"}, wantErr: "name:code:limits"},
		{name: "route costs", env: map[string]string{EnvRouteCosts: "post /v1/reports=5; GET /v1/health=0"},
			check: func(c Config) bool {
				return c.RouteCosts.Cost("POST", "/v1/reports") == 5 && c.RouteCosts.Cost("GET", "/v1/health") == 0 && c.RouteCosts.Cost("GET", "/v1/x") == 1
			}},
		{name: "route cost negative", env: map[string]string{EnvRouteCosts: "POST /v1/reports=-1"}, wantErr: EnvRouteCosts},
		{name: "route cost not a number", env: map[string]string{EnvRouteCosts: "POST /v1/reports=1.5"}, wantErr: "0-"},
		{name: "route cost too large", env: map[string]string{EnvRouteCosts: "POST /v1/reports=1073741825"}, wantErr: "0-"},
		{name: "route cost twice", env: map[string]string{EnvRouteCosts: "POST /v1/a=1;post /v1/a=2"}, wantErr: "twice"},
		{name: "route cost without cost", env: map[string]string{EnvRouteCosts: "POST /v1/a"}, wantErr: "METHOD /resource=N"},
		{name: "route cost bad route", env: map[string]string{EnvRouteCosts: "/v1/a=2"}, wantErr: "METHOD /resource"},
		{name: "limit without window", env: map[string]string{EnvTiers: "free:fr:burst=10"}, wantErr: "N/window"},
		{name: "window unit unknown", env: map[string]string{EnvTiers: "free:fr:10/1w"}, wantErr: "window"},
		{name: "window too long", env: map[string]string{EnvTiers: "free:fr:10/31d"}, wantErr: "30d"},
		{name: "window overflow", env: map[string]string{EnvTiers: "free:fr:10/9223372036854775807d"}, wantErr: "30d"},
		{name: "limit name twice", env: map[string]string{EnvTiers: "free:fr:a=1/1s+a=2/2s"}, wantErr: "twice"},
		{name: "limit name not a word", env: map[string]string{EnvTiers: "free:fr:Burst=1/1s"}, wantErr: "lowercase"},
		{name: "six limits", env: map[string]string{EnvTiers: "free:fr:a=1/1+b=1/2+c=1/3+d=1/4+e=1/5+f=1/6"}, wantErr: "at most 5"},
		{name: "credits interval", env: map[string]string{EnvTiers: "free:fr:10:credits=5/weekly"}, wantErr: "daily or monthly"},
		{name: "credits day", env: map[string]string{EnvTiers: "free:fr:10:credits=5/monthly@32"}, wantErr: "1-31"},
		{name: "credits negative", env: map[string]string{EnvTiers: "free:fr:10:credits=-5"}, wantErr: "remaining"},
		{name: "credits form", env: map[string]string{EnvTiers: "free:fr:10:5"}, wantErr: "credits=N"},
		{name: "tier zero limit", env: map[string]string{EnvTiers: "free:fr:0"}, wantErr: EnvTiers},
		{name: "tier bad code", env: map[string]string{EnvTiers: "free:f1:5"}, wantErr: "tier code"},
		{name: "tier code twice", env: map[string]string{EnvTiers: "a:xx:5,b:xx:6"}, wantErr: "twice"},
		{name: "scope twice", env: map[string]string{EnvScopes: "a,a,admin,verify"}, wantErr: "twice"},
		{name: "scope uppercase", env: map[string]string{EnvScopes: "Admin"}, wantErr: EnvScopes},
		{name: "negative retention", env: map[string]string{EnvRetentionDays: "-1"}, wantErr: EnvRetentionDays},
		{name: "window not a number", env: map[string]string{EnvRateWindowSeconds: "15m"}, wantErr: EnvRateWindowSeconds},
		{name: "route scope unknown", env: map[string]string{EnvRouteScopes: "GET /x=nope"}, wantErr: EnvRouteScopes},
		{name: "leaks: GitHub's keys and revoke by default", env: map[string]string{},
			check: func(c Config) bool {
				return c.Leaks.KeysURL == leaks.DefaultKeysURL && c.Leaks.Action == keys.LeakRevoke
			}},
		{name: "leaks: restrict, keys elsewhere", env: map[string]string{EnvLeakedKeyAction: "restrict", EnvGitHubKeysURL: "http://127.0.0.1:9/keys"},
			check: func(c Config) bool {
				return c.Leaks.KeysURL == "http://127.0.0.1:9/keys" && c.Leaks.Action == keys.LeakRestrict
			}},
		{name: "leaks: unknown action", env: map[string]string{EnvLeakedKeyAction: "delete"}, wantErr: EnvLeakedKeyAction},
		{name: "leaks: keys URL relative", env: map[string]string{EnvGitHubKeysURL: "/meta/keys"}, wantErr: EnvGitHubKeysURL},
		{name: "leaks: keys URL of another scheme", env: map[string]string{EnvGitHubKeysURL: "file:///etc/keys"}, wantErr: EnvGitHubKeysURL},
		{name: "metrics namespace: keygate by default", env: map[string]string{},
			check: func(c Config) bool { return c.MetricsNamespace == "keygate" }},
		{name: "metrics namespace: the stack's", env: map[string]string{EnvMetricsNamespace: "keygate/prod-api"},
			check: func(c Config) bool { return c.MetricsNamespace == "keygate/prod-api" }},
		{name: "metrics namespace: AWS's own", env: map[string]string{EnvMetricsNamespace: "AWS/Lambda"}, wantErr: EnvMetricsNamespace},
		{name: "route scope of a custom scope list", env: map[string]string{EnvScopes: "a,admin,verify", EnvRouteScopes: "GET /x=contracts"}, wantErr: "unknown scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(cfg) {
				t.Fatalf("cfg = %+v, err = %v", cfg, err)
			}
		})
	}
}
