package keys_test

import (
	"testing"
	"time"

	"github.com/keygate/keygate/pkg/keys"
)

// A key on a monthly refill that moves its refill day to tomorrow, every
// day, would refill its budget daily: the same interval and amount look
// "within" its own credits, yet each move brings the next refill forward.
func TestAKeyCannotBringItsRefillForward(t *testing.T) {
	e := newLimitsEnv(t)
	me := callerOf(e.create(op, keys.CreateInput{Scopes: []string{"admin"}, RateLimits: raw("[]"),
		Credits: raw(`{"remaining":100,"refill":{"interval":"monthly","amount":100,"refillDay":1}}`)}))
	got := int64(0)
	for day := 2; day <= 4; day++ {
		// Spend everything, then move the refill to tomorrow.
		if _, err := e.svc.AdjustCredits(e.ctx, me, me.KeyID, keys.CreditsInput{Op: keys.CreditsSet, Value: raw("0")}); err != nil {
			t.Fatal(err)
		}
		in := keys.UpdateInput{Credits: raw(`{"refill":{"interval":"monthly","amount":100,"refillDay":` + string(rune('0'+day)) + `}}`)}
		if _, err := e.svc.Update(e.ctx, me, me.KeyID, in); err != nil {
			t.Logf("day %d: refused: %v", day, err)
			break
		}
		e.clock.Set(time.Date(2030, 1, day, 0, 0, 0, 0, time.UTC))
		got += e.stored(me.KeyID).Credits.At(e.clock.Now()).Remaining
	}
	if got > 0 {
		t.Errorf("a key with 100 credits refilled monthly on day 1 gave itself %d more credits in the first days of January", got)
	}
}

// A key of owner alice can neither rename her shared limit (a fresh
// window) nor move her monthly refill to tomorrow, though neither looks
// looser.
func TestAKeyCannotResetItsOwnersBudget(t *testing.T) {
	e := newLimitsEnv(t)
	if _, err := e.svc.PutOwnerLimits(e.ctx, op, "alice", keys.OwnerLimitsInput{RateLimits: raw(`[{"name":"day","limit":100,"windowSeconds":86400}]`),
		Credits: raw(`{"remaining":0,"refill":{"interval":"monthly","amount":1000,"refillDay":1}}`)}); err != nil {
		t.Fatal(err)
	}
	me := callerOf(e.create(op, keys.CreateInput{Scopes: []string{"admin"}, Owner: "alice"}))
	_, err := e.svc.PutOwnerLimits(e.ctx, me, "alice", keys.OwnerLimitsInput{RateLimits: raw(`[{"name":"dayb","limit":100,"windowSeconds":86400}]`),
		Credits: raw(`{"refill":{"interval":"monthly","amount":1000,"refillDay":2}}`)})
	if err == nil {
		o, _ := e.svc.GetOwnerLimits(e.ctx, op, "alice")
		t.Errorf("alice's own key renamed her limit to %v and moved her refill to %v", o.RateLimits, o.Credits.NextRefillAt)
	}
}
