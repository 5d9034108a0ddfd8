package dynamo

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/authorizer"
)

// ThreeStepStore authorizes the common way: a strongly consistent GetItem,
// checks in code, an UpdateItem counting usage, then a conditional
// UpdateItem on the rate window. keygate does not use it; it is the
// baseline infra/authbench measures Store.UseKey against, on the same
// items. Besides costing three requests where UseKey costs one, it lets a
// key revoked between its read and its writes through.
type ThreeStepStore struct{ store *Store }

// ThreeStep returns the common design on s's table.
func (s *Store) ThreeStep() ThreeStepStore { return ThreeStepStore{store: s} }

var _ authorizer.Store = ThreeStepStore{}

// ReturnUse is the Store's own.
func (t ThreeStepStore) ReturnUse(ctx context.Context, req authorizer.UseRequest, w authorizer.Window) error {
	return t.store.ReturnUse(ctx, req, w)
}

// UseKey implements authorizer.Store in three requests.
func (t ThreeStepStore) UseKey(ctx context.Context, req authorizer.UseRequest) (authorizer.UseResult, error) {
	s := t.store
	key := itemKey(keyPK(req.ID), keySK)
	got, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return authorizer.UseResult{}, classify("get key", err)
	}
	if got.Item == nil {
		return authorizer.UseResult{Outcome: authorizer.NotFound}, nil
	}
	k, err := keyFromItem(got.Item)
	if err != nil {
		return authorizer.UseResult{}, err
	}
	if o := standing(k, req); o != authorizer.Allowed {
		return refused(o, k), nil
	}
	if !k.HoldsScopes(req.Scopes) {
		return authorizer.UseResult{Outcome: authorizer.InsufficientScope, Key: k}, nil
	}
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       key,
		UpdateExpression:          aws.String("SET #used = :now ADD #total :one"),
		ExpressionAttributeNames:  map[string]string{"#used": attrLastUsed, "#total": attrTotalRequests},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": numberValue(req.Now.UnixMilli()), ":one": numberValue(1)},
	})
	if err != nil {
		return authorizer.UseResult{}, classify("count usage", err)
	}
	window, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       key,
		UpdateExpression:          aws.String("SET #cur = if_not_exists(#cur, :zero) + :one"),
		ConditionExpression:       aws.String("attribute_not_exists(#cur) OR #cur < :limit"),
		ExpressionAttributeNames:  map[string]string{"#cur": windowAttr(req.Window.Start.Unix())},
		ExpressionAttributeValues: map[string]types.AttributeValue{":zero": numberValue(0), ":one": numberValue(1), ":limit": numberValue(req.Limit)},
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	var failed *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &failed):
		return authorizer.UseResult{Outcome: authorizer.RateLimited, Key: k, Count: req.Limit}, nil
	case err != nil:
		return authorizer.UseResult{}, classify("count rate window", err)
	}
	count, _ := itemNumber(window.Attributes, windowAttr(req.Window.Start.Unix()))
	return authorizer.UseResult{Outcome: authorizer.Allowed, Key: k, Count: count}, nil
}
