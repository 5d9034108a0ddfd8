package dynamo

import (
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/keys"
)

// The write's expressions: each limit counts in its own window and is
// bounded by its own limit, the credits by the cost; a plain key's write
// requires lv absent, a cached plan's its version.
func TestUseInputExpressions(t *testing.T) {
	u := newUseFixture()
	limits := []keys.RateLimit{{Name: "burst", Limit: 10, WindowSeconds: 1}, {Name: "daily", Limit: 1000, WindowSeconds: 86400}}
	for _, tc := range []struct {
		name       string
		plan       keyPlan
		wantNames  []string
		wantConds  []string
		wantUpdate []string
		absent     []string
	}{
		{"a plain key", plainKey,
			[]string{counterAttr("window.900", u.windowStart()), lastWindowAttr("window.900")},
			[]string{"attribute_not_exists(#n"}, []string{"if_not_exists("}, []string{attrCredits}},
		{"own limits and credits", keyPlan{version: 3, ownLimits: limits, credits: true},
			[]string{counterAttr("burst.1", u.req.Now.Unix()), counterAttr("daily.86400", u.req.Now.Unix()-u.req.Now.Unix()%86400), attrCredits, attrNextRefill},
			[]string{" >= ", " > "}, []string{" - "}, []string{counterAttr("window.900", u.windowStart())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ku := &keyUse{req: u.req, item: u.req.ID}
			ku.setPlan(tc.plan)
			in := ku.input("keygate")
			names := map[string]bool{}
			for _, n := range in.ExpressionAttributeNames {
				names[n] = true
			}
			for _, n := range tc.wantNames {
				if !names[n] {
					t.Errorf("no attribute %s in %v", n, in.ExpressionAttributeNames)
				}
			}
			for _, n := range tc.absent {
				if names[n] {
					t.Errorf("attribute %s in %v", n, in.ExpressionAttributeNames)
				}
			}
			for _, c := range tc.wantConds {
				if !strings.Contains(*in.ConditionExpression, c) {
					t.Errorf("condition %q lacks %q", *in.ConditionExpression, c)
				}
			}
			for _, c := range tc.wantUpdate {
				if !strings.Contains(*in.UpdateExpression, c) {
					t.Errorf("update %q lacks %q", *in.UpdateExpression, c)
				}
			}
			if tc.plan.version > 0 && !strings.Contains(*in.ConditionExpression, " = ") {
				t.Errorf("condition %q does not require the plan's version", *in.ConditionExpression)
			}
		})
	}
}

// A cost of 0 checks the credits without spending any.
func TestZeroCostSpendsNothing(t *testing.T) {
	m := newMeterUse(meterPlan{credits: true}, authorizer.UseRequest{Now: time.Now()}, authorizer.Unspent{}, false)
	e := newExpr()
	m.write(e)
	if strings.Contains(e.update(), "-") || !strings.Contains(e.condition(), ">=") {
		t.Errorf("update %q, condition %q", e.update(), e.condition())
	}
}

func BenchmarkUseInput(b *testing.B) {
	u := newUseFixture()
	five := []keys.RateLimit{
		{Name: "a", Limit: 10, WindowSeconds: 1}, {Name: "b", Limit: 100, WindowSeconds: 60}, {Name: "c", Limit: 1000, WindowSeconds: 3600},
		{Name: "d", Limit: 10000, WindowSeconds: 86400}, {Name: "e", Limit: 100000, WindowSeconds: 2592000},
	}
	for _, bc := range []struct {
		name string
		plan keyPlan
	}{
		{"tier limit", plainKey},
		{"5 limits and credits", keyPlan{version: 1, ownLimits: five, credits: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ku := &keyUse{req: u.req, item: u.req.ID}
				ku.setPlan(bc.plan)
				_ = ku.input("keygate")
			}
		})
	}
	_ = authorizer.Allowed
}
