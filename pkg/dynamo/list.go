package dynamo

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/keys"
)

// maxQueryRounds bounds the DynamoDB requests one page may take when a
// filter discards most items; the page then ends early, with a cursor.
const maxQueryRounds = 10

// maxBatchAttempts bounds the BatchGetItem calls of one page.
const maxBatchAttempts = 4

// partition is one sorted list to page through: a table or index partition.
type partition struct {
	index   string // "" for the table itself
	pkAttr  string
	pkValue string
	skAttr  string
	// query names the listing a cursor belongs to: the partition and
	// every filter, so that a cursor serves no other.
	query string
	// startKey builds the ExclusiveStartKey of the item with sort key sk
	// and id; when nil, the page starts below sk (its sort keys are unique).
	startKey func(sk, id string) map[string]types.AttributeValue
}

// keyPartition is the index that lists a project's keys for f: by creator,
// by owner, or all; the other filters are a FilterExpression.
func keyPartition(project string, f keys.KeyFilter) partition {
	var p partition
	switch {
	case f.CreatedBy != "":
		p = partition{index: indexByCreator, pkAttr: attrGSI3PK, pkValue: creatorPK(project, f.CreatedBy), skAttr: attrGSI3SK}
	case f.Owner != "":
		p = partition{index: indexByOwner, pkAttr: attrGSI2PK, pkValue: ownerPK(project, f.Owner), skAttr: attrGSI2SK}
	default:
		p = partition{index: indexByProject, pkAttr: attrGSI1PK, pkValue: projectPK(project), skAttr: attrGSI1SK}
	}
	p.query = f.Query(project)
	// No startKey: the index's entries are details items, or key items
	// written before the split, and an ExclusiveStartKey must name the
	// entry's table keys, which a cursor does not hold (one naming the
	// other item's starts the page again at the same key, for ever). The
	// index's sort key holds the id, so a cursor places the next page by
	// it alone, in the query's key condition.
	return p
}

func auditPartition(q keys.AuditQuery) partition {
	return partition{pkAttr: attrPK, pkValue: auditPK(q.Project), skAttr: attrSK,
		query:    strings.Join([]string{"audit", q.Project, q.Target, q.Action}, "\x00"),
		startKey: func(sk, _ string) map[string]types.AttributeValue { return itemKey(auditPK(q.Project), sk) }}
}

// ListKeys pages through a project's keys, newest first. Items that TTL
// would have deleted are left out even while DynamoDB still holds them.
func (s *Store) ListKeys(ctx context.Context, q keys.ListQuery) ([]*keys.Key, string, error) {
	filter := notPurged(q.Now.Unix())
	switch q.Filter.Status {
	case keys.StatusActive:
		filter = filter.And(expression.Name(attrStatus).Equal(expression.Value(keys.StatusActive)),
			expression.Or(expression.AttributeNotExists(expression.Name(attrExpiresAt)), expression.Name(attrExpiresAt).GreaterThan(expression.Value(q.Now.UnixMilli()))))
	case keys.StatusExpired:
		filter = filter.And(expression.Name(attrStatus).Equal(expression.Value(keys.StatusActive)),
			expression.Name(attrExpiresAt).LessThanEqual(expression.Value(q.Now.UnixMilli())))
	case keys.StatusRevoked:
		filter = filter.And(expression.Name(attrStatus).Equal(expression.Value(keys.StatusRevoked)))
	}
	if q.Filter.Tier != "" {
		filter = filter.And(expression.Name(attrTier).Equal(expression.Value(q.Filter.Tier)))
	}
	if q.Filter.CreatedBy != "" && q.Filter.Owner != "" { // listed by creator: owner is a filter
		filter = filter.And(expression.Name(attrOwner).Equal(expression.Value(q.Filter.Owner)))
	}
	p := keyPartition(q.Project, q.Filter)
	cursor := q.Cursor
	out := []*keys.Key{}
	// The index may hold a key twice for a moment: while a key moves to
	// two items (split-keys, its first update), DynamoDB adds its details
	// item's entry and removes its key item's apart. BatchGetItem refuses a
	// key asked for twice, and a transaction an item written twice.
	listed := map[string]bool{}
	// A filter on what the index lacks (KeyFilter.Matches) reads on, page
	// after page, until the page is full, the listing ends, or the rounds
	// run out: then the page is short, with a cursor.
	for round := 0; round < maxReadFilterRounds; round++ {
		items, next, err := s.page(ctx, p, filter, q.Limit, cursor)
		if err != nil {
			return nil, "", err
		}
		ids := make([]string, len(items))
		var unique []string
		for i, item := range items {
			ids[i] = keyIDFromPK(stringAttr(item, attrPK))
			if !slices.Contains(unique, ids[i]) {
				unique = append(unique, ids[i])
			}
		}
		found, err := s.getKeys(ctx, unique)
		if err != nil {
			return nil, "", err
		}
		for i, id := range ids {
			k, ok := found[id]
			if !ok || listed[id] || k.GoneAt(q.Now) || !q.Filter.Matches(k, q.Now) {
				continue
			}
			listed[id] = true
			out = append(out, k)
			if len(out) == q.Limit && (i < len(ids)-1 || next != "") {
				// Full: the next page starts after this key.
				next, err := s.encodeCursor(ctx, p.query, stringAttr(items[i], p.skAttr))
				return out, next, err
			}
		}
		if next == "" || !q.Filter.ReadFiltered() {
			return out, next, nil
		}
		cursor = next
	}
	return out, cursor, nil
}

// maxReadFilterRounds bounds the pages one listing reads to fill a page
// that KeyFilter.Matches filters.
const maxReadFilterRounds = 5

// getKeys reads keys by id with strongly consistent reads. The indexes
// hold only what listings filter on, so that authorizations never write
// them; a page's keys are then read, both items of each, in BatchGetItem
// calls of up to 100 items. A key deleted since the index was read is
// absent from the result. A key read across a write (tornRead) is read
// again the same way, as GetKey would: the listing functions may
// BatchGetItem on the table, not Query it (template.yaml).
func (s *Store) getKeys(ctx context.Context, ids []string) (map[string]*keys.Key, error) {
	found := make(map[string]*keys.Key, len(ids))
	err := readWhole(func() (string, error) {
		var torn []string
		for chunk := range slices.Chunk(ids, maxBatchGetItems/2) {
			items, err := s.batchGet(ctx, chunk)
			if err != nil {
				return "", err
			}
			for id, item := range items {
				switch {
				case item.key == nil:
					continue
				case tornRead(item.key, item.details, time.Now()): // rare: read it again
					torn = append(torn, id)
					continue
				}
				k, err := storedKey(mergeKeyItems(item.key, item.details))
				if err != nil {
					return "", err
				}
				found[id] = k
			}
		}
		ids = torn
		if len(torn) == 0 {
			return "", nil
		}
		return torn[0], nil
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

// maxBatchGetItems is DynamoDB's limit on the items of one BatchGetItem.
const maxBatchGetItems = 100

type keyItems struct {
	key, details map[string]types.AttributeValue
}

// batchGet reads the key and details items of up to 50 keys.
func (s *Store) batchGet(ctx context.Context, ids []string) (map[string]keyItems, error) {
	out := make(map[string]keyItems, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	request := &types.KeysAndAttributes{ConsistentRead: aws.Bool(true)}
	for _, id := range ids {
		request.Keys = append(request.Keys, itemKey(keyPK(id), keySK), itemKey(keyPK(id), detailsSK))
	}
	pending := map[string]types.KeysAndAttributes{s.table: *request}
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt == maxBatchAttempts {
			return nil, fmt.Errorf("batch get keys: %w: %d items still unprocessed", keys.ErrUnavailable, len(pending[s.table].Keys))
		}
		if attempt > 0 { // DynamoDB left some keys unread: it asks for a pause.
			time.Sleep(time.Duration(attempt) * 20 * time.Millisecond)
		}
		res, err := s.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
		if err != nil {
			return nil, storeError("batch get keys", err)
		}
		for _, item := range res.Responses[s.table] {
			id := keyIDFromPK(stringAttr(item, attrPK))
			both := out[id]
			switch stringAttr(item, attrSK) {
			case keySK:
				both.key = item
			case detailsSK:
				both.details = item
			}
			out[id] = both
		}
		pending = res.UnprocessedKeys
	}
	return out, nil
}

// ListAudit pages through a project's audit events, newest first.
func (s *Store) ListAudit(ctx context.Context, q keys.AuditQuery) ([]*keys.AuditEvent, string, error) {
	filter := notPurged(q.Now.Unix())
	if q.Target != "" {
		filter = filter.And(expression.Name(attrTarget).Equal(expression.Value(q.Target)))
	}
	if q.Action != "" {
		filter = filter.And(expression.Name(attrAction).Equal(expression.Value(q.Action)))
	}
	items, next, err := s.page(ctx, auditPartition(q), filter, q.Limit, q.Cursor)
	if err != nil {
		return nil, "", err
	}
	out := make([]*keys.AuditEvent, len(items))
	for i, item := range items {
		var r eventRecord
		if err := attributevalue.UnmarshalMap(item, &r); err != nil {
			return nil, "", fmt.Errorf("decode audit event: %w", err)
		}
		if out[i], err = r.event(); err != nil {
			return nil, "", err
		}
	}
	return out, next, nil
}

// notPurged keeps items whose TTL has not passed: DynamoDB deletes expired
// items only within days, so reads must not rely on it.
func notPurged(nowSec int64) expression.ConditionBuilder {
	return expression.Or(expression.AttributeNotExists(expression.Name(attrTTL)), expression.Name(attrTTL).GreaterThan(expression.Value(nowSec)))
}

// page reads up to limit items of a partition, newest first, that pass the
// filter, starting after the cursor. The next cursor is the sort key of the
// last item returned, so a filtered page that stops mid-way through a
// DynamoDB page loses nothing.
func (s *Store) page(ctx context.Context, p partition, filter expression.ConditionBuilder, limit int, after string) ([]map[string]types.AttributeValue, string, error) {
	if limit < 1 {
		return nil, "", fmt.Errorf("list: limit %d: want at least 1", limit)
	}
	keyCond := expression.Key(p.pkAttr).Equal(expression.Value(p.pkValue))
	var start map[string]types.AttributeValue
	if after != "" {
		sk, id, err := s.decodeCursor(ctx, p.query, after)
		if err != nil {
			return nil, "", err
		}
		if p.startKey != nil {
			start = p.startKey(sk, id)
		} else { // newest first: after sk is below it
			keyCond = keyCond.And(expression.Key(p.skAttr).LessThan(expression.Value(sk)))
		}
	}
	expr, err := expression.NewBuilder().WithKeyCondition(keyCond).WithFilter(filter).Build()
	if err != nil {
		return nil, "", fmt.Errorf("build query: %w", err)
	}
	in := &dynamodb.QueryInput{
		TableName:                 &s.table,
		KeyConditionExpression:    expr.KeyCondition(),
		FilterExpression:          expr.Filter(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		ScanIndexForward:          aws.Bool(false),
		// One more than asked tells whether another page exists.
		Limit: aws.Int32(int32(limit + 1)),
	}
	if p.index != "" {
		in.IndexName = aws.String(p.index)
	}
	in.ExclusiveStartKey = start
	var items []map[string]types.AttributeValue
	for round := 0; ; round++ {
		out, err := s.client.Query(ctx, in)
		if err != nil {
			return nil, "", storeError("query", err)
		}
		items = append(items, out.Items...)
		if len(items) > limit {
			items = items[:limit]
			next, err := s.encodeCursor(ctx, p.query, stringAttr(items[limit-1], p.skAttr))
			return items, next, err
		}
		if out.LastEvaluatedKey == nil {
			return items, "", nil
		}
		if round+1 == maxQueryRounds {
			next, err := s.encodeCursor(ctx, p.query, stringAttr(out.LastEvaluatedKey, p.skAttr))
			return items, next, err
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

func stringAttr(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}
