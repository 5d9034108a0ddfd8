package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keygate/keygate/pkg/keys"
)

// routes answer with the route that served a request and its parameter's
// value, or with 404 and the path that no route matched.
func routes() *http.ServeMux {
	mux := http.NewServeMux()
	for pattern, param := range map[string]string{
		"GET /v1/api-keys/{id}":          "id",
		"POST /v1/api-keys/{id}/rotate":  "id",
		"POST /v1/owners/{owner}/revoke": "owner",
	} {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s=%q", pattern, param, r.PathValue(param))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, "404 %s", r.URL.EscapedPath())
	})
	return mux
}

// TestByResource sends proxy events through the Lambda adapter, as a
// function gets them: path is the event's path as API Gateway hands it on,
// still escaped, behind the custom domain's base path /keygate unless it
// says otherwise.
func TestByResource(t *testing.T) {
	for _, tc := range []struct {
		name, method, resource, path string
		want                         string
	}{
		{"base path", "GET", "/v1/api-keys/{id}", "/keygate/v1/api-keys/key_1", `GET /v1/api-keys/{id} id="key_1"`},
		{"base path of two segments", "GET", "/v1/api-keys/{id}", "/team/keygate/v1/api-keys/key_1", `GET /v1/api-keys/{id} id="key_1"`},
		{"no base path", "GET", "/v1/api-keys/{id}", "/v1/api-keys/key_1", `GET /v1/api-keys/{id} id="key_1"`},
		{"parameter before a literal", "POST", "/v1/api-keys/{id}/rotate", "/keygate/v1/api-keys/key_1/rotate", `POST /v1/api-keys/{id}/rotate id="key_1"`},
		{"other parameter", "POST", "/v1/owners/{owner}/revoke", "/keygate/v1/owners/alice/revoke", `POST /v1/owners/{owner}/revoke owner="alice"`},

		// A parameter is one segment, whatever it holds.
		{"encoded slash", "GET", "/v1/api-keys/{id}", "/keygate/v1/api-keys/a%2Fb", `GET /v1/api-keys/{id} id="a/b"`},
		{"encoded slash and another route's tail", "GET", "/v1/api-keys/{id}", "/keygate/v1/api-keys/key_1%2Frotate", `GET /v1/api-keys/{id} id="key_1/rotate"`},
		{"encoded dot segment", "GET", "/v1/api-keys/{id}", "/keygate/v1/api-keys/%2E%2E", `GET /v1/api-keys/{id} id=".."`},
		{"dot segment", "GET", "/v1/api-keys/{id}", "/keygate/v1/api-keys/..", `GET /v1/api-keys/{id} id=".."`},
		{"single dot", "GET", "/v1/api-keys/{id}", "/keygate/v1/api-keys/.", `GET /v1/api-keys/{id} id="."`},
		{"dot segments climbing to another route", "POST", "/v1/owners/{owner}/revoke", "/keygate/v1/owners/..%2F..%2Fapi-keys%2Fkey_1/revoke", `POST /v1/owners/{owner}/revoke owner="../../api-keys/key_1"`},
		{"encoded percent, query and space", "GET", "/v1/api-keys/{id}", "/keygate/v1/api-keys/a%25b%3Fc%20d", `GET /v1/api-keys/{id} id="a%b?c d"`},
		{"unicode, escaped", "GET", "/v1/api-keys/{id}", "/keygate/v1/api-keys/%C3%A9t%C3%A9", `GET /v1/api-keys/{id} id="été"`},
		{"unicode, raw", "GET", "/v1/api-keys/{id}", "/keygate/v1/api-keys/été", `GET /v1/api-keys/{id} id="été"`},
		{"dot segments in the base path", "GET", "/v1/api-keys/{id}", "/a/../v1/api-keys/key_1", `GET /v1/api-keys/{id} id="key_1"`},
		{"escaped literal", "GET", "/v1/api-keys/{id}", "/keygate/v1/api%2Dkeys/key_1", `GET /v1/api-keys/{id} id="key_1"`},

		// A path that does not end in the resource is left as it came.
		{"empty parameter", "GET", "/v1/api-keys/{id}", "/keygate/v1/api-keys/", "404 /keygate/v1/api-keys/"},
		{"a segment the resource lacks", "GET", "/v1/api-keys/{id}", "/keygate/v1/api-keys/key_1/extra", "404 /keygate/v1/api-keys/key_1/extra"},
		{"another literal", "POST", "/v1/api-keys/{id}/rotate", "/keygate/v1/api-keys/key_1/revoke", "404 /keygate/v1/api-keys/key_1/revoke"},
		{"encoded slash in a literal", "GET", "/v1/api-keys/{id}", "/keygate/v1%2Fapi-keys/key_1", "404 /keygate/v1%2Fapi-keys/key_1"},
		{"path shorter than the resource", "GET", "/v1/api-keys/{id}", "/key_1", "404 /key_1"},
		{"no resource", "GET", "", "/keygate/v1/api-keys/key_1", "404 /keygate/v1/api-keys/key_1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := events.APIGatewayProxyRequest{
				HTTPMethod: tc.method, Path: tc.path, Resource: tc.resource,
				RequestContext: events.APIGatewayProxyRequestContext{HTTPMethod: tc.method, ResourcePath: tc.resource},
			}
			out, err := httpadapter.New(byResource(routes())).ProxyWithContext(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			if out.Body != tc.want {
				t.Errorf("%s %s on resource %q: got %d %s\nwant %s", tc.method, tc.path, tc.resource, out.StatusCode, out.Body, tc.want)
			}
		})
	}
}

// TestByResourceWithoutGateway: without API Gateway's context there is no
// resource to route on, and the path is routed as it is.
func TestByResourceWithoutGateway(t *testing.T) {
	for target, want := range map[string]string{
		"/v1/api-keys/a%2Fb":         `GET /v1/api-keys/{id} id="a/b"`,
		"/keygate/v1/api-keys/key_1": "404 /keygate/v1/api-keys/key_1",
	} {
		rec := httptest.NewRecorder()
		byResource(routes()).ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		if rec.Body.String() != want {
			t.Errorf("GET %s: got %d %s, want %s", target, rec.Code, rec.Body, want)
		}
	}
}

// TestHandlerRoutesByResource: a function, built as its main builds it,
// answers behind a base path as without one.
func TestHandlerRoutesByResource(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	adapter := httpadapter.New(New(Services{Keys: keys.NewService(keys.DefaultConfig(), nil)}, log).Handler(Whoami))
	for _, path := range []string{"/v1/whoami", "/keygate/v1/whoami"} {
		ev := events.APIGatewayProxyRequest{
			HTTPMethod: "GET", Path: path, Resource: "/v1/whoami",
			RequestContext: events.APIGatewayProxyRequestContext{
				HTTPMethod: "GET", ResourcePath: "/v1/whoami", Path: path,
				Authorizer: map[string]any{"keyId": "key_1", "project": "acme", "principalId": "key_1"},
			},
		}
		out, err := adapter.ProxyWithContext(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Data struct{ KeyID string }
		}
		if err := json.Unmarshal([]byte(out.Body), &got); err != nil || out.StatusCode != http.StatusOK || got.Data.KeyID != "key_1" {
			t.Errorf("GET %s: %d %s, want 200 with key_1's identity", path, out.StatusCode, out.Body)
		}
	}
}
