package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/keygate/keygate/internal/browser"
)

// TestPortalInChromium runs the customer portal in real headless Chromium
// against `make run`'s process: the team's backend makes a link, the
// customer opens it, creates a key and reads it once, uses it, rotates and
// revokes it, sees its usage; edited requests of the page reach no other
// owner's key, no tier or scope outside the grant and no key past
// maxKeys; the link works once; the owner's revoke ends the session. No
// JavaScript error, no request to another origin, no serious axe violation.
func TestPortalInChromium(t *testing.T) {
	t.Parallel() // its own stack, browser and ports: it overlaps the others' waits
	b, local := browserStack(t)
	base, admin := local.url, local.adminKey()

	// Another owner's key, which the customer must never reach.
	var bobs struct{ ID string }
	if r := call(t, "POST", base+"/v1/api-keys", bearer(admin), `{"name":"bob's","tier":"public","owner":"bob"}`); r.status != 201 || json.Unmarshal(r.Data, &bobs) != nil {
		t.Fatalf("bob's key: %d %s", r.status, r.raw)
	}
	// The team's backend asks for a link.
	link := func() string {
		t.Helper()
		r := call(t, "POST", base+"/v1/portal/sessions", bearer(admin),
			`{"owner":"cust_42","allowedTiers":["public"],"allowedScopes":["verify"],"maxKeys":2,"title":"Acme Cloud","returnUrl":"`+base+`/"}`)
		var v struct{ URL string }
		if r.status != 201 || json.Unmarshal(r.Data, &v) != nil || !strings.HasPrefix(v.URL, base+"/portal#t=") {
			t.Fatalf("portal link: %d %s", r.status, r.raw)
		}
		return v.URL
	}
	url := link()
	token := url[strings.Index(url, "#t=")+3:]

	p := b.NewPage(t, browser.PageOptions{})
	c := &consoleRun{t: t, p: p, url: base}
	p.Navigate(t, url)
	p.WaitVisible(t, `[data-testid="key-count"]`)
	if href := browser.Eval[string](t, p, `location.href + " " + history.length`); strings.Contains(href, token) || strings.Contains(href, "#t=") {
		t.Errorf("the link's token stays in the address bar: %s", href)
	}
	p.WaitText(t, `[data-testid="portal-title"]`, "Acme Cloud")
	c.shoot("portal-keys-empty")
	c.axe("portal keys")

	// Create a key, read it once, use it.
	p.Click(t, `[data-testid="create-key"]`)
	p.WaitVisible(t, "#create-name")
	p.Fill(t, "#create-name", "my integration")
	p.Click(t, "#create-scope-verify")
	p.Click(t, `[data-testid="create-submit"]`)
	p.WaitVisible(t, `[data-testid="raw-key"]`)
	raw := browser.Eval[string](t, p, `document.querySelector('[data-testid="raw-key"]').value`)
	c.shoot("portal-key-created")
	p.Click(t, `[data-testid="copy-key"]`)
	if got := p.ReadClipboard(t); got != raw || !strings.HasPrefix(raw, "kg_pk_") {
		t.Errorf("revealed %q, clipboard %q", raw, got)
	}
	var me struct{ KeyID, Owner string }
	if r := call(t, "GET", base+"/v1/whoami", apiKey(raw), ""); r.status != 200 || json.Unmarshal(r.Data, &me) != nil || me.Owner != "cust_42" {
		t.Fatalf("whoami with the customer's key: %d %s", r.status, r.raw)
	}
	p.WaitFor(t, fmt.Sprintf(`!document.documentElement.outerHTML.includes(%q) && ![...document.querySelectorAll("input")].some(i => i.value.includes(%[1]q))`, raw))
	p.Click(t, `[data-testid="reveal-close"]`)
	p.WaitText(t, `[data-testid="confirm-dialog"]`, "You will not see this key again. Close?")
	p.Click(t, `[data-testid="confirm-ok"]`)
	p.WaitVisible(t, fmt.Sprintf(`[data-testid="key-row"][data-key-id=%q]`, me.KeyID))

	// Requests the page makes, edited: another owner's key, a tier or a
	// scope outside the grant, a key past maxKeys.
	for _, part := range []string{"/portal/api/keys/" + bobs.ID, "/portal/api/keys"} {
		p.AllowFailedRequest(part, 404)
		p.AllowFailedRequest(part, 403)
		p.AllowFailedRequest(part, 409)
	}
	edited := browser.Eval[[]int](t, p, fmt.Sprintf(`(async () => {
		const api = location.pathname.replace(/\/+$/, '') + '/api';
		const csrf = (await (await fetch(api + '/session')).json()).data.csrfToken;
		const send = (method, path, body) => fetch(api + path, {method, body: body && JSON.stringify(body),
			headers: {'Content-Type': 'application/json', 'X-Keygate-CSRF': csrf}}).then(async r => { await r.text(); return r.status; });
		return [
			await send('GET', '/keys/%[1]s'),
			await send('DELETE', '/keys/%[1]s'),
			await send('POST', '/keys/%[1]s/rotate', {gracePeriodSeconds: 0}),
			await send('GET', '/keys/%[1]s/usage'),
			await send('POST', '/keys', {name: 'partner', tier: 'partner'}),
			await send('POST', '/keys', {name: 'admin', tier: 'public', scopes: ['admin']}),
			await send('POST', '/keys', {name: 'second', tier: 'public'}),
			await send('POST', '/keys', {name: 'third', tier: 'public'}),
		];
	})()`, bobs.ID))
	if want := []int{404, 404, 404, 404, 403, 403, 201, 409}; !slices.Equal(edited, want) {
		t.Errorf("edited requests answered %v, want %v", edited, want)
	}
	if r := call(t, "GET", base+"/v1/api-keys/"+bobs.ID, bearer(admin), ""); !strings.Contains(r.raw, `"status":"active"`) {
		t.Errorf("bob's key after the portal's attempts: %s", r.raw)
	}

	// Its usage reaches the chart; rotate it (no grace: at maxKeys), then revoke the successor.
	c.waitAPI("the key's usage", func() bool {
		r := call(t, "GET", base+"/v1/api-keys/"+me.KeyID+"/usage", bearer(admin), "")
		return strings.Contains(r.raw, `"allowed":1`)
	})
	p.Navigate(t, base+"/portal#/keys/"+me.KeyID)
	p.WaitFor(t, `[...document.querySelectorAll('[data-testid="usage-chart"] rect')].some(r => Number(r.getAttribute("height")) > 0)`)
	c.shoot("portal-key")
	c.axe("portal key")
	p.Click(t, `[data-testid="rotate"]`)
	p.Click(t, "#rotate-grace-0")
	p.Click(t, `[data-testid="rotate-submit"]`)
	p.WaitVisible(t, `[data-testid="raw-key"]`)
	successor := browser.Eval[string](t, p, `document.querySelector('[data-testid="raw-key"]').value`)
	p.Click(t, `[data-testid="reveal-close"]`)
	p.Click(t, `[data-testid="confirm-ok"]`)
	var next struct{ KeyID string }
	if r := call(t, "GET", base+"/v1/whoami", apiKey(successor), ""); r.status != 200 || json.Unmarshal(r.Data, &next) != nil {
		t.Fatalf("whoami with the successor: %d %s", r.status, r.raw)
	}
	if r := call(t, "GET", base+"/v1/whoami", apiKey(raw), ""); r.status != http.StatusUnauthorized {
		t.Errorf("the key rotated without grace: %d, want 401", r.status)
	}
	p.Navigate(t, base+"/portal#/keys/"+next.KeyID)
	p.WaitVisible(t, `[data-testid="revoke"]`)
	p.Click(t, `[data-testid="revoke"]`)
	p.WaitText(t, `[data-testid="confirm-dialog"]`, "Revoke key “my integration”")
	p.Click(t, `[data-testid="confirm-ok"]`)
	c.waitAPI("the revoke", func() bool {
		return call(t, "GET", base+"/v1/whoami", apiKey(successor), "").status == http.StatusUnauthorized
	})

	// The audit log names the portal.
	if r := call(t, "GET", base+"/v1/audit?action=key.revoked", bearer(admin), ""); !strings.Contains(r.raw, `"actor":"portal:cust_42"`) || !strings.Contains(r.raw, `"session":"pts_`) {
		t.Errorf("the revoke's audit event: %s", r.raw)
	}

	// The link a second time: a clear page.
	again := b.NewPage(t, browser.PageOptions{})
	again.AllowFailedRequest("/portal/api/session", 401)
	again.Navigate(t, url)
	again.WaitVisible(t, `[data-testid="link-invalid"]`)
	again.WaitText(t, "body", "This link has expired or was already used")
	c2 := &consoleRun{t: t, p: again, url: base}
	c2.shoot("portal-link-used")
	c2.axe("portal link used")
	again.AssertClean(t, base)

	// The owner's revoke ends the session at once.
	cookie := portalCookie(t, p, base)
	// From here the page's requests learn that its session ended: 401.
	p.AllowFailedRequest("/portal/api/", http.StatusUnauthorized)
	if r := call(t, "POST", base+"/v1/owners/cust_42/revoke", bearer(admin), ""); r.status != 200 {
		t.Fatalf("owner revoke: %d %s", r.status, r.raw)
	}
	if r := call(t, "GET", base+"/portal/api/keys", http.Header{"Cookie": {cookie}}, ""); r.status != http.StatusUnauthorized {
		t.Errorf("the session after its owner's revoke: %d %s, want 401", r.status, r.raw)
	}
	p.Navigate(t, base+"/portal#/keys")
	p.WaitFor(t, `!!document.querySelector('[data-testid="session-ended"], [data-testid="link-invalid"]')`)

	// A fresh link, then sign out: the session's cookie is dead at once.
	out := b.NewPage(t, browser.PageOptions{})
	out.Navigate(t, link())
	out.WaitVisible(t, `[data-testid="key-count"]`)
	// Signing out while a row's sparkline still loads would answer it 401,
	// rightly: let the page finish loading first.
	out.WaitFor(t, `document.querySelectorAll('[data-testid="key-row"]').length > 0 &&
		document.querySelectorAll('[data-testid="sparkline"]').length === document.querySelectorAll('[data-testid="key-row"]').length`)
	fresh := portalCookie(t, out, base)
	out.Click(t, `[data-testid="signout"]`)
	out.WaitVisible(t, `[data-testid="signed-out"]`)
	if r := call(t, "GET", base+"/portal/api/keys", http.Header{"Cookie": {fresh}}, ""); r.status != http.StatusUnauthorized {
		t.Errorf("a signed-out session: %d, want 401", r.status)
	}
	out.AssertClean(t, base)
	p.AssertClean(t, base)
}

// portalCookie is the page's portal session cookie, which its script cannot read.
func portalCookie(t *testing.T, p *browser.Page, base string) string {
	t.Helper()
	res, err := chromedp.Call(p.Context(), network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/portal"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ck := range res.Cookies {
		if ck.Name == "keygate_portal" {
			if !ck.HTTPOnly || ck.SameSite != network.CookieSameSiteStrict {
				t.Errorf("the portal cookie %+v is not HttpOnly and SameSite=Strict", ck)
			}
			return ck.Name + "=" + ck.Value
		}
	}
	t.Fatalf("no portal cookie among %+v", res.Cookies)
	return ""
}
