package dynamo

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/keys"
)

// The storage layout, for the external tests that inspect what a write
// left in DynamoDB Local: they cannot be internal tests, since
// internal/ddbtest imports this package (through pkg/app).

// KeyItemKey is the primary key of key id's item.
func KeyItemKey(id string) map[string]types.AttributeValue { return itemKey(keyPK(id), keySK) }

// DetailsItemKey is the primary key of key id's details item.
func DetailsItemKey(id string) map[string]types.AttributeValue { return itemKey(keyPK(id), detailsSK) }

// CounterAttr names a limit's counter of the rate window starting at start
// (Unix seconds), LastWindowAttr its last window; IsCounterAttr reports
// whether an attribute is a counter.
var (
	CounterAttr    = counterAttr
	LastWindowAttr = lastWindowAttr
	IsCounterAttr  = func(name string) bool { return strings.HasPrefix(name, "w.") }
)

// OwnerLimitsKey is the primary key of an owner's limits item.
func OwnerLimitsKey(project, owner string) map[string]types.AttributeValue {
	return itemKey(ownerLimitsPK(project, owner), ownerLimitsSK)
}

// Attribute names of a key item.
const (
	AttrKeyHash       = attrKeyHash
	AttrTotalRequests = attrTotalRequests
	AttrGSI1PK        = attrGSI1PK
	AttrGSI2PK        = attrGSI2PK
	AttrGSI4PK        = attrGSI4PK
	AttrGSI4SK        = attrGSI4SK
	AttrCredits       = attrCredits
	AttrExpiresAt     = attrExpiresAt
	AttrLimitsVersion = attrLimitsVersion
	AttrOwnerLimited  = attrOwnerLimited
	AttrRateLimits    = attrRateLimits
	AttrDetails       = attrDetails
)

// PutOwnerLimits writes an owner's limits item as key management does, at
// version 1, for tests of the authorizer that need no management API.
func PutOwnerLimits(ctx context.Context, client Client, table, project, owner string, limits []keys.RateLimit, credits *keys.Credits) error {
	item, err := attributevalue.MarshalMap(struct {
		PK      string `dynamodbav:"pk"`
		SK      string `dynamodbav:"sk"`
		Project string `dynamodbav:"project"`
		Owner   string `dynamodbav:"owner"`
		Version int64  `dynamodbav:"version"`
		limitsRecord
	}{ownerLimitsPK(project, owner), ownerLimitsSK, project, owner, 1, toLimitsRecord(limits, false, credits)})
	if err != nil {
		return err
	}
	_, err = client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: item})
	return err
}

// RewriteBeforeTheSplit rewrites key id as keygate wrote it before a key
// was two items: one key item holding everything, and no details item.
func RewriteBeforeTheSplit(ctx context.Context, client Client, table, id string) error {
	s := New(client, table)
	k, err := s.GetKey(ctx, id)
	if err != nil {
		return err
	}
	item, err := attributevalue.MarshalMap(toRecord(k))
	if err != nil {
		return err
	}
	for name, n := range k.Meter {
		item[name] = numberValue(n)
	}
	if _, err := client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &table, Key: itemKey(keyPK(id), detailsSK)}); err != nil {
		return err
	}
	_, err = client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: item})
	return err
}
