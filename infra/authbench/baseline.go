package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/keys"
)

// baselineStore is the common design keygate is measured against: a
// strongly consistent GetItem, the checks in code, a conditional UpdateItem
// on the rate window's counter, then an UpdateItem counting usage. It keeps
// its keys in a table of its own (baselineItem), so that it shares nothing
// with pkg/dynamo but the authorizer.Store contract. Besides costing three
// requests where keygate costs one, it lets a key revoked between its read
// and its writes through.
type baselineStore struct {
	client *dynamodb.Client
	table  string
}

var _ authorizer.Store = (*baselineStore)(nil)

// baselineItem is a key as the common design stores it: one item per key,
// under its id alone, beside its usage and, in attributes named
// windowPrefix<window start>, its rate window counters.
type baselineItem struct {
	ID            string      `dynamodbav:"id"`
	Hash          []byte      `dynamodbav:"hash"`
	Name          string      `dynamodbav:"name"`
	Start         string      `dynamodbav:"start"`
	Tier          string      `dynamodbav:"tier"`
	Scopes        []string    `dynamodbav:"scopes,omitempty"`
	Project       string      `dynamodbav:"project"`
	Owner         string      `dynamodbav:"owner,omitempty"`
	Status        keys.Status `dynamodbav:"status"`
	IPAllowlist   []string    `dynamodbav:"ipAllowlist,omitempty"`
	Metadata      string      `dynamodbav:"metadata,omitempty"`
	ExpiresAt     *time.Time  `dynamodbav:"expiresAt,omitempty"`
	CreatedAt     time.Time   `dynamodbav:"createdAt"`
	UpdatedAt     time.Time   `dynamodbav:"updatedAt"`
	RevokedAt     *time.Time  `dynamodbav:"revokedAt,omitempty"`
	PurgeAt       *time.Time  `dynamodbav:"purgeAt,omitempty"`
	RotatedFrom   string      `dynamodbav:"rotatedFrom,omitempty"`
	RotatedTo     string      `dynamodbav:"rotatedTo,omitempty"`
	CreatedBy     string      `dynamodbav:"createdBy,omitempty"`
	TotalRequests int64       `dynamodbav:"totalRequests"`
	LastUsed      *time.Time  `dynamodbav:"lastUsed,omitempty"`
}

// Attribute names the updates use, as baselineItem's tags spell them.
const (
	attrID            = "id"
	attrHash          = "hash"
	attrTotalRequests = "totalRequests"
	attrLastUsed      = "lastUsed"
	windowPrefix      = "window_"
)

// windowAttr names the counter of window w: windowPrefix and its start in
// Unix seconds.
func windowAttr(w authorizer.Window) string {
	return windowPrefix + strconv.FormatInt(w.Start.Unix(), 10)
}

func newBaselineItem(k *keys.Key) baselineItem {
	return baselineItem{
		ID: k.ID, Hash: k.Hash[:], Name: k.Name, Start: k.Start, Tier: k.Tier, Scopes: k.Scopes,
		Project: k.Project, Owner: k.Owner, Status: k.Status, IPAllowlist: k.IPAllowlist, Metadata: string(k.Metadata),
		ExpiresAt: k.ExpiresAt, CreatedAt: k.CreatedAt, UpdatedAt: k.UpdatedAt, RevokedAt: k.RevokedAt, PurgeAt: k.PurgeAt,
		RotatedFrom: k.RotatedFrom, RotatedTo: k.RotatedTo, CreatedBy: k.CreatedBy,
		TotalRequests: k.Usage.TotalRequests, LastUsed: k.Usage.LastUsed,
	}
}

func (r baselineItem) key() *keys.Key {
	k := &keys.Key{
		ID: r.ID, Name: r.Name, Start: r.Start, Tier: r.Tier, Scopes: r.Scopes,
		Project: r.Project, Owner: r.Owner, Status: r.Status, IPAllowlist: r.IPAllowlist,
		ExpiresAt: r.ExpiresAt, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, RevokedAt: r.RevokedAt, PurgeAt: r.PurgeAt,
		RotatedFrom: r.RotatedFrom, RotatedTo: r.RotatedTo, CreatedBy: r.CreatedBy,
		Usage: keys.Usage{TotalRequests: r.TotalRequests, LastUsed: r.LastUsed},
	}
	if r.Metadata != "" {
		k.Metadata = json.RawMessage(r.Metadata)
	}
	copy(k.Hash[:], r.Hash)
	return k
}

func decodeBaselineKey(item map[string]types.AttributeValue) (*keys.Key, error) {
	var r baselineItem
	if err := attributevalue.UnmarshalMap(item, &r); err != nil {
		return nil, fmt.Errorf("decode key: %w", err)
	}
	return r.key(), nil
}

// createBaselineTable creates the common design's table: keyed by key id,
// on demand as keygate's, and with no index, which none of its writes
// would touch anyway.
func createBaselineTable(ctx context.Context, client *dynamodb.Client, table string) error {
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            &table,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(attrID), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(attrID), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	return dynamodb.NewTableExistsWaiter(client).Wait(ctx, &dynamodb.DescribeTableInput{TableName: &table}, time.Minute)
}

// put stores a copy of k, as keygate issued it.
func (b *baselineStore) put(ctx context.Context, k *keys.Key) error {
	item, err := attributevalue.MarshalMap(newBaselineItem(k))
	if err != nil {
		return fmt.Errorf("encode key %s: %w", k.ID, err)
	}
	if _, err := b.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &b.table, Item: item}); err != nil {
		return fmt.Errorf("put key %s: %w", k.ID, err)
	}
	return nil
}

func itemID(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrID: &types.AttributeValueMemberS{Value: id}}
}

func number(n int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// UseKey implements authorizer.Store in three requests.
func (b *baselineStore) UseKey(ctx context.Context, req authorizer.UseRequest) (authorizer.UseResult, error) {
	got, err := b.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &b.table, Key: itemID(req.ID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return authorizer.UseResult{}, fmt.Errorf("get key %s: %w", req.ID, err)
	}
	if got.Item == nil {
		return authorizer.UseResult{Outcome: authorizer.NotFound}, nil
	}
	k, err := decodeBaselineKey(got.Item)
	if err != nil {
		return authorizer.UseResult{}, err
	}
	switch o := refusal(k, req); o {
	case authorizer.Allowed:
	case authorizer.NotFound:
		return authorizer.UseResult{Outcome: o}, nil // shows nothing of the stored key
	default:
		return authorizer.UseResult{Outcome: o, Key: k}, nil
	}
	// The window before the usage, so that a rate-limited use counts
	// nothing; the counters of past windows the read found go with it. The
	// common design has one limit: the tier's first.
	limit := req.TierLimits[0]
	w := authorizer.WindowAt(req.Now, limit.Window())
	current := windowAttr(w)
	names := map[string]string{"#cur": current}
	update := "SET #cur = if_not_exists(#cur, :zero) + :one"
	var stale []string
	for name := range got.Item {
		if strings.HasPrefix(name, windowPrefix) && name != current {
			ref := "#old" + strconv.Itoa(len(stale))
			names[ref] = name
			stale = append(stale, ref)
		}
	}
	if len(stale) > 0 {
		update += " REMOVE " + strings.Join(stale, ", ")
	}
	window, err := b.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &b.table,
		Key:                       itemID(req.ID),
		UpdateExpression:          &update,
		ConditionExpression:       aws.String("attribute_not_exists(#cur) OR #cur < :limit"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: map[string]types.AttributeValue{":zero": number(0), ":one": number(1), ":limit": number(limit.Limit)},
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	var failed *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &failed):
		return authorizer.UseResult{Outcome: authorizer.RateLimited, Key: k, Limits: []authorizer.LimitCount{{RateLimit: limit, Window: w, Count: limit.Limit}}}, nil
	case err != nil:
		return authorizer.UseResult{}, fmt.Errorf("count rate window of %s: %w", req.ID, err)
	}
	var count int64
	if err := attributevalue.Unmarshal(window.Attributes[current], &count); err != nil {
		return authorizer.UseResult{}, fmt.Errorf("decode rate window of %s: %w", req.ID, err)
	}
	now, err := attributevalue.Marshal(req.Now)
	if err != nil {
		return authorizer.UseResult{}, err
	}
	usage, err := b.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &b.table,
		Key:                       itemID(req.ID),
		UpdateExpression:          aws.String("SET #used = :now ADD #total :one"),
		ExpressionAttributeNames:  map[string]string{"#used": attrLastUsed, "#total": attrTotalRequests},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": now, ":one": number(1)},
		// The key after the use, as the contract asks: no extra request.
		ReturnValues: types.ReturnValueAllNew,
	})
	if err != nil {
		return authorizer.UseResult{}, fmt.Errorf("count usage of %s: %w", req.ID, err)
	}
	if k, err = decodeBaselineKey(usage.Attributes); err != nil {
		return authorizer.UseResult{}, err
	}
	return authorizer.UseResult{Outcome: authorizer.Allowed, Key: k, Limits: []authorizer.LimitCount{{RateLimit: limit, Window: w, Count: count}}}, nil
}

// refusal is why k may not be used for req, in the order authorizer.Store
// gives, the rate window aside; Allowed if nothing refuses it.
func refusal(k *keys.Key, req authorizer.UseRequest) authorizer.Outcome {
	switch {
	// The id holds only part of the hash: the stored hash is what
	// authenticates, compared in constant time.
	case subtle.ConstantTimeCompare(k.Hash[:], req.Hash[:]) != 1,
		req.Project != "" && k.Project != req.Project,
		k.GoneAt(req.Now):
		return authorizer.NotFound
	case k.Status != keys.StatusActive:
		return authorizer.Revoked
	case k.StatusAt(req.Now) == keys.StatusExpired:
		return authorizer.Expired
	case !k.HoldsScopes(req.Scopes):
		return authorizer.InsufficientScope
	}
	return authorizer.Allowed
}

// ReturnUse takes the use back with an UpdateItem per counter, each on
// condition that the key is the one counted and the counter is above zero:
// a window already gone, or a key replaced, keeps its counter as it is.
func (b *baselineStore) ReturnUse(ctx context.Context, req authorizer.UseRequest, used authorizer.UseResult) error {
	for _, counter := range []string{windowAttr(used.Limits[0].Window), attrTotalRequests} {
		_, err := b.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                &b.table,
			Key:                      itemID(req.ID),
			UpdateExpression:         aws.String("SET #n = #n - :one"),
			ConditionExpression:      aws.String("#hash = :hash AND #n > :zero"),
			ExpressionAttributeNames: map[string]string{"#n": counter, "#hash": attrHash},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":hash": &types.AttributeValueMemberB{Value: req.Hash[:]}, ":one": number(1), ":zero": number(0),
			},
		})
		var failed *types.ConditionalCheckFailedException
		if err != nil && !errors.As(err, &failed) {
			return fmt.Errorf("return use of %s: %w", req.ID, err)
		}
	}
	return nil
}
