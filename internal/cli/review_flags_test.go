package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// A negative --limit is not "all": it is a wrong command line.
func TestNegativeLimit(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		io.WriteString(w, `{"success":true,"data":[]}`)
	}))
	defer srv.Close()
	for _, args := range [][]string{
		{"keys", "list", "--limit", "-1"}, {"audit", "--limit", "-5"}, {"usage", "--limit", "-1"}, {"webhooks", "deliveries", "wh_1", "--limit", "-1"},
	} {
		var stdout, stderr bytes.Buffer
		got := Run(context.Background(), args, Env{
			Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
			Getenv: func(name string) string {
				return map[string]string{"KEYGATE_URL": srv.URL, "KEYGATE_API_KEY": "kg_in_test"}[name]
			},
		})
		if got != ExitUsage || !strings.Contains(stderr.String(), "--limit") {
			t.Errorf("%v: exit %d, stderr %q; want %d naming --limit", args, got, stderr.String(), ExitUsage)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests sent for wrong command lines", n)
	}
}

// Interrupted while waiting to retry a 503 is interrupted (1), as the help
// says, not a server error (5).
func TestInterruptedDuringRetry(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(503)
		io.WriteString(w, `{"success":false,"error":{"code":"unavailable","message":"retry"}}`)
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr bytes.Buffer
	env := Env{
		Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &bytes.Buffer{},
		Getenv: func(name string) string {
			return map[string]string{"KEYGATE_URL": srv.URL, "KEYGATE_API_KEY": "kg_in_test"}[name]
		},
		HTTPClient: &http.Client{Transport: cancelAfter{cancel}},
	}
	env.Stderr = &stderr
	if got := Run(ctx, []string{"keys", "get", "key_1"}, env); got != ExitRefused {
		t.Errorf("exit %d, stderr %q; want %d", got, stderr.String(), ExitRefused)
	}
}

// cancelAfter cancels the run once the first answer is in.
type cancelAfter struct{ cancel context.CancelFunc }

func (c cancelAfter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	c.cancel()
	return resp, err
}
