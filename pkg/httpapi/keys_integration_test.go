package httpapi_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/pkg/token"
)

func TestCreateKey(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{TTL: true})
	k := e.create(&admin, `{"name":"Production key","tier":"partner","scopes":["webhooks","contracts"],
		"ipAllowlist":["203.0.113.10","2001:db8::/32"],"expiresAt":"`+e.at(90*24*time.Hour)+`","owner":"user_123abc",
		"metadata":{"webhook_url":"https://example.com/hook"}}`)

	parsed, err := token.Parse(k.Key, "kg")
	must(t, err == nil, "raw key %q does not parse: %v", k.Key, err)
	must(t, parsed.TierCode == "pt", "tier code %q", parsed.TierCode)
	must(t, k.ID == token.ID(token.Hash(k.Key)), "id %s does not derive from the key's hash", k.ID)
	must(t, k.Start == k.Key[:10], "start %q", k.Start)
	must(t, k.Name == "Production key" && k.Tier == "partner" && k.Project == "acme" && k.Owner == "user_123abc" && k.Status == "active", "key %+v", k)
	must(t, slices.Equal(k.Scopes, []string{"contracts", "webhooks"}), "scopes %v", k.Scopes)
	must(t, slices.Equal(k.IPAllowlist, []string{"2001:db8::/32", "203.0.113.10"}), "allowlist %v", k.IPAllowlist)
	must(t, string(k.Metadata) == `{"webhook_url":"https://example.com/hook"}`, "metadata %s", k.Metadata)
	must(t, k.ExpiresAt != nil && k.ExpiresAt.Equal(e.clock.Now().Add(90*24*time.Hour)), "expiresAt %v", k.ExpiresAt)
	must(t, k.CreatedAt.Equal(e.clock.Now()) && k.RevokedAt == nil, "times %+v", k)
	must(t, k.Usage["totalRequests"] == float64(0), "usage %v", k.Usage)

	// Get never shows the raw key again; that the store keeps only its
	// hash is pkg/dynamo's TestCreateStoresOnlyTheHash.
	got := e.do(&admin, "GET", "/v1/api-keys/"+k.ID, "")
	must(t, got.Status == 200, "get: %d", got.Status)
	must(t, !strings.Contains(string(got.Data), k.Key), "get shows the raw key")
	must(t, decode[keyView](t, got.Data).ID == k.ID, "get: %s", got.Data)
}

func TestCreateKeyMinimal(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{TTL: true})
	k := e.create(&admin, `{"name":"n","tier":"public"}`)
	must(t, k.Scopes != nil && len(k.Scopes) == 0 && k.IPAllowlist != nil && k.ExpiresAt == nil && string(k.Metadata) == "null", "defaults: %+v", k)
	must(t, strings.HasPrefix(k.Key, "kg_pk_"), "key %q", k.Key)
}

func TestCreateKeyRejects(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{TTL: true})
	before := e.itemCount()
	noAdmin := caller{project: "acme", keyID: admin.keyID, scopes: "contracts"}
	for _, tc := range []struct {
		name   string
		caller *caller
		body   string
		status int
		code   string
		field  string
	}{
		{"no name", &admin, `{"tier":"public"}`, 400, "bad_request", "name"},
		{"empty name", &admin, `{"name":"  ","tier":"public"}`, 400, "bad_request", "name"},
		{"long name", &admin, `{"name":"` + strings.Repeat("a", 129) + `","tier":"public"}`, 400, "bad_request", "name"},
		{"no tier", &admin, `{"name":"n"}`, 400, "bad_request", "tier"},
		{"unknown tier", &admin, `{"name":"n","tier":"gold"}`, 400, "bad_request", "tier"},
		{"unknown scope", &admin, `{"name":"n","tier":"public","scopes":["root"]}`, 400, "bad_request", "scopes"},
		{"bad ip", &admin, `{"name":"n","tier":"public","ipAllowlist":["10.0.0.300"]}`, 400, "bad_request", "ipAllowlist"},
		{"past expiry", &admin, `{"name":"n","tier":"public","expiresAt":"2020-01-01T00:00:00Z"}`, 400, "bad_request", "expiresAt"},
		{"bad expiry", &admin, `{"name":"n","tier":"public","expiresAt":"next week"}`, 400, "bad_request", "expiresAt"},
		{"metadata array", &admin, `{"name":"n","tier":"public","metadata":[1]}`, 400, "bad_request", "metadata"},
		{"metadata too big", &admin, `{"name":"n","tier":"public","metadata":{"a":"` + strings.Repeat("x", 1100) + `"}}`, 400, "bad_request", "metadata"},
		{"bad owner", &admin, `{"name":"n","tier":"public","owner":"a/b"}`, 400, "bad_request", "owner"},
		{"project field", &admin, `{"name":"n","tier":"public","project":"other"}`, 400, "bad_request", "project"},
		{"unknown field", &admin, `{"name":"n","tier":"public","colour":"red"}`, 400, "bad_request", "colour"},
		{"wrong type", &admin, `{"name":5,"tier":"public"}`, 400, "bad_request", "name"},
		{"scopes not array", &admin, `{"name":"n","tier":"public","scopes":"admin"}`, 400, "bad_request", "scopes"},
		{"malformed", &admin, `{"name":`, 400, "bad_request", "JSON"},
		{"two objects", &admin, `{"name":"n","tier":"public"}{}`, 400, "bad_request", "JSON"},
		{"not an object", &admin, `[]`, 400, "bad_request", "object"},
		{"empty body", &admin, ``, 400, "bad_request", "body"},
		{"too large", &admin, `{"name":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "payload_too_large", ""},
		{"grant unheld scope", &admin, `{"name":"n","tier":"public","scopes":["payments"]}`, 403, "forbidden", "payments"},
		{"not admin", &noAdmin, `{"name":"n","tier":"public"}`, 403, "forbidden", "admin"},
		{"no authorizer context", nil, `{"name":"n","tier":"public"}`, 401, "unauthorized", ""},
	} {
		r := e.do(tc.caller, "POST", "/v1/api-keys", tc.body)
		if r.Status != tc.status || errorCode(r) != tc.code || !strings.Contains(r.Error.Message, tc.field) {
			t.Errorf("%s: %d %+v, want %d %s naming %q", tc.name, r.Status, r.Error, tc.status, tc.code, tc.field)
		}
	}
	must(t, e.itemCount() == before, "a refused create wrote to the table")
}

func TestGetKey(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{TTL: true})
	k := e.create(&admin, `{"name":"n","tier":"public"}`)
	other := caller{project: "globex", keyID: "key_000000000000000000000002", scopes: "admin"}
	for _, tc := range []struct {
		name   string
		c      *caller
		id     string
		status int
	}{
		{"own", &admin, k.ID, 200},
		{"unknown", &admin, "key_" + strings.Repeat("0", 24), 404},
		{"malformed id", &admin, "nope", 404},
		{"another project's key", &other, k.ID, 404},
	} {
		r := e.do(tc.c, "GET", "/v1/api-keys/"+tc.id, "")
		if r.Status != tc.status {
			t.Errorf("%s: %d %+v", tc.name, r.Status, r.Error)
		}
	}
}

func TestListKeysPaginationAndFilters(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{TTL: true})
	var ids []string
	for i := range 7 {
		tier, owner := "public", "alice"
		if i%2 == 1 {
			tier, owner = "partner", "bob"
		}
		ids = append(ids, e.create(&admin, fmt.Sprintf(`{"name":"k%d","tier":%q,"owner":%q}`, i, tier, owner)).ID)
		e.clock.Advance(time.Second)
	}
	other := caller{project: "globex", keyID: "key_000000000000000000000002", scopes: "admin"}
	e.create(&other, `{"name":"theirs","tier":"public"}`)
	slices.Reverse(ids) // newest first

	collect := func(query string) []string {
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			must(t, pages < 10, "pagination does not end")
			target := "/v1/api-keys?limit=3" + query
			if cursor != "" {
				target += "&cursor=" + cursor
			}
			r := e.do(&admin, "GET", target, "")
			must(t, r.Status == 200, "list %s: %d %+v", target, r.Status, r.Error)
			page := decode[[]keyView](t, r.Data)
			must(t, len(page) <= 3, "page of %d", len(page))
			for _, k := range withoutCallers(page) {
				must(t, k.Project == "acme" && k.Key == "", "listed %+v", k)
				got = append(got, k.ID)
			}
			if r.NextCursor == "" {
				return got
			}
			cursor = r.NextCursor
		}
	}
	must(t, slices.Equal(collect(""), ids), "all pages = %v, want %v", collect(""), ids)
	var bobs []string
	for i, id := range ids {
		if i%2 == 1 {
			bobs = append(bobs, id)
		}
	}
	must(t, slices.Equal(collect("&owner=bob"), bobs), "owner filter = %v, want %v", collect("&owner=bob"), bobs)
	must(t, slices.Equal(collect("&tier=partner"), bobs), "tier filter = %v", collect("&tier=partner"))

	revoked := e.do(&admin, "DELETE", "/v1/api-keys/"+ids[2], "")
	must(t, revoked.Status == 200, "revoke: %d", revoked.Status)
	must(t, slices.Equal(collect("&status=revoked"), ids[2:3]), "revoked filter = %v", collect("&status=revoked"))
	must(t, len(collect("&status=active")) == 6, "active filter = %v", collect("&status=active"))

	// The default page holds all seven, with no cursor.
	r := e.do(&admin, "GET", "/v1/api-keys", "")
	must(t, r.Status == 200 && len(withoutCallers(decode[[]keyView](t, r.Data))) == 7 && r.NextCursor == "", "default page: %s", r.Data)

	for _, bad := range []string{"?limit=0", "?limit=101", "?limit=x", "?status=deleted", "?tier=gold", "?cursor=!!!", "?cursor=eyJzIjoieCJ9", "?colour=red", "?owner=a/b", "?limit=1&limit=2"} {
		r := e.do(&admin, "GET", "/v1/api-keys"+bad, "")
		if r.Status != 400 || errorCode(r) != "bad_request" {
			t.Errorf("list%s: %d %+v, want 400", bad, r.Status, r.Error)
		}
	}
}

func TestUpdateKey(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{TTL: true})
	k := e.create(&admin, `{"name":"old","tier":"partner","scopes":["contracts"],"metadata":{"a":1},"expiresAt":"`+e.at(time.Hour)+`"}`)
	e.clock.Advance(time.Minute)

	r := e.do(&admin, "PATCH", "/v1/api-keys/"+k.ID, `{"name":"new","scopes":["webhooks","contracts"],"ipAllowlist":["192.0.2.0/24"],"metadata":null,"expiresAt":null}`)
	must(t, r.Status == 200, "patch: %d %+v", r.Status, r.Error)
	u := decode[keyView](t, r.Data)
	must(t, u.Name == "new" && slices.Equal(u.Scopes, []string{"contracts", "webhooks"}) && slices.Equal(u.IPAllowlist, []string{"192.0.2.0/24"}), "patched: %+v", u)
	must(t, string(u.Metadata) == "null" && u.ExpiresAt == nil && u.UpdatedAt.Equal(e.clock.Now()) && u.Tier == "partner", "patched: %+v", u)

	r = e.do(&admin, "PUT", "/v1/api-keys/"+k.ID, `{"name":"via put"}`)
	must(t, r.Status == 200 && decode[keyView](t, r.Data).Name == "via put", "put: %d %s", r.Status, r.Data)
	got := decode[keyView](t, e.do(&admin, "GET", "/v1/api-keys/"+k.ID, "").Data)
	must(t, got.Name == "via put" && len(got.Scopes) == 2, "stored: %+v", got)

	before := e.snapshot()
	other := caller{project: "globex", keyID: "key_000000000000000000000002", scopes: "admin"}
	for _, tc := range []struct {
		name   string
		c      *caller
		body   string
		status int
		field  string
	}{
		{"tier", &admin, `{"tier":"public"}`, 400, "tier"},
		{"project", &admin, `{"project":"globex"}`, 400, "project"},
		{"unknown field", &admin, `{"nickname":"x"}`, 400, "nickname"},
		{"nothing", &admin, `{}`, 400, "no field"},
		{"bad status", &admin, `{"status":"paused"}`, 400, "status"},
		{"bad name", &admin, `{"name":""}`, 400, "name"},
		{"bad scope", &admin, `{"scopes":["root"]}`, 400, "scopes"},
		{"unheld scope", &admin, `{"scopes":["payments"]}`, 403, "payments"},
		{"past expiry", &admin, `{"expiresAt":"2020-01-01T00:00:00Z"}`, 400, "expiresAt"},
		{"expiry type", &admin, `{"expiresAt":5}`, 400, "expiresAt"},
		{"another project", &other, `{"name":"x"}`, 404, ""},
	} {
		r := e.do(tc.c, "PATCH", "/v1/api-keys/"+k.ID, tc.body)
		if r.Status != tc.status || !strings.Contains(r.Error.Message, tc.field) {
			t.Errorf("%s: %d %+v, want %d naming %q", tc.name, r.Status, r.Error, tc.status, tc.field)
		}
	}
	must(t, e.snapshot() == before, "a refused update changed the table")
}

func TestRevokeIsFinal(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{TTL: true})
	k := e.create(&admin, `{"name":"n","tier":"public"}`)
	for range 2 { // revoking twice is not an error
		r := e.do(&admin, "DELETE", "/v1/api-keys/"+k.ID, "")
		must(t, r.Status == 200 && r.Message == "API key revoked" && r.Data == nil, "revoke: %d %+v %q", r.Status, r.Error, r.Message)
	}
	got := decode[keyView](t, e.do(&admin, "GET", "/v1/api-keys/"+k.ID, "").Data)
	must(t, got.Status == "revoked" && got.RevokedAt != nil && got.RevokedAt.Equal(e.clock.Now()), "revoked: %+v", got)

	before := e.snapshot()
	for _, body := range []string{`{"status":"active"}`, `{"name":"again"}`} {
		r := e.do(&admin, "PATCH", "/v1/api-keys/"+k.ID, body)
		must(t, r.Status == 409 && errorCode(r) == "conflict", "%s on a revoked key: %d %+v", body, r.Status, r.Error)
	}
	must(t, e.do(&admin, "PATCH", "/v1/api-keys/"+k.ID, `{"status":"revoked"}`).Status == 200, "revoking again via PATCH")
	must(t, e.snapshot() == before, "a refused change wrote to the table")

	other := caller{project: "globex", keyID: "key_000000000000000000000002", scopes: "admin"}
	must(t, e.do(&other, "DELETE", "/v1/api-keys/"+k.ID, "").Status == 404, "another project revoked it")

	// PATCH status revoked on an active key revokes it too.
	k2 := e.create(&admin, `{"name":"n2","tier":"public"}`)
	r := e.do(&admin, "PATCH", "/v1/api-keys/"+k2.ID, `{"status":"revoked"}`)
	must(t, r.Status == 200 && decode[keyView](t, r.Data).Status == "revoked", "patch revoke: %d %s", r.Status, r.Data)
}

// An expired key that DynamoDB has not deleted yet (TTL is off on this
// table, as it may lag by days on AWS) reads expired, then gone once past
// its retention.
func TestExpiredKeyBeforeTTLDeletesIt(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{TTL: false})
	k := e.create(&admin, `{"name":"n","tier":"public","expiresAt":"`+e.at(time.Hour)+`"}`)
	e.clock.Advance(2 * time.Hour)

	got := e.do(&admin, "GET", "/v1/api-keys/"+k.ID, "")
	must(t, got.Status == 200 && decode[keyView](t, got.Data).Status == "expired", "get: %d %s", got.Status, got.Data)
	listed := decode[[]keyView](t, e.do(&admin, "GET", "/v1/api-keys?status=expired", "").Data)
	must(t, len(listed) == 1 && listed[0].ID == k.ID, "expired filter: %+v", listed)
	must(t, len(withoutCallers(decode[[]keyView](t, e.do(&admin, "GET", "/v1/api-keys?status=active", "").Data))) == 0, "an expired key lists as active")
	must(t, e.do(&admin, "PATCH", "/v1/api-keys/"+k.ID, `{"name":"x"}`).Status == 409, "an expired key changed")

	// Past expiresAt + retention (30 days) TTL would have deleted it: keygate treats it as gone.
	e.clock.Advance(31 * 24 * time.Hour)
	must(t, e.itemCount() > 0, "the item should still be in the table")
	must(t, e.do(&admin, "GET", "/v1/api-keys/"+k.ID, "").Status == 404, "a purged key is still readable")
	must(t, len(withoutCallers(decode[[]keyView](t, e.do(&admin, "GET", "/v1/api-keys", "").Data))) == 0, "a purged key is still listed")
}

func TestUnknownRoute(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{TTL: true})
	r := e.do(&admin, "GET", "/v1/nothing", "")
	must(t, r.Status == 404 && errorCode(r) == "not_found", "unknown route: %d %+v", r.Status, r.Error)
}
