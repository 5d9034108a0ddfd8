package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/usage"
)

// Usage items, written by the usage-aggregator function alone:
//
//	series:  pk = USAGE#KEY#<id> | USAGE#OWNER#<project>#<owner> | USAGE#UNKNOWN#<project>
//	         sk = <h|d>#<bucket start, Unix seconds, 10 digits>
//	group:   pk = USAGE#GROUP#<project>#<h|d>#<key|owner|tier>   sk = <bucket start>#<member>
//	marker:  pk = USAGE#APPLIED#<chunk>                            sk = M
//	refusal counts, flushed by authorizers: pk = REFUSALS#<container>  sk = <flush number, 20 digits>
//
// A bucket holds one number per figure, under the short names of
// countAttrs, and its ttl.

var _ usage.Store = (*Store)(nil)

// countAttrs names the stored figures of a bucket.
var countAttrs = []struct {
	name string
	get  func(*usage.Counts) *int64
}{
	{"a", func(c *usage.Counts) *int64 { return &c.Allowed }},
	{"rl", func(c *usage.Counts) *int64 { return &c.RateLimited }},
	{"ue", func(c *usage.Counts) *int64 { return &c.UsageExceeded }},
	{"is", func(c *usage.Counts) *int64 { return &c.InsufficientScope }},
	{"ip", func(c *usage.Counts) *int64 { return &c.IPNotAllowed }},
	{"rv", func(c *usage.Counts) *int64 { return &c.Revoked }},
	{"ex", func(c *usage.Counts) *int64 { return &c.Expired }},
	{"nf", func(c *usage.Counts) *int64 { return &c.NotFound }},
	{"cr", func(c *usage.Counts) *int64 { return &c.Credits }},
}

const (
	usageMarkerSK = "M"
	attrMember    = "member"
	// markerRetention outlasts any redelivery of a stream batch (records
	// live 24 hours in a stream).
	markerRetention = 7 * 24 * time.Hour
)

func bucketSK(g usage.Granularity, start time.Time) string {
	return fmt.Sprintf("%s#%010d", g.Code(), start.Unix())
}

// usageItemKey is where an increment's bucket is stored.
func usageItemKey(s usage.Series, g usage.Granularity, start time.Time) map[string]types.AttributeValue {
	switch s.Kind {
	case usage.KindKey:
		return itemKey("USAGE#KEY#"+s.ID, bucketSK(g, start))
	case usage.KindOwner:
		return itemKey("USAGE#OWNER#"+s.Project+"#"+s.ID, bucketSK(g, start))
	case usage.KindUnknown:
		return itemKey("USAGE#UNKNOWN#"+s.Project, bucketSK(g, start))
	}
	return itemKey(groupPK(s.Project, s.GroupBy, g), fmt.Sprintf("%010d#%s", start.Unix(), s.ID))
}

func groupPK(project string, by usage.GroupBy, g usage.Granularity) string {
	return "USAGE#GROUP#" + project + "#" + g.Code() + "#" + string(by)
}

// AddUsage adds the increments and records the marker in one transaction.
func (s *Store) AddUsage(ctx context.Context, marker string, incs []usage.Increment) error {
	if len(incs) > usage.MaxIncrements {
		return fmt.Errorf("usage: %d increments, at most %d a chunk", len(incs), usage.MaxIncrements)
	}
	m := newExpr()
	m.set(m.name(attrTTL) + " = " + m.number(time.Now().Add(markerRetention).Unix()))
	m.require("attribute_not_exists(" + m.name(attrPK) + ")")
	items := []types.TransactWriteItem{{Update: transactUpdate(m.updateItem(s.table, itemKey("USAGE#APPLIED#"+marker, usageMarkerSK)))}}
	for _, inc := range incs {
		e := newExpr()
		for _, c := range countAttrs {
			if n := *c.get(&inc.Counts); n != 0 {
				e.add(e.name(c.name) + " " + e.number(n))
			}
		}
		e.set(e.name(attrTTL) + " = " + e.number(ttlSeconds(&inc.Expires)))
		e.set(e.name(attrProject) + " = " + e.value(&types.AttributeValueMemberS{Value: inc.Series.Project}))
		e.set(e.name(attrMember) + " = " + e.value(&types.AttributeValueMemberS{Value: inc.Series.ID}))
		in := e.updateItem(s.table, usageItemKey(inc.Series, inc.Granularity, inc.Start))
		in.ConditionExpression = nil
		items = append(items, types.TransactWriteItem{Update: transactUpdate(in)})
	}
	_, err := s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var canceled *types.TransactionCanceledException
	if errors.As(err, &canceled) && len(canceled.CancellationReasons) > 0 && aws.ToString(canceled.CancellationReasons[0].Code) == "ConditionalCheckFailed" {
		return usage.ErrApplied
	}
	return storeError("write usage", err)
}

func transactUpdate(in *dynamodb.UpdateItemInput) *types.Update {
	return &types.Update{
		TableName: in.TableName, Key: in.Key, UpdateExpression: in.UpdateExpression, ConditionExpression: in.ConditionExpression,
		ExpressionAttributeNames: in.ExpressionAttributeNames, ExpressionAttributeValues: in.ExpressionAttributeValues,
	}
}

// Buckets reads a series' buckets between two starts, inclusive.
func (s *Store) Buckets(ctx context.Context, series usage.Series, g usage.Granularity, from, to, now time.Time) ([]usage.Bucket, error) {
	key := usageItemKey(series, g, from)
	pk := key[attrPK].(*types.AttributeValueMemberS).Value
	var out []usage.Bucket
	err := s.queryRange(ctx, pk, bucketSK(g, from), bucketSK(g, to), now, func(item map[string]types.AttributeValue) {
		sk := stringAttr(item, attrSK)
		start, err := strconv.ParseInt(sk[2:], 10, 64)
		if err == nil {
			out = append(out, usage.Bucket{Start: time.Unix(start, 0).UTC(), Counts: countsOf(item)})
		}
	})
	return out, err
}

// Group reads a grouping's totals per member between two bucket starts.
func (s *Store) Group(ctx context.Context, project string, by usage.GroupBy, g usage.Granularity, from, to, now time.Time) (map[string]usage.Counts, error) {
	out := map[string]usage.Counts{}
	err := s.queryRange(ctx, groupPK(project, by, g), fmt.Sprintf("%010d#", from.Unix()), fmt.Sprintf("%010d#\U0010FFFF", to.Unix()), now, func(item map[string]types.AttributeValue) {
		member := stringAttr(item, attrMember)
		c := out[member]
		c.Add(countsOf(item))
		out[member] = c
	})
	return out, err
}

// queryRange hands each item of partition pk with a sort key from from to
// to, inclusive, to each, every page of it, leaving out items past their
// ttl at now, which DynamoDB deletes only within days.
func (s *Store) queryRange(ctx context.Context, pk, from, to string, now time.Time, each func(map[string]types.AttributeValue)) error {
	in := &dynamodb.QueryInput{
		TableName:              &s.table,
		KeyConditionExpression: aws.String("#pk = :pk AND #sk BETWEEN :from AND :to"),
		ExpressionAttributeNames: map[string]string{
			"#pk": attrPK, "#sk": attrSK,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: pk}, ":from": &types.AttributeValueMemberS{Value: from}, ":to": &types.AttributeValueMemberS{Value: to},
		},
	}
	for {
		out, err := s.client.Query(ctx, in)
		if err != nil {
			return storeError("read usage", err)
		}
		for _, item := range out.Items {
			if ttl, ok := itemNumber(item, attrTTL); ok && ttl <= now.Unix() {
				continue
			}
			each(item)
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

func countsOf(item map[string]types.AttributeValue) usage.Counts {
	var c usage.Counts
	for _, a := range countAttrs {
		*a.get(&c), _ = itemNumber(item, a.name)
	}
	return c
}

// PutRefusals writes one flush of an authorizer's refusal counts, for the
// stream to carry to the aggregator; the item itself lives a day.
func (s *Store) PutRefusals(ctx context.Context, container string, seq int64, entries []usage.RefusalEntry) error {
	raw, err := json.Marshal(entries)
	if err != nil {
		return fmt.Errorf("encode refusal counts: %w", err)
	}
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &s.table,
		Item: map[string]types.AttributeValue{
			attrPK:    &types.AttributeValueMemberS{Value: "REFUSALS#" + container},
			attrSK:    &types.AttributeValueMemberS{Value: fmt.Sprintf("%020d", seq)},
			"entries": &types.AttributeValueMemberS{Value: string(raw)},
			attrTTL:   numberValue(time.Now().Add(24 * time.Hour).Unix()),
		},
	})
	return storeError("write refusal counts", err)
}
