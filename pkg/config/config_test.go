package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/keys"
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
				return len(c.Keys.Tiers) == 2 && c.Keys.Tiers[1] == keys.Tier{Name: "pro", Code: "pr", Limit: 500}
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
		{name: "tier zero limit", env: map[string]string{EnvTiers: "free:fr:0"}, wantErr: EnvTiers},
		{name: "tier bad code", env: map[string]string{EnvTiers: "free:f1:5"}, wantErr: "tier code"},
		{name: "tier code twice", env: map[string]string{EnvTiers: "a:xx:5,b:xx:6"}, wantErr: "twice"},
		{name: "scope twice", env: map[string]string{EnvScopes: "a,a,admin,verify"}, wantErr: "twice"},
		{name: "scope uppercase", env: map[string]string{EnvScopes: "Admin"}, wantErr: EnvScopes},
		{name: "negative retention", env: map[string]string{EnvRetentionDays: "-1"}, wantErr: EnvRetentionDays},
		{name: "window not a number", env: map[string]string{EnvRateWindowSeconds: "15m"}, wantErr: EnvRateWindowSeconds},
		{name: "route scope unknown", env: map[string]string{EnvRouteScopes: "GET /x=nope"}, wantErr: EnvRouteScopes},
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
