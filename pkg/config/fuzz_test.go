package config

import (
	"testing"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/keys"
)

// Whatever KEYGATE_TIERS and KEYGATE_ROUTE_COSTS hold, Load either refuses
// them or yields tiers and costs within every bound the authorizer relies on.
func FuzzLoadTiersAndCosts(f *testing.F) {
	f.Add("public:pk:100,partner:pt:1000", "POST /v1/reports=5")
	f.Add("pro:pr:burst=10/1s+daily=10000/1d:credits=5000/monthly@31", "GET /v1/x=0;ANY /v1/y=1073741824")
	f.Add("a:aa:none:credits=0", "")
	f.Fuzz(func(t *testing.T, tiers, costs string) {
		cfg, err := Load(func(name string) string {
			switch name {
			case EnvTiers:
				return tiers
			case EnvRouteCosts:
				return costs
			}
			return ""
		})
		if err != nil {
			return
		}
		for _, tier := range cfg.Keys.Tiers {
			if err := keys.CheckRateLimits("rateLimits", tier.RateLimits); err != nil {
				t.Errorf("tier %q loaded with invalid limits: %v", tier.Name, err)
			}
			if err := keys.CheckCredits("credits", tier.Credits); err != nil {
				t.Errorf("tier %q loaded with invalid credits: %v", tier.Name, err)
			}
		}
		for route, cost := range cfg.RouteCosts {
			if cost < 0 || cost > keys.MaxCost {
				t.Errorf("route %q costs %d", route, cost)
			}
		}
		_, get := cfg.RouteCosts["GET /nowhere"]
		_, anyMethod := cfg.RouteCosts["ANY /nowhere"]
		if !get && !anyMethod && cfg.RouteCosts.Cost("GET", "/nowhere") != authorizer.DefaultCost {
			t.Error("an unlisted route does not cost the default")
		}
	})
}
