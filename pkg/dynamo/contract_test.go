package dynamo_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/ddbtest"
	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/authorizer/authorizertest"
	"github.com/keygate/keygate/pkg/dynamo"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/keys/keystest"
)

// The DynamoDB store keeps the contract that pkg/keys' unit tests rely on
// through keystest's fake. TTL stays off, so that only the store's own
// filtering can hide a purged key or event.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	client := ddbtest.Client(t) // skips under -short
	keystest.RunStoreContract(t, func(t *testing.T) (keys.Store, keystest.CountUse) {
		table := ddbtest.NewTable(t, client, ddbtest.TableOptions{})
		return dynamo.New(client, table), countUse(client, table)
	})
}

// countUse counts a use as the authorizer's write does, with one
// UpdateItem outside any transaction. DynamoDB refuses such a write while
// a transaction holds the item (TransactionConflictException); the
// authorizer retries it, and so does this.
func countUse(client *dynamodb.Client, table string) keystest.CountUse {
	return func(ctx context.Context, id string, cost int64) error {
		in := &dynamodb.UpdateItemInput{
			TableName:                &table,
			Key:                      dynamo.KeyItemKey(id),
			UpdateExpression:         aws.String("ADD #total :one, #meter :one"),
			ConditionExpression:      aws.String("attribute_exists(pk)"),
			ExpressionAttributeNames: map[string]string{"#total": dynamo.AttrTotalRequests, "#meter": keystest.MeterCounter},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":one": &types.AttributeValueMemberN{Value: "1"},
			},
		}
		if cost > 0 {
			in.UpdateExpression = aws.String("ADD #total :one, #meter :one SET #credits = #credits - :cost")
			in.ConditionExpression = aws.String("#credits >= :cost")
			in.ExpressionAttributeNames["#credits"] = dynamo.AttrCredits
			in.ExpressionAttributeValues[":cost"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(cost, 10)}
		}
		for {
			_, err := client.UpdateItem(ctx, in)
			var conflict *types.TransactionConflictException
			if !errors.As(err, &conflict) {
				return err
			}
		}
	}
}

// The DynamoDB store keeps the contract that pkg/authorizer's unit tests
// rely on through authorizertest's fake, with keys written as key
// management writes them. TTL stays off, as above.
func TestAuthorizerStoreContract(t *testing.T) {
	t.Parallel()
	client := ddbtest.Client(t) // skips under -short
	authorizertest.RunStoreContract(t, func(t *testing.T) (authorizer.Store, authorizertest.Seeder) {
		s := dynamo.New(client, ddbtest.NewTable(t, client, ddbtest.TableOptions{}))
		return s, authorizertest.KeyStoreSeeder(s)
	})
}
