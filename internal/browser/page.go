package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/keygate/keygate/internal/modroot"
)

// ColorScheme is the value of the prefers-color-scheme media feature that a
// page emulates.
type ColorScheme string

// The color schemes.
const (
	Light ColorScheme = "light"
	Dark  ColorScheme = "dark"
)

// PageOptions configure a new page. The zero value is a 1280×800 desktop
// page in light mode.
type PageOptions struct {
	// Width and Height of the viewport in CSS pixels: 1280 and 800 when 0.
	Width, Height int
	// Mobile emulates a phone: a mobile viewport (the page's meta viewport
	// applies) and touch events.
	Mobile bool
	// ColorScheme is what prefers-color-scheme matches: Light when empty.
	ColorScheme ColorScheme
	// Timeout bounds each action of the page (a navigation, a wait, a
	// click): 15s when 0.
	Timeout time.Duration
	// SessionOf opens the page in the browser context of another page, so
	// that both share cookies and storage. By default each page has a
	// browser context of its own.
	SessionOf *Page
}

// Page is one tab. Use it from one goroutine at a time.
type Page struct {
	ctx     context.Context
	timeout time.Duration
	mobile  bool
	seq     int64 // the page's number in its browser, from 1
	rec     *recorder
}

// NewPage opens a tab, and closes it when t ends. The page's permissions
// include reading and writing the clipboard, and it is emulated as focused,
// so that navigator.clipboard works in headless mode.
//
// When t has failed by the time it ends, a screenshot of the page is
// written to build/screenshots/failed/<test name>-page<n>.png.
func (b *Browser) NewPage(t testing.TB, opts PageOptions) *Page {
	t.Helper()
	if opts.Width == 0 {
		opts.Width = 1280
	}
	if opts.Height == 0 {
		opts.Height = 800
	}
	if opts.ColorScheme == "" {
		opts.ColorScheme = Light
	}
	if opts.Timeout == 0 {
		opts.Timeout = 15 * time.Second
	}
	// Opening a tab can take longer than an action on a busy machine.
	p := &Page{timeout: max(opts.Timeout, 30*time.Second), mobile: opts.Mobile, seq: b.pages.Add(1), rec: newRecorder()}
	defer func() { p.timeout = opts.Timeout }()

	session := chromedp.WithNewBrowserContext()
	if opts.SessionOf != nil {
		session = chromedp.WithExistingBrowserContext(chromedp.FromContext(opts.SessionOf.ctx).BrowserContextID)
	}
	ctx, cancel := chromedp.NewContext(b.ctx, session, chromedp.WithListener(p.rec.handle))
	p.ctx = ctx
	t.Cleanup(func() {
		if t.Failed() {
			p.screenshotOnFailure(t)
		}
		cancel()
	})

	// The first action opens the tab, and binds the tab's life to the
	// context it runs with: ctx, not a context with a timeout.
	if err := first(ctx, p.timeout, func(ctx context.Context) error { return chromedp.Do(ctx) }); err != nil {
		t.Fatalf("browser: open a tab: %v", err)
		return p
	}
	if !p.grant(t) {
		return p
	}
	p.SetViewport(t, opts.Width, opts.Height)
	p.SetColorScheme(t, opts.ColorScheme)
	return p
}

// grant grants the page's browser context the clipboard permissions, and
// emulates focus for the page.
func (p *Page) grant(t testing.TB) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, p.timeout)
	defer cancel()
	c := chromedp.FromContext(ctx)
	// Chromium maps clipboard-read to the permission clipboardReadWrite, and
	// clipboard-write to clipboardSanitizedWrite. (Browser.grantPermissions,
	// which named them, is deprecated, and cdproto no longer has it.)
	for _, perm := range []*cdpbrowser.PermissionDescriptor{{Name: "clipboard-read"}, {Name: "clipboard-write"}} {
		if _, err := cdp.Call(ctx, c.Browser, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission:       perm,
			Setting:          cdpbrowser.PermissionSettingGranted,
			BrowserContextID: c.BrowserContextID,
		}); err != nil {
			t.Fatalf("browser: grant the permission %s: %v", perm.Name, err)
			return false
		}
	}
	// Without focus, navigator.clipboard refuses: "Document is not focused".
	if _, err := chromedp.Call(ctx, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
		t.Fatalf("browser: emulate focus: %v", err)
		return false
	}
	return true
}

// Context is the page's chromedp context, for what the helpers don't do:
// chromedp.Run(p.Context(), ...). It has no timeout.
func (p *Page) Context() context.Context { return p.ctx }

// Do runs chromedp actions in order, and fails t on the first error. Each
// action has the page's timeout.
func (p *Page) Do(t testing.TB, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	for _, a := range actions {
		if !p.do(t, "action", a) {
			return
		}
	}
}

// do runs a within the page's timeout, and fails t with what it was doing.
func (p *Page) do(t testing.TB, what string, a chromedp.Action[chromedp.Void]) bool {
	t.Helper()
	_, err := run(p, what, a)
	if err != nil {
		t.Fatalf("%v", err)
		return false
	}
	return true
}

// run runs a within the page's timeout.
func run[T any](p *Page, what string, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if errors.Is(err, context.DeadlineExceeded) && p.ctx.Err() == nil {
		err = fmt.Errorf("timed out after %v", p.timeout)
	}
	if err != nil {
		return v, fmt.Errorf("browser: %s: %w", what, err)
	}
	return v, nil
}

// SetViewport resizes the viewport to width×height CSS pixels.
func (p *Page) SetViewport(t testing.TB, width, height int) {
	t.Helper()
	var opts []chromedp.EmulateViewportOption
	if p.mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
	}
	p.do(t, fmt.Sprintf("set the viewport to %d×%d", width, height),
		chromedp.EmulateViewport(int64(width), int64(height), opts...))
	p.settle(t)
}

// SetColorScheme makes prefers-color-scheme match scheme.
func (p *Page) SetColorScheme(t testing.TB, scheme ColorScheme) {
	t.Helper()
	p.do(t, "emulate prefers-color-scheme: "+string(scheme), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: string(scheme)}},
		})
		return err
	}))
	p.settle(t)
}

// settle waits until the page has rendered a change of media and every
// transition it started has ended: an accessibility check or a screenshot
// taken half-way through a colour transition would see neither scheme.
func (p *Page) settle(t testing.TB) {
	t.Helper()
	const js = `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))
		.then(() => Promise.all(document.getAnimations().map(a => a.finished.catch(() => null))))
		.then(() => true)`
	if _, err := run(p, "let the page settle", chromedp.Evaluate[bool](js, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatalf("%v", err)
	}
}

// Navigate loads url and waits for its load event. It fails t when the
// document's HTTP status is 400 or more; for such a page, use
// p.Do(t, chromedp.Navigate(url)).
func (p *Page) Navigate(t testing.TB, url string) {
	t.Helper()
	resp, err := run(p, "navigate to "+url, chromedp.NavigateResponse(url))
	if err != nil {
		t.Fatalf("%v", err)
		return
	}
	if resp != nil && resp.Status >= 400 {
		t.Fatalf("browser: navigate to %s: HTTP %d %s", url, resp.Status, resp.StatusText)
	}
}

// WaitVisible waits until the element that the CSS selector sel matches is
// visible.
func (p *Page) WaitVisible(t testing.TB, sel string) {
	t.Helper()
	p.do(t, fmt.Sprintf("wait for %q to be visible", sel), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// WaitGone waits until no element matches the CSS selector sel.
func (p *Page) WaitGone(t testing.TB, sel string) {
	t.Helper()
	p.do(t, fmt.Sprintf("wait for %q to be gone", sel), chromedp.WaitNotPresent(chromedp.CSS(sel)))
}

// WaitText waits until the rendered text (innerText) of the element that the
// CSS selector sel matches contains text.
func (p *Page) WaitText(t testing.TB, sel, text string) {
	t.Helper()
	elem := "document.querySelector(" + jsString(sel) + ")"
	err := p.poll(fmt.Sprintf("wait for %q to show %q", sel, text), fmt.Sprintf("%s?.innerText.includes(%s)", elem, jsString(text)))
	if err != nil {
		got, rerr := run(p, "read", chromedp.Evaluate[string](elem+"?.innerText ?? '(no element)'"))
		if rerr == nil {
			err = fmt.Errorf("%w; it shows %q", err, got)
		}
		t.Fatalf("%v", err)
	}
}

// WaitFor waits until the JavaScript expression js is truthy.
func (p *Page) WaitFor(t testing.TB, js string) {
	t.Helper()
	if err := p.poll("wait for "+abbrev(js), js); err != nil {
		t.Fatalf("%v", err)
	}
}

// poll waits until js is truthy.
func (p *Page) poll(what, js string) error {
	_, err := run(p, what, chromedp.Poll[chromedp.Void](js,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(p.timeout)))
	return err
}

// Click waits until the element that the CSS selector sel matches is
// visible, and clicks it with the mouse.
func (p *Page) Click(t testing.TB, sel string) {
	t.Helper()
	p.do(t, fmt.Sprintf("click %q", sel), chromedp.Click(chromedp.CSS(sel)))
}

// ClickButton clicks the first visible button or link (button, a, input of
// type button or submit, [role=button]) whose text or aria-label is name,
// after collapsing white space.
func (p *Page) ClickButton(t testing.TB, name string) {
	t.Helper()
	p.do(t, fmt.Sprintf("click the button %q", name), chromedp.Click(chromedp.JSPath(buttonJS(name))))
}

// Fill replaces the text of the input or textarea that the CSS selector sel
// matches with text, typed key by key.
func (p *Page) Fill(t testing.TB, sel, text string) {
	t.Helper()
	p.fill(t, fmt.Sprintf("fill %q", sel), "document.querySelector("+jsString(sel)+")", text)
}

// FillLabel is Fill for the field whose label (a <label> element, or
// aria-label) has the text label, after collapsing white space.
func (p *Page) FillLabel(t testing.TB, label, text string) {
	t.Helper()
	p.fill(t, fmt.Sprintf("fill the field labelled %q", label), labelJS(label), text)
}

func (p *Page) fill(t testing.TB, what, elem, text string) {
	t.Helper()
	// The value is cleared with the prototype's setter, as a user's
	// deletion would, so that frameworks see an input event.
	clear := `(el => {
		if (el.value === '') return;
		Object.getOwnPropertyDescriptor(Object.getPrototypeOf(el), 'value').set.call(el, '');
		el.dispatchEvent(new Event('input', {bubbles: true}));
	})(` + elem + `)`
	p.do(t, what, chromedp.Steps(
		chromedp.WaitVisible(chromedp.JSPath(elem)),
		chromedp.Evaluate[chromedp.Void](clear),
		chromedp.SendKeys(chromedp.JSPath(elem), text),
	))
}

// Text is the rendered text (innerText) of the visible element that the CSS
// selector sel matches.
func (p *Page) Text(t testing.TB, sel string) string {
	t.Helper()
	s, err := run(p, fmt.Sprintf("read the text of %q", sel), chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("%v", err)
	}
	return s
}

// Exec evaluates the JavaScript expression js, and waits for it when it is a
// promise.
func (p *Page) Exec(t testing.TB, js string) {
	t.Helper()
	Eval[json.RawMessage](t, p, js)
}

// Eval evaluates the JavaScript expression js, waits for it when it is a
// promise, and decodes its value, as JSON, into a T with encoding/json
// (undefined is null). An exception fails t; it is not recorded as an
// error of the page.
func Eval[T any](t testing.TB, p *Page, js string) T {
	t.Helper()
	var v T
	raw, err := run(p, "evaluate "+abbrev(js), chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
	if errors.Is(err, chromedp.ErrJSUndefined) || errors.Is(err, chromedp.ErrJSNull) || err == nil && len(raw) == 0 {
		raw, err = []byte("null"), nil // undefined
	}
	if err != nil {
		t.Fatalf("%v", err)
		return v
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("browser: evaluate %s: decoding %s into %T: %v", abbrev(js), abbrev(string(raw)), v, err)
	}
	return v
}

// ReadClipboard is the text on the clipboard (navigator.clipboard.readText).
func (p *Page) ReadClipboard(t testing.TB) string {
	t.Helper()
	return Eval[string](t, p, `navigator.clipboard.readText()`)
}

// Screenshot waits for the requests in flight (WaitIdle), and writes a PNG
// of the whole page, not only the viewport, to path, creating its folder.
// A relative path is relative to ScreenshotDir (build/screenshots,
// git-ignored), so that tests never write into the source tree. It returns
// the path written.
func (p *Page) Screenshot(t testing.TB, path string) string {
	t.Helper()
	if !filepath.IsAbs(path) {
		path = filepath.Join(ScreenshotDir(t), path)
	}
	p.WaitIdle(t)
	img, err := run(p, "screenshot", chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("%v", err)
		return path
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatalf("browser: screenshot: %v", err)
		return path
	}
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatalf("browser: screenshot: %v", err)
	}
	return path
}

// screenshotOnFailure saves what the page showed when t failed.
func (p *Page) screenshotOnFailure(t testing.TB) {
	if p.ctx.Err() != nil {
		return
	}
	root, err := modroot.Find()
	if err != nil {
		return
	}
	name := fmt.Sprintf("%s-page%d.png", strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()), p.seq)
	path := filepath.Join(root, "build", "screenshots", "failed", name)
	p.timeout = 5 * time.Second
	img, err := run(p, "screenshot", chromedp.FullScreenshot(100))
	if err != nil {
		return
	}
	if os.MkdirAll(filepath.Dir(path), 0o755) == nil && os.WriteFile(path, img, 0o644) == nil {
		t.Logf("browser: the page when the test failed: %s", path)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// labelJS is an expression for the form field labelled label.
func labelJS(label string) string {
	return `(() => {
	const want = ` + jsString(label) + `;
	const norm = s => (s || '').replace(/\s+/g, ' ').trim();
	for (const l of document.querySelectorAll('label')) {
		if (norm(l.textContent) === want && l.control) return l.control;
	}
	for (const e of document.querySelectorAll('[aria-label]')) {
		if (norm(e.getAttribute('aria-label')) === want) return e;
	}
	return null;
})()`
}

// buttonJS is an expression for the button named name.
func buttonJS(name string) string {
	return `(() => {
	const want = ` + jsString(name) + `;
	const norm = s => (s || '').replace(/\s+/g, ' ').trim();
	for (const e of document.querySelectorAll('button, a[href], input[type=button], input[type=submit], [role=button]')) {
		const text = e.tagName === 'INPUT' ? e.value : e.textContent;
		const named = norm(text) === want || norm(e.getAttribute('aria-label')) === want;
		if (named && e.getClientRects().length > 0) return e;
	}
	return null;
})()`
}

// abbrev shortens s, a script or a value, for an error message.
func abbrev(s string) string { return abbrevN(s, 80) }

// abbrevN collapses the white space of s, and shortens it to n bytes.
func abbrevN(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}
