package httpapi_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/pkg/app"
	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/config"
)

// TestLeasedKeySeesEveryChangeWithinTheLifetime: a key put in leased mode
// through the API, used from 5 containers (each its own app, as Lambda
// runs them) on DynamoDB Local; each change the API makes reaches every
// container within authorizer.LeaseLifetime, and a revoke ends it.
func TestLeasedKeySeesEveryChangeWithinTheLifetime(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	k := e.create(&admin, `{"name":"hot","tier":"internal","scopes":["contracts"],"ipAllowlist":["198.51.100.0/24"]}`)
	r := e.do(&admin, "PATCH", "/v1/api-keys/"+k.ID, `{"mode":"leased"}`)
	must(t, r.Status == 200 && strings.Contains(r.Body, `"mode":"leased","modeFromTier":false`), "mode leased: %d %s", r.Status, r.Body)

	var containers []*authorizer.Authorizer
	for range 5 {
		a := app.New(config.Default().WithTable(e.table), e.client, slog.New(slog.DiscardHandler), app.WithClock(e.clock.Now))
		containers = append(containers, a.Authorizer)
	}
	req := authorizer.Request{Key: k.Key, Scopes: []string{"contracts"}, SourceIP: "198.51.100.7", Cost: 1}
	decideAll := func() (allowed int, outcomes map[authorizer.Outcome]int) {
		outcomes = map[authorizer.Outcome]int{}
		for range 4 {
			e.clock.Advance(10 * time.Millisecond)
			for _, c := range containers {
				d, err := c.Decide(context.Background(), req)
				must(t, err == nil, "decide: %v", err)
				outcomes[d.Outcome]++
			}
		}
		return outcomes[authorizer.Allowed], outcomes
	}
	for range 10 { // every container holds a lease
		decideAll()
	}
	for _, step := range []struct {
		change, undo string
		want         authorizer.Outcome
	}{
		{`{"scopes":["verify"]}`, `{"scopes":["contracts"]}`, authorizer.InsufficientScope},
		{`{"ipAllowlist":["203.0.113.0/24"]}`, `{"ipAllowlist":["198.51.100.0/24"]}`, authorizer.IPNotAllowed},
		{`{"rateLimits":[{"name":"daily","limit":1,"windowSeconds":86400}]}`, `{"rateLimits":null}`, authorizer.RateLimited},
		{`{"status":"revoked"}`, "", authorizer.Revoked},
	} {
		changed := e.clock.Now()
		r := e.do(&admin, "PATCH", "/v1/api-keys/"+k.ID, step.change)
		must(t, r.Status == 200, "%s: %d %s", step.change, r.Status, r.Body)
		var lastAllow time.Duration = -1
		for e.clock.Now().Sub(changed) < 2*authorizer.LeaseLifetime {
			allowed, outcomes := decideAll()
			if allowed > 0 {
				lastAllow = e.clock.Now().Sub(changed)
			}
			for o := range outcomes {
				must(t, o == authorizer.Allowed || o == step.want, "%s: outcome %s, want %s", step.change, o, step.want)
			}
		}
		t.Logf("%s: last Allow %s after the change", step.change, lastAllow)
		must(t, lastAllow < authorizer.LeaseLifetime, "%s: a container allowed %s after the change, want under %s", step.change, lastAllow, authorizer.LeaseLifetime)
		if step.undo != "" {
			must(t, e.do(&admin, "PATCH", "/v1/api-keys/"+k.ID, step.undo).Status == 200, "%s", step.undo)
			e.clock.Advance(authorizer.LeaseLifetime) // remembered refusals end
			allowed, _ := decideAll()
			must(t, allowed > 0, "%s: nothing allowed a lease lifetime after", step.undo)
		}
	}
}
