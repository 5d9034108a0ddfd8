package httpapi_test

import (
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/ddbtest"
)

func TestUsageHostileParams(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	for _, tt := range []struct {
		target string
		status int
		n      int
	}{
		{"/v1/owners/alice/usage?from=2030-01-01T00:00:00Z&to=2030-01-17T15:00:00Z", 200, 400},
		{"/v1/owners/alice/usage?from=2030-01-01T00:00:00Z&to=2030-01-17T16:00:00Z", 400, 0},
		{"/v1/owners/alice/usage?from=0000-01-01T00:00:00Z&to=2030-01-01T00:00:00Z", 400, 0},
		{"/v1/owners/alice/usage?granularity=day&from=1970-01-01T00:00:00Z&to=9999-12-31T23:00:00Z", 400, 0},
		{"/v1/owners/alice/usage?granularity=day&from=9999-12-01T00:00:00Z&to=9999-12-31T23:00:00Z", 400, 0}, // past 2286: sort keys have 10 digits
		{"/v1/owners/alice/usage?granularity=day&from=2286-10-01T00:00:00Z&to=2286-10-31T00:00:00Z", 200, 31},
		{"/v1/owners/alice/usage?from=2030-01-01T00:00:00Z&from=2030-01-02T00:00:00Z", 400, 0},
		{"/v1/usage?limit=-1", 400, 0},
		{"/v1/usage?limit=100000", 400, 0},
		{"/v1/usage?cursor=b2Zmc2V0Oi0x", 400, 0},
	} {
		r := e.do(&admin, "GET", tt.target, "")
		if r.Status != tt.status || tt.n > 0 && strings.Count(r.Body, `"start"`) != tt.n {
			t.Errorf("%s: %d (%d buckets) %.200s", tt.target, r.Status, strings.Count(r.Body, `"start"`), r.Body)
		}
	}
}
