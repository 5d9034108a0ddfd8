package dynamo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
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
	w := authorizer.Window{Start: time.Date(2030, time.January, 15, 10, 0, 0, 0, time.UTC), Length: 15 * time.Minute}
	return useFixture{raw: raw, req: authorizer.UseRequest{ID: token.ID(hash), Hash: hash, Limit: 100, Window: w, Now: now}}
}

// item is the key item with lastWindow and that window's count.
func (u useFixture) item(lastWindow, count int64) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK:                 &types.AttributeValueMemberS{Value: keyPK(u.req.ID)},
		attrSK:                 &types.AttributeValueMemberS{Value: keySK},
		"id":                   &types.AttributeValueMemberS{Value: u.req.ID},
		attrTier:               &types.AttributeValueMemberS{Value: "public"},
		attrProject:            &types.AttributeValueMemberS{Value: "acme"},
		attrStatus:             &types.AttributeValueMemberS{Value: string(keys.StatusActive)},
		attrKeyHash:            &types.AttributeValueMemberB{Value: u.req.Hash[:]},
		attrTotalRequests:      numberValue(count),
		attrLastWindow:         numberValue(lastWindow),
		windowAttr(lastWindow): numberValue(count),
		"createdAt":            numberValue(u.req.Now.Add(-time.Hour).UnixMilli()),
		"updatedAt":            numberValue(u.req.Now.Add(-time.Hour).UnixMilli()),
	}
}

func (u useFixture) counted(context.Context) (*dynamodb.UpdateItemOutput, error) {
	return &dynamodb.UpdateItemOutput{Attributes: u.item(u.req.Window.Start.Unix(), 1)}, nil
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
	start := u.req.Window.Start.Unix()
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

// TestUseKeyWindowMovingUnderEveryWriteWithFakeClient: an item whose
// lastWindow is ahead of every window the use tries is refused with
// keys.ErrUnavailable after one re-run in the item's window.
func TestUseKeyWindowMovingUnderEveryWriteWithFakeClient(t *testing.T) {
	t.Parallel()
	u := newUseFixture()
	start := u.req.Window.Start.Unix()
	fake := &fakeClient{answers: []func(context.Context) (*dynamodb.UpdateItemOutput, error){
		refusedWith(u.item(start+900, 1)),
		refusedWith(u.item(start+1800, 1)),
	}}
	res, err := New(fake, "keygate").UseKey(context.Background(), u.req)
	if !errors.Is(err, keys.ErrUnavailable) || res.Outcome == authorizer.Allowed {
		t.Fatalf("got %s, %v; want keys.ErrUnavailable", res.Outcome, err)
	}
	if fake.Calls() != 2 {
		t.Errorf("%d UpdateItem calls, want 2", fake.Calls())
	}
	if got := fake.inputs[1].ExpressionAttributeValues[":start"].(*types.AttributeValueMemberN).Value; got != strconv.FormatInt(start+900, 10) {
		t.Errorf("the re-run wrote window %s, want the item's, %d", got, start+900)
	}
}
