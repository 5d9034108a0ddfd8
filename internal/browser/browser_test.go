package browser

import (
	"bytes"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
)

// tb is a testing.TB that records the failures of a helper instead of
// failing the test, to prove that the helper does fail.
type tb struct {
	testing.TB
	failures []string
}

func (r *tb) Helper() {}
func (r *tb) Errorf(format string, a ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, a...))
}
func (r *tb) Fatalf(format string, a ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, a...))
}
func (r *tb) Error(a ...any) { r.failures = append(r.failures, fmt.Sprint(a...)) }
func (r *tb) Fatal(a ...any) { r.failures = append(r.failures, fmt.Sprint(a...)) }

// failedWith fails t unless the helper failed, with a message holding
// every one of wants.
func (r *tb) failedWith(t *testing.T, wants ...string) {
	t.Helper()
	if len(r.failures) == 0 {
		t.Fatalf("the helper passed; want a failure with %q", wants)
	}
	all := strings.Join(r.failures, "\n")
	t.Logf("the helper failed, as it should:\n%s", all)
	for _, w := range wants {
		if !strings.Contains(all, w) {
			t.Errorf("the failure lacks %q:\n%s", w, all)
		}
	}
}

// The test site: a console-like page under a strict CSP, with buttons that
// misbehave on demand.
const (
	strictCSP = "default-src 'self'; img-src * data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

	appHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Test app</title>
<link rel="stylesheet" href="/app.css">
</head>
<body>
<main>
<h1>Test app</h1>
<p>A page that behaves, until asked not to.</p>
<label for="name">Name</label>
<input id="name" name="name" type="text">
<p id="echo"></p>
<button id="error" type="button">Log an error</button>
<button id="throw" type="button">Throw</button>
<button id="copy" type="button">Copy</button>
<button id="fetch401" type="button">Call the API</button>
<p id="status"></p>
</main>
<script src="/app.js"></script>
</body>
</html>`

	appJS = `
const $ = id => document.getElementById(id);
$('name').addEventListener('input', e => { $('echo').textContent = e.target.value; });
$('error').addEventListener('click', () => console.error('boom from the page'));
$('throw').addEventListener('click', () => { throw new Error('kaboom'); });
$('copy').addEventListener('click', () => navigator.clipboard.writeText('copied by the button'));
$('fetch401').addEventListener('click', async () => {
	const r = await fetch('/unauthorized');
	$('status').textContent = 'status ' + r.status;
});
const img = new URLSearchParams(location.search).get('img');
if (img) {
	const i = document.createElement('img');
	i.src = img;
	i.alt = '';
	document.querySelector('main').append(i);
}`

	appCSS = `
body { font: 16px/1.5 sans-serif; margin: 2rem; background: #ffffff; color: #1a1a1a; }
/* A transition, which SetColorScheme must wait out: read half-way, the
   background would be neither scheme's. */
body { transition: background-color 0.4s linear; }
@media (prefers-color-scheme: dark) {
	body { background: #121212; color: #e8e8e8; }
}`

	// inlineHTML breaks its own CSP with an inline script.
	inlineHTML = `<!doctype html><html lang="en"><head><title>Inline</title></head>
<body><main><h1>Inline</h1><script>document.title = 'ran';</script></main></body></html>`

	// badHTML breaks two rules of axe-core: an input without a label
	// (critical), and grey on white text (serious).
	badHTML = `<!doctype html><html lang="en"><head><title>Bad</title></head>
<body><main><h1>Bad</h1>
<p style="color: #bbbbbb; background: #ffffff">Hard to read</p>
<input type="text" id="nolabel">
</main></body></html>`

	tallHTML = `<!doctype html><html lang="en"><head><title>Tall</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="margin: 0"><main><h1>Tall</h1><div style="height: 3000px; background: linear-gradient(#fff, #00f)"></div></main></body></html>`
)

// onePixelPNG is a 1×1 transparent PNG.
var onePixelPNG = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\x00\x01\x00\x00\x05\x00\x01\r\n-\xb4\x00\x00\x00\x00IEND\xaeB`\x82")

func testSite(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	page := func(csp, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if csp != "" {
				w.Header().Set("Content-Security-Policy", csp)
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, body)
		}
	}
	mux.HandleFunc("GET /app", page(strictCSP, appHTML))
	mux.HandleFunc("GET /inline", page(strictCSP, inlineHTML))
	mux.HandleFunc("GET /bad", page("", badHTML))
	mux.HandleFunc("GET /tall", page("", tallHTML))
	mux.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, appJS)
	})
	mux.HandleFunc("GET /app.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		fmt.Fprint(w, appCSS)
	})
	mux.HandleFunc("GET /x.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(onePixelPNG)
	})
	mux.HandleFunc("GET /unauthorized", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"success":false}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestBrowser(t *testing.T) {
	b := Start(t)
	site := testSite(t)
	other := testSite(t) // another origin: another port

	t.Run("a clean page passes", func(t *testing.T) {
		p := b.NewPage(t, PageOptions{})
		p.Navigate(t, site.URL+"/app")
		p.FillLabel(t, "Name", "Ada")
		if got := p.Text(t, "#echo"); got != "Ada" {
			t.Errorf("echo after FillLabel: %q, want %q", got, "Ada")
		}
		p.Fill(t, "#name", "Grace Hopper") // replaces, not appends
		if got := p.Text(t, "#echo"); got != "Grace Hopper" {
			t.Errorf("echo after Fill: %q, want %q", got, "Grace Hopper")
		}
		p.ClickButton(t, "Copy")
		p.AssertClean(t, site.URL)
		if n := len(p.Requests()); n < 3 {
			t.Errorf("%d requests recorded, want the page, its script and its style sheet: %v", n, p.Requests())
		}
	})

	t.Run("console.error is caught", func(t *testing.T) {
		p := b.NewPage(t, PageOptions{})
		p.Navigate(t, site.URL+"/app")
		p.Click(t, "#error")
		r := &tb{TB: t}
		p.AssertClean(r, site.URL)
		r.failedWith(t, "console.error: boom from the page", "/app.js:")
	})

	t.Run("an uncaught exception is caught", func(t *testing.T) {
		p := b.NewPage(t, PageOptions{})
		p.Navigate(t, site.URL+"/app")
		p.ClickButton(t, "Throw")
		r := &tb{TB: t}
		p.AssertClean(r, site.URL)
		r.failedWith(t, "exception: Uncaught Error: kaboom")
		if errs := p.JSErrors(); len(errs) != 1 || errs[0].Kind != "exception" {
			t.Errorf("JSErrors: %v, want the exception alone", errs)
		}
	})

	t.Run("a request to another origin is caught", func(t *testing.T) {
		p := b.NewPage(t, PageOptions{})
		p.Navigate(t, site.URL+"/app?img="+other.URL+"/x.png")
		r := &tb{TB: t}
		p.AssertClean(r, site.URL)
		r.failedWith(t, "request to another origin than "+site.URL+": GET "+other.URL+"/x.png")
		// The image did load: the origin check alone caught it.
		if len(r.failures) != 1 || strings.Count(r.failures[0], "\n  ") != 1 {
			t.Errorf("want one problem, the request:\n%s", r.failures)
		}
	})

	t.Run("a request to an unreachable host is caught", func(t *testing.T) {
		p := b.NewPage(t, PageOptions{})
		p.Navigate(t, site.URL+"/app?img=http://example.invalid/x.png")
		r := &tb{TB: t}
		p.AssertClean(r, site.URL)
		r.failedWith(t, "request to another origin than "+site.URL+": GET http://example.invalid/x.png")
	})

	t.Run("a CSP violation is caught", func(t *testing.T) {
		p := b.NewPage(t, PageOptions{})
		p.Navigate(t, site.URL+"/inline")
		if title := Eval[string](t, p, `document.title`); title == "ran" {
			t.Fatal("the inline script ran despite the CSP")
		}
		r := &tb{TB: t}
		p.AssertClean(r, site.URL)
		r.failedWith(t, "log/security", "Content Security Policy")
	})

	t.Run("an expected failed request can be allowed", func(t *testing.T) {
		call401 := func(p *Page) {
			p.ClickButton(t, "Call the API")
			p.WaitText(t, "#status", "status 401")
		}

		p := b.NewPage(t, PageOptions{})
		p.Navigate(t, site.URL+"/app")
		call401(p)
		r := &tb{TB: t}
		p.AssertClean(r, site.URL)
		r.failedWith(t, "log/network", "401", site.URL+"/unauthorized")

		p = b.NewPage(t, PageOptions{})
		p.Navigate(t, site.URL+"/app")
		p.AllowFailedRequest("/unauthorized", 401)
		call401(p)
		p.AssertClean(t, site.URL)

		// The allowance is narrow: another status, another URL, or a
		// failure before it, is still a problem.
		for _, allow := range []func(p *Page){
			func(p *Page) { p.AllowFailedRequest("/unauthorized", 403) },
			func(p *Page) { p.AllowFailedRequest("/other", 401) },
		} {
			p = b.NewPage(t, PageOptions{})
			p.Navigate(t, site.URL+"/app")
			allow(p)
			call401(p)
			r = &tb{TB: t}
			p.AssertClean(r, site.URL)
			r.failedWith(t, "401")
		}
		p = b.NewPage(t, PageOptions{})
		p.Navigate(t, site.URL+"/app")
		call401(p)
		p.AllowFailedRequest("/unauthorized", 401)
		r = &tb{TB: t}
		p.AssertClean(r, site.URL)
		r.failedWith(t, "401")

		// It allows no JavaScript error.
		p = b.NewPage(t, PageOptions{})
		p.Navigate(t, site.URL+"/app")
		p.AllowFailedRequest("/app", 200)
		p.Click(t, "#error")
		r = &tb{TB: t}
		p.AssertClean(r, site.URL)
		r.failedWith(t, "boom from the page")
	})

	t.Run("axe-core finds serious violations", func(t *testing.T) {
		p := b.NewPage(t, PageOptions{})
		p.Navigate(t, site.URL+"/bad")
		r := &tb{TB: t}
		violations := p.Axe(r, "bad")
		r.failedWith(t, `axe-core on "bad"`, "critical label:", "#nolabel", "serious color-contrast:", "insufficient color contrast")
		var ids []string
		for _, v := range violations {
			ids = append(ids, v.ID)
		}
		if !slices.Contains(ids, "label") || !slices.Contains(ids, "color-contrast") {
			t.Errorf("violations %v, want label and color-contrast", ids)
		}
	})

	t.Run("axe-core passes a good page, light and dark, despite its CSP", func(t *testing.T) {
		for _, scheme := range []ColorScheme{Light, Dark} {
			p := b.NewPage(t, PageOptions{ColorScheme: scheme})
			p.Navigate(t, site.URL+"/app")
			if v := p.Axe(t, "app "+string(scheme)); len(v) != 0 {
				t.Errorf("%s: violations %v, want none", scheme, v)
			}
			p.AssertClean(t, site.URL)
		}
	})

	t.Run("the clipboard can be written and read", func(t *testing.T) {
		p := b.NewPage(t, PageOptions{})
		p.Navigate(t, site.URL+"/app")
		p.Exec(t, `navigator.clipboard.writeText('first')`)
		if got := p.ReadClipboard(t); got != "first" {
			t.Errorf("clipboard: %q, want %q", got, "first")
		}
		p.ClickButton(t, "Copy")
		if got := p.ReadClipboard(t); got != "copied by the button" {
			t.Errorf("clipboard after Copy: %q, want %q", got, "copied by the button")
		}
		p.AssertClean(t, site.URL)
	})

	t.Run("prefers-color-scheme is emulated", func(t *testing.T) {
		const dark = `matchMedia('(prefers-color-scheme: dark)').matches`
		const background = `getComputedStyle(document.body).backgroundColor`
		p := b.NewPage(t, PageOptions{})
		p.Navigate(t, site.URL+"/app")
		if Eval[bool](t, p, dark) {
			t.Error("a light page matches prefers-color-scheme: dark")
		}
		if got := Eval[string](t, p, background); got != "rgb(255, 255, 255)" {
			t.Errorf("light background %s", got)
		}
		p.SetColorScheme(t, Dark)
		if !Eval[bool](t, p, dark) {
			t.Error("after SetColorScheme(Dark), prefers-color-scheme: dark does not match")
		}
		if got := Eval[string](t, p, background); got != "rgb(18, 18, 18)" {
			t.Errorf("dark background %s", got)
		}

		p = b.NewPage(t, PageOptions{ColorScheme: Dark})
		p.Navigate(t, site.URL+"/app")
		if !Eval[bool](t, p, dark) {
			t.Error("a page opened Dark does not match prefers-color-scheme: dark")
		}
	})

	t.Run("screenshots are full-page PNGs", func(t *testing.T) {
		p := b.NewPage(t, PageOptions{Width: 375, Height: 667, Mobile: true})
		p.Navigate(t, site.URL+"/tall")
		path := filepath.Join(t.TempDir(), "a", "b", "tall.png")
		if got := p.Screenshot(t, path); got != path {
			t.Errorf("Screenshot wrote %s, want %s", got, path)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("not a PNG: %v", err)
		}
		if size := img.Bounds().Size(); size.X != 375 || size.Y < 3000 {
			t.Errorf("screenshot %v, want 375 wide and the page's full 3000+ px height", size)
		}
		if w := Eval[int](t, p, `innerWidth`); w != 375 {
			t.Errorf("innerWidth %d, want 375", w)
		}

		// A relative path lands in build/screenshots, as the console's
		// screenshots do.
		p = b.NewPage(t, PageOptions{})
		p.Navigate(t, site.URL+"/app")
		for _, shot := range []struct {
			scheme ColorScheme
			width  int
		}{{Light, 1280}, {Dark, 1280}, {Light, 375}, {Dark, 375}} {
			p.SetColorScheme(t, shot.scheme)
			p.SetViewport(t, shot.width, 800)
			path := p.Screenshot(t, fmt.Sprintf("internal-browser/app-%s-%d.png", shot.scheme, shot.width))
			if !strings.HasPrefix(path, ScreenshotDir(t)) {
				t.Errorf("Screenshot wrote %s, outside %s", path, ScreenshotDir(t))
			}
			img, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := png.DecodeConfig(img)
			img.Close()
			if err != nil || cfg.Width != shot.width {
				t.Errorf("%s: %d wide (%v), want %d", path, cfg.Width, err, shot.width)
			}
		}
	})

	t.Run("pages are isolated unless they share a session", func(t *testing.T) {
		const cookie = `document.cookie`
		p := b.NewPage(t, PageOptions{})
		p.Navigate(t, site.URL+"/app")
		p.Exec(t, `document.cookie = 'session=1; path=/'`)

		shared := b.NewPage(t, PageOptions{SessionOf: p})
		shared.Navigate(t, site.URL+"/app")
		if got := Eval[string](t, shared, cookie); got != "session=1" {
			t.Errorf("a page with SessionOf sees the cookies %q, want session=1", got)
		}
		alone := b.NewPage(t, PageOptions{})
		alone.Navigate(t, site.URL+"/app")
		if got := Eval[string](t, alone, cookie); got != "" {
			t.Errorf("a page of its own sees the cookies %q, want none", got)
		}
	})

	t.Run("helpers fail on what is not there", func(t *testing.T) {
		// Only the waits that must give up run on a short timeout: the
		// steps that must succeed, or fail for another reason, keep the
		// default one, however slow a loaded machine's Chromium is.
		p := b.NewPage(t, PageOptions{})
		long := p.timeout
		p.Navigate(t, site.URL+"/app")
		p.timeout = 500 * time.Millisecond
		r := &tb{TB: t}
		p.Click(r, "#missing")
		r.failedWith(t, `click "#missing": timed out after 500ms`)
		r = &tb{TB: t}
		p.FillLabel(r, "No such label", "x")
		r.failedWith(t, `fill the field labelled "No such label"`, "timed out")
		r = &tb{TB: t}
		p.WaitText(r, "#status", "never")
		r.failedWith(t, `wait for "#status" to show "never"`)
		r = &tb{TB: t}
		p.WaitFor(r, `document.title === 'never'`)
		r.failedWith(t, "wait for document.title === 'never'")
		p.timeout = long
		r = &tb{TB: t}
		p.Navigate(r, site.URL+"/nowhere")
		r.failedWith(t, "HTTP 404")
		r = &tb{TB: t}
		Eval[int](r, p, `(() => { throw new Error('nope') })()`)
		r.failedWith(t, "nope")
	})
}

func TestExecPath(t *testing.T) {
	t.Setenv("CHROMIUM", "/nonexistent/chromium")
	if _, err := ExecPath(); err == nil || !strings.Contains(err.Error(), "CHROMIUM=/nonexistent/chromium") {
		t.Errorf("ExecPath with a missing CHROMIUM: %v, want an error naming it", err)
	}
	sh, err := os.Executable() // any executable will do
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CHROMIUM", sh)
	if got, err := ExecPath(); err != nil || got != sh {
		t.Errorf("ExecPath with CHROMIUM=%s: %q, %v", sh, got, err)
	}
}

func TestSameOrigin(t *testing.T) {
	const origin = "http://127.0.0.1:8080"
	for raw, want := range map[string]bool{
		"http://127.0.0.1:8080/keys":           true,
		"http://127.0.0.1:8080":                true,
		"data:image/png;base64,AAAA":           true,
		"about:blank":                          true,
		"blob:http://127.0.0.1:8080/0a1b-2c3d": true,
		"blob:http://127.0.0.1:9090/0a1b-2c3d": false,
		"http://127.0.0.1:9090/keys":           false,
		"https://127.0.0.1:8080/keys":          false,
		"http://example.invalid/x.png":         false,
		"http://127.0.0.1:8080.evil.example/x": false,
		"ws://127.0.0.1:8080/socket":           false,
		"chrome-extension://abcdef/content.js": false,
	} {
		if got := sameOrigin(raw, origin); got != want {
			t.Errorf("sameOrigin(%q, %q) = %v, want %v", raw, origin, got, want)
		}
	}
	if o, err := originOf("http://127.0.0.1:8080/some/path?q=1"); err != nil || o != origin {
		t.Errorf("originOf: %q, %v", o, err)
	}
	if _, err := originOf("/relative"); err == nil {
		t.Error("originOf of a relative URL succeeded")
	}
}

func TestRecorderAllowance(t *testing.T) {
	failedLoad := func(id network.RequestID, url string, status int) *log.EventEntryAdded {
		return &log.EventEntryAdded{Entry: &log.Entry{
			Source: log.EntrySourceNetwork, Level: log.EntryLevelError, URL: url, NetworkRequestID: id,
			Text: fmt.Sprintf("Failed to load resource: the server responded with a status of %d (Whatever)", status),
		}}
	}
	request := func(r *recorder, id network.RequestID, url string, status int64) {
		r.handle(&network.EventRequestWillBeSent{RequestID: id, Request: &network.Request{URL: url, Method: "GET"}, Type: network.ResourceTypeFetch})
		r.handle(&network.EventResponseReceived{RequestID: id, Response: &network.Response{URL: url, Status: status}})
		r.handle(&network.EventLoadingFinished{RequestID: id})
	}

	r := newRecorder()
	request(r, "1", "http://127.0.0.1:1/v1/session", 401)
	r.handle(failedLoad("1", "http://127.0.0.1:1/v1/session", 401)) // before the allowance
	r.allowed = append(r.allowed, allowance{urlPart: "/v1/session", status: 401, from: len(r.logErrors)})
	request(r, "2", "http://127.0.0.1:1/v1/session", 401)
	r.handle(failedLoad("2", "http://127.0.0.1:1/v1/session", 401))
	request(r, "3", "http://127.0.0.1:1/v1/session", 500)
	r.handle(failedLoad("3", "http://127.0.0.1:1/v1/session", 500))
	request(r, "4", "http://127.0.0.1:1/v1/keys", 401)
	r.handle(failedLoad("4", "http://127.0.0.1:1/v1/keys", 401))
	r.handle(failedLoad("", "http://127.0.0.1:1/v1/session", 401)) // no request id: by URL and text
	r.handle(&log.EventEntryAdded{Entry: &log.Entry{               // not a failed load
		Source: log.EntrySourceSecurity, Level: log.EntryLevelError, URL: "http://127.0.0.1:1/v1/session",
		Text: "Refused to connect to 'http://127.0.0.1:1/v1/session' ... status of 401 ",
	}})
	r.handle(&log.EventEntryAdded{Entry: &log.Entry{Source: log.EntrySourceNetwork, Level: log.EntryLevelWarning, Text: "not an error"}})
	request(r, "5", "http://127.0.0.1:1/favicon.ico", 404) // Chromium's own request
	r.handle(failedLoad("5", "http://127.0.0.1:1/favicon.ico", 404))
	request(r, "6", "http://127.0.0.1:1/favicon.ico?v=2", 404) // the page's
	r.handle(failedLoad("6", "http://127.0.0.1:1/favicon.ico?v=2", 404))

	var got []bool
	for i := range r.logErrors {
		got = append(got, r.isAllowed(i))
	}
	want := []bool{false, true, false, false, true, false, true, false}
	if !slices.Equal(got, want) {
		t.Errorf("allowed %v, want %v (log errors %v)", got, want, r.logErrors)
	}
	if len(r.inflight) != 0 {
		t.Errorf("in flight after every load finished: %v", r.inflight)
	}
}

func TestConsoleText(t *testing.T) {
	args := []*runtime.RemoteObject{
		{Type: runtime.RemoteObjectTypeString, Value: []byte(`"failed:"`)},
		{Type: runtime.RemoteObjectTypeNumber, Value: []byte(`401`), Description: "401"},
		{Type: runtime.RemoteObjectTypeObject, ClassName: "Error", Description: "Error: nope\n    at x.js:1"},
		{Type: runtime.RemoteObjectTypeUndefined},
	}
	if got, want := consoleText(args), "failed: 401 Error: nope\n    at x.js:1 undefined"; got != want {
		t.Errorf("consoleText: %q, want %q", got, want)
	}
}
