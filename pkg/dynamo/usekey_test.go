package dynamo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/authorizer/authorizertest"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

// The tests in this file run UseKey against fakeClient, a stand-in for
// DynamoDB that answers UpdateItem with scripted answers: for what DynamoDB
// Local cannot be made to do on cue (a transaction conflict, a slow table).

// fakeClient answers the n-th UpdateItem with answers[n] (the last one
// once they run out) and counts the calls.
type fakeClient struct {
	Client // nil: any other operation panics
	mu     sync.Mutex
	calls  int
	inputs []*dynamodb.UpdateItemInput

	answers []func(ctx context.Context) (*dynamodb.UpdateItemOutput, error)
}

func (f *fakeClient) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	f.mu.Lock()
	answer := f.answers[min(f.calls, len(f.answers)-1)]
	f.calls++
	f.inputs = append(f.inputs, in)
	f.mu.Unlock()
	return answer(ctx)
}

func (f *fakeClient) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// operationError wraps err as the SDK does.
func operationError(err error) error {
	return &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "UpdateItem", Err: err}
}

func transactionConflict(context.Context) (*dynamodb.UpdateItemOutput, error) {
	return nil, operationError(&types.TransactionConflictException{Message: aws.String("Transaction is ongoing for the item")})
}

// useFixture is one well-formed key and a use of it.
type useFixture struct {
	raw string
	req authorizer.UseRequest
}

func newUseFixture() useFixture {
	raw := authorizertest.Key("kg", "pk", "authorize_test")
	hash := token.Hash(raw)
	now := time.Date(2030, time.January, 15, 10, 7, 30, 0, time.UTC)
	tier := []keys.RateLimit{{Name: keys.DefaultLimitName, Limit: 100, WindowSeconds: 900}}
	return useFixture{raw: raw, req: authorizer.UseRequest{ID: token.ID(hash), Hash: hash, TierLimits: tier, Cost: 1, Now: now}}
}

// fixtureCounter names the counters of the fixture's one limit.
const fixtureCounter = "window.900"

// windowStart is the start of the fixture's window.
func (u useFixture) windowStart() int64 {
	return authorizer.WindowAt(u.req.Now, 15*time.Minute).Start.Unix()
}

// item is the key item with lastWindow and that window's count.
func (u useFixture) item(lastWindow, count int64) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK:                                  &types.AttributeValueMemberS{Value: keyPK(u.req.ID)},
		attrSK:                                  &types.AttributeValueMemberS{Value: keySK},
		"id":                                    &types.AttributeValueMemberS{Value: u.req.ID},
		attrTier:                                &types.AttributeValueMemberS{Value: "public"},
		attrProject:                             &types.AttributeValueMemberS{Value: "acme"},
		attrStatus:                              &types.AttributeValueMemberS{Value: string(keys.StatusActive)},
		attrKeyHash:                             &types.AttributeValueMemberB{Value: u.req.Hash[:]},
		attrTotalRequests:                       numberValue(count),
		lastWindowAttr(fixtureCounter):          numberValue(lastWindow),
		counterAttr(fixtureCounter, lastWindow): numberValue(count),
		"createdAt":                             numberValue(u.req.Now.Add(-time.Hour).UnixMilli()),
		"updatedAt":                             numberValue(u.req.Now.Add(-time.Hour).UnixMilli()),
	}
}

func (u useFixture) counted(context.Context) (*dynamodb.UpdateItemOutput, error) {
	return &dynamodb.UpdateItemOutput{Attributes: u.item(u.windowStart(), 1)}, nil
}

// refusedWith answers as DynamoDB does when the condition fails.
func refusedWith(item map[string]types.AttributeValue) func(context.Context) (*dynamodb.UpdateItemOutput, error) {
	return func(context.Context) (*dynamodb.UpdateItemOutput, error) {
		return nil, operationError(&types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed"), Item: item})
	}
}

// slow delays answer by d, as a DynamoDB call does that takes its retries
// up to their bounds, unless ctx ends first.
func slow(d time.Duration, answer func(context.Context) (*dynamodb.UpdateItemOutput, error)) func(context.Context) (*dynamodb.UpdateItemOutput, error) {
	return func(ctx context.Context) (*dynamodb.UpdateItemOutput, error) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return answer(ctx)
		case <-ctx.Done():
			return nil, operationError(fmt.Errorf("request send failed: %w", ctx.Err()))
		}
	}
}

func TestUseKeyRetriesTransactionConflictOnceWithFakeClient(t *testing.T) {
	t.Parallel()
	u := newUseFixture()
	fake := &fakeClient{answers: []func(context.Context) (*dynamodb.UpdateItemOutput, error){transactionConflict, u.counted}}
	res, err := New(fake, "keygate").UseKey(context.Background(), u.req)
	if err != nil || res.Outcome != authorizer.Allowed {
		t.Fatalf("got %s, %v; want allowed after one retry", res.Outcome, err)
	}
	if fake.Calls() != 2 {
		t.Errorf("%d UpdateItem calls, want 2", fake.Calls())
	}
	if *fake.inputs[0].UpdateExpression != *fake.inputs[1].UpdateExpression || *fake.inputs[0].ConditionExpression != *fake.inputs[1].ConditionExpression {
		t.Errorf("the retry is not the same write:\n%s\n%s", *fake.inputs[0].UpdateExpression, *fake.inputs[1].UpdateExpression)
	}
}

func TestUseKeyTransactionConflictTwiceIsUnavailableWithFakeClient(t *testing.T) {
	t.Parallel()
	u := newUseFixture()
	fake := &fakeClient{answers: []func(context.Context) (*dynamodb.UpdateItemOutput, error){transactionConflict}}
	res, err := New(fake, "keygate").UseKey(context.Background(), u.req)
	if !errors.Is(err, keys.ErrUnavailable) || res.Outcome == authorizer.Allowed {
		t.Fatalf("got %s, %v; want keys.ErrUnavailable", res.Outcome, err)
	}
	if fake.Calls() != 2 {
		t.Errorf("%d UpdateItem calls, want 2: one retry only", fake.Calls())
	}
}

// TestUseKeyBudgetWithSlowFakeClient makes UseKey take its longest path (a
// stale item, then a lost sweep race, then the write) on a table where
// every call takes 2.9 s, as a call does that times out twice at 1 s and
// succeeds on its third attempt. Unbounded that is ≈ 8.7 s and allowed,
// beyond the authorizer's 5 s timeout; the decision must come back within
// the budget, unavailable.
func TestUseKeyBudgetWithSlowFakeClient(t *testing.T) {
	t.Parallel()
	u := newUseFixture()
	start := u.windowStart()
	const perCall = 2900 * time.Millisecond
	fake := &fakeClient{answers: []func(context.Context) (*dynamodb.UpdateItemOutput, error){
		slow(perCall, refusedWith(u.item(start-100*900, 1))), // idle for 100 windows
		slow(perCall, refusedWith(u.item(start, 1))),         // a concurrent request swept first
		slow(perCall, u.counted),
	}}
	auth := authorizer.New(keys.DefaultConfig(), New(fake, "keygate"), slog.New(slog.DiscardHandler),
		authorizer.WithClock(func() time.Time { return u.req.Now }))
	began := time.Now()
	d, err := auth.Decide(context.Background(), authorizer.Request{Key: u.raw})
	elapsed := time.Since(began)
	if !errors.Is(err, keys.ErrUnavailable) || d.Outcome == authorizer.Allowed {
		t.Errorf("got %q, %v; want keys.ErrUnavailable", d.Outcome, err)
	}
	if elapsed > useKeyBudget+500*time.Millisecond {
		t.Errorf("took %v, want at most the %v budget", elapsed, useKeyBudget)
	}
}

// TestUseKeyWindowMovingUnderEveryWriteWithFakeClient: an item whose last
// window is ahead of every window the use tries is refused with
// keys.ErrUnavailable after maxUseWrites, each re-run in the item's window.
func TestUseKeyWindowMovingUnderEveryWriteWithFakeClient(t *testing.T) {
	t.Parallel()
	u := newUseFixture()
	start := u.windowStart()
	var answers []func(context.Context) (*dynamodb.UpdateItemOutput, error)
	for i := range maxUseWrites + 1 {
		answers = append(answers, refusedWith(u.item(start+int64(i+1)*900, 1)))
	}
	fake := &fakeClient{answers: answers}
	res, err := New(fake, "keygate").UseKey(context.Background(), u.req)
	if !errors.Is(err, keys.ErrUnavailable) || res.Outcome == authorizer.Allowed {
		t.Fatalf("got %s, %v; want keys.ErrUnavailable", res.Outcome, err)
	}
	if fake.Calls() != maxUseWrites {
		t.Errorf("%d UpdateItem calls, want %d", fake.Calls(), maxUseWrites)
	}
	if !slices.Contains(slices.Collect(maps.Values(fake.inputs[1].ExpressionAttributeNames)), counterAttr(fixtureCounter, start+900)) {
		t.Errorf("the re-run wrote %v, want the item's window, %d", fake.inputs[1].ExpressionAttributeNames, start+900)
	}
}
