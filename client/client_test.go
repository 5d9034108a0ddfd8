package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/client"
)

// answer is a canned response.
type answer struct {
	status     int
	body       string
	retryAfter string
}

// scripted serves answers in order (the last one again once they run out)
// and counts the requests.
func scripted(t *testing.T, answers ...answer) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		a := answers[min(i, len(answers)-1)]
		if a.retryAfter != "" {
			w.Header().Set("Retry-After", a.retryAfter)
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func newClient(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, "kg_in_test", append([]client.Option{client.WithRetries(4, time.Millisecond, 20*time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const (
	keyBody         = `{"success":true,"data":{"id":"key_1","name":"a","status":"active","mode":"leased"}}`
	unavailableBody = `{"success":false,"error":{"code":"unavailable","message":"retry","requestId":"r1"}}`
)

func TestErrorDecoding(t *testing.T) {
	tests := []struct {
		name string
		in   answer
		want client.Error
	}{
		{"envelope", answer{404, `{"success":false,"error":{"code":"not_found","message":"API key not found","requestId":"req-1"}}`, ""},
			client.Error{Status: 404, Code: "not_found", Message: "API key not found", RequestID: "req-1"}},
		{"envelope with Retry-After", answer{403, `{"success":false,"error":{"code":"rate_limited","message":"slow down"}}`, "7"},
			client.Error{Status: 403, Code: "rate_limited", Message: "slow down", RetryAfter: 7 * time.Second}},
		{"API Gateway's own answer", answer{403, `{"message":"Missing Authentication Token"}`, ""},
			client.Error{Status: 403, Message: "Missing Authentication Token"}},
		{"not JSON", answer{502, `<html>Bad Gateway</html>`, ""},
			client.Error{Status: 502, Message: "Bad Gateway"}},
		{"a 200 that is not keygate's", answer{200, `{"hello":"world"}`, ""},
			client.Error{Status: 200, Message: "the answer is not keygate's JSON envelope: is the URL keygate's?"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := scripted(t, tt.in)
			_, err := newClient(t, srv.URL).GetKey(context.Background(), "key_1")
			var apiErr *client.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want a *client.Error", err)
			}
			if *apiErr != tt.want {
				t.Errorf("err = %+v, want %+v", *apiErr, tt.want)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	unavailable := answer{503, unavailableBody, ""}
	throttled := answer{429, `{"message":"Too Many Requests"}`, ""}
	ok := answer{200, keyBody, ""}
	ctx := context.Background()
	tests := []struct {
		name       string
		send       func(*client.Client) error
		answers    []answer
		wantTries  int32
		wantStatus int // 0: success
	}{
		{"a read is retried on 503", func(c *client.Client) error { _, err := c.GetKey(ctx, "key_1"); return err },
			[]answer{unavailable, unavailable, ok}, 3, 0},
		{"retries end after the last attempt", func(c *client.Client) error { _, err := c.GetKey(ctx, "key_1"); return err },
			[]answer{unavailable}, 4, 503},
		{"a revoke is retried", func(c *client.Client) error { return c.RevokeKey(ctx, "key_1") },
			[]answer{unavailable, {200, `{"success":true,"message":"API key revoked"}`, ""}}, 2, 0},
		{"a create is not retried on 503: it may have made the key", func(c *client.Client) error {
			_, err := c.CreateKey(ctx, client.CreateKeyRequest{Name: "a", Tier: "public"})
			return err
		}, []answer{unavailable, ok}, 1, 503},
		{"a create is retried on 429: nothing was done", func(c *client.Client) error {
			_, err := c.CreateKey(ctx, client.CreateKeyRequest{Name: "a", Tier: "public"})
			return err
		}, []answer{throttled, ok}, 2, 0},
		{"a rotate is not retried on 503", func(c *client.Client) error {
			_, err := c.RotateKey(ctx, "key_1", client.RotateKeyRequest{})
			return err
		},
			[]answer{unavailable, ok}, 1, 503},
		{"an increment is not retried on 503", func(c *client.Client) error {
			_, err := c.AdjustCredits(ctx, "key_1", client.CreditsAdjustment{Op: client.CreditsIncrement, Value: 1})
			return err
		}, []answer{unavailable, ok}, 1, 503},
		{"a set is retried on 503", func(c *client.Client) error {
			_, err := c.AdjustCredits(ctx, "key_1", client.CreditsAdjustment{Op: client.CreditsSet, Value: 1})
			return err
		}, []answer{unavailable, ok}, 2, 0},
		{"a verify that spends is not retried on 503", func(c *client.Client) error { _, err := c.Verify(ctx, client.VerifyRequest{Key: "k"}); return err },
			[]answer{unavailable, ok}, 1, 503},
		{"an owner revoke carries on when retried", func(c *client.Client) error {
			_, err := c.RevokeOwner(ctx, "o", client.RevokeOwnerRequest{})
			return err
		},
			[]answer{unavailable, {200, `{"success":true,"data":{"revoked":3}}`, ""}}, 2, 0},
		{"other errors are not retried", func(c *client.Client) error { _, err := c.GetKey(ctx, "key_1"); return err },
			[]answer{{500, `{"success":false,"error":{"code":"internal","message":"internal error"}}`, ""}, ok}, 1, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, n := scripted(t, tt.answers...)
			err := tt.send(newClient(t, srv.URL))
			if got := n.Load(); got != tt.wantTries {
				t.Errorf("%d requests, want %d", got, tt.wantTries)
			}
			var apiErr *client.Error
			switch {
			case tt.wantStatus == 0 && err != nil:
				t.Errorf("err = %v, want none", err)
			case tt.wantStatus != 0 && (!errors.As(err, &apiErr) || apiErr.Status != tt.wantStatus):
				t.Errorf("err = %v, want a %d", err, tt.wantStatus)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	t.Run("honoured", func(t *testing.T) {
		srv, n := scripted(t, answer{429, `{"message":"Too Many Requests"}`, "1"}, answer{200, keyBody, ""})
		start := time.Now()
		if _, err := newClient(t, srv.URL, client.WithRetries(3, time.Millisecond, 2*time.Second)).GetKey(context.Background(), "key_1"); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited < time.Second || n.Load() != 2 {
			t.Errorf("%d requests over %v, want 2, a second apart", n.Load(), waited)
		}
	})
	t.Run("longer than the client waits: returned at once", func(t *testing.T) {
		srv, n := scripted(t, answer{503, unavailableBody, "3600"}, answer{200, keyBody, ""})
		_, err := newClient(t, srv.URL).GetKey(context.Background(), "key_1")
		var apiErr *client.Error
		if !errors.As(err, &apiErr) || apiErr.RetryAfter != time.Hour || n.Load() != 1 {
			t.Errorf("err = %v after %d requests, want the 503 with RetryAfter 1h after 1", err, n.Load())
		}
	})
}

func TestCancelDuringBackoff(t *testing.T) {
	srv, n := scripted(t, answer{503, unavailableBody, ""})
	c := newClient(t, srv.URL, client.WithRetries(5, time.Minute, time.Minute))
	// Ample for the first request on a loaded machine, far short of the
	// minute's backoff that follows it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.GetKey(ctx, "key_1")
	var apiErr *client.Error
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &apiErr) || apiErr.Status != 503 {
		t.Errorf("err = %v, want the deadline and the 503 it cut short", err)
	}
	if waited := time.Since(start); waited > 5*time.Second || n.Load() != 1 {
		t.Errorf("%d requests over %v, want 1, ended by the deadline", n.Load(), waited)
	}
}

// TestPagination serves 5 keys in pages of 2, each cursor naming where
// the next page starts.
func TestPagination(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if got := r.URL.Query().Get("owner"); got != "acme" {
			t.Errorf("owner = %q, want the filter on every page", got)
		}
		start := 0
		fmt.Sscan(r.URL.Query().Get("cursor"), &start)
		if start == 4 && r.URL.Query().Get("search") == "fail" {
			w.WriteHeader(400)
			io.WriteString(w, `{"success":false,"error":{"code":"bad_request","message":"cursor: invalid"}}`)
			return
		}
		var items []string
		for i := start; i < min(start+2, 5); i++ {
			items = append(items, fmt.Sprintf(`{"id":"key_%d"}`, i))
		}
		next := ""
		if start+2 < 5 {
			next = fmt.Sprint(start + 2)
		}
		fmt.Fprintf(w, `{"success":true,"data":[%s],"nextCursor":%q}`, strings.Join(items, ","), next)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL)
	ctx := context.Background()

	var ids []string
	for k, err := range c.AllKeys(ctx, client.ListKeysRequest{Owner: "acme"}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
	}
	if got := strings.Join(ids, ","); got != "key_0,key_1,key_2,key_3,key_4" || requests.Load() != 3 {
		t.Errorf("keys %s in %d requests, want key_0 to key_4 in 3", got, requests.Load())
	}

	requests.Store(0)
	for range c.AllKeys(ctx, client.ListKeysRequest{Owner: "acme"}) {
		break
	}
	if requests.Load() != 1 {
		t.Errorf("stopping after the first key read %d pages, want 1", requests.Load())
	}

	var last error
	count := 0
	for _, err := range c.AllKeys(ctx, client.ListKeysRequest{Owner: "acme", Search: "fail"}) {
		count++
		last = err
	}
	var apiErr *client.Error
	if count != 5 || !errors.As(last, &apiErr) || apiErr.Code != "bad_request" {
		t.Errorf("%d yields ending with %v, want 4 keys then the third page's error", count, last)
	}
}

// TestRequests checks what goes on the wire: the key, the escaped path,
// and null, absent and empty fields kept apart.
func TestRequests(t *testing.T) {
	var got struct {
		method, path, auth, body string
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.method, got.path, got.auth, got.body = r.Method, r.URL.EscapedPath()+"?"+r.URL.RawQuery, r.Header.Get("Authorization"), string(b)
		io.WriteString(w, keyBody)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL+"/prod/")
	ctx := context.Background()
	name := "renamed"
	tests := []struct {
		name                   string
		send                   func() error
		method, path, wantBody string
	}{
		{"update", func() error {
			_, err := c.UpdateKey(ctx, "key_1", client.UpdateKeyRequest{
				Name: &name, ExpiresAt: client.Null[time.Time](), RateLimits: client.Value([]client.RateLimit{}),
			})
			return err
		}, "PATCH", "/prod/v1/api-keys/key_1?", `{"name":"renamed","expiresAt":null,"rateLimits":[]}`},
		{"create with the tier's limits and unlimited credits", func() error {
			_, err := c.CreateKey(ctx, client.CreateKeyRequest{Name: "a", Tier: "public", Mode: client.ModeLeased, Credits: client.Null[client.CreditsInput]()})
			return err
		}, "POST", "/prod/v1/api-keys?", `{"name":"a","tier":"public","mode":"leased","credits":null}`},
		{"an owner with a slash stays one segment", func() error {
			_, err := c.RevokeOwner(ctx, "team/a b", client.RevokeOwnerRequest{IncludeCreated: true})
			return err
		}, "POST", "/prod/v1/owners/team%2Fa%20b/revoke?includeCreated=true", ""},
		{"usage range", func() error {
			_, err := c.KeyUsage(ctx, "key_1", client.UsageRange{Granularity: client.Day, From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)})
			return err
		}, "GET", "/prod/v1/api-keys/key_1/usage?from=2026-11-01T00%3A00%3A00Z&granularity=day", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.send(); err != nil {
				t.Fatal(err)
			}
			if got.method != tt.method || got.path != tt.path || got.auth != "Bearer kg_in_test" || got.body != tt.wantBody {
				t.Errorf("sent %s %s (%s) %s, want %s %s %s", got.method, got.path, got.auth, got.body, tt.method, tt.path, tt.wantBody)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	srv, _ := scripted(t, answer{200, `{"success":true,"data":{"id":"key_1"},"warnings":["ipAllowlist: 0.0.0.0/0 admits every address"]}`, ""})
	var got []string
	c := newClient(t, srv.URL, client.WithWarnings(func(w []string) { got = append(got, w...) }))
	if _, err := c.UpdateKey(context.Background(), "key_1", client.UpdateKeyRequest{IPAllowlist: &[]string{"0.0.0.0/0"}}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !strings.Contains(got[0], "admits every address") {
		t.Errorf("warnings %q, want the answer's", got)
	}
}

// TestStandardLibraryOnly keeps the package free of keygate's server code
// and every other module: a program importing it must not pull in the
// Lambda runtime or the AWS SDK.
func TestStandardLibraryOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if deps := strings.Fields(string(out)); len(deps) != 1 || deps[0] != "github.com/keygate/keygate/client" {
		t.Errorf("the client imports %v, want the standard library only", deps)
	}
}
