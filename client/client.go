// Package client is a Go client for keygate's management API: keys,
// owners, audit, usage, webhooks, verify and whoami.
//
// Every method takes a context and answers with typed values, or an error;
// an error the API answered is a *Error, with its HTTP status and its
// envelope's code. Requests the API refused for a moment (503, 429) are
// retried with exponential backoff, when repeating them cannot do twice
// what was asked. Listings are iterators over every page.
//
// The package depends on the standard library alone, so that a program
// importing it pulls in none of keygate's server code.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of the retry policy; see WithRetries.
const (
	DefaultMaxAttempts = 4
	DefaultMinBackoff  = 250 * time.Millisecond
	DefaultMaxBackoff  = 10 * time.Second
)

// maxResponseBytes bounds what a response body may hold: far more than any
// page of keygate's, far less than a mistaken endpoint could stream.
const maxResponseBytes = 16 << 20

// Client calls one keygate deployment with one API key. It is safe for
// concurrent use.
type Client struct {
	base        *url.URL
	apiKey      string
	http        *http.Client
	userAgent   string
	maxAttempts int
	minBackoff  time.Duration
	maxBackoff  time.Duration
	onWarnings  func(warnings []string)
}

// String describes c without its API key, which would otherwise be in
// any %v, %+v or %#v of a Client that ends up in a log.
func (c Client) String() string {
	return fmt.Sprintf("keygate.Client{%s}", c.base.Redacted())
}

// GoString is String, for %#v.
func (c Client) GoString() string { return c.String() }

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends the requests through hc instead of
// http.DefaultClient; a copy of hc, that follows no redirect (its
// CheckRedirect is replaced: keygate's API never redirects).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithUserAgent names the program in the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithWarnings calls fn with the warnings of a successful answer: keygate
// does what a valid request asks and warns when it is likely a mistake
// (an IP allowlist that admits every address, or none).
func WithWarnings(fn func(warnings []string)) Option { return func(c *Client) { c.onWarnings = fn } }

// WithRetries sets how often a request is tried at most (1: never
// retried) and the bounds of the wait before a retry: the wait doubles
// from minBackoff up to maxBackoff, with jitter. A Retry-After of the API
// is honoured when it is at most maxBackoff; a longer one ends the retries
// and is in the *Error's RetryAfter.
func WithRetries(maxAttempts int, minBackoff, maxBackoff time.Duration) Option {
	return func(c *Client) {
		minBackoff = max(minBackoff, 0) // a negative wait would make backoff's rand.N panic
		c.maxAttempts, c.minBackoff, c.maxBackoff = max(maxAttempts, 1), minBackoff, max(maxBackoff, minBackoff)
	}
}

// New returns a client of the API at baseURL (the stage's URL, e.g.
// https://abc.execute-api.eu-west-1.amazonaws.com/prod, or
// http://127.0.0.1:3000 for make run) that authenticates with apiKey.
func New(baseURL, apiKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("keygate: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("keygate: base URL %q: want http(s)://host[/stage]", baseURL)
	}
	if apiKey == "" {
		return nil, errors.New("keygate: an API key is required")
	}
	c := &Client{
		base: u, apiKey: apiKey, http: http.DefaultClient, userAgent: "keygate-go",
		maxAttempts: DefaultMaxAttempts, minBackoff: DefaultMinBackoff, maxBackoff: DefaultMaxBackoff,
	}
	for _, o := range opts {
		o(c)
	}
	// keygate's API never redirects. Following a redirect would send the
	// request again elsewhere: a 307 or 308 re-sends its body (a verify's
	// key, a created key's settings), and to the same host on another port
	// or scheme, or to a subdomain, the Authorization header too. A
	// redirect is an answer, an *Error with its 3xx status.
	hc := *c.http
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.http = &hc
	return c, nil
}

// Error is an answer of the API that is not a success: its HTTP status
// and the envelope's code ("not_found", "unauthorized", ...), message and
// request id (quote it when asking about a failure: the log has it).
// Answers that carry no envelope (a proxy's, a gateway's) have an empty
// Code and the body's message or the status text.
type Error struct {
	Status    int
	Code      string
	Message   string
	RequestID string
	// RetryAfter is the wait the API asked for before a retry (the
	// Retry-After header), 0 when it asked for none.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("keygate: %d", e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RequestID != "" {
		msg += " (request " + e.RequestID + ")"
	}
	return msg
}

// envelope is every answer of keygate's.
type envelope struct {
	Success    bool            `json:"success"`
	Data       json.RawMessage `json:"data"`
	NextCursor string          `json:"nextCursor"`
	Message    string          `json:"message"`
	Warnings   []string        `json:"warnings"`
	Error      *struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"requestId"`
	} `json:"error"`
}

// call is one operation: a route, its input, and whether sending it again
// after a 503 is safe, because repeating it leaves the same state and
// answer as sending it once.
type call struct {
	method     string
	path       string
	query      url.Values
	body       any
	idempotent bool
}

// do sends op, retrying as the policy allows, and decodes the answer's
// data into out (when not nil). It returns the envelope's nextCursor.
func (c *Client) do(ctx context.Context, op call, out any) (string, error) {
	var body []byte
	if op.body != nil {
		var err error
		if body, err = json.Marshal(op.body); err != nil {
			return "", fmt.Errorf("keygate: encode request: %w", err)
		}
	}
	for attempt := 1; ; attempt++ {
		env, err := c.send(ctx, op, body)
		if err == nil {
			return c.decode(op, env, out)
		}
		var apiErr *Error
		// A Retry-After longer than the longest wait of the policy is the
		// caller's to decide on.
		if !errors.As(err, &apiErr) || !retryable(op, apiErr) || attempt >= c.maxAttempts || apiErr.RetryAfter > c.maxBackoff {
			return "", err
		}
		t := time.NewTimer(max(c.backoff(attempt), apiErr.RetryAfter))
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("keygate: %w while waiting to retry after: %w", ctx.Err(), apiErr)
		case <-t.C:
		}
	}
}

// decode hands over a successful answer's warnings and decodes its data
// into out.
func (c *Client) decode(op call, env *envelope, out any) (string, error) {
	if len(env.Warnings) > 0 && c.onWarnings != nil {
		c.onWarnings(env.Warnings)
	}
	if out != nil && len(env.Data) > 0 {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return "", fmt.Errorf("keygate: %s %s: decode answer: %w", op.method, op.path, err)
		}
	}
	return env.NextCursor, nil
}

// retryable reports whether err, the answer to op, may be cured by sending
// op again. A 429 is refused before anything is done (API Gateway's
// throttling, the web ACL; keygate's own 4xx write nothing), so any
// request may be sent again. A 503 may come after a write that took
// effect, so only an idempotent request is.
func retryable(op call, err *Error) bool {
	switch err.Status {
	case http.StatusTooManyRequests:
		return true
	case http.StatusServiceUnavailable:
		return op.idempotent
	}
	return false
}

// backoff is the wait before retry number attempt: minBackoff doubled on
// each, at most maxBackoff, less up to half of it at random, so that
// clients refused together do not come back together.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.minBackoff
	for i := 1; i < attempt && d < c.maxBackoff; i++ {
		if d > c.maxBackoff/2 { // doubling could overflow
			d = c.maxBackoff
			break
		}
		d *= 2
	}
	d = min(d, c.maxBackoff)
	return d - rand.N(d/2+1)
}

// send makes one attempt.
func (c *Client) send(ctx context.Context, op call, body []byte) (*envelope, error) {
	// op.path is escaped already (pathf): a key id or owner holding a "/"
	// stays one segment.
	u := *c.base
	u.RawPath = c.base.EscapedPath() + op.path
	u.Path, _ = url.PathUnescape(u.RawPath)
	if len(op.query) > 0 {
		u.RawQuery = op.query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, op.method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("keygate: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("keygate: %s %s: %w", op.method, op.path, unwrapURLError(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("keygate: %s %s: read answer: %w", op.method, op.path, err)
	}
	var env envelope
	decodeErr := json.Unmarshal(raw, &env)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 && decodeErr == nil && env.Success {
		return &env, nil
	}
	apiErr := &Error{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	switch {
	case decodeErr == nil && env.Error != nil:
		apiErr.Code, apiErr.Message, apiErr.RequestID = env.Error.Code, env.Error.Message, env.Error.RequestID
	case decodeErr == nil && env.Message != "":
		apiErr.Message = env.Message // API Gateway's own answers: {"message": "..."}
	default:
		apiErr.Message = http.StatusText(resp.StatusCode)
		if resp.StatusCode < 300 {
			apiErr.Message = "the answer is not keygate's JSON envelope: is the URL keygate's?"
		}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			apiErr.Message = "a redirect, not followed: keygate's API does not redirect, is the URL keygate's?"
		}
	}
	return nil, apiErr
}

// unwrapURLError drops *url.Error's repetition of the method and URL,
// which the caller's message already names.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s > 0 {
		// Beyond a time.Duration's ~292 years the product would wrap
		// around, to a short or negative wait retried at once.
		if s > int64(math.MaxInt64/time.Second) {
			return math.MaxInt64
		}
		return time.Duration(s) * time.Second
	}
	if _, err := strconv.ParseInt(v, 10, 64); errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(v, "-") {
		return math.MaxInt64 // more seconds than an int64 holds
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// pathf formats a route's path, each argument escaped as one segment.
func pathf(format string, segments ...string) string {
	args := make([]any, len(segments))
	for i, s := range segments {
		args[i] = url.PathEscape(s)
	}
	return fmt.Sprintf(format, args...)
}
