package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/events"
	"github.com/keygate/keygate/pkg/keys"
)

// An event that no change writes an audit item for (key.expiring,
// key.expired, webhook.test) is an item of its own, which the stream
// brings to the event dispatcher as it brings audit items:
//
//	event:  pk = EVENT#<project>   sk = <createdAt ms, 13 digits>#<event id>
func eventPK(project string) string { return "EVENT#" + project }

// eventItemLife is how long an event item is kept: past the stream's 24
// hours, after which nothing reads it.
const eventItemLife = 48 * time.Hour

// eventItem is an event as stored.
type eventItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	ID        string `dynamodbav:"id"`
	Type      string `dynamodbav:"type"`
	Project   string `dynamodbav:"project"`
	CreatedAt int64  `dynamodbav:"createdAt"`
	Data      string `dynamodbav:"data"`
	// Webhook, when set, is the only webhook the event goes to (a test).
	Webhook string `dynamodbav:"webhook,omitempty"`
	TTL     int64  `dynamodbav:"ttl"`
}

// PutEvent writes an event for the dispatcher, to every subscribed webhook
// or, with webhook set, to that one only. An event of the same id and time
// written before makes it a no-op: created is false.
func (s *Store) PutEvent(ctx context.Context, e events.Event, webhook string) (created bool, err error) {
	put, err := s.eventPut(e, webhook)
	if err != nil {
		return false, err
	}
	return s.putIfAbsent(ctx, put.Item, "write event")
}

// putIfAbsent writes item unless an item of its key exists: created is
// false, and nothing written, then.
func (s *Store) putIfAbsent(ctx context.Context, item map[string]types.AttributeValue, op string) (created bool, err error) {
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(" + attrPK + ")"),
	})
	if conditionFailed(err) {
		return false, nil
	}
	return err == nil, storeError(op, err)
}

// PutKeyEvent writes e once, as PutEvent does, on the condition that key
// id is still active with that expiresAt when it is written: current is
// false, and nothing written, if the key was revoked or its expiry moved
// since it was read.
func (s *Store) PutKeyEvent(ctx context.Context, e events.Event, id string, expiresAt time.Time) (created, current bool, err error) {
	put, err := s.eventPut(e, "")
	if err != nil {
		return false, false, err
	}
	_, err = s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{ConditionCheck: &types.ConditionCheck{
			TableName: &s.table, Key: itemKey(keyPK(id), keySK),
			ConditionExpression:      aws.String("#status = :active AND #exp = :exp"),
			ExpressionAttributeNames: map[string]string{"#status": attrStatus, "#exp": attrExpiresAt},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":active": &types.AttributeValueMemberS{Value: string(keys.StatusActive)}, ":exp": numberValue(expiresAt.UnixMilli()),
			},
		}},
		{Put: put},
	}})
	var canceled *types.TransactionCanceledException
	if errors.As(err, &canceled) && len(canceled.CancellationReasons) == 2 {
		switch failed := "ConditionalCheckFailed"; {
		case aws.ToString(canceled.CancellationReasons[0].Code) == failed:
			return false, false, nil
		case aws.ToString(canceled.CancellationReasons[1].Code) == failed:
			return false, true, nil
		}
	}
	if err != nil {
		return false, false, storeError("write key event", err)
	}
	return true, true, nil
}

// eventPut is the conditional put of e's item.
func (s *Store) eventPut(e events.Event, webhook string) (*types.Put, error) {
	// Kept from its write: an event may be written days after its time (a
	// warning a late run catches up on), and an item whose ttl is past may
	// be deleted at once, which would let a repeat write it again.
	expires := e.CreatedAt
	if now := time.Now(); now.After(expires) {
		expires = now
	}
	expires = expires.Add(eventItemLife)
	item, err := attributevalue.MarshalMap(eventItem{
		PK: eventPK(e.Project), SK: sortKey(e.CreatedAt, e.ID), ID: e.ID, Type: e.Type, Project: e.Project,
		CreatedAt: e.CreatedAt.UnixMilli(), Data: string(e.Data), Webhook: webhook, TTL: ttlSeconds(&expires),
	})
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	return &types.Put{TableName: &s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(" + attrPK + ")")}, nil
}

// A derived event (a usage threshold) has one id however often it is
// derived, but the time of the record that derived it: a use given back
// (refused for its address, or by its owner's limits) lets the next use
// cross the same threshold again, at another time. Its first derivation is
// kept, so that the event goes out once:
//
//	derived:  pk = DERIVED#<project>   sk = <event id>   at = <createdAt ms>
func derivedPK(project string) string { return "DERIVED#" + project }

// FirstDerivation records that e was derived at e.CreatedAt, until until,
// and reports whether it is e's first derivation, or that same one again
// (the stream brought its record again): false when e was derived before
// at another time.
func (s *Store) FirstDerivation(ctx context.Context, e events.Event, until time.Time) (bool, error) {
	expires := until
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &s.table,
		Item: map[string]types.AttributeValue{
			attrPK: &types.AttributeValueMemberS{Value: derivedPK(e.Project)}, attrSK: &types.AttributeValueMemberS{Value: e.ID},
			"at":  &types.AttributeValueMemberN{Value: fmt.Sprint(e.CreatedAt.UnixMilli())},
			"ttl": &types.AttributeValueMemberN{Value: fmt.Sprint(ttlSeconds(&expires))},
		},
		ConditionExpression:       aws.String("attribute_not_exists(#pk) OR #at = :at"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#at": "at"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": &types.AttributeValueMemberN{Value: fmt.Sprint(e.CreatedAt.UnixMilli())}},
	})
	if conditionFailed(err) {
		return false, nil
	}
	return err == nil, storeError("record derived event", err)
}
