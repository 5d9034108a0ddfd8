package authorizer_test

import (
	"context"
	"slices"
	"testing"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/authorizer/authorizertest"
	"github.com/keygate/keygate/pkg/httpapi"
	"github.com/keygate/keygate/pkg/keys"
)

// Under API Gateway's result cache one answer serves every route the same
// key calls next, so it must cover the stage and deny only what the key's
// scopes do not reach.
func TestCachedResultsCoverTheStage(t *testing.T) {
	const stage = "arn:aws:execute-api:us-east-1:123456789012:k3yg4t3abc/prod"
	routes := httpapi.RouteScopes().Merge(authorizer.RouteScopes{"GET /v1/contracts/{id}": {"contracts"}, "ANY /v1/vaults": {"vaults"}})
	f := newFixture(t)
	h := authorizer.NewHandler(f.auth, routes, authorizer.ForCachedResults())

	for _, tc := range []struct {
		label   string
		effect  string
		denied  []string // Deny statement resources, besides the stage-wide Allow
		errCode string
	}{
		// reader holds contracts only: every admin route, verify and vaults are denied.
		{label: "reader", effect: "Allow", errCode: "insufficient_scope", denied: []string{
			stage + "/*/v1/vaults",
			stage + "/DELETE/v1/api-keys/*",
			stage + "/DELETE/v1/webhooks/*",
			stage + "/GET/v1/api-keys",
			stage + "/GET/v1/api-keys/*",
			stage + "/GET/v1/api-keys/*/usage",
			stage + "/GET/v1/audit",
			stage + "/GET/v1/owners/*/limits",
			stage + "/GET/v1/owners/*/usage",
			stage + "/GET/v1/usage",
			stage + "/GET/v1/webhooks",
			stage + "/GET/v1/webhooks/*",
			stage + "/GET/v1/webhooks/*/deliveries",
			stage + "/PATCH/v1/api-keys/*",
			stage + "/PATCH/v1/webhooks/*",
			stage + "/POST/v1/api-keys",
			stage + "/POST/v1/api-keys/*/credits",
			stage + "/POST/v1/api-keys/*/rotate",
			stage + "/POST/v1/owners/*/revoke",
			stage + "/POST/v1/portal/sessions",
			stage + "/POST/v1/verify",
			stage + "/POST/v1/webhooks",
			stage + "/POST/v1/webhooks/*/test",
			stage + "/PUT/v1/api-keys/*",
			stage + "/PUT/v1/owners/*/limits",
		}},
		{label: "limited", effect: "Deny", errCode: "rate_limited"},
	} {
		rest, _ := benchEvents(authorizertest.EventKey(tc.label))
		resp, err := h.REST(context.Background(), rest)
		if err != nil {
			t.Fatalf("%s: %v", tc.label, err)
		}
		st := resp.PolicyDocument.Statement
		if st[0].Effect != tc.effect || !slices.Equal(st[0].Resource, []string{stage + "/*"}) {
			t.Errorf("%s: first statement %+v, want %s of the whole stage", tc.label, st[0], tc.effect)
		}
		var denied []string
		if len(st) > 1 {
			denied = st[1].Resource
			if st[1].Effect != "Deny" || len(st) != 2 {
				t.Errorf("%s: statements %+v", tc.label, st)
			}
		}
		if !slices.Equal(denied, tc.denied) {
			t.Errorf("%s: denied %q,\nwant %q", tc.label, denied, tc.denied)
		}
		if resp.Context[authorizer.ContextErrorCode] != tc.errCode {
			t.Errorf("%s: errorCode %v, want %q", tc.label, resp.Context[authorizer.ContextErrorCode], tc.errCode)
		}
	}

	// A key holding every scope gets the stage with no Deny at all, and an
	// unknown key still gets 401.
	keyWithAllScopes := authorizertest.Key(authorizertest.EventPrefix, "in", "everything")
	admin := f.store.Add(keyWithAllScopes, keys.Key{Project: "acme", Tier: "internal", Scopes: keys.DefaultConfig().Scopes, Status: keys.StatusActive})
	rest, _ := benchEvents(keyWithAllScopes)
	resp, err := h.REST(context.Background(), rest)
	if err != nil || len(resp.PolicyDocument.Statement) != 1 || resp.PrincipalID != admin || resp.Context[authorizer.ContextErrorCode] != nil {
		t.Errorf("all scopes: %+v, %v", resp, err)
	}
	rest, _ = benchEvents(malformed())
	if _, err := h.REST(context.Background(), rest); err == nil || err.Error() != "Unauthorized" {
		t.Errorf("malformed key under caching: %v", err)
	}
}
