package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/expiry"
	"github.com/keygate/keygate/pkg/keys"
)

var _ expiry.Store = (*Store)(nil)

// The item where the expiry scheduler's runs got to, in a partition of its
// own, so that its policy reaches no other item (not the cursor secret).
const (
	expiryRunPK      = "SCHEDULE#key-expiry"
	expiryRunSK      = "CHECKED"
	attrCheckedUntil = "checkedUntil" // N, Unix ms
	// A run stopped inside the slice (checkedUntil, resumeTo] saved that
	// it did every warning before resumeWarning, and resumeWarning up to
	// the index position resumeAfter (expiry.Progress).
	attrResumeTo      = "resumeTo"      // N, Unix ms
	attrResumeWarning = "resumeWarning" // N
	attrResumeAfter   = "resumeAfter"   // S
)

// expiryPageSize bounds a page of the expiry index: the scheduler reads
// each key of a page before the next page is fetched.
const expiryPageSize = 100

// KeysExpiring calls fn with each key the expiry index holds with an
// expiresAt in (from, to], in order, a page at a time. The index is
// eventually consistent: an entry may be stale or not there yet.
func (s *Store) KeysExpiring(ctx context.Context, from, to time.Time, fn func(expiry.Entry) error) error {
	// Sort keys are "<ms, 13 digits>#<id>"; '$' follows '#', so the range
	// holds every id at both ends' milliseconds.
	lo := fmt.Sprintf("%013d#", from.UnixMilli()+1)
	hi := fmt.Sprintf("%013d$", to.UnixMilli())
	for day := from.UTC().Truncate(24 * time.Hour); !day.After(to); day = day.Add(24 * time.Hour) {
		in := &dynamodb.QueryInput{
			TableName: &s.table, IndexName: aws.String(indexByExpiry), Limit: aws.Int32(expiryPageSize),
			KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
			ExpressionAttributeNames: map[string]string{"#pk": attrGSI4PK, "#sk": attrGSI4SK},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": &types.AttributeValueMemberS{Value: expiryPK(day)},
				":lo": &types.AttributeValueMemberS{Value: lo}, ":hi": &types.AttributeValueMemberS{Value: hi},
			},
		}
		for {
			out, err := s.client.Query(ctx, in)
			if err != nil {
				return storeError("query keys by expiry", err)
			}
			for _, item := range out.Items {
				if !strings.HasPrefix(stringAttr(item, attrPK), "KEY#") || !isKeySK(stringAttr(item, attrSK)) {
					continue // an item not written by keygate
				}
				if err := fn(expiry.Entry{ID: keyIDFromPK(stringAttr(item, attrPK)), Project: stringAttr(item, attrProject), Pos: stringAttr(item, attrGSI4SK)}); err != nil {
					return err
				}
			}
			if len(out.LastEvaluatedKey) == 0 {
				break
			}
			in.ExclusiveStartKey = out.LastEvaluatedKey
		}
	}
	return nil
}

// ExpiryCheckedUntil is where the scheduler's runs got to; the zero time
// before the first.
func (s *Store) ExpiryCheckedUntil(ctx context.Context) (time.Time, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: itemKey(expiryRunPK, expiryRunSK), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return time.Time{}, storeError("read expiry checkpoint", err)
	}
	ms, ok := itemNumber(out.Item, attrCheckedUntil)
	if !ok {
		return time.Time{}, nil
	}
	return time.UnixMilli(ms).UTC(), nil
}

// SetExpiryCheckedUntil moves the checkpoint on to t, never back: a late
// or overlapping run cannot make the next one repeat a range.
func (s *Store) SetExpiryCheckedUntil(ctx context.Context, t time.Time) error {
	item := itemKey(expiryRunPK, expiryRunSK)
	item[attrCheckedUntil] = numberValue(t.UnixMilli())
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &s.table, Item: item,
		ConditionExpression:       aws.String("attribute_not_exists(#at) OR #at < :at"),
		ExpressionAttributeNames:  map[string]string{"#at": attrCheckedUntil},
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": numberValue(t.UnixMilli())},
	})
	var behind *types.ConditionalCheckFailedException
	if errors.As(err, &behind) {
		return nil
	}
	return storeError("write expiry checkpoint", err)
}

// ExpiryProgress is the progress a run saved inside the slice starting at
// the checkpoint; the zero Progress if none.
func (s *Store) ExpiryProgress(ctx context.Context) (expiry.Progress, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: itemKey(expiryRunPK, expiryRunSK), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return expiry.Progress{}, storeError("read expiry progress", err)
	}
	from, ok1 := itemNumber(out.Item, attrCheckedUntil)
	to, ok2 := itemNumber(out.Item, attrResumeTo)
	w, ok3 := itemNumber(out.Item, attrResumeWarning)
	if !ok1 || !ok2 || !ok3 {
		return expiry.Progress{}, nil
	}
	return expiry.Progress{From: time.UnixMilli(from).UTC(), To: time.UnixMilli(to).UTC(), Warning: int(w), After: stringAttr(out.Item, attrResumeAfter)}, nil
}

// SetExpiryProgress saves p with the checkpoint at p.From, unless a run
// moved the checkpoint past p.From already.
func (s *Store) SetExpiryProgress(ctx context.Context, p expiry.Progress) error {
	item := itemKey(expiryRunPK, expiryRunSK)
	item[attrCheckedUntil] = numberValue(p.From.UnixMilli())
	item[attrResumeTo] = numberValue(p.To.UnixMilli())
	item[attrResumeWarning] = numberValue(int64(p.Warning))
	if p.After != "" {
		item[attrResumeAfter] = &types.AttributeValueMemberS{Value: p.After}
	}
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &s.table, Item: item,
		ConditionExpression:       aws.String("attribute_not_exists(#at) OR #at <= :at"),
		ExpressionAttributeNames:  map[string]string{"#at": attrCheckedUntil},
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": numberValue(p.From.UnixMilli())},
	})
	var ahead *types.ConditionalCheckFailedException
	if errors.As(err, &ahead) {
		return nil
	}
	return storeError("write expiry progress", err)
}

// IndexExpiries gives the active keys of project that have an expiresAt
// their expiry index entry, for keys written before the index existed; it
// returns how many it wrote. It reads the project's listing index (gsi1),
// not the table, and writes a key only if its status and expiresAt are
// still those read: a change meanwhile writes the entry itself.
func (s *Store) IndexExpiries(ctx context.Context, project string) (int, error) {
	in := &dynamodb.QueryInput{
		TableName: &s.table, IndexName: aws.String(indexByProject),
		KeyConditionExpression:   aws.String("#pk = :pk"),
		FilterExpression:         aws.String("#status = :active AND attribute_exists(#exp)"),
		ExpressionAttributeNames: map[string]string{"#pk": attrGSI1PK, "#status": attrStatus, "#exp": attrExpiresAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: projectPK(project)}, ":active": &types.AttributeValueMemberS{Value: string(keys.StatusActive)},
		},
	}
	written := 0
	for {
		out, err := s.client.Query(ctx, in)
		if err != nil {
			return written, storeError("list keys to index", err)
		}
		for _, item := range out.Items {
			ms, ok := itemNumber(item, attrExpiresAt)
			if !ok {
				continue
			}
			id, exp := keyIDFromPK(stringAttr(item, attrPK)), time.UnixMilli(ms)
			_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				// The item the index listed: the details item, or a key
				// item written before the split.
				TableName: &s.table, Key: itemKey(keyPK(id), stringAttr(item, attrSK)),
				UpdateExpression:         aws.String("SET #gpk = :gpk, #gsk = :gsk"),
				ConditionExpression:      aws.String("#status = :active AND #exp = :exp"),
				ExpressionAttributeNames: map[string]string{"#gpk": attrGSI4PK, "#gsk": attrGSI4SK, "#status": attrStatus, "#exp": attrExpiresAt},
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":gpk": &types.AttributeValueMemberS{Value: expiryPK(exp)}, ":gsk": &types.AttributeValueMemberS{Value: sortKey(exp, id)},
					":active": &types.AttributeValueMemberS{Value: string(keys.StatusActive)}, ":exp": numberValue(ms),
				},
			})
			var changed *types.ConditionalCheckFailedException
			switch {
			case errors.As(err, &changed):
			case err != nil:
				return written, storeError("index key "+id, err)
			default:
				written++
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return written, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}
