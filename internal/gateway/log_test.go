package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/pkg/token"
)

// logBuffer collects what a JSON slog handler writes, from the server's
// goroutines and the test's.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// records decodes the log's JSON records.
func (b *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(b.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

func newLog() (*logBuffer, *slog.Logger) {
	b := &logBuffer{}
	return b, slog.New(slog.NewJSONHandler(b, nil))
}

// A key pasted into the path or the query, or quoted by a failing
// authorizer or function, must not reach the log: only its hint does.
func TestLogRedactsKeys(t *testing.T) {
	key, err := token.Generate(rand.Reader, "kg", "pk")
	if err != nil {
		t.Fatal(err)
	}
	secret, hint := key[len(token.DisplayPrefix(key)):], token.DisplayPrefix(key)+"[redacted]"
	allow := (&allowing{}).authorize
	failing := func(context.Context, events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
		return events.APIGatewayCustomAuthorizerResponse{}, errors.New("looking up " + key + ": timeout")
	}
	for _, tc := range []struct {
		name      string
		target    string
		authorize gateway.Authorizer
		function  error  // what get-key fails with
		want      string // in the log
	}{
		{"path", "/v1/api-keys/" + key, allow, nil, `"path":"/v1/api-keys/` + hint + `"`},
		{"query", "/v1/api-keys/key_1?key=" + key + "&limit=2", allow, nil, `"query":"key=` + hint + `&limit=2"`},
		{"escaped query", "/v1/api-keys/key_1?key=" + strings.ReplaceAll(key, "_", "%5F") + "&bad=%zz", allow, nil, `"query":"key=` + hint + `&bad=%zz"`},
		{"function error", "/v1/api-keys/" + key, allow, errors.New("no key " + key), `"error":"no key ` + hint + `"`},
		{"authorizer error", "/v1/api-keys/" + key, failing, nil, `"error":"looking up ` + hint + `: timeout"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logged, log := newLog()
			rec := &recorder{answer: func(string) (events.APIGatewayProxyResponse, error) {
				return events.APIGatewayProxyResponse{StatusCode: 200, Body: "{}"}, tc.function
			}}
			srv := serveLogged(t, tc.authorize, rec, log)
			do(t, srv, "GET", tc.target, nil, nil)
			if strings.Contains(logged.String(), secret) {
				t.Errorf("the log holds the key's secret:\n%s", logged)
			}
			if !strings.Contains(logged.String(), tc.want) {
				t.Errorf("the log lacks %s:\n%s", tc.want, logged)
			}
		})
	}
}

// The request's record says what the authorizer answered and who for.
func TestRequestRecord(t *testing.T) {
	answering := func(resp events.APIGatewayCustomAuthorizerResponse, err error) gateway.Authorizer {
		return func(context.Context, events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
			return resp, err
		}
	}
	for _, tc := range []struct {
		name       string
		authorize  gateway.Authorizer
		target     string
		authorizer string // "" for absent, as principal
		principal  string
		status     float64
	}{
		{"allowed", (&allowing{}).authorize, "/v1/whoami", "allowed", "key_1", 200},
		{"denied", answering(policy("key_2", "Deny", "*", map[string]any{"errorCode": "rate_limited"}), nil), "/v1/whoami", "denied", "key_2", 403},
		{"unauthorized", answering(events.APIGatewayCustomAuthorizerResponse{}, errors.New("Unauthorized")), "/v1/whoami", "unauthorized", "", 401},
		{"failed", answering(events.APIGatewayCustomAuthorizerResponse{}, errors.New("store down")), "/v1/whoami", "failed", "", 503},
		{"no route", (&allowing{}).authorize, "/v1/nope", "", "", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logged, log := newLog()
			do(t, serveLogged(t, tc.authorize, &recorder{}, log), "GET", tc.target, nil, nil)
			var got map[string]any
			for _, r := range logged.records(t) {
				if r["msg"] == "gateway" {
					got = r
				}
			}
			if got == nil {
				t.Fatalf("no record of the request:\n%s", logged)
			}
			if got["method"] != "GET" || got["path"] != tc.target || got["status"] != tc.status || got["requestId"] == "" {
				t.Errorf("record %v, want GET %s %v with a requestId", got, tc.target, tc.status)
			}
			for k, want := range map[string]string{"authorizer": tc.authorizer, "principal": tc.principal} {
				if v, _ := got[k].(string); v != want {
					t.Errorf("%s = %q, want %q", k, v, want)
				}
			}
		})
	}
}
