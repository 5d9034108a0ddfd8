package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// limitsWalkthrough runs the README's "Limits and credits" examples,
// request for request, against a running stack: the budget shows in the
// RateLimit header fields, credits run out into usage_exceeded (in verify
// and at the gateway, with Retry-After), and owner limits join the key's.
func limitsWalkthrough(t *testing.T, base, admin string) {
	t.Helper()
	r := call(t, "POST", base+"/v1/api-keys", bearer(admin), `{"name":"Metered","tier":"public","owner":"acme_corp",
  "rateLimits":[{"name":"burst","limit":5,"windowSeconds":1},{"name":"daily","limit":100,"windowSeconds":86400}],
  "credits":{"remaining":5,"refill":{"interval":"monthly","amount":5,"refillDay":1}}}`)
	var created struct{ ID, Key string }
	if r.status != 201 || json.Unmarshal(r.Data, &created) != nil {
		t.Fatalf("create a metered key: %d %s", r.status, r.raw)
	}
	r = call(t, "GET", base+"/v1/whoami", apiKey(created.Key), "")
	if r.status != 200 || r.header.Get("RateLimit-Limit") != "5" || r.header.Get("RateLimit-Remaining") != "4" || r.header.Get("RateLimit-Reset") == "" {
		t.Errorf("whoami: %d, headers %v; want RateLimit-Limit 5, -Remaining 4, -Reset", r.status, r.header)
	}
	verify := func(body string) (code string, credits int64, retryAfter int64) {
		t.Helper()
		r := call(t, "POST", base+"/v1/verify", bearer(admin), body)
		var v struct {
			Code       string
			Credits    struct{ Remaining int64 }
			RetryAfter int64
		}
		if r.status != 200 || json.Unmarshal(r.Data, &v) != nil {
			t.Fatalf("verify %s: %d %s", body, r.status, r.raw)
		}
		return v.Code, v.Credits.Remaining, v.RetryAfter
	}
	if code, left, _ := verify(`{"key":"` + created.Key + `","cost":4}`); code != "VALID" || left != 0 {
		t.Errorf("verify at cost 4: %s with %d left, want VALID with 0", code, left)
	}
	if code, _, retry := verify(`{"key":"` + created.Key + `"}`); code != "USAGE_EXCEEDED" || retry <= 0 {
		t.Errorf("verify with no credits: %s, retryAfter %d; want USAGE_EXCEEDED until the refill", code, retry)
	}
	r = call(t, "GET", base+"/v1/whoami", apiKey(created.Key), "")
	if retry, _ := strconv.Atoi(r.header.Get("Retry-After")); r.status != 403 || r.code() != "usage_exceeded" || retry <= 0 || r.header.Get("RateLimit-Limit") != "5" {
		t.Errorf("the gateway without credits: %d %s, headers %v; want 403 usage_exceeded, Retry-After and the budget", r.status, r.raw, r.header)
	}
	if r = call(t, "POST", base+"/v1/api-keys/"+created.ID+"/credits", bearer(admin), `{"op":"increment","value":10}`); r.status != 200 || !strings.Contains(string(r.Data), `"remaining":10`) {
		t.Errorf("increment: %d %s", r.status, r.raw)
	}
	r = call(t, "PATCH", base+"/v1/api-keys/"+created.ID, bearer(admin), `{"rateLimits":[{"name":"burst","limit":10,"windowSeconds":1},
  {"name":"daily","limit":100,"windowSeconds":86400}]}`)
	if r.status != 200 {
		t.Errorf("raise the burst limit: %d %s", r.status, r.raw)
	}
	limits := `{"rateLimits":[{"name":"daily","limit":1000,"windowSeconds":86400}]}`
	if r = call(t, "PUT", base+"/v1/owners/acme_corp/limits", bearer(admin), limits); r.status != 200 {
		t.Errorf("owner limits: %d %s", r.status, r.raw)
	}
	if r = call(t, "GET", base+"/v1/owners/acme_corp/limits", bearer(admin), ""); r.status != 200 || !strings.Contains(string(r.Data), `"limit":1000`) {
		t.Errorf("read owner limits: %d %s", r.status, r.raw)
	}
	r = call(t, "POST", base+"/v1/verify", bearer(admin), `{"key":"`+created.Key+`"}`)
	if !strings.Contains(string(r.Data), `{"name":"daily","owner":true,"limit":1000,"remaining":999`) {
		t.Errorf("verify after the owner's limits: %s, want the owner's daily limit counted", r.Data)
	}

	// The README's usage examples: make run's aggregator, on DynamoDB
	// Local's stream, puts these uses in the key's series within seconds.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r = call(t, "GET", base+"/v1/api-keys/"+created.ID+"/usage", bearer(admin), "")
		var s struct{ Buckets []struct{ Allowed int64 } }
		if r.status != 200 || json.Unmarshal(r.Data, &s) != nil {
			t.Fatalf("key usage: %d %s", r.status, r.raw)
		}
		var allowed int64
		for _, b := range s.Buckets {
			allowed += b.Allowed
		}
		if allowed >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s the key's usage shows %d allowed, want its 3 allowed uses: %s", allowed, r.raw)
		}
	}
	for _, target := range []string{"/v1/owners/acme_corp/usage?granularity=day", "/v1/usage?groupBy=owner&limit=10"} {
		if r = call(t, "GET", base+target, bearer(admin), ""); r.status != 200 {
			t.Errorf("GET %s: %d %s", target, r.status, r.raw)
		}
	}
}
