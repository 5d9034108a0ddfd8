package keys_test

import (
	"errors"
	"testing"

	"github.com/keygate/keygate/pkg/keys"
)

// An owner-scoped caller (a customer portal session) acts only on its
// owner's keys, makes keys for that owner alone, reaches nothing
// project-wide, and is audited as portal:<owner>.
func TestAnOwnerScopedCallerSeesOnlyItsOwner(t *testing.T) {
	e := newEnv(t)
	mine := e.create(op, keys.CreateInput{Name: "mine", Owner: "cust"})
	theirs := e.create(op, keys.CreateInput{Name: "theirs", Owner: "bob"})
	portal := keys.Caller{Project: "acme", KeyID: keyCallerID, Scopes: []string{keys.ScopeAdmin, "contracts"}, ForOwner: "cust", Session: "pts_1"}

	if _, err := e.svc.Get(e.ctx, portal, theirs.ID); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("another owner's key: %v, want not found", err)
	}
	if err := e.svc.Revoke(e.ctx, portal, theirs.ID); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("revoking another owner's key: %v, want not found", err)
	}
	if _, err := e.svc.Rotate(e.ctx, portal, theirs.ID, 0); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("rotating another owner's key: %v, want not found", err)
	}
	page, err := e.svc.List(e.ctx, portal, keys.ListInput{})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != mine.ID {
		t.Errorf("its listing: %+v %v, want its owner's one key", page.Items, err)
	}
	for name, filter := range map[string]keys.KeyFilter{"another owner": {Owner: "bob"}, "by creator": {CreatedBy: keyCallerID}} {
		if _, err := e.svc.List(e.ctx, portal, keys.ListInput{Filter: filter}); !errors.Is(err, keys.ErrForbidden) {
			t.Errorf("a listing of %s: %v, want forbidden", name, err)
		}
	}
	if _, err := e.svc.Create(e.ctx, portal, keys.CreateInput{Name: "x", Tier: "public", Owner: "bob"}); !errors.Is(err, keys.ErrForbidden) {
		t.Errorf("a key for another owner: %v, want forbidden", err)
	}
	made, err := e.svc.Create(e.ctx, portal, keys.CreateInput{Name: "made", Tier: "public"})
	if err != nil || made.Owner != "cust" || made.CreatedBy != "portal:cust" {
		t.Fatalf("a key of its own: %+v %v, want owner cust, created by portal:cust", made, err)
	}
	for name, err := range map[string]error{
		"owner revoke":  func() error { _, err := e.svc.RevokeOwner(e.ctx, portal, "cust", false); return err }(),
		"its dry run":   func() error { _, err := e.svc.OwnerRevokeCount(e.ctx, portal, "cust", false); return err }(),
		"the audit log": func() error { _, err := e.svc.ListAudit(e.ctx, portal, keys.AuditInput{}); return err }(),
		"credits":       func() error { _, err := e.svc.AdjustCredits(e.ctx, portal, mine.ID, keys.CreditsInput{}); return err }(),
		"owner limits":  func() error { _, err := e.svc.GetOwnerLimits(e.ctx, portal, "cust"); return err }(),
		"its owner limits": func() error {
			_, err := e.svc.PutOwnerLimits(e.ctx, portal, "cust", keys.OwnerLimitsInput{})
			return err
		}(),
	} {
		if !errors.Is(err, keys.ErrForbidden) {
			t.Errorf("%s: %v, want forbidden", name, err)
		}
	}
	events, err := e.svc.ListAudit(e.ctx, op, keys.AuditInput{Target: made.ID})
	if err != nil || len(events.Items) != 1 || events.Items[0].Actor != "portal:cust" || events.Items[0].Session != "pts_1" {
		t.Errorf("the audit of its create: %+v %v", events.Items, err)
	}
}
