package keys

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultConfig(t *testing.T) {
	cfg := DefaultConfig()
	want := []Tier{{"public", "pk", 100}, {"partner", "pt", 1000}, {"internal", "in", 10000}}
	if len(cfg.Tiers) != len(want) {
		t.Fatalf("tiers = %+v", cfg.Tiers)
	}
	for i, tier := range want {
		if cfg.Tiers[i] != tier {
			t.Errorf("tier %d = %+v, want %+v", i, cfg.Tiers[i], tier)
		}
	}
	if cfg.KeyPrefix != "kg" || cfg.RateWindow != 15*time.Minute || cfg.Retention != 30*day || cfg.AuditRetention != 365*day {
		t.Errorf("config = %+v", cfg)
	}
	if strings.Join(cfg.Scopes, ",") != DefaultScopes {
		t.Errorf("scopes = %v", cfg.Scopes)
	}
}

func TestConfigFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(Config) bool
	}{
		{name: "custom tiers", env: map[string]string{EnvTiers: "free:fr:10, pro:pr:500"},
			check: func(c Config) bool { return len(c.Tiers) == 2 && c.Tiers[1] == Tier{"pro", "pr", 500} }},
		{name: "custom prefix", env: map[string]string{EnvKeyPrefix: "acme"}, check: func(c Config) bool { return c.KeyPrefix == "acme" }},
		{name: "window", env: map[string]string{EnvRateWindowSeconds: "60"}, check: func(c Config) bool { return c.RateWindow == time.Minute }},
		{name: "bad prefix", env: map[string]string{EnvKeyPrefix: "Ac_me"}, wantErr: EnvKeyPrefix},
		{name: "tier missing limit", env: map[string]string{EnvTiers: "free:fr"}, wantErr: "name:code:limit"},
		{name: "tier zero limit", env: map[string]string{EnvTiers: "free:fr:0"}, wantErr: "positive"},
		{name: "tier bad code", env: map[string]string{EnvTiers: "free:f1:5"}, wantErr: "tier code"},
		{name: "tier code twice", env: map[string]string{EnvTiers: "a:xx:5,b:xx:6"}, wantErr: "twice"},
		{name: "scope twice", env: map[string]string{EnvScopes: "a,a"}, wantErr: "twice"},
		{name: "scope uppercase", env: map[string]string{EnvScopes: "Admin"}, wantErr: EnvScopes},
		{name: "negative retention", env: map[string]string{EnvRetentionDays: "-1"}, wantErr: EnvRetentionDays},
		{name: "window not a number", env: map[string]string{EnvRateWindowSeconds: "15m"}, wantErr: EnvRateWindowSeconds},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ConfigFromEnv(func(k string) string { return tc.env[k] })
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
