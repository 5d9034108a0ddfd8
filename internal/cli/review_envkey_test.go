package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// An API key in $KEYGATE_API_KEY read from a file keeps its line's end
// (export KEYGATE_API_KEY="$(cat key.txt)" drops "\n" but not "\r"): it is
// trimmed as --key-stdin's is, and never shows in stderr.
func TestEnvKeyTrimmed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer kg_in_test" {
			w.WriteHeader(401)
			io.WriteString(w, `{"success":false,"error":{"code":"unauthorized","message":"bad key"}}`)
			return
		}
		io.WriteString(w, `{"success":true,"data":{"keyId":"key_1"}}`)
	}))
	defer srv.Close()
	for _, key := range []string{"kg_in_test\r", " kg_in_test ", "kg_in_test\r\n"} {
		var stdout, stderr bytes.Buffer
		got := Run(context.Background(), []string{"whoami"}, Env{
			Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
			Getenv: func(name string) string {
				return map[string]string{"KEYGATE_URL": srv.URL, "KEYGATE_API_KEY": key}[name]
			},
		})
		if got != ExitOK || strings.Contains(stderr.String(), "kg_in_test") {
			t.Errorf("key %q: exit %d, stderr %q; want 0", key, got, stderr.String())
		}
	}
}
