package keys

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfig(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []Tier{
		{Name: "public", Code: "pk", RateLimits: []RateLimit{{"window", 100, 900}}},
		{Name: "partner", Code: "pt", RateLimits: []RateLimit{{"window", 1000, 900}}},
		{Name: "internal", Code: "in", RateLimits: []RateLimit{{"window", 10000, 900}}},
	}
	if !reflect.DeepEqual(cfg.Tiers, want) {
		t.Errorf("tiers = %+v, want %+v", cfg.Tiers, want)
	}
	if cfg.KeyPrefix != "kg" || cfg.RateWindow != 15*time.Minute || cfg.Retention != 30*day || cfg.AuditRetention != 365*day {
		t.Errorf("config = %+v", cfg)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{"bad prefix", func(c *Config) { c.KeyPrefix = "Ac_me" }, "key prefix"},
		{"no tier", func(c *Config) { c.Tiers = nil }, "no tier"},
		{"tier name", func(c *Config) { c.Tiers[0].Name = "Public" }, "tier name"},
		{"tier code", func(c *Config) { c.Tiers[0].Code = "p1" }, "tier code"},
		{"zero limit", func(c *Config) { c.Tiers[0].RateLimits[0].Limit = 0 }, "limit"},
		{"bad credits", func(c *Config) { c.Tiers[0].Credits = &Credits{Remaining: -1} }, "credits.remaining"},
		{"code twice", func(c *Config) { c.Tiers[1].Code = c.Tiers[0].Code }, "twice"},
		{"name twice", func(c *Config) { c.Tiers[1].Name = c.Tiers[0].Name }, "twice"},
		{"scope twice", func(c *Config) { c.Scopes = append(c.Scopes, c.Scopes[0]) }, "twice"},
		{"scope uppercase", func(c *Config) { c.Scopes[0] = "Admin" }, "scope"},
		{"no admin scope", func(c *Config) { c.Scopes = []string{"verify", "contracts"} }, `"admin"`},
		{"window below a second", func(c *Config) { c.RateWindow = time.Millisecond }, "seconds"},
		{"fractional window", func(c *Config) { c.RateWindow = 1500 * time.Millisecond }, "seconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.change(&cfg)
			if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}
