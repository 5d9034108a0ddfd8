package browser

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Message is a JavaScript error of a page, or an error of the browser's log
// about it.
type Message struct {
	// Kind is "console.error", "console.assert", "exception" (uncaught, or
	// an unhandled promise rejection), or "log/<source>" for an entry of
	// the browser's log: "log/security" for a CSP violation, "log/network"
	// for a failed load.
	Kind string
	Text string
	// URL and Line say where: the script, or the resource that failed to
	// load. Line starts at 1, and is 0 when unknown.
	URL  string
	Line int64

	requestID network.RequestID
}

func (m Message) String() string {
	s := m.Kind + ": " + m.Text
	switch {
	case m.URL != "" && m.Line > 0:
		s += fmt.Sprintf(" (%s:%d)", m.URL, m.Line)
	case m.URL != "" && !strings.Contains(m.Text, m.URL):
		s += " (" + m.URL + ")"
	}
	return s
}

// Request is a network request of a page. A redirect is a request of its
// own.
type Request struct {
	URL    string
	Method string
	Type   string // Document, Script, Image, Fetch, ...
	// Status is the HTTP status of the response, 0 without one.
	Status int64
	// Failed is why the load failed (e.g. net::ERR_NAME_NOT_RESOLVED, or
	// "blocked: csp"), "" if it did not.
	Failed string
}

// recorder records a page's errors and requests. The chromedp target calls
// handle for every event in order, and before the reply of any command
// that the browser sent after the event.
type recorder struct {
	mu        sync.Mutex
	jsErrors  []Message
	logErrors []Message
	requests  []*Request
	byID      map[network.RequestID]*Request
	inflight  map[network.RequestID]bool
	allowed   []allowance
}

// allowance is an expected failed load: of a request whose URL contains
// urlPart, with the HTTP status, among the log errors from index from on.
type allowance struct {
	urlPart string
	status  int64
	from    int
}

func newRecorder() *recorder {
	return &recorder{byID: map[network.RequestID]*Request{}, inflight: map[network.RequestID]bool{}}
}

func (r *recorder) handle(ev any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		m := Message{Kind: "console." + string(ev.Type), Text: consoleText(ev.Args)}
		if st := ev.StackTrace; st != nil && len(st.CallFrames) > 0 {
			m.URL, m.Line = st.CallFrames[0].URL, st.CallFrames[0].LineNumber+1
		}
		r.jsErrors = append(r.jsErrors, m)
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		m := Message{Kind: "exception", Text: d.Text, URL: d.URL, Line: d.LineNumber + 1}
		if d.Exception != nil && d.Exception.Description != "" {
			desc, _, _ := strings.Cut(d.Exception.Description, "\n")
			m.Text += " " + desc
		} else if d.Exception != nil {
			m.Text += " " + consoleText([]*runtime.RemoteObject{d.Exception})
		}
		if m.URL == "" && d.StackTrace != nil && len(d.StackTrace.CallFrames) > 0 {
			m.URL = d.StackTrace.CallFrames[0].URL
		}
		r.jsErrors = append(r.jsErrors, m)
	case *log.EventEntryAdded:
		e := ev.Entry
		if e.Level != log.EntryLevelError {
			return
		}
		m := Message{Kind: "log/" + string(e.Source), Text: e.Text, URL: e.URL, requestID: e.NetworkRequestID}
		if e.LineNumber > 0 {
			m.Line = e.LineNumber + 1
		}
		r.logErrors = append(r.logErrors, m)
	case *network.EventRequestWillBeSent:
		if prev := r.byID[ev.RequestID]; prev != nil && ev.RedirectResponse != nil {
			prev.Status = ev.RedirectResponse.Status
		}
		req := &Request{URL: ev.Request.URL, Method: ev.Request.Method, Type: string(ev.Type)}
		r.requests = append(r.requests, req)
		r.byID[ev.RequestID] = req
		if !strings.HasPrefix(req.URL, "data:") {
			r.inflight[ev.RequestID] = true
		}
	case *network.EventResponseReceived:
		if req := r.byID[ev.RequestID]; req != nil && ev.Response != nil {
			req.Status = ev.Response.Status
		}
	case *network.EventLoadingFinished:
		delete(r.inflight, ev.RequestID)
	case *network.EventLoadingFailed:
		if req := r.byID[ev.RequestID]; req != nil {
			req.Failed = ev.ErrorText
			if ev.BlockedReason != "" {
				req.Failed = "blocked: " + string(ev.BlockedReason)
			}
		}
		delete(r.inflight, ev.RequestID)
	}
}

// consoleText renders the arguments of a console call, roughly as
// DevTools does.
func consoleText(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		var s string
		switch {
		case a.Type == runtime.RemoteObjectTypeString && len(a.Value) > 0 && json.Unmarshal(a.Value, &s) == nil:
		case a.Description != "":
			s = a.Description
		case len(a.Value) > 0:
			s = string(a.Value)
		case a.UnserializableValue != "":
			s = string(a.UnserializableValue)
		default:
			s = string(a.Type)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// JSErrors are the page's console.error and console.assert calls and its
// uncaught exceptions, so far.
func (p *Page) JSErrors() []Message {
	p.rec.mu.Lock()
	defer p.rec.mu.Unlock()
	return append([]Message(nil), p.rec.jsErrors...)
}

// LogErrors are the errors of the browser's log about the page so far: CSP
// violations, failed loads, and the like.
func (p *Page) LogErrors() []Message {
	p.rec.mu.Lock()
	defer p.rec.mu.Unlock()
	return append([]Message(nil), p.rec.logErrors...)
}

// Requests are the page's requests so far, in order.
func (p *Page) Requests() []Request {
	p.rec.mu.Lock()
	defer p.rec.mu.Unlock()
	reqs := make([]Request, len(p.rec.requests))
	for i, r := range p.rec.requests {
		reqs[i] = *r
	}
	return reqs
}

// AllowFailedRequest lets AssertClean pass over the browser's "Failed to
// load resource" errors of requests whose URL contains urlPart and whose
// HTTP status is status, such as a deliberate 401, from now on. It covers
// nothing else: not an earlier failure, another status, a console.error of
// the page's own, or a request to another origin.
func (p *Page) AllowFailedRequest(urlPart string, status int) {
	p.rec.mu.Lock()
	defer p.rec.mu.Unlock()
	p.rec.allowed = append(p.rec.allowed, allowance{urlPart: urlPart, status: int64(status), from: len(p.rec.logErrors)})
}

// isAllowed reports whether the log error at index i is an allowed failed
// load. r.mu is held.
func (r *recorder) isAllowed(i int) bool {
	m := r.logErrors[i]
	if m.Kind != "log/"+string(log.EntrySourceNetwork) {
		return false
	}
	// Chromium asks for /favicon.ico by itself, after the load event, at a
	// time no test can wait for: its failure would make tests flaky.
	if u, err := url.Parse(m.URL); err == nil && u.Path == "/favicon.ico" && u.RawQuery == "" {
		return true
	}
	for _, a := range r.allowed {
		if i < a.from {
			continue
		}
		if req := r.byID[m.requestID]; m.requestID != "" && req != nil {
			if strings.Contains(req.URL, a.urlPart) && req.Status == a.status {
				return true
			}
		} else if strings.Contains(m.URL, a.urlPart) && strings.Contains(m.Text, fmt.Sprintf("status of %d ", a.status)) {
			return true
		}
	}
	return false
}

// WaitIdle waits until the page has had no request in flight for 100ms, for
// at most 5s (a page that polls or streams is never idle). It reports
// whether the page became idle.
func (p *Page) WaitIdle(t testing.TB) bool {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for quiet := 0; ; {
		p.rec.mu.Lock()
		n := len(p.rec.inflight)
		p.rec.mu.Unlock()
		if n == 0 {
			if quiet++; quiet == 3 {
				return true
			}
		} else {
			quiet = 0
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// flush makes sure the recorder has seen every event that the browser sent
// until now: the target hands events to it in order, before the reply to a
// command that follows them.
func (p *Page) flush(t testing.TB) {
	t.Helper()
	p.do(t, "sync with the page", chromedp.Evaluate[chromedp.Void](`0`))
}

// AssertClean fails t, listing what it found, when, during the page's life
// so far, a script logged an error (console.error, console.assert), threw
// an uncaught exception, the browser logged an error (a CSP violation, a
// failed load not allowed by AllowFailedRequest), or the page sent a
// request to an origin other than allowedOrigin (e.g. the test server's
// URL). data: URLs, and blob: URLs of allowedOrigin, are allowed, and so is
// a failed /favicon.ico, which Chromium asks for by itself at a time no test
// can wait for. It first waits for the requests in flight to end (WaitIdle).
func (p *Page) AssertClean(t testing.TB, allowedOrigin string) {
	t.Helper()
	origin, err := originOf(allowedOrigin)
	if err != nil {
		t.Fatalf("browser: AssertClean: allowed origin %q: %v", allowedOrigin, err)
		return
	}
	idle := p.WaitIdle(t)
	p.flush(t)

	var problems []string
	p.rec.mu.Lock()
	for _, m := range p.rec.jsErrors {
		problems = append(problems, m.String())
	}
	for i, m := range p.rec.logErrors {
		if !p.rec.isAllowed(i) {
			problems = append(problems, m.String())
		}
	}
	for _, r := range p.rec.requests {
		if !sameOrigin(r.URL, origin) {
			problems = append(problems, fmt.Sprintf("request to another origin than %s: %s %s", origin, r.Method, r.URL))
		}
	}
	var pending []string
	if !idle {
		for id := range p.rec.inflight {
			if r := p.rec.byID[id]; r != nil {
				pending = append(pending, r.URL)
			}
		}
	}
	p.rec.mu.Unlock()

	if len(pending) > 0 {
		t.Logf("browser: AssertClean: requests still in flight after 5s: %s", strings.Join(pending, ", "))
	}
	if len(problems) > 0 {
		t.Errorf("browser: the page had %d problem(s):\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
}

// originOf is the origin (scheme://host[:port]) of a URL.
func originOf(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("not an absolute URL")
	}
	return u.Scheme + "://" + u.Host, nil
}

// sameOrigin reports whether a request to raw stays within origin.
func sameOrigin(raw, origin string) bool {
	switch {
	case strings.HasPrefix(raw, "data:"), strings.HasPrefix(raw, "about:"):
		return true
	case strings.HasPrefix(raw, "blob:"):
		raw = strings.TrimPrefix(raw, "blob:")
	}
	o, err := originOf(raw)
	return err == nil && o == origin
}
