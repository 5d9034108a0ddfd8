package dynamo_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/keys"
)

// TestCursorSecretItem: a listing signs its cursors with the secret item
// (pk CONFIG, sk CURSOR_KEY). It uses a well-formed one as it is, and
// answers an item it cannot use with an error at once, in at most two
// reads and one put, where it once looped until the Lambda timed out.
func TestCursorSecretItem(t *testing.T) {
	t.Parallel()
	good := bytes.Repeat([]byte{7}, 32)
	for _, tc := range []struct {
		name   string
		secret types.AttributeValue // nil: the item has no secret attribute
		raced  bool                 // another process creates the item just after the first read
		ok     bool
	}{
		{"well-formed", &types.AttributeValueMemberB{Value: good}, false, true},
		{"well-formed, created by a racing process", &types.AttributeValueMemberB{Value: good}, true, true},
		{"too short", &types.AttributeValueMemberB{Value: good[:16]}, false, false},
		{"too long", &types.AttributeValueMemberB{Value: append(good, 7)}, false, false},
		{"a string", &types.AttributeValueMemberS{Value: string(good)}, false, false},
		{"no secret", nil, false, false},
		{"malformed, created by a racing process", &types.AttributeValueMemberS{Value: "x"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := ddbtest.Client(t)
			table := ddbtest.NewTable(t, raw, ddbtest.TableOptions{})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			seed := keys.NewService(dbConfig, dynamo.New(raw, table))
			for range 2 { // two keys: a page of one has a next cursor
				if _, err := seed.Create(ctx, keys.OperatorCaller("acme"), keys.CreateInput{Name: "k", Tier: "public"}); err != nil {
					t.Fatal(err)
				}
			}
			item := map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: "CONFIG"},
				"sk": &types.AttributeValueMemberS{Value: "CURSOR_KEY"},
			}
			if tc.secret != nil {
				item["secret"] = tc.secret
			}
			if _, err := raw.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: item}); err != nil {
				t.Fatal(err)
			}
			before := ddbtest.Snapshot(t, raw, table)

			client := &secretClient{Client: raw, raced: tc.raced}
			svc := keys.NewService(dbConfig, dynamo.New(client, table))
			page, err := svc.List(ctx, keys.OperatorCaller("acme"), keys.ListInput{Limit: 1})
			if tc.ok && (err != nil || page.NextCursor == "") {
				t.Fatalf("listing: cursor %q, %v", page.NextCursor, err)
			}
			if !tc.ok && (err == nil || !strings.Contains(err.Error(), "malformed")) {
				t.Fatalf("listing: %v, want an error naming the malformed secret", err)
			}
			if client.reads > 2 || client.puts > 1 {
				t.Errorf("%d reads and %d puts of the secret, want at most 2 and 1", client.reads, client.puts)
			}
			if ddbtest.Snapshot(t, raw, table) != before {
				t.Error("the listing rewrote the secret item")
			}
		})
	}
}

// secretClient counts the store's reads and puts, which only the cursor
// secret takes in a listing; raced, it misses the item on the first read.
type secretClient struct {
	dynamo.Client
	raced       bool
	reads, puts int
}

func (c *secretClient) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.reads++
	if c.raced && c.reads == 1 {
		return &dynamodb.GetItemOutput{}, nil
	}
	return c.Client.GetItem(ctx, in, opts...)
}

func (c *secretClient) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.puts++
	return c.Client.PutItem(ctx, in, opts...)
}
