// Package browser runs pages in real headless Chromium for tests, through the
// Chrome DevTools Protocol, with chromedp (github.com/chromedp/chromedp).
//
// Start one browser per test, or per parent test and shared by its subtests,
// and open a page for each scenario. Each page is a tab in a browser context
// of its own (its own cookies and storage) unless PageOptions.SessionOf says
// otherwise, and it records, for its whole life, the page's JavaScript
// errors, the errors of the browser's log about it (CSP violations, failed
// loads) and its requests. A test typically ends with Axe and AssertClean:
//
//	func TestKeysPage(t *testing.T) {
//		b := browser.Start(t) // skipped with -short, or without Chromium outside CI
//		srv := httptest.NewServer(handler)
//		defer srv.Close()
//
//		p := b.NewPage(t, browser.PageOptions{Width: 375, ColorScheme: browser.Dark})
//		p.Navigate(t, srv.URL+"/keys")
//		p.FillLabel(t, "Name", "Production key")
//		p.ClickButton(t, "Create key")
//		p.WaitVisible(t, "#new-key")
//		if got := p.ReadClipboard(t); !strings.HasPrefix(got, "kg_") {
//			t.Errorf("clipboard %q", got)
//		}
//		p.Screenshot(t, "console/keys-dark-375.png") // in build/screenshots/
//		p.Axe(t, "keys")
//		p.AssertClean(t, srv.URL)
//	}
//
// Chromium is Debian's chromium package, which `make test` installs; the
// environment variable CHROMIUM names another binary. Tests that need the
// browser follow internal/testenv: skipped with -short, skipped when
// Chromium is missing on a developer's machine, failed when it is missing in
// CI. Page.Axe needs axe-core, which `make deps` installs into
// infra/node_modules.
package browser

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"

	"github.com/keygate/keygate/internal/modroot"
	"github.com/keygate/keygate/internal/testenv"
)

// startTimeout bounds the start of Chromium: a browser that has not answered
// by then will not.
const startTimeout = time.Minute

// Browser is one headless Chromium process. Its pages may be used from
// parallel subtests, each page from one goroutine at a time.
type Browser struct {
	ctx     context.Context // the chromedp context of the browser's first tab
	version string
	pages   atomic.Int64 // the pages opened so far
}

// Start starts headless Chromium for t and stops it when t ends. It skips t
// under -short, and when Chromium is missing (it fails t instead when CI is
// set).
func Start(t testing.TB) *Browser {
	t.Helper()
	testenv.Integration(t)
	path, err := ExecPath()
	testenv.Require(t, err)

	out := &testenv.Buffer{}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.UserDataDir(t.TempDir()),
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			// Without these, Chromium keeps reaching out to Google's
			// services (updates, sync, QUIC), which a closed network
			// refuses. (chromedp's defaults set two of them already.)
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-sync", true),
			chromedp.CombinedOutput(out),
		)...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})

	b := &Browser{ctx: ctx}
	// The first action starts the browser, and binds its life to the
	// context it runs with: ctx, not a context with a timeout.
	var version string
	err = first(ctx, startTimeout, func(ctx context.Context) error {
		v, err := chromedp.CallBrowser(ctx, cdpbrowser.GetVersion, cdp.Empty{})
		version = v.Product
		return err
	})
	if err != nil {
		t.Fatalf("browser: starting %s: %v\nChromium's output:\n%s", path, err, strings.TrimSpace(out.String()))
		return nil
	}
	b.version = version
	t.Logf("browser: %s (%s)", b.version, path)
	return b
}

// first runs chromedp's first action on ctx, which starts the browser or
// opens the tab and ties it to ctx for good, so that it cannot run with a
// deadline: it gives up waiting after timeout instead (and the test's
// cleanup ends ctx).
func first(ctx context.Context, timeout time.Duration, do func(context.Context) error) error {
	done := make(chan error, 1)
	go func() { done <- do(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("no answer after %v", timeout)
	}
}

// Version is the browser's product and version, e.g. "Chrome/156.0.8078.114".
func (b *Browser) Version() string { return b.version }

// ExecPath finds Chromium: the binary that the environment variable CHROMIUM
// names, else /usr/bin/chromium, else chromium or chromium-browser on PATH.
func ExecPath() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		path, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("Chromium: CHROMIUM=%s: %w", p, err)
		}
		return path, nil
	}
	const debian = "/usr/bin/chromium"
	if _, err := os.Stat(debian); err == nil {
		return debian, nil
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", errors.New("Chromium is not installed (no /usr/bin/chromium, chromium or chromium-browser on PATH; " +
		"apt-get install chromium, or set CHROMIUM)")
}

// ScreenshotDir is the git-ignored folder for screenshots of the tests:
// build/screenshots at the root of the module.
func ScreenshotDir(t testing.TB) string {
	t.Helper()
	root, err := modroot.Find()
	if err != nil {
		t.Fatalf("browser: %v", err)
		return ""
	}
	return filepath.Join(root, "build", "screenshots")
}

// axeSource is infra/node_modules/axe-core/axe.min.js, read once.
var axeSource = sync.OnceValues(func() (string, error) {
	root, err := modroot.Find()
	if err != nil {
		return "", err
	}
	path := filepath.Join(root, "infra", "node_modules", "axe-core", "axe.min.js")
	src, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("axe-core is not installed (`make deps` installs it): %w", err)
	}
	return string(src), nil
})
