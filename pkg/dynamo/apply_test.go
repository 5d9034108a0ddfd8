package dynamo_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/token"
)

// cancellingClient answers every transaction with a cancellation for the
// given reason, as DynamoDB does.
type cancellingClient struct {
	dynamo.Client
	reason string
}

func (c cancellingClient) TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return nil, &types.TransactionCanceledException{CancellationReasons: []types.CancellationReason{{Code: aws.String("None")}, {Code: aws.String(c.reason)}}}
}

// A cancelled transaction tells a conflict (re-read and retry, or 409) from
// throttling (503, retry later).
func TestApplyClassifiesCancellations(t *testing.T) {
	for reason, want := range map[string]error{
		"ConditionalCheckFailed":        keys.ErrConflict,
		"TransactionConflict":           keys.ErrConflict,
		"ThrottlingError":               keys.ErrUnavailable,
		"ProvisionedThroughputExceeded": keys.ErrUnavailable,
	} {
		err := dynamo.New(cancellingClient{reason: reason}, "t").Apply(context.Background(), keys.Tx{})
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", reason, err, want)
		}
	}
}

// The raw key is stored nowhere, neither in the key item nor in its audit
// event: only its SHA-256, in the key item.
func TestCreateStoresOnlyTheHash(t *testing.T) {
	e := newDBEnv(t)
	raw := e.create(keys.CreateInput{Name: "Production key", Tier: "partner", Scopes: []string{"webhooks", "contracts"},
		IPAllowlist: []string{"203.0.113.10", "2001:db8::/32"}, ExpiresAt: aws.String(e.clock.Now().Add(90 * 24 * time.Hour).Format(time.RFC3339)),
		Owner: "user_123abc", Metadata: json.RawMessage(`{"webhook_url":"https://example.com/hook"}`)})
	item := e.item(raw)
	if item == nil {
		t.Fatal("no key item")
	}
	if strings.Contains(e.snapshot(), raw[6:]) {
		t.Fatal("the raw key's secret is stored")
	}
	sum := sha256.Sum256([]byte(raw))
	if got, ok := item[dynamo.AttrKeyHash].(*types.AttributeValueMemberB); !ok || string(got.Value) != string(sum[:]) {
		t.Fatalf("stored hash %v is not the SHA-256 of the key", item[dynamo.AttrKeyHash])
	}
}

// A transaction whose condition fails writes neither the change nor its event.
func TestFailedTransactionWritesNothing(t *testing.T) {
	e := newDBEnv(t)
	ctx := context.Background()
	store := dynamo.New(e.raw, e.table)
	stored, err := store.GetKey(ctx, token.ID(token.Hash(e.create(keys.CreateInput{Name: "a", Tier: "public"}))))
	if err != nil {
		t.Fatal(err)
	}
	before := e.snapshot()

	stale := *stored
	stale.Version-- // as if another change had come first
	stale.Name = "lost"
	ev := &keys.AuditEvent{ID: "evt_test", Project: "acme", Actor: "test", Action: keys.ActionUpdated, Target: stored.ID, Time: e.clock.Now(), PurgeAt: e.clock.Now().Add(time.Hour)}
	if err := store.Apply(ctx, keys.Tx{Update: []*keys.Key{&stale}, Events: []*keys.AuditEvent{ev}}); !errors.Is(err, keys.ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	if e.snapshot() != before {
		t.Fatal("a failed transaction wrote something")
	}

	// Creating a key whose id exists fails the same way.
	dup := *stored
	if err := store.Apply(ctx, keys.Tx{Create: []*keys.Key{&dup}, Events: []*keys.AuditEvent{ev}}); !errors.Is(err, keys.ErrConflict) {
		t.Fatalf("duplicate create: %v, want ErrConflict", err)
	}
	if e.snapshot() != before {
		t.Fatal("a failed transaction wrote something")
	}
}
