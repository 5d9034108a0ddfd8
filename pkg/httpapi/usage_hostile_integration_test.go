package httpapi_test

import (
	"testing"

	"github.com/keygate/keygate/internal/ddbtest"
)

// Buckets are stored under 10-digit Unix seconds, which end at
// 2286-11-20T17:46:40Z: a range past it is a 400, never a 500 from a query
// whose bounds compare backwards.
func TestUsageRangeBeyond2286IsRefused(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	k := e.create(&admin, `{"name":"k","tier":"public","owner":"alice"}`)
	for _, target := range []string{
		"/v1/api-keys/" + k.ID + "/usage?from=2286-11-20T16:00:00Z&to=2286-11-20T18:00:00Z",
		"/v1/owners/alice/usage?from=2286-11-20T16:00:00Z&to=2286-11-20T18:00:00Z",
		"/v1/usage?from=2286-11-20T16:00:00Z&to=2286-11-20T18:00:00Z",
	} {
		r := e.do(&admin, "GET", target, "")
		if r.Status != 200 && r.Status != 400 {
			t.Errorf("GET %s: %d %s, want 200 (zeros) or 400", target, r.Status, r.Body)
		}
	}
}
