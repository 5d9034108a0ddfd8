package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/pkg/authorizer/authorizertest"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

// TestMetadataRoundTripsExactly: metadata comes back byte for byte as
// stored (compacted), in every answer that shows it: create, get, list,
// and the audit event of the create.
func TestMetadataRoundTripsExactly(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	const metadata = `{"big":12345678901234567890123,"html":"<b>&amp;</b>","esc":"\u00e9\ud83d\ude00","neg":-0.0,"exp":1E+2,"nested":{"list":[1.5,null,true]}}`
	var compact bytes.Buffer
	must(t, json.Compact(&compact, []byte(metadata)) == nil, "compact")
	want := compact.String()

	k := e.create(&admin, `{"name":"m","tier":"public","metadata":`+metadata+`}`)
	must(t, string(k.Metadata) == want, "create: metadata %s, want %s", k.Metadata, want)
	got := decode[keyView](t, e.do(&admin, "GET", "/v1/api-keys/"+k.ID, "").Data)
	must(t, string(got.Metadata) == want, "get: metadata %s, want %s", got.Metadata, want)
	list := withoutCallers(decode[[]keyView](t, e.do(&admin, "GET", "/v1/api-keys", "").Data))
	must(t, len(list) == 1 && string(list[0].Metadata) == want, "list: %s", list[0].Metadata)
	audit := decode[[]struct {
		Changes map[string]struct{ To json.RawMessage }
	}](t, e.do(&admin, "GET", "/v1/audit?keyId="+k.ID, "").Data)
	must(t, len(audit) == 1, "%d audit events", len(audit))
	got2 := audit[0].Changes["metadata"].To
	must(t, string(got2) == want, "audit: metadata %s, want %s", got2, want)
}

// TestHostileBodiesAreRefused: what encoding/json would quietly accept is
// refused with a 400 naming the field, and nothing is written.
func TestHostileBodiesAreRefused(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	k := e.create(&admin, `{"name":"target","tier":"public","scopes":["contracts"]}`)
	tests := []struct {
		name, method, target, body, field string
	}{
		{"number beyond float64", "POST", "/v1/api-keys", `{"name":"a","tier":"public","metadata":{"n":-1e309}}`, "metadata.n"},
		{"overflow deep in metadata", "POST", "/v1/api-keys", `{"name":"a","tier":"public","metadata":{"a":{"b":[1,1e400]}}}`, "metadata.a.b"},
		{"duplicate metadata key", "POST", "/v1/api-keys", `{"name":"a","tier":"public","metadata":{"role":"user","role":"admin"}}`, "metadata.role"},
		{"case-variant metadata key", "POST", "/v1/api-keys", `{"name":"a","tier":"public","metadata":{"role":"user","Role":"admin"}}`, "metadata.Role"},
		{"invalid UTF-8 in metadata", "POST", "/v1/api-keys", "{\"name\":\"a\",\"tier\":\"public\",\"metadata\":{\"s\":\"\xff\"}}", "metadata"},
		{"duplicate field", "POST", "/v1/api-keys", `{"name":"a","name":"b","tier":"public"}`, "name"},
		{"case-variant field overrides", "POST", "/v1/api-keys", `{"name":"a","tier":"public","Tier":"internal"}`, "Tier"},
		{"case-variant field alone", "POST", "/v1/api-keys", `{"Name":"a","tier":"public"}`, "Name"},
		// encoding/json folds Unicode case too: "ſ" (U+017F) matches s, "K" (U+212A) k.
		{"long s folds into scopes", "POST", "/v1/api-keys", `{"name":"a","tier":"public","\u017fcopes":["admin"]}`, "\u017fcopes"},
		{"Kelvin sign folds into key", "POST", "/v1/verify", `{"\u212aey":"kg_pk_x"}`, "\u212aey"},
		{"patch: long s beside scopes", "PATCH", "/v1/api-keys/" + k.ID, `{"scopes":[],"\u017fcopes":["admin"]}`, "\u017fcopes"},
		{"right-to-left override in name", "POST", "/v1/api-keys", `{"name":"admin\u202egnp.exe","tier":"public"}`, "name"},
		{"zero-width space in name", "POST", "/v1/api-keys", `{"name":"ad\u200bmin","tier":"public"}`, "name"},
		{"byte-order mark in name", "POST", "/v1/api-keys", `{"name":"\ufeffadmin","tier":"public"}`, "name"},
		{"line separator in name", "POST", "/v1/api-keys", `{"name":"a\u2028b","tier":"public"}`, "name"},
		{"paragraph separator in name", "POST", "/v1/api-keys", `{"name":"a\u2029b","tier":"public"}`, "name"},
		{"bell in name", "POST", "/v1/api-keys", `{"name":"a\u0007","tier":"public"}`, "name"},
		// Characters outside Cc, Cf, Zl and Zp that still render as nothing.
		{"Hangul filler in name", "POST", "/v1/api-keys", `{"name":"admin\u3164","tier":"public"}`, "name"},
		{"Braille blank in name", "POST", "/v1/api-keys", `{"name":"ad\u2800min","tier":"public"}`, "name"},
		{"variation selector after a letter", "POST", "/v1/api-keys", `{"name":"admin\ufe0f","tier":"public"}`, "name"},
		{"private use in name", "POST", "/v1/api-keys", `{"name":"admin\udb80\udc00","tier":"public"}`, "name"},
		{"unassigned in name", "POST", "/v1/api-keys", `{"name":"admin\u0378","tier":"public"}`, "name"},
		{"patch: combining grapheme joiner", "PATCH", "/v1/api-keys/" + k.ID, `{"name":"ad\u034fmin"}`, "name"},
		{"patch: duplicate field", "PATCH", "/v1/api-keys/" + k.ID, `{"name":"a","name":"b"}`, "name"},
		// null would read as "leave it": refused where it means nothing.
		{"patch: null name", "PATCH", "/v1/api-keys/" + k.ID, `{"name":null}`, "name"},
		{"patch: null scopes beside a change", "PATCH", "/v1/api-keys/" + k.ID, `{"scopes":null,"metadata":{"a":1}}`, "scopes"},
		{"patch: null allowlist", "PATCH", "/v1/api-keys/" + k.ID, `{"ipAllowlist":null}`, "ipAllowlist"},
		{"patch: null status", "PATCH", "/v1/api-keys/" + k.ID, `{"status":null}`, "status"},
		{"patch: unknown mode", "PATCH", "/v1/api-keys/" + k.ID, `{"mode":"fast"}`, "mode"},
		{"create: mode with a zero-width space", "POST", "/v1/api-keys", `{"name":"a","tier":"public","mode":"leased\u200b"}`, "mode"},
		{"patch: case-variant scopes", "PATCH", "/v1/api-keys/" + k.ID, `{"Scopes":["admin"]}`, "Scopes"},
		{"patch: hidden character", "PATCH", "/v1/api-keys/" + k.ID, `{"name":"x\u200dy"}`, "name"},
		{"patch: overflow", "PATCH", "/v1/api-keys/" + k.ID, `{"metadata":{"n":1e999}}`, "metadata.n"},
		// Metadata keys equal under Unicode case folding, as encoding/json folds.
		{"patch: long s metadata key", "PATCH", "/v1/api-keys/" + k.ID, `{"metadata":{"isAdmin":false,"i\u017fAdmin":true}}`, "metadata.i\u017fAdmin"},
		{"Kelvin sign metadata key", "POST", "/v1/api-keys", `{"name":"a","tier":"public","metadata":{"kind":"user","\u212aind":"admin"}}`, "metadata.\u212aind"},
		{"micro sign metadata key", "POST", "/v1/api-keys", `{"name":"a","tier":"public","metadata":{"\u03bc":1,"\u00b5":2}}`, "metadata.\u00b5"},
		{"final sigma metadata key", "POST", "/v1/api-keys", `{"name":"a","tier":"public","metadata":{"\u03c3":1,"\u03c2":2}}`, "metadata.\u03c2"},
		{"rotate: duplicate field", "POST", "/v1/api-keys/" + k.ID + "/rotate", `{"gracePeriodSeconds":0,"gracePeriodSeconds":604800}`, "gracePeriodSeconds"},
		{"rotate: overflow", "POST", "/v1/api-keys/" + k.ID + "/rotate", `{"gracePeriodSeconds":1e999}`, "gracePeriodSeconds"},
		{"verify: case-variant key", "POST", "/v1/verify", `{"key":"a","KEY":"b"}`, "KEY"},
		{"allowlist entry too long", "POST", "/v1/api-keys", `{"name":"a","tier":"public","ipAllowlist":["` + strings.Repeat("1", 3000) + `"]}`, "ipAllowlist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.snapshot()
			r := e.do(&admin, tt.method, tt.target, tt.body)
			must(t, r.Status == 400, "%s: %d %s, want 400", tt.body, r.Status, r.Body)
			must(t, strings.HasPrefix(r.Error.Message, tt.field+":"), "%s: message %q does not name %s", tt.body, r.Error.Message, tt.field)
			must(t, len(r.Error.Message) < 300, "message echoes too much: %d bytes", len(r.Error.Message))
			must(t, e.snapshot() == before, "a 400 wrote to the table")
		})
	}
}

// TestAllowlistWarnings: an allowlist that admits everything or nothing is
// accepted, with a warning in the answer.
func TestAllowlistWarnings(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	tests := []struct {
		list string
		want []string // substrings, one per warning
	}{
		{`["203.0.113.0/24"]`, nil},
		{`["0.0.0.0/0"]`, []string{"every IPv4"}},
		{`["::/0","10.0.0.1"]`, []string{"every IPv6"}},
		{`["0.0.0.0"]`, []string{"admits nothing"}},
		{`["::","0.0.0.0/32"]`, []string{"admits nothing", "admits nothing"}},
	}
	for _, tt := range tests {
		r := e.do(&admin, "POST", "/v1/api-keys", `{"name":"w","tier":"public","ipAllowlist":`+tt.list+`}`)
		must(t, r.Status == 201, "create with %s: %d", tt.list, r.Status)
		checkWarnings(t, r, tt.want)
		id := decode[keyView](t, r.Data).ID
		r = e.do(&admin, "PATCH", "/v1/api-keys/"+id, `{"ipAllowlist":`+tt.list+`}`)
		must(t, r.Status == 200, "patch: %d", r.Status)
		checkWarnings(t, r, tt.want)
		r = e.do(&admin, "PATCH", "/v1/api-keys/"+id, `{"name":"renamed"}`)
		checkWarnings(t, r, nil) // only a request that sets the allowlist is warned
	}
}

func checkWarnings(t *testing.T, r response, want []string) {
	t.Helper()
	if len(r.Warnings) != len(want) {
		t.Fatalf("warnings %q, want %d", r.Warnings, len(want))
	}
	for i, w := range want {
		if !strings.Contains(r.Warnings[i], w) {
			t.Errorf("warning %q does not say %q", r.Warnings[i], w)
		}
	}
}

// TestTimeBoxedKeyCannotOutliveItself: an admin key that expires soon and is
// pinned to an address cannot make itself, or any key, outlast or outrange
// it; what it creates records it and inherits its owner and end.
func TestTimeBoxedKeyCannotOutliveItself(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	boxed := e.create(&admin, `{"name":"contractor","tier":"internal","scopes":["admin","contracts"],"owner":"carol",
		"ipAllowlist":["203.0.113.0/24"],"expiresAt":"`+e.at(10*time.Minute)+`"}`)
	me := callerOf(boxed)
	self := "/v1/api-keys/" + boxed.ID
	forbidden := []struct{ name, method, target, body string }{
		{"own expiry to never", "PATCH", self, `{"expiresAt":null}`},
		{"own expiry later", "PATCH", self, `{"expiresAt":"` + e.at(time.Hour) + `"}`},
		{"own allowlist emptied", "PATCH", self, `{"ipAllowlist":[]}`},
		{"own allowlist to everything", "PATCH", self, `{"ipAllowlist":["0.0.0.0/0"]}`},
		{"own allowlist beyond", "PATCH", self, `{"ipAllowlist":["203.0.113.0/24","198.51.100.1"]}`},
		{"own allowlist wider prefix", "PATCH", self, `{"ipAllowlist":["203.0.112.0/23"]}`},
		{"create a permanent key", "POST", "/v1/api-keys", `{"name":"p","tier":"internal","expiresAt":"` + e.at(time.Hour) + `"}`},
	}
	for _, tt := range forbidden {
		before := e.snapshot()
		r := e.do(me, tt.method, tt.target, tt.body)
		must(t, r.Status == 403, "%s: %d %s, want 403", tt.name, r.Status, r.Body)
		must(t, e.snapshot() == before, "%s: a 403 wrote to the table", tt.name)
	}

	// Narrowing itself is allowed.
	r := e.do(me, "PATCH", self, `{"expiresAt":"`+e.at(5*time.Minute)+`","ipAllowlist":["203.0.113.7"]}`)
	must(t, r.Status == 200, "narrowing itself: %d %s", r.Status, r.Body)
	boxed = decode[keyView](t, r.Data)
	me = callerOf(boxed)

	// A key it creates ends with it, belongs to its owner and names it.
	child := e.create(me, `{"name":"child","tier":"public","scopes":["contracts"]}`)
	must(t, child.ExpiresAt != nil && child.ExpiresAt.Equal(*boxed.ExpiresAt), "child expires %v, want %v", child.ExpiresAt, boxed.ExpiresAt)
	must(t, child.Owner == "carol", "child owner %q, want the creator's", child.Owner)
	must(t, child.CreatedBy == boxed.ID, "child createdBy %q, want %s", child.CreatedBy, boxed.ID)
	explicit := e.create(me, `{"name":"c2","tier":"public","owner":"dave","expiresAt":"`+e.at(time.Minute)+`"}`)
	must(t, explicit.Owner == "dave", "explicit owner %q", explicit.Owner)
	must(t, explicit.ExpiresAt.Before(*boxed.ExpiresAt), "explicit earlier expiry kept")

	// It cannot rotate, or lengthen, a key that outlives it.
	permanent := e.create(&admin, `{"name":"perm","tier":"public","scopes":["contracts"]}`)
	for _, tt := range []struct{ name, method, target, body string }{
		{"rotate a permanent key", "POST", "/v1/api-keys/" + permanent.ID + "/rotate", `{}`},
		{"make a key permanent", "PATCH", "/v1/api-keys/" + child.ID, `{"expiresAt":null}`},
		{"give a key a later end", "PATCH", "/v1/api-keys/" + child.ID, `{"expiresAt":"` + e.at(time.Hour) + `"}`},
	} {
		before := e.snapshot()
		r := e.do(me, tt.method, tt.target, tt.body)
		must(t, r.Status == 403, "%s: %d %s, want 403", tt.name, r.Status, r.Body)
		must(t, e.snapshot() == before, "%s: a 403 wrote to the table", tt.name)
	}
	r = e.do(me, "POST", "/v1/api-keys/"+child.ID+"/rotate", `{}`)
	must(t, r.Status == 201, "rotating a key that ends with it: %d %s", r.Status, r.Body)
	must(t, decode[keyView](t, r.Data).CreatedBy == boxed.ID, "successor names who rotated")

	// createdBy: operator-made keys say so, and listings filter by it.
	must(t, permanent.CreatedBy == "key_000000000000000000000001", "created by the admin caller: %q", permanent.CreatedBy)
	children := decode[[]keyView](t, e.do(&admin, "GET", "/v1/api-keys?createdBy="+boxed.ID, "").Data)
	must(t, len(children) == 3, "%d keys created by the boxed key, want child, c2 and child's successor", len(children))
	for _, c := range children {
		must(t, c.CreatedBy == boxed.ID, "listed %s created by %s", c.ID, c.CreatedBy)
	}
	r = e.do(&admin, "GET", "/v1/api-keys?createdBy=somebody", "")
	must(t, r.Status == 400 && strings.HasPrefix(r.Error.Message, "createdBy"), "bad createdBy: %d %+v", r.Status, r.Error)
}

// TestRevokeOwnerIncludeCreated: revoking a departing owner with
// includeCreated reaches the keys their keys made, under any owner, down
// the chain, and the successors of those keys' rotations.
func TestRevokeOwnerIncludeCreated(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	alice := e.create(&admin, `{"name":"alice admin","tier":"internal","scopes":["admin","contracts"],"owner":"alice"}`)
	b := e.create(callerOf(alice), `{"name":"b","tier":"internal","scopes":["admin","contracts"],"owner":"svc"}`)
	c := e.create(callerOf(b), `{"name":"c","tier":"public","scopes":["contracts"]}`)
	must(t, c.Owner == "svc", "c inherits b's owner: %q", c.Owner)
	rotated := decode[keyView](t, e.do(&admin, "POST", "/v1/api-keys/"+c.ID+"/rotate", `{}`).Data)
	unrelated := e.create(&admin, `{"name":"u","tier":"public","owner":"svc"}`)

	r := e.do(&admin, "POST", "/v1/owners/alice/revoke", "")
	must(t, r.Status == 200 && string(r.Data) == `{"revoked":1}`, "plain owner revoke: %d %s", r.Status, r.Data)
	must(t, e.status(b.ID) == "active", "plain owner revoke reached a key alice's key created")

	r = e.do(&admin, "POST", "/v1/owners/alice/revoke?includeCreated=true", "")
	must(t, r.Status == 200 && string(r.Data) == `{"revoked":3}`, "includeCreated: %d %s, want b, c and c's successor", r.Status, r.Data)
	for _, id := range []string{alice.ID, b.ID, c.ID, rotated.ID} {
		must(t, e.status(id) == "revoked", "%s still %s", id, e.status(id))
	}
	must(t, e.status(unrelated.ID) == "active", "a key of the same owner that alice's keys did not create was revoked")

	r = e.do(&admin, "POST", "/v1/owners/alice/revoke?includeCreated=true", "")
	must(t, r.Status == 200 && string(r.Data) == `{"revoked":0}`, "again: %s", r.Data)
	r = e.do(&admin, "POST", "/v1/owners/alice/revoke?includeCreated=yes", "")
	must(t, r.Status == 400, "includeCreated=yes: %d", r.Status)
}

func (e *env) status(id string) string {
	e.t.Helper()
	return decode[keyView](e.t, e.do(&admin, "GET", "/v1/api-keys/"+id, "").Data).Status
}

// TestRevokeWinsOverConcurrentEdits: a DELETE racing a burst of PATCHes of
// the same key always succeeds, and the key ends revoked.
func TestRevokeWinsOverConcurrentEdits(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	for trial := range 5 {
		k := e.create(&admin, `{"name":"raced","tier":"public"}`)
		var wg sync.WaitGroup
		results := make(chan response, 10)
		errs := make(chan error, 10)
		for i := range 10 {
			wg.Go(func() {
				method, body := "PATCH", fmt.Sprintf(`{"name":"edit %d"}`, i)
				if i == 4 {
					method, body = "DELETE", ""
				}
				r, err := e.try(&admin, method, "/v1/api-keys/"+k.ID, body)
				if err != nil {
					errs <- err
					return
				}
				if method == "DELETE" {
					results <- r
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		r := <-results
		must(t, r.Status == 200, "trial %d: revoke answered %d %s", trial, r.Status, r.Body)
		must(t, e.status(k.ID) == "revoked", "trial %d: key still active after its revoke", trial)
	}
}

// TestOwnerRevokeWinsOverConcurrentEdits: the same for an owner revoke.
func TestOwnerRevokeWinsOverConcurrentEdits(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	var ids []string
	for i := range 5 {
		ids = append(ids, e.create(&admin, fmt.Sprintf(`{"name":"k%d","tier":"public","owner":"leaver"}`, i)).ID)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, id := range ids {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = e.try(&admin, "PATCH", "/v1/api-keys/"+id, fmt.Sprintf(`{"name":"edit %d"}`, i))
			}
		})
	}
	r, err := e.try(&admin, "POST", "/v1/owners/leaver/revoke", "")
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	must(t, r.Status == 200 && string(r.Data) == `{"revoked":5}`, "owner revoke under edits: %d %s", r.Status, r.Body)
	for _, id := range ids {
		must(t, e.status(id) == "revoked", "%s still active", id)
	}
}

// TestCursorsAreTamperEvident: a cursor works only for the listing that
// issued it; anything else is a 400 naming cursor, never a 5xx.
func TestCursorsAreTamperEvident(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	for i := range 3 {
		e.create(&admin, fmt.Sprintf(`{"name":"k%d","tier":"public","owner":"o"}`, i))
	}
	other := globexAdmin
	e.create(&other, `{"name":"g1","tier":"public"}`)
	e.create(&other, `{"name":"g2","tier":"public"}`)
	page := e.do(&admin, "GET", "/v1/api-keys?limit=1", "")
	cursor := page.NextCursor
	must(t, cursor != "", "no cursor")
	ok := e.do(&admin, "GET", "/v1/api-keys?limit=1&cursor="+url.QueryEscape(cursor), "")
	must(t, ok.Status == 200, "the cursor itself: %d", ok.Status)
	auditCursor := e.do(&admin, "GET", "/v1/audit?limit=1", "").NextCursor
	must(t, auditCursor != "", "no audit cursor")

	body, mac, _ := strings.Cut(cursor, ".")
	flipped := []byte(mac)
	flipped[0] ^= 1
	bad := []struct {
		name string
		c    *caller
		path string
	}{
		{"another project", &other, "/v1/api-keys?limit=1&cursor=" + cursor},
		{"another filter", &admin, "/v1/api-keys?limit=1&status=active&cursor=" + cursor},
		{"another owner filter", &admin, "/v1/api-keys?limit=1&owner=o&cursor=" + cursor},
		{"a key cursor on the audit log", &admin, "/v1/audit?limit=1&cursor=" + cursor},
		{"an audit cursor on keys", &admin, "/v1/api-keys?limit=1&cursor=" + auditCursor},
		{"tampered MAC", &admin, "/v1/api-keys?limit=1&cursor=" + body + "." + string(flipped)},
		{"no MAC", &admin, "/v1/api-keys?limit=1&cursor=" + body},
		{"3 KB", &admin, "/v1/api-keys?limit=1&cursor=" + strings.Repeat("A", 3000)},
		{"old unsigned shape", &admin, "/v1/api-keys?limit=1&cursor=eyJzIjoiMDAwMDAwMDAwMDAwMCNrZXlfMDAifQ"},
		{"not base64", &admin, "/v1/api-keys?limit=1&cursor=%25%25.%25%25"},
	}
	for _, tt := range bad {
		r := e.do(tt.c, "GET", tt.path, "")
		must(t, r.Status == 400 && strings.HasPrefix(r.Error.Message, "cursor:"), "%s: %d %+v", tt.name, r.Status, r.Error)
	}
}

// TestLongOwnerRevokeMissesNoKey: more keys than three transactions hold,
// and every one is revoked.
func TestLongOwnerRevokeMissesNoKey(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	const n = 151 // three full transactions of 50, and one more
	for i := range n {
		e.create(&admin, fmt.Sprintf(`{"name":"k%d","tier":"public","owner":"big"}`, i))
	}
	r := e.do(&admin, "POST", "/v1/owners/big/revoke", "")
	must(t, r.Status == 200 && string(r.Data) == fmt.Sprintf(`{"revoked":%d}`, n), "revoke: %d %s", r.Status, r.Data)
	active := decode[[]keyView](t, e.do(&admin, "GET", "/v1/api-keys?owner=big&status=active", "").Data)
	must(t, len(active) == 0, "%d keys still active", len(active))
	revoked := 0
	for cursor := ""; ; {
		p := e.do(&admin, "GET", "/v1/api-keys?owner=big&status=revoked&limit=100&cursor="+url.QueryEscape(cursor), "")
		revoked += len(decode[[]keyView](t, p.Data))
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	must(t, revoked == n, "%d keys revoked, want %d", revoked, n)
}

// TestRotationNeverExtendsTheOldKey: the old key's end is the earlier of
// its own expiry and the end of the grace period.
func TestRotationNeverExtendsTheOldKey(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	soon := e.create(&admin, `{"name":"soon","tier":"public","expiresAt":"`+e.at(time.Hour)+`"}`)
	e.do(&admin, "POST", "/v1/api-keys/"+soon.ID+"/rotate", `{"gracePeriodSeconds":86400}`)
	old := decode[keyView](t, e.do(&admin, "GET", "/v1/api-keys/"+soon.ID, "").Data)
	must(t, old.ExpiresAt.Equal(*soon.ExpiresAt), "rotation moved the old key's end from %v to %v", soon.ExpiresAt, old.ExpiresAt)

	later := e.create(&admin, `{"name":"later","tier":"public","expiresAt":"`+e.at(48*time.Hour)+`"}`)
	e.do(&admin, "POST", "/v1/api-keys/"+later.ID+"/rotate", `{"gracePeriodSeconds":60}`)
	old = decode[keyView](t, e.do(&admin, "GET", "/v1/api-keys/"+later.ID, "").Data)
	want := e.clock.Now().Add(time.Minute)
	must(t, old.ExpiresAt.Equal(want), "old key ends %v, want the grace end %v", old.ExpiresAt, want)
}

// TestWhoamiShowsTheAuthorizerContext: whoami returns what the authorizer
// handed on.
func TestWhoamiShowsTheAuthorizerContext(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	end := e.clock.Now().Add(time.Hour).Truncate(time.Millisecond)
	c := caller{project: "acme", keyID: admin.keyID, scopes: "admin,verify", owner: "ops", expiresAt: &end}
	r := e.do(&c, "GET", "/v1/whoami", "")
	var got map[string]any
	must(t, json.Unmarshal(r.Data, &got) == nil, "decode %s", r.Data)
	for _, field := range []string{"keyId", "project", "owner", "scopes", "expiresAt", "sourceIp", "tier"} {
		_, ok := got[field]
		must(t, ok, "whoami lacks %s: %s", field, r.Data)
	}
	must(t, got["owner"] == "ops" && slices.Equal(toStrings(got["scopes"]), []string{"admin", "verify"}), "whoami %s", r.Data)
	must(t, got["expiresAt"] == end.Format(time.RFC3339Nano), "expiresAt %v, want %v", got["expiresAt"], end)
}

func toStrings(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

// TestEveryReadPathSurvivesStoredEdgeValues plants items that keygate's
// validation would refuse today (written by an older version, or by hand)
// and walks every read route, and the routes that read before they write,
// over them: each answers, and none with a 5xx.
func TestEveryReadPathSurvivesStoredEdgeValues(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	// The OpenAPI document describes what keygate writes; a status "weird"
	// is shown as stored, outside it.
	e.offContract = true
	now := e.clock.Now()
	farFuture := time.Date(20000, 1, 1, 0, 0, 0, 0, time.UTC)
	farPast := time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)
	edge := []struct {
		label string
		key   keys.Key
	}{
		{"overflow metadata", keys.Key{Metadata: json.RawMessage(`{"n":-1e309,"m":1e400}`)}},
		{"huge integer metadata", keys.Key{Metadata: json.RawMessage(`{"big":123456789012345678901234567890}`)}},
		{"not JSON metadata", keys.Key{Metadata: json.RawMessage(`{{not json`)}},
		{"duplicate metadata keys", keys.Key{Metadata: json.RawMessage(`{"role":"user","role":"admin"}`)}},
		{"bidi name", keys.Key{Name: "admin\u202egnp.exe\u200b"}},
		{"far-future times", keys.Key{CreatedAt: farFuture, ExpiresAt: &farFuture}},
		{"far-past times", keys.Key{CreatedAt: farPast, UpdatedAt: farPast}},
		{"unknown tier, scope and status", keys.Key{Tier: "retired", Scopes: []string{"ghost"}, Status: "weird"}},
		{"garbage allowlist", keys.Key{IPAllowlist: []string{"not-an-ip", "300.1.1.1/99"}}},
		{"dangling rotation", keys.Key{RotatedTo: "key_ffffffffffffffffffffffff", RotatedFrom: "key_eeeeeeeeeeeeeeeeeeeeeeee"}},
	}
	var ids, raws, events []string
	tx := keys.Tx{}
	for i, ed := range edge {
		k := ed.key
		raw := authorizertest.Key("kg", "pk", ed.label)
		k.Hash = token.Hash(raw)
		k.ID = token.ID(k.Hash)
		k.Project, k.Owner, k.CreatedBy = "acme", "edgy", admin.keyID
		if k.Name == "" {
			k.Name = ed.label
		}
		if k.Tier == "" {
			k.Tier = "public"
		}
		if k.Status == "" {
			k.Status = keys.StatusActive
		}
		if k.CreatedAt.IsZero() {
			k.CreatedAt = now.Add(time.Duration(i) * time.Millisecond)
		}
		if k.UpdatedAt.IsZero() {
			k.UpdatedAt = k.CreatedAt
		}
		tx.Create = append(tx.Create, &k)
		changes := map[string]keys.Change{"name": {To: k.Name}, "n": {From: json.RawMessage(`-1e309`), To: json.RawMessage(`123456789012345678901234567890`)}}
		if json.Valid(k.Metadata) { // the store cannot write invalid JSON into an event
			changes["metadata"] = keys.Change{To: k.Metadata}
		}
		events = append(events, fmt.Sprintf("evt_%016x", i))
		tx.Events = append(tx.Events, &keys.AuditEvent{
			ID: events[i], Project: "acme", Actor: admin.keyID, Action: keys.ActionCreated, Target: k.ID,
			Time: k.CreatedAt, PurgeAt: now.Add(time.Hour), Changes: changes,
		})
		ids, raws = append(ids, k.ID), append(raws, raw)
	}
	if err := e.app.Store.Apply(context.Background(), tx); err != nil {
		t.Fatal(err)
	}

	check := func(method, target, body string) response {
		t.Helper()
		r, err := e.try(&admin, method, target, body)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status >= 500 {
			t.Errorf("%s %s: %d %s", method, target, r.Status, r.Body)
		}
		return r
	}
	// Every listing, walked one item a page so that every item is a cursor,
	// answers 200 and lists no item twice; those every planted key or event
	// matches must list each (beside the harness's own caller keys).
	for _, list := range []struct {
		path string
		want []string // nil: not counted
	}{
		{"/v1/api-keys?", ids}, {"/v1/api-keys?status=active&", nil}, {"/v1/api-keys?status=expired&", nil},
		{"/v1/api-keys?status=revoked&", nil}, {"/v1/api-keys?owner=edgy&", ids}, {"/v1/api-keys?tier=public&", nil},
		{"/v1/api-keys?createdBy=" + admin.keyID + "&", ids}, {"/v1/audit?", events}, {"/v1/audit?action=key.created&", events},
	} {
		seen := map[string]int{}
		for cursor, pages := "", 0; pages < 50; pages++ {
			r := check("GET", list.path+"limit=1&cursor="+url.QueryEscape(cursor), "")
			var items []struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(r.Data, &items); r.Status != 200 || err != nil {
				t.Errorf("%s page %d: %d %s", list.path, pages, r.Status, r.Body)
				break
			}
			for _, item := range items {
				if seen[item.ID]++; seen[item.ID] > 1 {
					t.Errorf("%s: %s listed twice", list.path, item.ID)
				}
			}
			if cursor = r.NextCursor; cursor == "" {
				break
			}
		}
		for _, id := range list.want {
			if seen[id] == 0 {
				t.Errorf("%s: %s not listed", list.path, id)
			}
		}
	}
	for i, id := range ids {
		check("GET", "/v1/api-keys/"+id, "")
		check("GET", "/v1/audit?keyId="+id, "")
		check("POST", "/v1/verify", `{"key":"`+raws[i]+`"}`)
		check("PATCH", "/v1/api-keys/"+id, `{"name":"renamed"}`)
		check("POST", "/v1/api-keys/"+id+"/rotate", `{"gracePeriodSeconds":0}`)
	}
	check("POST", "/v1/owners/edgy/revoke?includeCreated=true", "")
	for _, id := range ids {
		check("DELETE", "/v1/api-keys/"+id, "")
		check("GET", "/v1/api-keys/"+id, "")
	}
}
