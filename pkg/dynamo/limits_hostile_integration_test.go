package dynamo_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/keys"
)

// hookStore runs after once, right after the first Apply that writes an
// owner's limits: the moment between PutOwnerLimits' owner write and its
// walk that flags the owner's keys.
type hookStore struct {
	keys.Store
	after func()
}

func (s *hookStore) Apply(ctx context.Context, tx keys.Tx) error {
	err := s.Store.Apply(ctx, tx)
	if err == nil && len(tx.Owners) > 0 && s.after != nil {
		f := s.after
		s.after = nil
		f()
	}
	return err
}

// A container that once saw an owner without limits must not trust that
// plan, which writes (and so checks) nothing: owner limits set later are
// enforced there from the next request.
func TestOwnerLimitsSetAgainBindAWarmContainer(t *testing.T) {
	e := newDBEnv(t)
	ctx := context.Background()
	hooked := &hookStore{Store: dynamo.New(e.raw, e.table)}
	svc := keys.NewService(dbConfig, hooked, keys.WithClock(e.clock.Now))
	put := func(body string) {
		t.Helper()
		var in keys.OwnerLimitsInput
		if err := json.Unmarshal([]byte(body), &in); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.PutOwnerLimits(ctx, keys.OperatorCaller("acme"), "team", in); err != nil {
			t.Fatal(err)
		}
	}
	key := e.create(keys.CreateInput{Tier: "huge", Owner: "team"})
	put(`{"rateLimits":[{"name":"shared","limit":100,"windowSeconds":900}]}`) // the key is flagged
	// The owner's limits are removed; one use lands before the walk
	// unflags the key (any use in that window, in any container).
	hooked.after = func() {
		if d, _ := e.decide(authorizer.Request{Key: key}); d.Outcome != authorizer.Allowed {
			t.Fatalf("use during the walk: %s", d.Outcome)
		}
	}
	put(`{"rateLimits":[],"credits":null}`)
	// Later the owner gets a limit of 1 per 900 s; its keys are flagged again.
	put(`{"rateLimits":[{"name":"shared","limit":1,"windowSeconds":900}]}`)
	allowed := 0
	for range 3 {
		if d, _ := e.decide(authorizer.Request{Key: key}); d.Outcome == authorizer.Allowed {
			allowed++
		}
	}
	if allowed != 1 {
		t.Errorf("%d of 3 uses allowed under an owner limit of 1 per 900 s", allowed)
	}
	// Control: a fresh container enforces the same limit.
	fresh := authorizer.New(dbConfig, dynamo.New(e.raw, e.table), slog.New(slog.DiscardHandler), authorizer.WithClock(e.clock.Now))
	var got []authorizer.Outcome
	for range 2 {
		d, err := fresh.Decide(ctx, authorizer.Request{Key: key})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, d.Outcome)
	}
	t.Logf("a fresh container: %v", got)
}

// A successor cannot be rotated while its predecessor's grace runs (the
// predecessor's uses count on the successor's item): one budget, never two.
func TestRotationWithinAGraceKeepsOneBudget(t *testing.T) {
	e := newDBEnv(t)
	ctx := context.Background()
	op := keys.OperatorCaller("acme")
	k0 := e.create(keys.CreateInput{Tier: "public", RateLimits: json.RawMessage(`[{"name":"n","limit":5,"windowSeconds":900}]`),
		Credits: json.RawMessage(`{"remaining":5}`)})
	s1, err := e.svc.Rotate(ctx, op, idOf(k0), 3600)
	if err != nil {
		t.Fatal(err)
	}
	var conflict *keys.ConflictError
	if _, err := e.svc.Rotate(ctx, op, s1.ID, 3600); !errors.As(err, &conflict) || !strings.Contains(err.Error(), "grace") {
		t.Fatalf("rotating the successor within its predecessor's grace: %v, want a conflict", err)
	}
	if err := e.svc.Revoke(ctx, op, idOf(k0)); err != nil {
		t.Fatal(err)
	}
	s2, err := e.svc.Rotate(ctx, op, s1.ID, 3600)
	if err != nil {
		t.Fatalf("rotating once the predecessor is revoked: %v", err)
	}
	allowed := 0
	for _, raw := range []string{k0, s1.RawKey, s2.RawKey} {
		for range 5 {
			if d, _ := e.decide(authorizer.Request{Key: raw}); d.Outcome == authorizer.Allowed {
				allowed++
			}
		}
	}
	if allowed != 5 {
		t.Errorf("the three keys of one lineage passed %d uses of one budget of 5", allowed)
	}
}

// Stored limits keygate would refuse (an item not written through the
// API) fail closed: no division by zero, no request through.
func TestStoredLimitsKeygateWouldRefuseFailClosed(t *testing.T) {
	for _, limit := range []keys.RateLimit{{Name: "zero", Limit: 5, WindowSeconds: 0}, {Name: "none", Limit: 0, WindowSeconds: 900}, {Name: "neg", Limit: -1, WindowSeconds: 900}} {
		t.Run(limit.Name, func(t *testing.T) {
			e := newDBEnv(t)
			raw := e.limitedKey([]keys.RateLimit{limit}, nil, nil)
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("the authorizer panicked on the stored limit %+v: %v", limit, r)
				}
			}()
			d, err := e.auth.Decide(context.Background(), authorizer.Request{Key: raw})
			if err == nil || d.Outcome == authorizer.Allowed {
				t.Errorf("the stored limit %+v: %s, %v; want a store error", limit, d.Outcome, err)
			}
		})
	}
}

// A key that spent its limit cannot rename or lengthen it (which would
// start a fresh counter, as tight as it looks) to spend it again.
func TestAKeyCannotResetItsOwnBudget(t *testing.T) {
	e := newDBEnv(t)
	ctx := context.Background()
	raw := e.create(keys.CreateInput{Tier: "public", Scopes: []string{"admin"},
		RateLimits: json.RawMessage(`[{"name":"day","limit":3,"windowSeconds":86400}]`)})
	self := keys.Caller{Project: "acme", KeyID: idOf(raw), Scopes: []string{"admin"}}
	allowed := 0
	use := func() {
		for range 3 {
			if d, _ := e.decide(authorizer.Request{Key: raw}); d.Outcome == authorizer.Allowed {
				allowed++
			}
		}
	}
	use()
	var forbidden *keys.ForbiddenError
	for _, limits := range []string{`[{"name":"dayb","limit":3,"windowSeconds":86400}]`, `[{"name":"day","limit":3,"windowSeconds":86401}]`} {
		if _, err := e.svc.Update(ctx, self, idOf(raw), keys.UpdateInput{RateLimits: json.RawMessage(limits)}); !errors.As(err, &forbidden) {
			t.Errorf("the key set itself %s: %v, want forbidden", limits, err)
		}
		use()
	}
	if allowed != 3 {
		t.Errorf("the key passed %d requests in one day under its own limit of 3 per day, by renaming/lengthening it itself", allowed)
	}
}

// Stored credits keygate would refuse fail closed: a credits or window
// attribute that is not a number is an error, negative credits refuse even
// at cost 0.
func TestStoredCreditsKeygateWouldRefuseFailClosed(t *testing.T) {
	e := newDBEnv(t)
	neg := e.limitedKey([]keys.RateLimit{}, &keys.Credits{Remaining: -5}, nil)
	for _, cost := range []int64{0, 1} {
		d, err := e.auth.Decide(context.Background(), authorizer.Request{Key: neg, Cost: cost})
		if err == nil && d.Outcome == authorizer.Allowed {
			t.Errorf("negative credits, cost %d: allowed", cost)
		}
	}
	str := e.limitedKey([]keys.RateLimit{}, &keys.Credits{Remaining: 5}, nil)
	_, err := e.raw.UpdateItem(context.Background(), updateString(e.table, idOf(str), "credits", "lots"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.auth.Decide(context.Background(), authorizer.Request{Key: str})
	if err == nil && d.Outcome == authorizer.Allowed {
		t.Errorf("string credits: allowed")
	}
	lw := e.limitedKey([]keys.RateLimit{{Name: "a", Limit: 5, WindowSeconds: 900}}, nil, nil)
	if _, err := e.raw.UpdateItem(context.Background(), updateString(e.table, idOf(lw), "lw.a.900", "x")); err != nil {
		t.Fatal(err)
	}
	d, err = e.auth.Decide(context.Background(), authorizer.Request{Key: lw})
	if err == nil && d.Outcome == authorizer.Allowed {
		t.Errorf("string lw: allowed")
	}
}

func updateString(table, id, attr, value string) *dynamodb.UpdateItemInput {
	return &dynamodb.UpdateItemInput{
		TableName: &table, Key: dynamo.KeyItemKey(id),
		UpdateExpression:          aws.String("SET #a = :v"),
		ExpressionAttributeNames:  map[string]string{"#a": attr},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberS{Value: value}},
	}
}

// hookClient runs before once, before the first UpdateItem on an owner's
// limits item.
type hookClient struct {
	dynamo.Client
	before func()
}

func (c *hookClient) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if pk, _ := in.Key["pk"].(*types.AttributeValueMemberS); pk != nil && strings.HasPrefix(pk.Value, "OWNERLIMITS#") && c.before != nil {
		f := c.before
		c.before = nil
		f()
	}
	return c.Client.UpdateItem(ctx, in, opts...)
}

// A use the owner refused gives its cost back to the key's credits only
// within the period it was spent in: after a refill landed in between, the
// key must not end the new period above its refill amount.
func TestAGiveBackNeverOverfillsANewPeriod(t *testing.T) {
	e := newDBEnv(t)
	ctx := context.Background()
	boundary := time.Date(2030, time.January, 16, 0, 0, 0, 0, time.UTC)
	if err := dynamo.PutOwnerLimits(ctx, e.raw, e.table, "acme", "team", []keys.RateLimit{}, &keys.Credits{Remaining: 0}); err != nil {
		t.Fatal(err)
	}
	raw := e.limitedKey([]keys.RateLimit{}, &keys.Credits{Remaining: 1, Refill: &keys.Refill{Interval: keys.RefillDaily, Amount: 10}, NextRefillAt: &boundary},
		func(k *keys.Key) { k.Owner, k.OwnerLimited = "team", true })
	hooked := &hookClient{Client: e.raw}
	before := authorizer.New(dbConfig, dynamo.New(hooked, e.table), slog.New(slog.DiscardHandler), authorizer.WithClock(func() time.Time { return boundary.Add(-time.Millisecond) }))
	after := authorizer.New(dbConfig, dynamo.New(e.raw, e.table), slog.New(slog.DiscardHandler), authorizer.WithClock(func() time.Time { return boundary }))
	hooked.before = func() { // the key's write of A landed; B, past the boundary, refills
		if _, err := after.Decide(ctx, authorizer.Request{Key: raw, Cost: 0}); err != nil {
			t.Error(err)
		}
	}
	d, err := before.Decide(ctx, authorizer.Request{Key: raw, Cost: 1})
	if err != nil {
		t.Fatal(err)
	}
	if c := e.credits(raw); c > 10 {
		t.Errorf("A was %s; the key holds %d credits after its daily refill of 10, with nothing spent since", d.Outcome, c)
	}
}
