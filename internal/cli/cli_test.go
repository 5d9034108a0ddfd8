package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// TestExitCodes runs commands against a server that answers each path
// with a fixed status, and checks the exit code each gets.
func TestExitCodes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answers := map[string]struct {
			status int
			body   string
		}{
			"/v1/api-keys/key_ok":      {200, `{"success":true,"data":{"id":"key_ok","name":"a","tier":"public","status":"active"}}`},
			"/v1/api-keys/key_missing": {404, `{"success":false,"error":{"code":"not_found","message":"API key not found","requestId":"r1"}}`},
			"/v1/api-keys/key_denied":  {403, `{"success":false,"error":{"code":"insufficient_scope","message":"scope admin required"}}`},
			"/v1/api-keys/key_limited": {403, `{"success":false,"error":{"code":"rate_limited","message":"slow down"}}`},
			"/v1/api-keys/key_broken":  {500, `{"success":false,"error":{"code":"internal","message":"internal error"}}`},
			"/v1/api-keys/key_html":    {200, `<html>a console</html>`},
			"/v1/api-keys":             {400, `{"success":false,"error":{"code":"bad_request","message":"tier: unknown"}}`},
			"/v1/verify":               {200, `{"success":true,"data":{"valid":false,"code":"REVOKED","scopes":[]}}`},
		}
		a, ok := answers[r.URL.Path]
		if !ok {
			a.status, a.body = 404, `{"success":false,"error":{"code":"not_found","message":"no route"}}`
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	defer srv.Close()
	env := map[string]string{"KEYGATE_URL": srv.URL, "KEYGATE_API_KEY": "kg_in_test"}
	tests := []struct {
		args    []string
		stdin   string
		env     map[string]string
		want    int
		wantErr string
	}{
		{[]string{"keys", "get", "key_ok"}, "", env, ExitOK, ""},
		{[]string{"keys", "get", "key_missing"}, "", env, ExitNotFound, "API key not found (404 not_found), request r1"},
		{[]string{"keys", "get", "key_denied"}, "", env, ExitAuth, "scope admin required"},
		{[]string{"keys", "get", "key_limited"}, "", env, ExitRefused, "slow down"},
		{[]string{"keys", "get", "key_broken"}, "", env, ExitServer, "internal error"},
		{[]string{"keys", "get", "key_html"}, "", env, ExitServer, "is the URL keygate's?"},
		{[]string{"keys", "create", "--name", "a", "--tier", "gold"}, "", env, ExitRefused, "tier: unknown"},
		{[]string{"verify"}, "kg_pk_x\n", env, ExitInvalid, "REVOKED"},
		{[]string{"keys", "get", "key_ok", "--nope"}, "", env, ExitUsage, "unknown flag: --nope"},
		{[]string{"keys", "get"}, "", env, ExitUsage, "want one argument, KEY_ID"},
		{[]string{"keys", "create", "--name", "a"}, "", env, ExitUsage, `required flag(s) "tier" not set`},
		{[]string{"keys", "create", "--name", "a", "--tier", "t", "--rate-limit", "burst=10"}, "", env, ExitUsage, "want NAME=LIMIT/WINDOW"},
		{[]string{"keys", "update", "key_ok"}, "", env, ExitUsage, "nothing to change"},
		{[]string{"keys", "frobnicate"}, "", env, ExitUsage, `unknown command "frobnicate"`},
		{[]string{"keys", "get", "key_ok"}, "", map[string]string{"KEYGATE_URL": srv.URL}, ExitUsage, "no API key"},
		{[]string{"--key-stdin", "keys", "get", "key_ok"}, "kg_in_test\n", map[string]string{"KEYGATE_URL": srv.URL}, ExitOK, ""},
		{[]string{"--key-stdin", "keys", "get", "key_ok"}, "", map[string]string{"KEYGATE_URL": srv.URL}, ExitUsage, "the API key: expected on standard input"},
		{[]string{"keys", "get", "key_ok"}, "", map[string]string{"KEYGATE_API_KEY": "k"}, ExitUsage, "no API URL"},
		{[]string{"--url", "http://127.0.0.1:1", "keys", "get", "key_ok"}, "", map[string]string{"KEYGATE_API_KEY": "k"}, ExitServer, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			got := Run(context.Background(), tt.args, Env{
				Stdin: strings.NewReader(tt.stdin), Stdout: &stdout, Stderr: &stderr,
				Getenv: func(name string) string { return tt.env[name] },
			})
			if got != tt.want || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", got, stderr.String(), tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseRateLimits(t *testing.T) {
	limits, err := parseRateLimits([]string{"burst=10/1s", "hourly=500/1h", "daily=10000/1d"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range limits {
		got = append(got, l.Name+"="+strconv.FormatInt(l.Limit, 10)+"/"+window(l.WindowSeconds))
	}
	if strings.Join(got, " ") != "burst=10/1s hourly=500/1h daily=10000/1d" {
		t.Errorf("parsed and written back: %v", got)
	}
	for _, bad := range []string{"burst", "burst=10", "=10/1s", "burst=x/1s", "burst=10/1w", "burst=10/0s"} {
		if _, err := parseRateLimits([]string{bad}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
