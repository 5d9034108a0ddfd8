package console_test

// Attacks on the customer portal found by a hostile review, each fixed:
// the tests keep them fixed.

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/portal"
)

// A key of the owner's that the grant does not cover (a server-side key
// the team filed under the customer) is invisible to the portal: rotating
// it would hand the customer an internal, admin key's successor.
func TestPortalTouchesOnlyKeysItsGrantCovers(t *testing.T) {
	e := newEnv(t)
	internal := e.key(keys.CreateInput{Name: "acme sync (server side)", Tier: "internal", Owner: "cust_42", Scopes: []string{keys.ScopeAdmin}})
	c, a := e.open(e.link(e.admin(), portal.LinkInput{Owner: "cust_42", AllowedTiers: []string{"public"}, MaxKeys: maxKeys(1)}))
	if c == nil {
		t.Fatalf("open: %d %s", a.status, a.body)
	}
	for _, r := range []struct{ method, proxy, body string }{
		{"POST", "api/keys/" + internal.ID + "/rotate", `{"gracePeriodSeconds":0}`},
		{"DELETE", "api/keys/" + internal.ID, ""},
		{"GET", "api/keys/" + internal.ID, ""},
		{"GET", "api/keys/" + internal.ID + "/usage", ""},
	} {
		if a := c.do(r.method, r.proxy, r.body); a.status != http.StatusNotFound {
			t.Errorf("%s %s: %d %s, want 404", r.method, r.proxy, a.status, a.body)
		}
	}
	if l := c.do("GET", "api/keys", ""); strings.Contains(l.body, internal.ID) {
		t.Errorf("the listing shows a key outside the grant: %s", l.body)
	}
	if k := e.get(internal.ID); k.Status != keys.StatusActive || k.RotatedTo != "" {
		t.Errorf("the internal key was touched: %+v", k)
	}
	// Nor can a link manage the owner of the key that makes it.
	owned := e.key(keys.CreateInput{Name: "owned admin", Owner: "ops", Scopes: []string{keys.ScopeAdmin}})
	if _, err := e.app.Portal.CreateLink(context.Background(), adminCallerOf(owned), portal.LinkInput{Owner: "ops", AllowedTiers: []string{"internal"}}, httpsOrigin); !errorsAsForbidden(err) {
		t.Errorf("a link for the calling key's own owner: %v, want forbidden", err)
	}
}

func adminCallerOf(k *keys.Created) keys.Caller {
	c := adminCaller(k)
	c.Owner = k.Owner
	return c
}

// laggyIndex is the table as DynamoDB serves it in AWS: a listing reads
// an index, which may not show a key written a moment ago. Here every key
// created within the last second is missing from listings.
type laggyIndex struct {
	*dynamo.Store
	now func() time.Time
}

func (l laggyIndex) ListKeys(ctx context.Context, q keys.ListQuery) ([]*keys.Key, string, error) {
	items, next, err := l.Store.ListKeys(ctx, q)
	var out []*keys.Key
	for _, k := range items {
		if l.now().Sub(k.CreatedAt) >= time.Second {
			out = append(out, k)
		}
	}
	return out, next, err
}

// maxKeys holds while the owner index lags: creates one after another,
// 50 ms apart, each count the keys made under the lock lately.
func TestPortalMaxKeysHoldsWhileTheIndexLags(t *testing.T) {
	e := newEnv(t)
	store := laggyIndex{e.app.Store, e.clock.Now}
	cfg := e.app.Config.Keys
	psvc := portal.NewService(e.app.Store.Portal(), keys.NewService(cfg, store, keys.WithClock(e.clock.Now)), store, cfg, e.clock.Now)
	v, err := psvc.CreateLink(context.Background(), adminCaller(e.admin()), portal.LinkInput{Owner: "lag", AllowedTiers: []string{"public"}, MaxKeys: maxKeys(2)}, httpsOrigin)
	if err != nil {
		t.Fatal(err)
	}
	ses, tok, _, err := psvc.Open(context.Background(), v.URL[strings.Index(v.URL, "#t=")+3:], "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	made := 0
	for i := range 5 {
		e.clock.Advance(50 * time.Millisecond)
		_, caller, err := psvc.Resolve(context.Background(), tok, "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := psvc.CreateKey(context.Background(), ses, caller, portal.KeyInput{Name: fmt.Sprintf("k%d", i), Tier: "public"}); err == nil {
			made++
		}
	}
	if made != 2 {
		t.Errorf("maxKeys 2, a lagging index: %d creates succeeded", made)
	}
}

// Offboarding the team member whose admin key made portal links revokes
// their keys, not the customers'.
func TestOffboardingTheLinkMakerSparesCustomers(t *testing.T) {
	e := newEnv(t)
	admin := e.key(keys.CreateInput{Name: "backend admin", Owner: "alice", Scopes: []string{keys.ScopeAdmin, keys.ScopeVerify}})
	var ids []string
	for _, cust := range []string{"cust_a", "cust_b"} {
		c, _ := e.open(e.link(admin, portal.LinkInput{Owner: cust, AllowedTiers: []string{"public"}}))
		var k struct{ ID, CreatedBy string }
		decodeData(t, c.create(`{"name":"prod","tier":"public"}`), &k)
		if k.CreatedBy != "portal:"+cust {
			t.Errorf("a portal key's createdBy %q, want portal:%s", k.CreatedBy, cust)
		}
		ids = append(ids, k.ID)
	}
	if _, err := e.app.Service.RevokeOwner(context.Background(), keys.OperatorCaller(project), "alice", true); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if e.get(id).Status != keys.StatusActive {
			t.Errorf("offboarding alice revoked customer key %s", id)
		}
	}
	if e.get(admin.ID).Status != keys.StatusRevoked {
		t.Error("offboarding alice left her key")
	}
}

// A session's requests have a budget of their own, per minute.
func TestPortalSessionsHaveABudget(t *testing.T) {
	e := newEnv(t)
	c, _ := e.open(e.link(e.admin(), portal.LinkInput{Owner: "busy", AllowedTiers: []string{"public"}}))
	// The minute starts now: the opening's own reads did not count.
	e.clock.Set(e.clock.Now().Truncate(time.Minute).Add(time.Minute))
	for i := range portal.RequestsPerMinute {
		if a := c.do("GET", "api/keys", ""); a.status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i+1, a.status, a.body)
		}
	}
	a := c.do("GET", "api/keys", "")
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" {
		t.Errorf("request %d in a minute: %d %s, want 429 with Retry-After", portal.RequestsPerMinute+1, a.status, a.body)
	}
	e.clock.Advance(time.Minute)
	if a := c.do("GET", "api/keys", ""); a.status != http.StatusOK {
		t.Errorf("the next minute: %d %s", a.status, a.body)
	}
}

// A lifetime so large it would overflow a Duration is refused, not wrapped.
func TestPortalLinkLifetimeDoesNotOverflow(t *testing.T) {
	e := newEnv(t)
	for _, huge := range []int{9223372037, 1 << 62, -9223372037} {
		if _, err := e.app.Portal.CreateLink(context.Background(), adminCaller(e.admin()), portal.LinkInput{Owner: "c", AllowedTiers: []string{"public"}, ExpiresInSeconds: &huge}, httpsOrigin); err == nil || !strings.Contains(err.Error(), "expiresInSeconds") {
			t.Errorf("expiresInSeconds %d: %v, want 400", huge, err)
		}
	}
}
