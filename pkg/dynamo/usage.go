package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/usage"
)

// Usage items, written by the usage-aggregator function alone:
//
//	a key's buckets:   pk = USAGE#KEY#<project>#<key id>   ("" for unknown keys)   sk = <h|d>#<start, Unix s, 10 digits>
//	the same, listed by project:  pk = USAGE#PROJECT#<project>#<h|d>   sk = <start>#<key id>, with owner and tier
//	refusal counts, flushed by authorizers: pk = REFUSALS#<container>  sk = <flush number, 20 digits>
//
// A bucket holds one number per figure, under the short names of
// countAttrs, its ttl, and, per source of its parts, q.<source>: the last
// sequence number it took from that source.

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
	attrMember = "member"
	// maxPartRetries bounds the rewrites of a bucket that had taken some of
	// a batch's parts before: each rewrite drops those the item shows taken.
	maxPartRetries = 3
)

// Key builders of usage items: a key's series, and its project's listing.
func seriesPK(s usage.Series) string { return "USAGE#KEY#" + s.Project + "#" + s.KeyID }
func seriesSK(g usage.Granularity, start time.Time) string {
	return fmt.Sprintf("%s#%010d", g.Code(), start.Unix())
}
func projectUsagePK(project string, g usage.Granularity) string {
	return "USAGE#PROJECT#" + project + "#" + g.Code()
}
func listingSK(start time.Time, keyID string) string {
	return fmt.Sprintf("%010d#%s", start.Unix(), keyID)
}

// listingRange is the sort-key range of a listing's buckets from from to
// to, every key of each.
func listingRange(from, to time.Time) (string, string) {
	return listingSK(from, ""), listingSK(to, "\U0010FFFF")
}

// AddUsage writes add to the key's bucket and to its project's listing.
func (s *Store) AddUsage(ctx context.Context, add usage.Add) error {
	for _, key := range []map[string]types.AttributeValue{
		itemKey(seriesPK(add.Series), seriesSK(add.Granularity, add.Start)),
		itemKey(projectUsagePK(add.Series.Project, add.Granularity), listingSK(add.Start, add.Series.KeyID)),
	} {
		if err := s.addParts(ctx, key, add); err != nil {
			return err
		}
	}
	return nil
}

// addParts adds to one item the parts it has not taken: the write requires
// that each source's last sequence number taken is below the first of its
// parts; when it is not, the item as it was tells which parts it took, and
// the write is made again without them.
func (s *Store) addParts(ctx context.Context, key map[string]types.AttributeValue, add usage.Add) error {
	parts := add.Parts
	for range maxPartRetries {
		e := newExpr()
		var total usage.Counts
		first, last := map[string]string{}, map[string]string{}
		var sources []string
		for _, p := range parts {
			total.Add(p.Counts)
			if _, ok := first[p.Source]; !ok {
				first[p.Source] = p.Seq
				sources = append(sources, p.Source)
			}
			last[p.Source] = p.Seq
		}
		for _, src := range sources {
			q := e.name("q." + src)
			e.require("(attribute_not_exists(" + q + ") OR " + q + " < " + e.value(&types.AttributeValueMemberS{Value: first[src]}) + ")")
			e.set(q + " = " + e.value(&types.AttributeValueMemberS{Value: last[src]}))
		}
		for _, c := range countAttrs {
			if n := *c.get(&total); n != 0 {
				e.add(e.name(c.name) + " " + e.number(n))
			}
		}
		e.set(e.name(attrTTL) + " = " + e.number(ttlSeconds(&add.Expires)))
		for attr, v := range map[string]string{attrProject: add.Series.Project, attrMember: add.Series.KeyID, attrOwner: add.Owner, attrTier: add.Tier} {
			e.set(e.name(attr) + " = " + e.value(&types.AttributeValueMemberS{Value: v}))
		}
		in := e.updateItem(s.table, key)
		in.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
		_, err := s.client.UpdateItem(ctx, in)
		var failed *types.ConditionalCheckFailedException
		if !errors.As(err, &failed) {
			return storeError("write usage", err)
		}
		parts = slices.DeleteFunc(parts, func(p usage.Part) bool {
			taken, _ := failed.Item["q."+p.Source].(*types.AttributeValueMemberS)
			return taken != nil && p.Seq <= taken.Value
		})
		if len(parts) == 0 {
			return nil
		}
	}
	return fmt.Errorf("write usage: %w: the bucket changed under every write", keys.ErrUnavailable)
}

// Buckets reads a key's (or unknown keys') buckets between two starts, inclusive.
func (s *Store) Buckets(ctx context.Context, series usage.Series, g usage.Granularity, from, to, now time.Time) ([]usage.Bucket, error) {
	var out []usage.Bucket
	err := s.queryRange(ctx, seriesPK(series), seriesSK(g, from), seriesSK(g, to), now, func(item map[string]types.AttributeValue) {
		sk := stringAttr(item, attrSK)
		start, err := strconv.ParseInt(sk[2:], 10, 64)
		if err == nil {
			out = append(out, usage.Bucket{Start: time.Unix(start, 0).UTC(), Counts: countsOf(item)})
		}
	})
	return out, err
}

// OwnerBuckets reads a project's listing between two bucket starts and
// sums the buckets of the owner's keys: one query, which reads (and is
// charged for) every key's bucket of the project in the range.
func (s *Store) OwnerBuckets(ctx context.Context, project, owner string, g usage.Granularity, from, to, now time.Time) ([]usage.Bucket, error) {
	byStart := map[int64]*usage.Bucket{}
	var order []int64
	first, last := listingRange(from, to)
	err := s.queryRange(ctx, projectUsagePK(project, g), first, last, now, func(item map[string]types.AttributeValue) {
		if stringAttr(item, attrOwner) != owner {
			return
		}
		start, err := strconv.ParseInt(strings.SplitN(stringAttr(item, attrSK), "#", 2)[0], 10, 64)
		if err != nil {
			return
		}
		b, ok := byStart[start]
		if !ok {
			b = &usage.Bucket{Start: time.Unix(start, 0).UTC()}
			byStart[start] = b
			order = append(order, start)
		}
		b.Counts.Add(countsOf(item))
	})
	out := make([]usage.Bucket, len(order))
	for i, start := range order {
		out[i] = *byStart[start]
	}
	return out, err
}

// KeyTotals reads a project's listing between two bucket starts and sums it by key.
func (s *Store) KeyTotals(ctx context.Context, project string, g usage.Granularity, from, to, now time.Time) ([]usage.KeyTotal, error) {
	byKey := map[string]*usage.KeyTotal{}
	var order []string
	first, last := listingRange(from, to)
	err := s.queryRange(ctx, projectUsagePK(project, g), first, last, now, func(item map[string]types.AttributeValue) {
		id := stringAttr(item, attrMember)
		t, ok := byKey[id]
		if !ok {
			t = &usage.KeyTotal{KeyID: id}
			byKey[id] = t
			order = append(order, id)
		}
		t.Owner, t.Tier = stringAttr(item, attrOwner), stringAttr(item, attrTier)
		t.Counts.Add(countsOf(item))
	})
	out := make([]usage.KeyTotal, len(order))
	for i, id := range order {
		out[i] = *byKey[id]
	}
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
// stream to carry to the aggregator, once; the item itself lives a day.
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
		// Once: a write again of an item stored already (its first write
		// timed out after DynamoDB stored it) stores nothing.
		ConditionExpression: aws.String("attribute_not_exists(" + attrPK + ")"),
	})
	var stored *types.ConditionalCheckFailedException
	if errors.As(err, &stored) {
		return nil
	}
	return storeError("write refusal counts", err)
}
