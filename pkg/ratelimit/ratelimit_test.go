package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keygate/keygate/pkg/ratelimit"
)

func TestSetHeaders(t *testing.T) {
	now := time.Unix(1_894_702_050, 0)
	for _, tc := range []struct {
		name    string
		context map[string]any
		want    map[string]string // "" for absent
	}{
		{"a budget", map[string]any{"rateLimitLimit": "100", "rateLimitRemaining": "99", "rateLimitReset": "1894702500"},
			map[string]string{"RateLimit-Limit": "100", "RateLimit-Remaining": "99", "RateLimit-Reset": "450"}},
		{"numbers", map[string]any{"rateLimitLimit": 5.0, "rateLimitRemaining": 0.0, "rateLimitReset": 1894702051.0},
			map[string]string{"RateLimit-Limit": "5", "RateLimit-Remaining": "0", "RateLimit-Reset": "1"}},
		{"a reset already past reads 0", map[string]any{"rateLimitLimit": "5", "rateLimitRemaining": "5", "rateLimitReset": "1"},
			map[string]string{"RateLimit-Limit": "5", "RateLimit-Remaining": "5", "RateLimit-Reset": "0"}},
		{"no limit", map[string]any{"keyId": "key_1"}, map[string]string{"RateLimit-Limit": "", "RateLimit-Remaining": "", "RateLimit-Reset": ""}},
		{"a value not a number", map[string]any{"rateLimitLimit": "1e3", "rateLimitRemaining": "9", "rateLimitReset": "9"},
			map[string]string{"RateLimit-Limit": "", "RateLimit-Remaining": "", "RateLimit-Reset": ""}},
		{"nil context", nil, map[string]string{"RateLimit-Limit": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			ratelimit.SetHeaders(h, tc.context, now)
			for name, want := range tc.want {
				if got := h.Get(name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

// A function behind keygate's authorizer, served through
// aws-lambda-go-api-proxy, shows its caller's budget on every answer.
func ExampleMiddleware() {
	orders := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"orders":[]}`)
	})
	handler := httpadapter.New(ratelimit.Middleware(orders)).ProxyWithContext // lambda.Start(handler)

	resp, _ := handler(context.Background(), events.APIGatewayProxyRequest{
		HTTPMethod: "GET", Path: "/orders",
		RequestContext: events.APIGatewayProxyRequestContext{Authorizer: map[string]any{
			"rateLimitLimit": "100", "rateLimitRemaining": "42", "rateLimitReset": fmt.Sprint(time.Now().Add(time.Hour).Unix()),
		}},
	})
	fmt.Println(resp.MultiValueHeaders["Ratelimit-Limit"], resp.MultiValueHeaders["Ratelimit-Remaining"])
	// Output: [100] [42]
}

func TestMiddlewareWithoutGatewayContext(t *testing.T) {
	rec := httptest.NewRecorder()
	ratelimit.Middleware(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Header().Get("RateLimit-Limit") != "" || rec.Code != http.StatusNotFound {
		t.Errorf("headers %v, status %d", rec.Header(), rec.Code)
	}
}
