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

// Strings of the server's (a name, metadata, a webhook endpoint's error, an
// error message, a warning) must not reach the terminal as control
// sequences: an ESC or CSI could rewrite what the table shows, or the
// terminal's title, and a bidi override reorder it.
func TestServerStringsEscaped(t *testing.T) {
	const evil = `\u001b]0;pwned\u0007\u001b[2J\r\u009b31m\u202e`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := `{"id":"key_1","name":"` + evil + `","tier":"public","status":"active","metadata":{"x":"` + evil + `"}}`
		switch r.URL.Path {
		case "/v1/api-keys/key_1":
			io.WriteString(w, `{"success":true,"data":`+key+`,"warnings":["`+evil+`"]}`)
		case "/v1/api-keys":
			io.WriteString(w, `{"success":true,"data":[`+key+`]}`)
		case "/v1/webhooks/wh_1/deliveries":
			io.WriteString(w, `{"success":true,"data":[{"id":"d1","eventType":"key.created","state":"failed","lastError":"`+evil+`"}]}`)
		default:
			w.WriteHeader(400)
			io.WriteString(w, `{"success":false,"error":{"code":"bad_request","message":"`+evil+`","requestId":"`+evil+`"}}`)
		}
	}))
	defer srv.Close()
	for _, args := range [][]string{
		{"keys", "get", "key_1"}, {"keys", "list"}, {"webhooks", "deliveries", "wh_1"}, {"keys", "get", "key_2"},
		{"keys", "update", "key_1", "--name", "b"},
	} {
		var stdout, stderr bytes.Buffer
		Run(context.Background(), args, Env{
			Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
			Getenv: func(name string) string {
				return map[string]string{"KEYGATE_URL": srv.URL, "KEYGATE_API_KEY": "kg_in_test"}[name]
			},
		})
		for name, out := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String()} {
			if strings.ContainsAny(out, "\x1b\x07\r\u009b\u202e") {
				t.Errorf("%v: %s holds control characters of the server's: %q", args, name, out)
			}
		}
	}
}

func TestEscapeControls(t *testing.T) {
	for in, want := range map[string]string{
		"a\tb\nc":       `a\x09b\x0ac`,
		"\x9b31m":       `\x9b31m`, // a lone byte 0x9b is CSI to an 8-bit terminal
		"ok \uFFFD é 🔑": "ok \uFFFD é 🔑",
		"\u2066x\u2069": `\u2066x\u2069`,
	} {
		if got := escapeControls(in, ""); got != want {
			t.Errorf("escapeControls(%q) = %q, want %q", in, got, want)
		}
	}
}
