package authorizer

import (
	"reflect"
	"strings"
	"testing"

	"github.com/keygate/keygate/pkg/keys"
)

var knownScopes = keys.Config{Scopes: []string{"admin", "verify", "orders", "orders:write"}}

func TestParseRouteScopes(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want RouteScopes
	}{
		{"empty", "", RouteScopes{}},
		{"one route", "GET /v1/orders=orders", RouteScopes{"GET /v1/orders": {"orders"}}},
		{
			"several routes, spaces, lower-case method, repeats",
			" get /v1/orders/{id} = orders ; POST /v1/orders=orders, orders:write,orders;",
			RouteScopes{"GET /v1/orders/{id}": {"orders"}, "POST /v1/orders": {"orders", "orders:write"}},
		},
		{"valid key only", "GET /v1/api-keys=", RouteScopes{"GET /v1/api-keys": {}}},
		{"ANY and $default", "ANY /v1/{proxy+}=orders;ANY $default=admin", RouteScopes{"ANY /v1/{proxy+}": {"orders"}, "ANY $default": {"admin"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRouteScopes(tt.spec, knownScopes)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseRouteScopesRefuses(t *testing.T) {
	tests := []struct{ spec, wantErr string }{
		{"GET /v1/orders", "want METHOD /resource=scope1,scope2"},
		{"/v1/orders=orders", "want METHOD /resource"},
		{"GET v1/orders=orders", "want METHOD /resource"},
		{"GET /v1/orders extra=orders", "want METHOD /resource"},
		{"GET /v1/orders=payments", `unknown scope "payments"`},
		{"GET /v1/orders=orders;get /v1/orders=admin", "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			_, err := ParseRouteScopes(tt.spec, knownScopes)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one saying %q", err, tt.wantErr)
			}
		})
	}
}

func TestRouteScopesMergeAndRequired(t *testing.T) {
	defaults := RouteScopes{"GET /v1/api-keys": {"admin"}, "POST /v1/verify": {"verify"}}
	custom := RouteScopes{"GET /v1/api-keys": {}, "GET /v1/orders": {"orders"}, "ANY /v1/orders/{id}": {"orders:write"}, "GET /v1/orders/{id}": {"orders"}}
	routes := defaults.Merge(custom)
	tests := []struct {
		method, resource string
		want             []string
	}{
		{"POST", "/v1/verify", []string{"verify"}},
		{"GET", "/v1/api-keys", []string{}},
		{"GET", "/v1/orders", []string{"orders"}},
		{"GET", "/v1/orders/{id}", []string{"orders"}},
		{"DELETE", "/v1/orders/{id}", []string{"orders:write"}},
		{"POST", "/v1/orders", nil},
		{"GET", "/v1/whoami", nil},
	}
	for _, tt := range tests {
		if got := routes.Required(tt.method, tt.resource); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Required(%s %s) = %#v, want %#v", tt.method, tt.resource, got, tt.want)
		}
	}
	if got := defaults["GET /v1/api-keys"]; !reflect.DeepEqual(got, []string{"admin"}) {
		t.Errorf("Merge changed its receiver: %v", got)
	}
}
