package httpapi_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/keygate/keygate/pkg/httpapi"
	"github.com/keygate/keygate/pkg/keys"
)

// TestRouteScopesFromOperations checks that the authorizer's defaults are
// keygate's operations: every management route needs admin, verify needs
// verify, whoami a valid key only; report-leak's and openapi's routes run
// no authorizer.
func TestRouteScopesFromOperations(t *testing.T) {
	routes := httpapi.RouteScopes()
	for _, op := range httpapi.Operations {
		for _, route := range op.Routes {
			method, resource, _ := strings.Cut(route, " ")
			got := routes.Required(method, resource)
			var want []string
			switch op.Name {
			case httpapi.Whoami, httpapi.ReportLeak, httpapi.OpenAPI:
			case httpapi.Verify:
				want = []string{keys.ScopeVerify}
			default:
				want = []string{keys.ScopeAdmin}
			}
			if !reflect.DeepEqual(got, want) || op.Public != (op.Name == httpapi.ReportLeak || op.Name == httpapi.OpenAPI) {
				t.Errorf("%s (%s) needs %v, want %v; public %v", route, op.Name, got, want, op.Public)
			}
		}
	}
}
