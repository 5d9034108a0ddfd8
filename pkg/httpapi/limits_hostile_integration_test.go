package httpapi_test

import (
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/ddbtest"
)

// Hostile bodies on every new field: each a 400 naming the field, nothing written.
func TestHostileLimitInputsWriteNothing(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	k := e.create(&admin, `{"name":"k","tier":"public","credits":{"remaining":10}}`)
	e.create(&admin, `{"name":"v","tier":"public","scopes":["verify"]}`)
	lim := func(s string) string { return `{"rateLimits":[` + s + `]}` }
	six := strings.Repeat(`{"name":"a","limit":1,"windowSeconds":1},`, 5) + `{"name":"f","limit":1,"windowSeconds":1}`
	for _, tc := range []struct{ method, path, body, field string }{
		{"PATCH", "/v1/api-keys/" + k.ID, lim(`{"name":"a\u200b","limit":1,"windowSeconds":1}`), "rateLimits[0].name"},
		{"PATCH", "/v1/api-keys/" + k.ID, lim(`{"name":"а","limit":1,"windowSeconds":1}`), "rateLimits[0].name"}, // Cyrillic a
		{"PATCH", "/v1/api-keys/" + k.ID, lim(`{"name":"a","limit":1,"windowSeconds":1,"LIMIT":2}`), "rateLimits"},
		{"PATCH", "/v1/api-keys/" + k.ID, lim(six), "rateLimits"},
		{"PATCH", "/v1/api-keys/" + k.ID, lim(`{"name":"a","limit":9007199254740993,"windowSeconds":1}`), "rateLimits[0].limit"},
		{"PATCH", "/v1/api-keys/" + k.ID, lim(`{"name":"a","limit":1,"windowSeconds":-1}`), "rateLimits[0].windowSeconds"},
		{"PATCH", "/v1/api-keys/" + k.ID, `{"rateLimits":[],"RateLimits":null}`, "RateLimits"},
		{"PATCH", "/v1/api-keys/" + k.ID, `{"credits":{"remaining":1,"Remaining":2}}`, "credits"},
		{"PATCH", "/v1/api-keys/" + k.ID, `{"credits":{"remaining":1e400}}`, "credits"},
		{"PATCH", "/v1/api-keys/" + k.ID, `{"credits":{"remaining":1,"refill":{"interval":"Daily","amount":1}}}`, "credits.refill.interval"},
		{"POST", "/v1/api-keys/" + k.ID + "/credits", `{"op":"Set","value":5}`, "op"},
		{"POST", "/v1/api-keys/" + k.ID + "/credits", `{"op":"set","value":-1}`, "value"},
		{"POST", "/v1/api-keys/" + k.ID + "/credits", `{"op":"set","value":1.5}`, "value"},
		{"POST", "/v1/api-keys/" + k.ID + "/credits", `{"op":"set","value":"5"}`, "value"},
		{"POST", "/v1/api-keys/" + k.ID + "/credits", `{"op":"set","value":5,"value":6}`, "value"},
		{"POST", "/v1/api-keys/" + k.ID + "/credits", `{"op":"set","value":5,"Op":"increment"}`, "Op"},
		{"POST", "/v1/api-keys/" + k.ID + "/credits", `{"op":"increment","value":99999999999999999999}`, "value"},
		{"PUT", "/v1/owners/team/limits", lim(`{"name":"a","limit":0,"windowSeconds":1}`), "rateLimits[0].limit"},
		{"PUT", "/v1/owners/team/limits", `{"rateLimits":null}`, "rateLimits"},
		{"PUT", "/v1/owners/team/limits", `{"credits":{"remaining":-1}}`, "credits.remaining"},
		{"PUT", "/v1/owners/team/limits", `{"credits":null,"credits":{"remaining":1}}`, "credits"},
		{"POST", "/v1/verify", `{"key":"x","cost":-1}`, "cost"},
		{"POST", "/v1/verify", `{"key":"x","cost":1.5}`, "cost"},
		{"POST", "/v1/verify", `{"key":"x","cost":1073741825}`, "cost"},
		{"POST", "/v1/verify", `{"key":"x","cost":1,"Cost":0}`, "Cost"},
	} {
		before := e.snapshot()
		r := e.do(&admin, tc.method, tc.path, tc.body)
		msg := ""
		if r.Error != nil {
			msg = r.Error.Message
		}
		if r.Status != 400 || !strings.Contains(msg, tc.field) {
			t.Errorf("%s %s %s: %d %s; want 400 naming %s", tc.method, tc.path, tc.body, r.Status, msg, tc.field)
		}
		if e.snapshot() != before {
			t.Errorf("%s %s: wrote", tc.method, tc.body)
		}
	}
}
