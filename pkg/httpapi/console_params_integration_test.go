package httpapi_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/ddbtest"
)

// The listing's search and unusedForDays, and an owner revoke's dry run,
// which the console's pages use: a bad value is a 400 naming it.
func TestConsoleListingParams(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	for _, tc := range []struct {
		target, field string
	}{
		{"/v1/api-keys?search=" + url.QueryEscape("\u200b"), "search"},   // zero-width space: no name holds it
		{"/v1/api-keys?search=" + url.QueryEscape("a\u202eb"), "search"}, // a bidi override
		{"/v1/api-keys?search=" + url.QueryEscape(strings.Repeat("x", 201)), "search"},
		{"/v1/api-keys?search=%ff", "search"},
		{"/v1/api-keys?search=a&search=b", "search"},
		{"/v1/api-keys?unusedForDays=0", "unusedForDays"},
		{"/v1/api-keys?unusedForDays=-30", "unusedForDays"},
		{"/v1/api-keys?unusedForDays=30.5", "unusedForDays"},
		{"/v1/api-keys?unusedForDays=3651", "unusedForDays"},
		{"/v1/api-keys?unusedForDays=99999999999999999999", "unusedForDays"},
		{"/v1/owners/alice/revoke?dryRun=yes", "dryRun"},
	} {
		method := "GET"
		if strings.Contains(tc.target, "/revoke") {
			method = "POST"
		}
		r := e.do(&admin, method, tc.target, "")
		if r.Status != 400 || !strings.Contains(r.Error.Message, tc.field) {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.target, r.Status, r.Body, tc.field)
		}
	}

	for _, name := range []string{"Alice laptop", "alice phone", "bob laptop"} {
		owner := strings.ToLower(strings.Fields(name)[0])
		e.do(&admin, "POST", "/v1/api-keys", `{"name":"`+name+`","tier":"public","owner":"`+owner+`"}`)
	}
	var found []keyView
	r := e.do(&admin, "GET", "/v1/api-keys?search=ALICE&limit=1", "")
	for range 10 {
		var page []keyView
		if err := json.Unmarshal(r.Data, &page); err != nil {
			t.Fatal(err)
		}
		found = append(found, page...)
		if r.NextCursor == "" {
			break
		}
		r = e.do(&admin, "GET", "/v1/api-keys?search=ALICE&limit=1&cursor="+url.QueryEscape(r.NextCursor), "")
	}
	// The test's clock stands still: keys made at one instant list by id.
	names := []string{}
	for _, k := range found {
		names = append(names, k.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"Alice laptop", "alice phone"}) {
		t.Errorf("search ALICE found %q", names)
	}
	if r := e.do(&admin, "GET", "/v1/api-keys?unusedForDays=1", ""); r.Status != 200 || string(r.Data) != "[]" {
		t.Errorf("keys made just now are not unused for a day: %d %s", r.Status, r.Body)
	}

	// A dry run counts what the revoke would revoke, and revokes nothing.
	dry := e.do(&admin, "POST", "/v1/owners/alice/revoke?dryRun=true", "")
	if dry.Status != 200 || string(dry.Data) != `{"wouldRevoke":2}` {
		t.Errorf("dry run: %d %s", dry.Status, dry.Body)
	}
	if r := e.do(&admin, "GET", "/v1/api-keys?owner=alice&status=active", ""); strings.Count(string(r.Data), `"id"`) != 2 {
		t.Errorf("the dry run revoked keys: %s", r.Data)
	}
	if r := e.do(&admin, "POST", "/v1/owners/alice/revoke", ""); string(r.Data) != `{"revoked":2}` {
		t.Errorf("revoke after the dry run: %s", r.Body)
	}
	if r := e.do(&admin, "POST", "/v1/owners/alice/revoke?dryRun=true&includeCreated=true", ""); string(r.Data) != `{"wouldRevoke":0}` {
		t.Errorf("dry run once revoked: %s", r.Body)
	}
}
