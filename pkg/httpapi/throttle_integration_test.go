package httpapi_test

import (
	"testing"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/internal/ddbthrottle"
	"github.com/keygate/keygate/pkg/config"
)

// TestVerifyHotKeyThrottled verifies one key past the writes a second
// its DynamoDB item takes (the clock held still): what DynamoDB accepted is
// VALID, every verification past it RATE_LIMITED with retryAfter 1 and
// nothing of the key, never a 5xx; another key stays VALID.
func TestVerifyHotKeyThrottled(t *testing.T) {
	e := newEnv(t, ddbtest.TableOptions{})
	hot := e.create(&admin, `{"name":"hot","tier":"internal"}`)
	cold := e.create(&admin, `{"name":"cold","tier":"internal"}`)
	throttled := *e
	const ceiling = 100 // writes a second: DynamoDB's 1,000 would take 10x the requests
	throttled.client, _ = ddbthrottle.Instrument(e.client, ddbthrottle.Options{Now: e.clock.Now, WriteUnits: ceiling})
	te := throttled.configured(config.Default())

	type verification struct {
		Valid      bool   `json:"valid"`
		Code       string `json:"code"`
		KeyID      string `json:"keyId"`
		RetryAfter int64  `json:"retryAfter"`
	}
	codes := map[string]int{}
	for range ceiling + 20 {
		r := te.do(&admin, "POST", "/v1/verify", `{"key":"`+hot.Key+`"}`)
		must(t, r.Status == 200, "verify: %d %s", r.Status, r.Body)
		v := decode[verification](t, r.Data)
		switch {
		case v.Code == "VALID" && v.Valid && v.KeyID == hot.ID:
		case v.Code == "RATE_LIMITED" && !v.Valid && v.RetryAfter == 1 && v.KeyID == "":
		default:
			t.Fatalf("verify: %s", r.Body)
		}
		codes[v.Code]++
	}
	must(t, codes["VALID"] == ceiling && codes["RATE_LIMITED"] == 20, "codes %v", codes)
	r := te.do(&admin, "POST", "/v1/verify", `{"key":"`+cold.Key+`"}`)
	must(t, r.Status == 200 && decode[verification](t, r.Data).Code == "VALID", "another key: %s", r.Body)
	r = e.do(&admin, "GET", "/v1/api-keys/"+hot.ID, "")
	usage := decode[keyView](t, r.Data).Usage
	must(t, usage["totalRequests"] == float64(ceiling), "the key counted %v uses, %d were VALID", usage["totalRequests"], codes["VALID"])
}
