package dynamo_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

// The attributes the authorizer reads, as key management leaves them on
// key and owner items.

func idOf(raw string) string { return token.ID(token.Hash(raw)) }

// attrs describes the named attributes of an item, absent ones as "-", so
// that a test compares them as one string.
func attrs(t *testing.T, item map[string]types.AttributeValue, names ...string) string {
	t.Helper()
	var b strings.Builder
	for _, name := range names {
		b.WriteString(name + "=")
		if v, ok := item[name]; ok {
			var out any
			if err := attributevalue.Unmarshal(v, &out); err != nil {
				t.Fatal(err)
			}
			j, _ := json.Marshal(out)
			b.Write(j)
		} else {
			b.WriteString("-")
		}
		b.WriteString(" ")
	}
	return strings.TrimSpace(b.String())
}

func (e *dbEnv) update(raw string, in keys.UpdateInput) {
	e.t.Helper()
	if _, err := e.svc.Update(context.Background(), keys.OperatorCaller("acme"), idOf(raw), in); err != nil {
		e.t.Fatal(err)
	}
}

// TestLimitsAttributes: a plain key carries no limits attribute at all, so
// that the authorizer's write knows it without reading it (lv absent: 0);
// each change of what the authorizer must know moves lv, and an attribute
// set to nothing is removed, not left empty.
func TestLimitsAttributes(t *testing.T) {
	e := newDBEnv(t)
	names := []string{dynamo.AttrRateLimits, dynamo.AttrCredits, "creditRefill", "nextRefill", dynamo.AttrLimitsVersion, dynamo.AttrOwnerLimited}
	plain := e.create(keys.CreateInput{Tier: "public"})
	const none = "rateLimits=- credits=- creditRefill=- nextRefill=- lv=- ownerLimits=-"
	if got := attrs(t, e.item(plain), names...); got != none {
		t.Errorf("plain key: %s", got)
	}
	k := e.create(keys.CreateInput{Tier: "public", RateLimits: json.RawMessage(`[{"name":"burst","limit":10,"windowSeconds":1}]`),
		Credits: json.RawMessage(`{"remaining":50,"refill":{"interval":"monthly","amount":70,"refillDay":31}}`)})
	jan16, jan31 := time.Date(2030, 1, 16, 0, 0, 0, 0, time.UTC).UnixMilli(), time.Date(2030, 1, 31, 0, 0, 0, 0, time.UTC).UnixMilli()
	for _, step := range []struct {
		in   keys.UpdateInput
		want string
	}{
		{keys.UpdateInput{}, `rateLimits=[{"limit":10,"name":"burst","windowSeconds":1}] credits=50 creditRefill={"amount":70,"interval":"monthly","refillDay":31} nextRefill=` + itoa(jan31) + ` lv=1 ownerLimits=-`},
		{keys.UpdateInput{RateLimits: json.RawMessage(`[]`)}, `rateLimits=[] credits=50 creditRefill={"amount":70,"interval":"monthly","refillDay":31} nextRefill=` + itoa(jan31) + ` lv=2 ownerLimits=-`},
		{keys.UpdateInput{Credits: json.RawMessage(`{"remaining":3,"refill":null}`)}, `rateLimits=[] credits=3 creditRefill=- nextRefill=- lv=2 ownerLimits=-`},
		{keys.UpdateInput{Credits: json.RawMessage(`{"refill":{"interval":"daily","amount":9}}`)}, `rateLimits=[] credits=3 creditRefill={"amount":9,"interval":"daily"} nextRefill=` + itoa(jan16) + ` lv=2 ownerLimits=-`},
		{keys.UpdateInput{RateLimits: json.RawMessage(`null`), Credits: json.RawMessage(`null`)}, `rateLimits=- credits=- creditRefill=- nextRefill=- lv=3 ownerLimits=-`},
	} {
		if step.in.RateLimits != nil || step.in.Credits != nil {
			e.update(k, step.in)
		}
		if got := attrs(t, e.item(k), names...); got != step.want {
			t.Errorf("after %s %s:\n got %s\nwant %s", step.in.RateLimits, step.in.Credits, got, step.want)
		}
	}
}

// TestRotationCarriesTheMeter: the successor item holds the old item's
// window counters, credits and limits verbatim, and the old key's hash
// until its grace ends; with no grace, no hash.
func TestRotationCarriesTheMeter(t *testing.T) {
	e := newDBEnv(t)
	ctx := context.Background()
	old := e.create(keys.CreateInput{Tier: "public", ExpiresAt: aws.String("2030-03-01T00:00:00Z"),
		RateLimits: json.RawMessage(`[{"name":"burst","limit":10,"windowSeconds":1},{"name":"day","limit":900,"windowSeconds":86400}]`),
		Credits:    json.RawMessage(`{"remaining":50,"refill":{"interval":"daily","amount":50}}`)})
	// The authorizer's counts: window counters, uses and credits spent.
	_, err := e.raw.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &e.table, Key: dynamo.KeyItemKey(idOf(old)),
		UpdateExpression: aws.String("SET #w1 = :four, #l1 = :start, #w2 = :seventy, #l2 = :day, credits = credits - :four ADD totalRequests :four"),
		ExpressionAttributeNames: map[string]string{
			"#w1": "w.burst.1.1894701650", "#l1": "lw.burst.1", "#w2": "w.day.86400.1894665600", "#l2": "lw.day.86400",
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":four": num(4), ":start": num(1894701650), ":seventy": num(70), ":day": num(1894665600),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	before := e.item(old)
	next, err := e.svc.Rotate(ctx, keys.OperatorCaller("acme"), idOf(old), 3600)
	if err != nil {
		t.Fatal(err)
	}
	carried := []string{"w.burst.1.1894701650", "lw.burst.1", "w.day.86400.1894665600", "lw.day.86400", dynamo.AttrRateLimits, dynamo.AttrCredits, "creditRefill", "nextRefill", dynamo.AttrLimitsVersion}
	successor := e.item(next.RawKey)
	if got, want := attrs(t, successor, carried...), attrs(t, before, carried...); got != want {
		t.Errorf("successor:\n%s\nwant the old item's\n%s", got, want)
	}
	graceUntil := e.clock.Now().Add(time.Hour).UnixMilli()
	oldHash := strings.TrimPrefix(attrs(t, before, dynamo.AttrKeyHash), dynamo.AttrKeyHash+"=")
	if got, want := attrs(t, successor, "graceHash", "graceUntil", dynamo.AttrTotalRequests), "graceHash="+oldHash+" graceUntil="+itoa(graceUntil)+" totalRequests=0"; got != want {
		t.Errorf("successor grace: %s, want %s", got, want)
	}
	if n := number(t, e.item(old), dynamo.AttrExpiresAt); n != graceUntil {
		t.Errorf("old key expires at %d, want the grace's end %d", n, graceUntil)
	}

	plain := e.create(keys.CreateInput{Tier: "public"})
	next, err = e.svc.Rotate(ctx, keys.OperatorCaller("acme"), idOf(plain), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := attrs(t, e.item(next.RawKey), "graceHash", "graceUntil", dynamo.AttrLimitsVersion); got != "graceHash=- graceUntil=- lv=-" {
		t.Errorf("a successor without grace: %s", got)
	}
}

// TestOwnerLimitsItem: an owner's limits item, as the authorizer reads it;
// a PUT changes its own attributes only, never the counters beside them,
// and an owner without limits keeps its item and version.
func TestOwnerLimitsItem(t *testing.T) {
	e := newDBEnv(t)
	ctx := context.Background()
	alice := e.create(keys.CreateInput{Tier: "public", Owner: "alice"})
	put := func(body string) {
		t.Helper()
		var in keys.OwnerLimitsInput
		if err := json.Unmarshal([]byte(body), &in); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.PutOwnerLimits(ctx, keys.OperatorCaller("acme"), "alice", in); err != nil {
			t.Fatal(err)
		}
	}
	item := func() map[string]types.AttributeValue {
		t.Helper()
		out, err := e.raw.GetItem(ctx, &dynamodb.GetItemInput{TableName: &e.table, Key: dynamo.OwnerLimitsKey("acme", "alice"), ConsistentRead: aws.Bool(true)})
		if err != nil || out.Item == nil {
			t.Fatalf("owner item: %v, %v", out, err)
		}
		return out.Item
	}
	names := []string{"pk", "sk", "project", "owner", dynamo.AttrRateLimits, dynamo.AttrCredits, "creditRefill", "nextRefill", "version", "updatedAt", "w.minute.60.1894702020", "lw.minute.60"}
	now := itoa(e.clock.Now().UnixMilli())

	put(`{"rateLimits":[{"name":"minute","limit":600,"windowSeconds":60}],"credits":{"remaining":5000,"refill":{"interval":"daily","amount":5000}}}`)
	jan16 := itoa(time.Date(2030, 1, 16, 0, 0, 0, 0, time.UTC).UnixMilli())
	if got, want := attrs(t, item(), names...), `pk="OWNERLIMITS#acme#alice" sk="LIMITS" project="acme" owner="alice" rateLimits=[{"limit":600,"name":"minute","windowSeconds":60}] credits=5000 creditRefill={"amount":5000,"interval":"daily"} nextRefill=`+jan16+` version=1 updatedAt=`+now+` w.minute.60.1894702020=- lw.minute.60=-`; got != want {
		t.Errorf("owner item:\n got %s\nwant %s", got, want)
	}
	if got := attrs(t, e.item(alice), dynamo.AttrOwnerLimited, dynamo.AttrLimitsVersion); got != "ownerLimits=true lv=1" {
		t.Errorf("alice's key: %s", got)
	}

	// The authorizer counts on the item; PUTs leave its counters alone.
	_, err := e.raw.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &e.table, Key: dynamo.OwnerLimitsKey("acme", "alice"),
		UpdateExpression:          aws.String("SET #w = :n, #l = :start, credits = credits - :n"),
		ExpressionAttributeNames:  map[string]string{"#w": "w.minute.60.1894702020", "#l": "lw.minute.60"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": num(9), ":start": num(1894702020)},
	})
	if err != nil {
		t.Fatal(err)
	}
	put(`{"rateLimits":[{"name":"minute","limit":300,"windowSeconds":60}]}`)
	if got, want := attrs(t, item(), names...), `pk="OWNERLIMITS#acme#alice" sk="LIMITS" project="acme" owner="alice" rateLimits=[{"limit":300,"name":"minute","windowSeconds":60}] credits=4991 creditRefill={"amount":5000,"interval":"daily"} nextRefill=`+jan16+` version=2 updatedAt=`+now+` w.minute.60.1894702020=9 lw.minute.60=1894702020`; got != want {
		t.Errorf("owner item after a PUT of rate limits:\n got %s\nwant %s", got, want)
	}
	put(`{"rateLimits":[],"credits":null}`)
	if got, want := attrs(t, item(), names...), `pk="OWNERLIMITS#acme#alice" sk="LIMITS" project="acme" owner="alice" rateLimits=[] credits=- creditRefill=- nextRefill=- version=3 updatedAt=`+now+` w.minute.60.1894702020=9 lw.minute.60=1894702020`; got != want {
		t.Errorf("owner item without limits:\n got %s\nwant %s", got, want)
	}
	if got := attrs(t, e.item(alice), dynamo.AttrOwnerLimited, dynamo.AttrLimitsVersion); got != "ownerLimits=- lv=2" {
		t.Errorf("alice's key after her limits went: %s", got)
	}
}

func itoa(n int64) string {
	j, _ := json.Marshal(n)
	return string(j)
}

func num(n int64) *types.AttributeValueMemberN { return &types.AttributeValueMemberN{Value: itoa(n)} }
