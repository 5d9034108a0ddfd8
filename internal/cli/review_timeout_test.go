package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A server that takes the request and never answers must not hang the
// command (a script, a CI job) for ever: the help promises exit 5 on a
// timeout.
func TestRequestTimeout(t *testing.T) {
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	defer srv.Close()
	defer close(done)
	defer func(d time.Duration) { requestTimeout = d }(requestTimeout)
	requestTimeout = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	got := Run(ctx, []string{"whoami"}, Env{
		Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
		Getenv: func(name string) string {
			return map[string]string{"KEYGATE_URL": srv.URL, "KEYGATE_API_KEY": "kg_in_test"}[name]
		},
	})
	if got != ExitServer || ctx.Err() != nil {
		t.Errorf("exit %d, stderr %q; want %d within the timeout", got, stderr.String(), ExitServer)
	}
}
