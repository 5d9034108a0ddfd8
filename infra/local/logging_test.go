package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/pkg/token"
)

// testKey is a key in the real format, and its redacted form.
func testKey(t *testing.T) (key, redacted string) {
	t.Helper()
	key, err := token.Generate(rand.Reader, "kg", "pk")
	if err != nil {
		t.Fatal(err)
	}
	return key, token.DisplayPrefix(key) + "[redacted]"
}

// Whatever logs a key, in whichever format, only its hint is written.
func TestLogFormatsRedact(t *testing.T) {
	key, redacted := testKey(t)
	for _, format := range []string{logText, logJSON} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := newLogger(format, &buf)
			if err != nil {
				t.Fatal(err)
			}
			log.Info(gatewayRecord, "method", "GET", "path", "/v1/api-keys/"+key, "query", "k="+key, "status", 200)
			log.Error("request failed", "path", "/v1/api-keys/"+key, "error", errors.New("no key "+key))
			log.With("caller", key).WithGroup("g").Warn("quoting "+key, slog.Group("inner", "k", key))
			out := buf.String()
			if strings.Contains(out, key[len(token.DisplayPrefix(key)):]) {
				t.Errorf("the log holds the key's secret:\n%s", out)
			}
			if n := strings.Count(out, redacted); n < 7 {
				t.Errorf("the log holds %d redacted keys, want 7:\n%s", n, out)
			}
		})
	}
}

// The text format: one line per request from the gateway, and the
// warnings and errors; the per-request records of the authorizer and the
// functions are left out.
func TestTextFormat(t *testing.T) {
	at := time.Date(2025, 1, 2, 12, 0, 1, 0, time.Local)
	record := func(level slog.Level, msg string, attrs ...slog.Attr) slog.Record {
		r := slog.NewRecord(at, level, msg, 0)
		r.AddAttrs(attrs...)
		return r
	}
	request := func(attrs ...slog.Attr) slog.Record {
		return record(slog.LevelInfo, gatewayRecord, append([]slog.Attr{
			slog.String("method", "GET"), slog.String("path", "/v1/api-keys"), slog.Int("status", 200),
			slog.Float64("latencyMs", 3.14159), slog.String("requestId", "r1"),
		}, attrs...)...)
	}
	for _, tc := range []struct {
		name   string
		with   func(slog.Handler) slog.Handler
		record slog.Record
		want   string // "" for nothing written
	}{
		{"allowed", nil, request(slog.String("authorizer", "allowed"), slog.String("principal", "key_0123456789abcdef01234567")),
			"12:00:01 GET /v1/api-keys 200 3.1ms key_012345… allowed"},
		{"query, unauthorized", nil, request(slog.String("query", "limit=2"), slog.String("authorizer", "unauthorized")),
			"12:00:01 GET /v1/api-keys?limit=2 200 3.1ms unauthorized"},
		{"no route", nil, request(), "12:00:01 GET /v1/api-keys 200 3.1ms"},
		{"a short principal", nil, request(slog.String("principal", "bob")), "12:00:01 GET /v1/api-keys 200 3.1ms bob"},
		{"authorizer's record", nil, record(slog.LevelInfo, "authorization", slog.String("keyId", "key_1")), ""},
		{"function's record", nil, record(slog.LevelInfo, "request", slog.Int("status", 200)), ""},
		{"error", nil, record(slog.LevelError, "function failed", slog.String("function", "get-key"), slog.String("error", `a "b"`)),
			`12:00:01 ERROR function failed function=get-key error="a \"b\""`},
		{"warning with groups", func(h slog.Handler) slog.Handler {
			return h.WithAttrs([]slog.Attr{slog.String("app", "k")}).WithGroup("g")
		}, record(slog.LevelWarn, "slow", slog.Group("store", slog.Int("ms", 9)), slog.String("empty", "")),
			`12:00:01 WARN slow app=k g.store.ms=9 g.empty=""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := newLogger(logText, &buf)
			if err != nil {
				t.Fatal(err)
			}
			h := log.Handler()
			if tc.with != nil {
				h = tc.with(h)
			}
			if err := h.Handle(context.Background(), tc.record); err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if want != "" {
				want += "\n"
			}
			if buf.String() != want {
				t.Errorf("wrote %q, want %q", buf.String(), want)
			}
		})
	}
}

func TestUnknownLogFormat(t *testing.T) {
	if _, err := newLogger("xml", &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "want text or json") {
		t.Errorf("newLogger(xml) = %v, want an error naming the formats", err)
	}
}

// The gateway's own record makes the text line: the two agree on the
// record's attributes.
func TestTextLineOfAGatewayRequest(t *testing.T) {
	key, redacted := testKey(t)
	_, tpl := loadTemplate(t)
	functions := map[string]gateway.Function{}
	for name := range lambdaFunctions(offlineApp()) {
		functions[name] = func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{StatusCode: 200, Body: "{}"}, nil
		}
	}
	allow := func(_ context.Context, ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
		return events.APIGatewayCustomAuthorizerResponse{PrincipalID: "key_0123456789abcdef01234567", PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17", Statement: []events.IAMPolicyStatement{{Effect: "Allow", Action: []string{"execute-api:Invoke"}, Resource: []string{ev.MethodArn}}},
		}}, nil
	}
	var buf bytes.Buffer
	log, err := newLogger(logText, &buf)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Config{Template: tpl, Authorizer: allow, Functions: functions, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	gw.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/v1/api-keys/"+key+"?key="+key, nil))
	want := regexp.MustCompile(`^\d\d:\d\d:\d\d GET /v1/api-keys/` + regexp.QuoteMeta(redacted) + `\?key=` + regexp.QuoteMeta(redacted) +
		` 200 \d+\.\dms key_012345… allowed\n$`)
	if !want.MatchString(buf.String()) {
		t.Errorf("logged %q, want one line matching %s", buf.String(), want)
	}
}
