package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/keygate/keygate/internal/browser"
)

// TestConsoleInChromium runs the web console in real headless Chromium
// against `make run`'s process (local gateway, DynamoDB Local, the usage
// aggregator on the stream): sign in, create a key and read it once, use
// it, find and edit it, rotate it, revoke it, see its usage, offboard an
// owner, read the audit trail, sign out; a cross-site form is refused.
// The page makes no request to another origin and logs no error, and
// axe-core finds no serious violation on any page, in light and dark, wide
// and on a phone; the screenshots go to build/screenshots/console/.
func TestConsoleInChromium(t *testing.T) {
	t.Parallel() // its own stack, browser and ports: it overlaps the others' waits
	b, local := browserStack(t)
	admin := local.adminKey()
	if !strings.Contains(local.banner, "Web console: "+local.url+"/console") {
		t.Errorf("the banner does not name the console:\n%s", local.banner)
	}
	c := &consoleRun{t: t, url: local.url, admin: admin}
	p := b.NewPage(t, browser.PageOptions{})
	c.p = p

	// Sign in: one field, submitted with Enter, then the keys list.
	p.Navigate(t, c.url+"/console")
	c.shoot("sign-in")
	p.Fill(t, "#signin-key", admin)
	p.Do(t, chromedp.SendKeys("#signin-key", kb.Enter))
	p.WaitVisible(t, `[data-testid="keys-table"]`)
	// The key is gone from the page: no storage, no readable cookie, no DOM.
	if leaked := browser.Eval[bool](t, p, fmt.Sprintf(`document.cookie !== "" || localStorage.length > 0 || sessionStorage.length > 0 ||
		document.documentElement.outerHTML.includes(%q) || [...document.querySelectorAll("input")].some(i => i.value.includes(%[1]q))`, admin)); leaked {
		t.Error("after sign-in the admin key, or a cookie, is readable by page script")
	}

	// Create a key; read it from the page and the clipboard; use it.
	p.Click(t, `[data-testid="create-key"]`)
	p.WaitVisible(t, "#create-name")
	p.Fill(t, "#create-name", "browser key")
	p.Fill(t, "#create-owner", "carol")
	p.Click(t, "#create-scope-verify")
	shownAt := time.Now() // no later than the key is shown, however slow the page
	p.Click(t, `[data-testid="create-submit"]`)
	p.WaitVisible(t, `[data-testid="raw-key"]`)
	raw := browser.Eval[string](t, p, `document.querySelector('[data-testid="raw-key"]').value`)
	if !strings.HasPrefix(raw, "kg_") {
		t.Fatalf("the revealed key is %q", raw)
	}
	c.shoot("key-created")
	p.Click(t, `[data-testid="copy-key"]`)
	p.WaitText(t, `[data-testid="toast"]`, "Copied")
	if got := p.ReadClipboard(t); got != raw {
		t.Errorf("the clipboard holds %q, want the revealed key", got)
	}
	var me struct{ KeyID, Owner string }
	if r := call(t, "GET", c.url+"/v1/whoami", apiKey(raw), ""); r.status != 200 || json.Unmarshal(r.Data, &me) != nil || me.Owner != "carol" {
		t.Fatalf("whoami with the console's key: %d %s", r.status, r.raw)
	}
	id := me.KeyID
	// Masked after 10 seconds: gone from every field and text of the page.
	p.WaitFor(t, fmt.Sprintf(`!document.documentElement.outerHTML.includes(%q) && ![...document.querySelectorAll("input, textarea")].some(i => i.value.includes(%[1]q))`, raw))
	if masked := time.Since(shownAt); masked < 9*time.Second {
		t.Errorf("the key was masked %v after it was shown, want 10 s", masked)
	}
	p.WaitText(t, "body", "hidden: you can no longer see it")
	// Closing asks first.
	p.Click(t, `[data-testid="reveal-close"]`)
	p.WaitText(t, `[data-testid="confirm-dialog"]`, "You will not see this key again. Close?")
	p.Click(t, `[data-testid="confirm-ok"]`)
	p.WaitGone(t, `[data-testid="raw-key"]`)

	// Find it by search, open it, edit it.
	for range 3 { // uses for its chart, before the rotation moves them to the successor
		call(t, "GET", c.url+"/v1/whoami", apiKey(raw), "")
	}
	p.Fill(t, "#filter-search", "BROWSER")
	p.Do(t, chromedp.SendKeys("#filter-search", kb.Enter))
	row := fmt.Sprintf(`[data-testid="key-row"][data-key-id=%q]`, id)
	p.WaitVisible(t, row)
	p.WaitFor(t, `document.querySelectorAll('[data-testid="key-row"]').length === 1`)
	c.shoot("keys")
	c.axe("keys")
	p.Click(t, row+" a")
	p.WaitVisible(t, "#edit-name")
	p.Fill(t, "#edit-name", "browser key (renamed)")
	p.Click(t, `[data-testid="save-key"]`)
	c.waitAPI("the rename", func() bool {
		var k struct{ Name string }
		r := call(t, "GET", c.url+"/v1/api-keys/"+id, bearer(admin), "")
		return json.Unmarshal(r.Data, &k) == nil && k.Name == "browser key (renamed)"
	})

	// Its usage reaches the chart through the stream.
	c.waitAPI("the key's usage", func() bool {
		var u struct{ Buckets []struct{ Allowed int64 } }
		r := call(t, "GET", c.url+"/v1/api-keys/"+id+"/usage", bearer(admin), "")
		return json.Unmarshal(r.Data, &u) == nil && slices.ContainsFunc(u.Buckets, func(b struct{ Allowed int64 }) bool { return b.Allowed >= 4 })
	})
	p.Navigate(t, c.url+"/console#/keys/"+id)
	p.WaitVisible(t, `[data-testid="usage-chart"]`)
	p.WaitFor(t, `[...document.querySelectorAll('[data-testid="usage-chart"] rect')].some(r => Number(r.getAttribute("height")) > 0)`)
	c.shoot("key-detail")
	c.axe("key detail")

	// Rotate with an hour's grace: the successor shown once, both keys work.
	p.Click(t, `[data-testid="rotate"]`)
	p.Click(t, "#rotate-grace-3600")
	p.Click(t, `[data-testid="rotate-submit"]`)
	p.WaitVisible(t, `[data-testid="raw-key"]`)
	successor := browser.Eval[string](t, p, `document.querySelector('[data-testid="raw-key"]').value`)
	c.shoot("key-rotated")
	p.Click(t, `[data-testid="reveal-close"]`)
	p.Click(t, `[data-testid="confirm-ok"]`)
	p.WaitGone(t, `[data-testid="raw-key"]`)
	var next struct{ KeyID string }
	for _, k := range []string{raw, successor} {
		if r := call(t, "GET", c.url+"/v1/whoami", apiKey(k), ""); r.status != 200 {
			t.Errorf("whoami after the rotation: %d %s", r.status, r.raw)
		} else if k == successor {
			_ = json.Unmarshal(r.Data, &next)
		}
	}
	// The two keys link each other.
	p.WaitVisible(t, fmt.Sprintf(`a[href$=%q]`, "#/keys/"+next.KeyID))

	// Revoke the successor, with a confirmation that names it.
	p.Navigate(t, c.url+"/console#/keys/"+next.KeyID)
	p.WaitVisible(t, `[data-testid="revoke"]`)
	p.Click(t, `[data-testid="revoke"]`)
	p.WaitText(t, `[data-testid="confirm-dialog"]`, "Revoke key “browser key (renamed)”")
	p.Click(t, `[data-testid="confirm-ok"]`)
	c.waitAPI("the revoke", func() bool {
		return call(t, "GET", c.url+"/v1/whoami", apiKey(successor), "").status == http.StatusUnauthorized
	})

	// Offboard an owner: the confirmation counts, then revokes.
	for _, name := range []string{"dave's laptop", "dave's ci"} {
		if r := call(t, "POST", c.url+"/v1/api-keys", bearer(admin), `{"name":"`+name+`","tier":"public","owner":"dave"}`); r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.raw)
		}
	}
	p.Navigate(t, c.url+"/console#/owners/dave")
	p.WaitVisible(t, `[data-testid="offboard"]`)
	c.shoot("owner")
	c.axe("owner")
	p.Click(t, `[data-testid="offboard"]`)
	p.WaitText(t, `[data-testid="confirm-dialog"]`, "This will revoke 2 keys")
	p.Click(t, `[data-testid="confirm-ok"]`)
	p.WaitText(t, "body", "Revoked 2 keys.")
	if r := call(t, "GET", c.url+"/v1/api-keys?owner=dave&status=active", bearer(admin), ""); string(r.Data) != "[]" {
		t.Errorf("dave's active keys after offboarding: %s", r.Data)
	}
	p.Navigate(t, c.url+"/console#/owners")
	p.WaitVisible(t, "#owner-open")
	c.shoot("owners")
	c.axe("owners")

	// The audit trail of all of it, by the admin key.
	p.Navigate(t, c.url+"/console#/audit")
	p.WaitVisible(t, `[data-testid="audit-row"]`)
	c.shoot("audit")
	c.axe("audit")
	actions := browser.Eval[[]string](t, p, `[...document.querySelectorAll('[data-testid="audit-row"]')].map(r => r.dataset.action)`)
	for _, want := range []string{"session.started", "key.created", "key.updated", "key.rotated", "key.revoked", "owner.revoked"} {
		if !slices.Contains(actions, want) {
			t.Errorf("the audit log shows %v, without %s", actions, want)
		}
	}
	p.Fill(t, "#audit-key", id)
	p.Do(t, chromedp.SendKeys("#audit-key", kb.Enter))
	p.WaitFor(t, fmt.Sprintf(`(() => { const rows = [...document.querySelectorAll('[data-testid="audit-row"]')];
		return rows.length > 0 && rows.every(r => r.innerText.includes(%q)) })()`, id))

	// Sign out: the session's cookie is dead at once.
	cookie := c.sessionCookie()
	p.Click(t, `[data-testid="signout"]`)
	p.WaitVisible(t, "#signin-key")
	if r := call(t, "GET", c.url+"/console/api/v1/api-keys", http.Header{"Cookie": {cookie}}, ""); r.status != http.StatusUnauthorized {
		t.Errorf("the signed-out session's cookie: %d %s, want 401", r.status, r.raw)
	}

	// A cross-site form posting with the browser's cookie is refused. The
	// attacker is another port of the same host: same site, so
	// SameSite=Strict lets the cookie go; the console's own checks refuse.
	p.Fill(t, "#signin-key", admin)
	p.Do(t, chromedp.SendKeys("#signin-key", kb.Enter))
	p.WaitVisible(t, `[data-testid="keys-table"]`)
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<form method="POST" action="%s/console/api/v1/api-keys" enctype="text/plain">`+
			`<input name='{"name":"csrf","tier":"public","x":"' value='"}'></form><script>document.forms[0].submit()</script>`, c.url)
	}))
	defer attacker.Close()
	evil := b.NewPage(t, browser.PageOptions{SessionOf: p})
	evil.Navigate(t, attacker.URL)
	evil.WaitText(t, "body", "cross-site request refused")
	if r := call(t, "GET", c.url+"/v1/api-keys?search=csrf", bearer(admin), ""); string(r.Data) != "[]" {
		t.Errorf("the cross-site form created a key: %s", r.Data)
	}

	// The whole run: no JavaScript error, no request to another origin.
	p.AssertClean(t, c.url)
}

// browserStack starts headless Chromium and, on a fresh data folder, make
// run's own process, which stops when t ends.
func browserStack(t *testing.T) (*browser.Browser, *localProcess) {
	t.Helper()
	requireDynamoDBLocal(t)
	b := browser.Start(t)
	bin := localBinary(t)
	port, ddbPort := freePorts(t)
	local := startLocal(t, bin, "-port", port, "-dynamodb-port", ddbPort, "-data", t.TempDir())
	t.Cleanup(func() { local.stop(t) })
	return b, local
}

// consoleRun is one walk through the console.
type consoleRun struct {
	t          *testing.T
	p          *browser.Page
	url, admin string
}

// views are the sizes and schemes each page is shot and checked in.
var views = []struct {
	name          string
	width, height int
	scheme        browser.ColorScheme
}{
	{"light-1280", 1280, 900, browser.Light},
	{"dark-1280", 1280, 900, browser.Dark},
	{"light-375", 375, 812, browser.Light},
	{"dark-375", 375, 812, browser.Dark},
}

// shoot writes the page in every view, and returns to the first.
func (c *consoleRun) shoot(page string) {
	c.t.Helper()
	for _, v := range views {
		c.p.SetViewport(c.t, v.width, v.height)
		c.p.SetColorScheme(c.t, v.scheme)
		c.p.Screenshot(c.t, fmt.Sprintf("console/%s-%s.png", page, v.name))
	}
	c.p.SetViewport(c.t, views[0].width, views[0].height)
	c.p.SetColorScheme(c.t, views[0].scheme)
}

// axe checks the page in light and dark, wide and narrow.
func (c *consoleRun) axe(page string) {
	c.t.Helper()
	for _, v := range views {
		c.p.SetViewport(c.t, v.width, v.height)
		c.p.SetColorScheme(c.t, v.scheme)
		c.p.Axe(c.t, page+" "+v.name)
	}
	c.p.SetViewport(c.t, views[0].width, views[0].height)
	c.p.SetColorScheme(c.t, views[0].scheme)
}

// waitAPI polls until done, which the stream or the page makes true soon.
func (c *consoleRun) waitAPI(what string, done func() bool) {
	c.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if done() {
			return
		}
	}
	c.t.Fatalf("%s: not seen within 30 s", what)
}

// sessionCookie is the browser's session cookie, which page script cannot read.
func (c *consoleRun) sessionCookie() string {
	c.t.Helper()
	res, err := chromedp.Call(c.p.Context(), network.GetCookies, network.GetCookiesParams{URLs: []string{c.url + "/console"}})
	if err != nil {
		c.t.Fatal(err)
	}
	for _, ck := range res.Cookies {
		if ck.Name == "keygate_console" {
			if !ck.HTTPOnly || ck.SameSite != network.CookieSameSiteStrict {
				c.t.Errorf("the session cookie %+v is not HttpOnly and SameSite=Strict", ck)
			}
			return ck.Name + "=" + ck.Value
		}
	}
	c.t.Fatalf("no session cookie among %+v", res.Cookies)
	return ""
}
