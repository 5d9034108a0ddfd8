package dynamo

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/keys"
)

// SplitKeys moves the details of project's keys written before the split
// to their details items (docs/key-items.md), so that authorizing them
// costs one write unit too; each key's next edit would, and this does it
// now. It returns how many keys it moved and how many it left, each busy
// with writes through every attempt: a run again moves those. A key moves
// in one transaction, if its version is still the one read, while it is
// being authorized; its version stays, and the key reads as before.
func (s *Store) SplitKeys(ctx context.Context, project string) (moved, left int, err error) {
	in := &dynamodb.QueryInput{
		TableName: &s.table, IndexName: aws.String(indexByProject),
		KeyConditionExpression:   aws.String("#pk = :pk"),
		FilterExpression:         aws.String("#sk = :key"), // an index entry of a key item: one from before the split
		ExpressionAttributeNames: map[string]string{"#pk": attrGSI1PK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: projectPK(project)}, ":key": &types.AttributeValueMemberS{Value: keySK},
		},
	}
	for {
		out, err := s.client.Query(ctx, in)
		if err != nil {
			return moved, left, storeError("list keys to split", err)
		}
		var (
			mu       sync.Mutex
			firstErr error
			workers  sync.WaitGroup
			ids      = make(chan string)
		)
		for range splitWorkers {
			workers.Go(func() {
				for id := range ids {
					done, err := s.splitKey(ctx, id)
					mu.Lock()
					switch {
					case errors.Is(err, keys.ErrConflict):
						left++
					case err != nil && firstErr == nil:
						firstErr = err
					case done:
						moved++
					}
					mu.Unlock()
				}
			})
		}
		for _, entry := range out.Items {
			ids <- keyIDFromPK(stringAttr(entry, attrPK))
		}
		close(ids)
		workers.Wait()
		if firstErr != nil {
			return moved, left, firstErr
		}
		if len(out.LastEvaluatedKey) == 0 {
			return moved, left, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// splitWorkers is how many keys SplitKeys moves at once: each move is two
// round trips, and a project may hold millions of keys.
const splitWorkers = 8

// maxSplitAttempts bounds the reads and writes of one key that is being
// written meanwhile.
const maxSplitAttempts = 3

// splitKey moves one key's details to its details item, reporting whether
// it did: not when the key is gone or moved since listed.
func (s *Store) splitKey(ctx context.Context, id string) (bool, error) {
	for attempt := 1; ; attempt++ {
		key, details, err := s.queryKeyItems(ctx, id)
		if err != nil || key == nil || key[attrGSI1PK] == nil {
			return false, err
		}
		// A revoke of a key from before the split wrote a details item
		// of its own: its values are the newer.
		keyItem, detailsItem := splitKeyItem(mergeKeyItems(key, details))
		upd := expression.UpdateBuilder{}
		for _, name := range slices.Sorted(maps.Keys(detailsOnly)) {
			if key[name] != nil {
				upd = upd.Remove(expression.Name(name))
			}
		}
		if keyItem[attrDetails] != nil {
			upd = upd.Set(expression.Name(attrDetails), expression.Value(true))
		}
		version, ok := itemNumber(key, attrVersion)
		unchanged := expression.AttributeNotExists(expression.Name(attrVersion))
		if ok {
			unchanged = expression.Name(attrVersion).Equal(expression.Value(version))
		}
		keyUpdate, err := s.keyUpdate(id, upd, unchanged.And(expression.AttributeExists(expression.Name(attrGSI1PK))))
		if err != nil {
			return false, err
		}
		err = s.transact(ctx, nil, []types.TransactWriteItem{
			{Update: keyUpdate},
			{Put: &types.Put{TableName: &s.table, Item: detailsItem, ConditionExpression: aws.String("attribute_not_exists(" + attrID + ")")}},
		})
		if !errors.Is(err, keys.ErrConflict) || attempt == maxSplitAttempts {
			return err == nil, err
		}
		time.Sleep(time.Duration(attempt) * 20 * time.Millisecond)
	}
}
