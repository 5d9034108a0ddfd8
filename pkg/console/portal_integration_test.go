package console_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/portal"
)

var httpsOrigin = portal.Origin{Scheme: "https", Host: host, BasePath: "/prod"}

// link asks for a portal link as the admin key would, and returns its token.
func (e *env) link(admin *keys.Created, in portal.LinkInput) string {
	e.t.Helper()
	v, err := e.app.Portal.CreateLink(context.Background(), adminCaller(admin), in, httpsOrigin)
	if err != nil {
		e.t.Fatalf("link %+v: %v", in, err)
	}
	u, err := url.Parse(v.URL)
	if err != nil || u.Path != "/prod/portal" || !strings.HasPrefix(u.Fragment, "t=") || u.RawQuery != "" {
		e.t.Fatalf("link URL %q: want https://host/prod/portal#t=<token>", v.URL)
	}
	return strings.TrimPrefix(u.Fragment, "t=")
}

func adminCaller(k *keys.Created) keys.Caller {
	return keys.Caller{Project: project, KeyID: k.ID, Scopes: k.Scopes, SourceIP: "203.0.113.5", ExpiresAt: k.ExpiresAt, IPAllowlist: k.IPAllowlist}
}

func maxKeys(n int) *int { return &n }

// customer is a browser with a portal session.
type customer struct {
	e            *env
	cookie, csrf string
}

// portalReq sends a request of the portal's routes.
func (e *env) portalReq(method, proxy, body, cookie, csrf string) answer {
	e.t.Helper()
	h := map[string][]string{"Host": {host}, "X-Forwarded-Proto": {"https"}, "Content-Type": {"application/json"}}
	if cookie != "" {
		h["Cookie"] = []string{"__Host-keygate_portal=" + cookie}
	}
	if csrf != "" {
		h["X-Keygate-Csrf"] = []string{csrf}
	}
	ev := events.APIGatewayProxyRequest{
		HTTPMethod: method, Resource: "/portal/{proxy+}", Path: "/portal/" + proxy, PathParameters: map[string]string{"proxy": proxy},
		MultiValueHeaders: h, Body: body,
		RequestContext: events.APIGatewayProxyRequestContext{RequestID: "req-portal", Identity: events.APIGatewayRequestIdentity{SourceIP: "192.0.2.44"}},
	}
	if p, q, ok := strings.Cut(proxy, "?"); ok {
		ev.PathParameters["proxy"], ev.Path = p, "/portal/"+p
		vals, _ := url.ParseQuery(q)
		ev.MultiValueQueryStringParameters = vals
	}
	out, err := e.console.Handle(context.Background(), ev)
	if err != nil {
		e.t.Fatal(err)
	}
	a := answer{status: out.StatusCode, header: http.Header(out.MultiValueHeaders), body: out.Body}
	if err := json.Unmarshal([]byte(out.Body), &a); err != nil {
		e.t.Fatalf("%s %s: %d %q", method, proxy, out.StatusCode, out.Body)
	}
	return a
}

// open opens a link's token as the portal page does.
func (e *env) open(token string) (*customer, answer) {
	e.t.Helper()
	a := e.portalReq("POST", "api/session", fmt.Sprintf(`{"token":%q}`, token), "", "open")
	if a.status != http.StatusCreated {
		return nil, a
	}
	c := sessionCookie(e.t, a)
	if c.Name != "__Host-keygate_portal" || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.MaxAge > int(portal.SessionLifetime/time.Second) {
		e.t.Errorf("portal cookie %+v", c)
	}
	var v struct{ CSRFToken string }
	decodeData(e.t, a, &v)
	return &customer{e: e, cookie: c.Value, csrf: v.CSRFToken}, a
}

func (c *customer) do(method, proxy, body string) answer {
	c.e.t.Helper()
	return c.e.portalReq(method, proxy, body, c.cookie, c.csrf)
}

func (c *customer) create(body string) answer { return c.do("POST", "api/keys", body) }

func TestPortalLinkOpensOnceAndActsForItsOwnerOnly(t *testing.T) {
	e := newEnv(t)
	admin := e.admin()
	other := e.key(keys.CreateInput{Name: "bob's", Tier: "public", Owner: "bob"})
	token := e.link(admin, portal.LinkInput{Owner: "cust_42", AllowedTiers: []string{"public"}, AllowedScopes: []string{"verify"}, MaxKeys: maxKeys(2), Title: "Acme Cloud"})

	c, a := e.open(token)
	if c == nil {
		t.Fatalf("open: %d %s", a.status, a.body)
	}
	if strings.Contains(a.body, token) || strings.Contains(a.body, c.cookie) {
		t.Error("the session's answer carries the link's or the session's token")
	}
	if _, again := e.open(token); again.status != http.StatusUnauthorized || !strings.Contains(again.body, "already used") {
		t.Errorf("the link a second time: %d %s, want 401", again.status, again.body)
	}

	created := c.create(`{"name":"my key","tier":"public","scopes":["verify"]}`)
	var k struct{ ID, Key, Owner, CreatedBy string }
	decodeData(t, created, &k)
	if created.status != http.StatusCreated || k.Owner != "cust_42" || k.CreatedBy != "portal:cust_42" || !strings.HasPrefix(k.Key, "kg_pk_") {
		t.Fatalf("create: %d %s", created.status, created.body)
	}
	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"name":"partner","tier":"partner"}`, http.StatusForbidden},
		{`{"name":"admin","tier":"public","scopes":["admin"]}`, http.StatusForbidden},
		{`{"name":"elsewhere","tier":"public","owner":"bob"}`, http.StatusBadRequest},
		{`{"name":"","tier":"public"}`, http.StatusBadRequest},
	} {
		if a := c.create(tc.body); a.status != tc.status {
			t.Errorf("create %s: %d %s, want %d", tc.body, a.status, a.body, tc.status)
		}
	}
	if a := c.create(`{"name":"second","tier":"public"}`); a.status != http.StatusCreated {
		t.Fatalf("the second key: %d %s", a.status, a.body)
	}
	if a := c.create(`{"name":"third","tier":"public"}`); a.status != http.StatusConflict {
		t.Errorf("key maxKeys+1: %d %s, want 409", a.status, a.body)
	}

	// Another owner's key, by its id: not found, whatever is asked.
	for _, r := range []struct{ method, proxy, body string }{
		{"GET", "api/keys/" + other.ID, ""},
		{"DELETE", "api/keys/" + other.ID, ""},
		{"POST", "api/keys/" + other.ID + "/rotate", `{"gracePeriodSeconds":0}`},
		{"GET", "api/keys/" + other.ID + "/usage", ""},
		{"GET", "api/keys/" + admin.ID, ""},
	} {
		if a := c.do(r.method, r.proxy, r.body); a.status != http.StatusNotFound {
			t.Errorf("%s %s: %d %s, want 404", r.method, r.proxy, a.status, a.body)
		}
	}
	if e.get(other.ID).Status != keys.StatusActive {
		t.Fatal("the portal revoked another owner's key")
	}
	var list []struct{ ID, Owner string }
	decodeData(t, c.do("GET", "api/keys", ""), &list)
	if len(list) != 2 || list[0].Owner != "cust_42" || list[1].Owner != "cust_42" {
		t.Errorf("the owner's keys: %+v", list)
	}
	// No route beyond its own: the management API is not the portal's.
	for _, proxy := range []string{"api/v1/api-keys", "api/audit", "api/keys/../session", "api/keys/" + k.ID + "%3F/usage"} {
		if a := c.do("GET", proxy, ""); a.status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", proxy, a.status)
		}
	}

	// Rotate, use, revoke. At maxKeys, a grace period would keep a third
	// key active: refused; without one, the old key ends at once.
	if a := c.do("POST", "api/keys/"+k.ID+"/rotate", `{"gracePeriodSeconds":3600}`); a.status != http.StatusConflict {
		t.Errorf("a rotation with grace at maxKeys: %d %s, want 409", a.status, a.body)
	}
	rotated := c.do("POST", "api/keys/"+k.ID+"/rotate", `{"gracePeriodSeconds":0}`)
	var next struct{ ID, Key, RotatedFrom string }
	decodeData(t, rotated, &next)
	if rotated.status != http.StatusCreated || next.RotatedFrom != k.ID || next.Key == "" {
		t.Fatalf("rotate: %d %s", rotated.status, rotated.body)
	}
	if a := c.do("DELETE", "api/keys/"+next.ID, ""); a.status != http.StatusOK || e.get(next.ID).Status != keys.StatusRevoked {
		t.Errorf("revoke: %d %s", a.status, a.body)
	}
	if a := c.do("GET", "api/keys/"+k.ID+"/usage?granularity=day", ""); a.status != http.StatusOK || !strings.Contains(string(a.Data), `"buckets"`) {
		t.Errorf("usage: %d %s", a.status, a.body)
	}

	// The audit log names the portal and its session.
	var audit []struct{ Actor, Action, Session string }
	decodeData(t, e.do(mustSignIn(e, admin).get("api/v1/audit")), &audit)
	seen := map[string]bool{}
	for _, ev := range audit {
		if ev.Actor == "portal:cust_42" && strings.HasPrefix(ev.Session, "pts_") {
			seen[ev.Action] = true
		}
	}
	for _, want := range []string{keys.ActionSessionStarted, keys.ActionCreated, keys.ActionRotated, keys.ActionRevoked} {
		if !seen[want] {
			t.Errorf("no %s by portal:cust_42 in its session: %+v", want, audit)
		}
	}
}

func mustSignIn(e *env, admin *keys.Created) session {
	e.t.Helper()
	s, a := e.signIn(admin.RawKey)
	if a.status != http.StatusCreated {
		e.t.Fatalf("sign-in: %d %s", a.status, a.body)
	}
	return s
}

func TestPortalSessionsEnd(t *testing.T) {
	e := newEnv(t)
	ended := func(t *testing.T, c *customer) {
		t.Helper()
		if a := c.do("GET", "api/keys", ""); a.status != http.StatusUnauthorized {
			t.Errorf("after the end: %d %s, want 401", a.status, a.body)
		}
		if a := c.do("GET", "api/session", ""); !strings.Contains(string(a.Data), `"signedIn":false`) {
			t.Errorf("the session after the end: %s", a.body)
		}
	}
	grant := portal.LinkInput{Owner: "cust_7", AllowedTiers: []string{"public"}}
	t.Run("owner revoked", func(t *testing.T) {
		admin := e.admin()
		c, _ := e.open(e.link(admin, grant))
		if a := c.do("GET", "api/keys", ""); a.status != 200 {
			t.Fatalf("%d %s", a.status, a.body)
		}
		unopened := e.link(admin, grant)
		if _, err := e.app.Service.RevokeOwner(context.Background(), keys.OperatorCaller(project), "cust_7", false); err != nil {
			t.Fatal(err)
		}
		ended(t, c)
		if c, a := e.open(unopened); c != nil || a.status != http.StatusUnauthorized {
			t.Errorf("a link made before the owner revoke, opened after: %d %s, want 401", a.status, a.body)
		}
		// A link made before the revoke, opened after it, opens nothing lasting.
		e.clock.Advance(time.Millisecond)
		fresh, _ := e.open(e.link(admin, grant))
		if fresh == nil || fresh.do("GET", "api/keys", "").status != 200 {
			t.Error("a link made after the owner revoke does not work")
		}
	})
	t.Run("admin key revoked", func(t *testing.T) {
		admin := e.admin()
		c, _ := e.open(e.link(admin, grant))
		if err := e.app.Service.Revoke(context.Background(), keys.OperatorCaller(project), admin.ID); err != nil {
			t.Fatal(err)
		}
		ended(t, c)
	})
	t.Run("expired", func(t *testing.T) {
		c, _ := e.open(e.link(e.admin(), grant))
		e.clock.Advance(portal.SessionLifetime)
		defer e.clock.Advance(-portal.SessionLifetime)
		ended(t, c)
	})
	t.Run("signed out", func(t *testing.T) {
		c, _ := e.open(e.link(e.admin(), grant))
		for range 2 {
			if a := c.do("DELETE", "api/session", ""); a.status != 200 {
				t.Fatalf("sign-out: %d %s", a.status, a.body)
			}
		}
		ended(t, c)
	})
	t.Run("link expired", func(t *testing.T) {
		token := e.link(e.admin(), grant)
		e.clock.Advance(portal.DefaultLinkLifetime)
		defer e.clock.Advance(-portal.DefaultLinkLifetime)
		if c, a := e.open(token); c != nil || a.status != http.StatusUnauthorized {
			t.Errorf("an expired link: %d %s, want 401", a.status, a.body)
		}
	})
	t.Run("no CSRF token", func(t *testing.T) {
		c, _ := e.open(e.link(e.admin(), grant))
		if a := e.portalReq("POST", "api/keys", `{"name":"x","tier":"public"}`, c.cookie, ""); a.status != http.StatusForbidden {
			t.Errorf("create without the CSRF token: %d, want 403", a.status)
		}
	})
}

// Customers racing for the last key slot: never more than maxKeys.
func TestPortalMaxKeysHoldsUnderRaces(t *testing.T) {
	e := newEnv(t)
	c, _ := e.open(e.link(e.admin(), portal.LinkInput{Owner: "racer", AllowedTiers: []string{"public"}, MaxKeys: maxKeys(2)}))
	var wg sync.WaitGroup
	statuses := make([]int, 6)
	for i := range statuses {
		wg.Go(func() { statuses[i] = c.create(fmt.Sprintf(`{"name":"key %d","tier":"public"}`, i)).status })
	}
	wg.Wait()
	created := 0
	for _, s := range statuses {
		if s == http.StatusCreated {
			created++
		} else if s != http.StatusConflict {
			t.Errorf("a racing create answered %d", s)
		}
	}
	var list []json.RawMessage
	decodeData(t, c.do("GET", "api/keys", ""), &list)
	if created > 2 || len(list) > 2 || created == 0 {
		t.Errorf("%d creates succeeded (%v), %d keys listed: want at most 2", created, statuses, len(list))
	}
}

func TestPortalLinkValidation(t *testing.T) {
	e := newEnv(t)
	admin := e.admin()
	narrow := e.key(keys.CreateInput{Name: "narrow admin", Scopes: []string{keys.ScopeAdmin}})
	before := ddbtest.Snapshot(t, e.client, e.table)
	n := func(v int) *int { return &v }
	for _, tc := range []struct {
		name   string
		caller *keys.Created
		in     portal.LinkInput
		origin portal.Origin
		field  string // "" for 403
	}{
		{"unknown tier", admin, portal.LinkInput{Owner: "c", AllowedTiers: []string{"gold"}}, httpsOrigin, "allowedTiers"},
		{"no tier", admin, portal.LinkInput{Owner: "c"}, httpsOrigin, "allowedTiers"},
		{"unknown scope", admin, portal.LinkInput{Owner: "c", AllowedTiers: []string{"public"}, AllowedScopes: []string{"root"}}, httpsOrigin, "allowedScopes"},
		{"maxKeys 0", admin, portal.LinkInput{Owner: "c", AllowedTiers: []string{"public"}, MaxKeys: n(0)}, httpsOrigin, "maxKeys"},
		{"maxKeys huge", admin, portal.LinkInput{Owner: "c", AllowedTiers: []string{"public"}, MaxKeys: n(1 << 40)}, httpsOrigin, "maxKeys"},
		{"a lifetime over the cap", admin, portal.LinkInput{Owner: "c", AllowedTiers: []string{"public"}, ExpiresInSeconds: n(3601)}, httpsOrigin, "expiresInSeconds"},
		{"a negative lifetime", admin, portal.LinkInput{Owner: "c", AllowedTiers: []string{"public"}, ExpiresInSeconds: n(-1)}, httpsOrigin, "expiresInSeconds"},
		{"an http returnUrl in AWS", admin, portal.LinkInput{Owner: "c", AllowedTiers: []string{"public"}, ReturnURL: "http://127.0.0.1/"}, httpsOrigin, "returnUrl"},
		{"a javascript: returnUrl", admin, portal.LinkInput{Owner: "c", AllowedTiers: []string{"public"}, ReturnURL: "javascript:alert(1)"}, httpsOrigin, "returnUrl"},
		{"a returnUrl with credentials", admin, portal.LinkInput{Owner: "c", AllowedTiers: []string{"public"}, ReturnURL: "https://u:p@app.example/"}, httpsOrigin, "returnUrl"},
		{"a relative returnUrl", admin, portal.LinkInput{Owner: "c", AllowedTiers: []string{"public"}, ReturnURL: "//evil.example/"}, httpsOrigin, "returnUrl"},
		{"a bad owner", admin, portal.LinkInput{Owner: "a b", AllowedTiers: []string{"public"}}, httpsOrigin, "owner"},
		{"a hidden character in the title", admin, portal.LinkInput{Owner: "c", AllowedTiers: []string{"public"}, Title: "Acme\u202e"}, httpsOrigin, "title"},
		{"a scope the key does not hold", narrow, portal.LinkInput{Owner: "c", AllowedTiers: []string{"public"}, AllowedScopes: []string{"verify"}}, httpsOrigin, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.app.Portal.CreateLink(context.Background(), adminCaller(tc.caller), tc.in, tc.origin)
			var invalid *keys.InvalidError
			switch {
			case tc.field == "" && !errorsAsForbidden(err):
				t.Errorf("%v, want forbidden", err)
			case tc.field != "" && (!errorsAs(err, &invalid) || invalid.Field != tc.field):
				t.Errorf("%v, want invalid %s", err, tc.field)
			}
		})
	}
	if after := ddbtest.Snapshot(t, e.client, e.table); after != before {
		t.Error("a refused link wrote something")
	}
	// Locally, plain http to loopback is fine.
	local := portal.Origin{Scheme: "http", Host: "127.0.0.1:3000"}
	v, err := e.app.Portal.CreateLink(context.Background(), adminCaller(admin), portal.LinkInput{Owner: "c", AllowedTiers: []string{"public"}, ReturnURL: "http://127.0.0.1:3000/app"}, local)
	if err != nil || !strings.HasPrefix(v.URL, "http://127.0.0.1:3000/portal#t=") {
		t.Errorf("a local link: %+v %v", v, err)
	}
}

func errorsAs(err error, target any) bool { return err != nil && errors.As(err, target) }

func errorsAsForbidden(err error) bool { return errors.Is(err, keys.ErrForbidden) }
