package dynamo

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/keys"
)

// ownerRecord is an owner's limits item as stored, the authorizer's
// counters aside. Its rateLimits is always a list, [] for none.
type ownerRecord struct {
	Project string `dynamodbav:"project"`
	Owner   string `dynamodbav:"owner"`
	limitsRecord
	Version   int64 `dynamodbav:"version"`
	UpdatedAt int64 `dynamodbav:"updatedAt"`
}

// GetOwnerLimits reads an owner's limits with a strongly consistent read.
func (s *Store) GetOwnerLimits(ctx context.Context, project, owner string) (*keys.OwnerLimits, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            itemKey(ownerLimitsPK(project, owner), ownerLimitsSK),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, storeError("get owner limits", err)
	}
	if out.Item == nil {
		return nil, keys.ErrNotFound
	}
	var r ownerRecord
	if err := attributevalue.UnmarshalMap(out.Item, &r); err != nil {
		return nil, fmt.Errorf("decode owner limits: %w", err)
	}
	limits, _ := r.rateLimits()
	return &keys.OwnerLimits{
		Project: r.Project, Owner: r.Owner, RateLimits: limits, Credits: r.credits(),
		UpdatedAt: fromMillis(r.UpdatedAt), Version: r.Version,
	}, nil
}

// writeOwner sets an owner's limits with SET and REMOVE of their own
// attributes only: the authorizer's counters on the item stay as they are.
// It requires the version written from (0: no item) and advances it.
func (s *Store) writeOwner(w keys.OwnerWrite) (*types.Update, error) {
	o := w.Limits
	r := toLimitsRecord(o.RateLimits, false, o.Credits)
	upd := expression.Set(expression.Name(attrProject), expression.Value(o.Project)).
		Set(expression.Name(attrOwner), expression.Value(o.Owner)).
		Set(expression.Name(attrRateLimits), expression.Value(r.RateLimits)).
		Set(expression.Name("updatedAt"), expression.Value(millis(o.UpdatedAt))).
		Set(expression.Name(attrVersion), expression.Value(o.Version+1))
	cond := ownerAt(o.Version)
	if w.Counted != nil {
		upd = setCredits(upd, r)
		cond = cond.And(countedCondition(*w.Counted))
	}
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return nil, fmt.Errorf("build owner limits update: %w", err)
	}
	return &types.Update{
		TableName:                 &s.table,
		Key:                       itemKey(ownerLimitsPK(o.Project, o.Owner), ownerLimitsSK),
		UpdateExpression:          expr.Update(),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	}, nil
}

// checkOwner requires an owner's limits at a version still.
func (s *Store) checkOwner(c keys.OwnerCheck) (*types.ConditionCheck, error) {
	expr, err := expression.NewBuilder().WithCondition(ownerAt(c.Version)).Build()
	if err != nil {
		return nil, fmt.Errorf("build owner limits check: %w", err)
	}
	return &types.ConditionCheck{
		TableName:                 &s.table,
		Key:                       itemKey(ownerLimitsPK(c.Project, c.Owner), ownerLimitsSK),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	}, nil
}

// ownerAt is the condition that an owner's item is at version, 0 for none.
func ownerAt(version int64) expression.ConditionBuilder {
	if version == 0 {
		return expression.AttributeNotExists(expression.Name(attrPK))
	}
	return expression.Name(attrVersion).Equal(expression.Value(version))
}

// ownerStatePK is an owner's state item: when the owner was last revoked,
// which its customer portal sessions end on.
func ownerStatePK(project, owner string) string { return "OWNERSTATE#" + project + "#" + owner }

const (
	ownerStateSK   = "STATE"
	attrRevokedAt  = "revokedAt"
	ownerStateAttr = "owner"
)

// putOwnerRevoked is the write of Tx.OwnerRevoked.
func (s *Store) putOwnerRevoked(r *keys.OwnerRevocation) *types.Put {
	item := itemKey(ownerStatePK(r.Project, r.Owner), ownerStateSK)
	item[attrProject] = &types.AttributeValueMemberS{Value: r.Project}
	item[ownerStateAttr] = &types.AttributeValueMemberS{Value: r.Owner}
	item[attrRevokedAt] = numberValue(r.At.UnixMilli())
	return &types.Put{TableName: &s.table, Item: item}
}

// OwnerRevokedAt reads when an owner was last revoked; zero if never.
func (s *Store) OwnerRevokedAt(ctx context.Context, project, owner string) (time.Time, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: itemKey(ownerStatePK(project, owner), ownerStateSK), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return time.Time{}, storeError("get owner state", err)
	}
	n, ok := out.Item[attrRevokedAt].(*types.AttributeValueMemberN)
	if !ok {
		return time.Time{}, nil
	}
	ms, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("decode owner state: %w", err)
	}
	return timeOf(ms), nil
}
