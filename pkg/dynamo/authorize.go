package dynamo

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/keys"
)

// windowsSwept is K: how many windows before the current one each use
// removes the counters of.
const windowsSwept = 4

var _ authorizer.Store = (*Store)(nil)

// UseKey checks and counts one use of a key with a single strongly
// consistent conditional UpdateItem on the key item.
//
// Rate windows are fixed, W seconds long, aligned to the Unix epoch. The
// count of the window starting at S (Unix seconds) is attribute w<S>, and
// lastWindow holds the S of the last window a use was counted in. A use is
//
//	SET w<S> = if_not_exists(w<S>, 0) + 1, lastWindow = S, lastUsed = now
//	ADD totalRequests 1
//	REMOVE w<S-W>, w<S-2W>, ..., w<S-K·W>
//
// on condition that the item exists with this key hash (and project, for
// verify), is active, is not expired, w<S> is below the tier's limit, and
// lastWindow is absent or at least S-K·W. That condition on lastWindow is
// what bounds the item: any counter not removed by a use's REMOVE would
// belong to a window older than K windows, and the condition refuses to
// write while one may exist. So the item holds the current window's counter
// alone, and a steady stream of requests costs one request each, across
// window boundaries too. (A process whose clock runs a little ahead may
// count in the next window early; that counter is current soon after, or
// removed by the sweep below.)
//
// When the condition fails, DynamoDB returns the item as it was
// (ReturnValuesOnConditionCheckFailure ALL_OLD), which tells why without a
// second read: no item, another hash or another project → NotFound;
// revoked → Revoked; expiresAt passed → Expired (DynamoDB's TTL deletes
// items only eventually); w<S> at the limit → RateLimited, not counted.
// Otherwise the key sat idle for more than K windows and its last counter
// may be stranded: a second UpdateItem counts the use while removing every
// window counter the old item holds, on condition that lastWindow is still
// the one read. Should a concurrent request win that race, the counters
// are current again and the first UpdateItem runs once more.
//
// Hence exactly one request per authorization, except the first one after
// an idle gap longer than K windows, which takes two (three when it races
// another request of the same key).
func (s *Store) UseKey(ctx context.Context, req authorizer.UseRequest) (authorizer.UseResult, error) {
	res, idle, err := s.countUse(ctx, req, recentWindows(req.Window))
	if err != nil || idle == nil {
		return res, err
	}
	res, raced, err := s.countUse(ctx, req, idleWindows(req.Window, idle))
	if err != nil || raced == nil {
		return res, err
	}
	res, idle, err = s.countUse(ctx, req, recentWindows(req.Window))
	if err == nil && idle != nil {
		err = fmt.Errorf("count use of %s: rate window moved under concurrent requests", req.ID)
	}
	return res, err
}

// windowCleanup is how a use keeps the window counters bounded: the
// counters it removes, and what it requires of lastWindow.
type windowCleanup struct {
	remove []string
	// guard is the condition on lastWindow (#last), with :guard its value.
	guard string
	value int64
	// exact is whether lastWindow must equal value, rather than be absent
	// or at least value.
	exact bool
}

// recentWindows removes the counters of the K windows before w.
func recentWindows(w authorizer.Window) windowCleanup {
	start, length := w.Start.Unix(), int64(w.Length/time.Second)
	remove := make([]string, windowsSwept)
	for i := range remove {
		remove[i] = windowAttr(start - int64(i+1)*length)
	}
	return windowCleanup{
		remove: remove,
		guard:  "(attribute_not_exists(#last) OR #last >= :guard)",
		value:  start - windowsSwept*length,
	}
}

// idleWindows removes every window counter the item held after a long idle
// gap, provided that no use moved lastWindow since.
func idleWindows(w authorizer.Window, old map[string]types.AttributeValue) windowCleanup {
	current := windowAttr(w.Start.Unix())
	var remove []string
	for name := range old {
		if isWindowAttr(name) && name != current {
			remove = append(remove, name)
		}
	}
	last, _ := itemNumber(old, attrLastWindow)
	return windowCleanup{remove: remove, guard: "#last = :guard", value: last, exact: true}
}

// admits reports whether an item with this lastWindow meets the guard.
func (c windowCleanup) admits(last int64, present bool) bool {
	if c.exact {
		return present && last == c.value
	}
	return !present || last >= c.value
}

// isWindowAttr reports whether name is a window counter: "w" and digits.
func isWindowAttr(name string) bool {
	if len(name) < 2 || name[0] != 'w' {
		return false
	}
	_, err := strconv.ParseUint(name[1:], 10, 64)
	return err == nil
}

// countUse runs one conditional UpdateItem. It returns the old item only
// when nothing but the guard on lastWindow failed.
func (s *Store) countUse(ctx context.Context, req authorizer.UseRequest, c windowCleanup) (authorizer.UseResult, map[string]types.AttributeValue, error) {
	out, err := s.client.UpdateItem(ctx, s.useInput(req, c))
	var failed *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &failed):
		return refusal(failed.Item, req, c)
	case err != nil:
		return authorizer.UseResult{}, nil, classify("count key use", err)
	}
	k, err := keyFromItem(out.Attributes)
	if err != nil {
		return authorizer.UseResult{}, nil, err
	}
	count, _ := itemNumber(out.Attributes, windowAttr(req.Window.Start.Unix()))
	return authorizer.UseResult{Outcome: authorizer.Allowed, Key: k, Count: count}, nil, nil
}

func (s *Store) useInput(req authorizer.UseRequest, c windowCleanup) *dynamodb.UpdateItemInput {
	hash := req.Hash
	names := map[string]string{
		"#pk":     attrPK,
		"#hash":   attrKeyHash,
		"#status": attrStatus,
		"#exp":    attrExpiresAt,
		"#cur":    windowAttr(req.Window.Start.Unix()),
		"#last":   attrLastWindow,
		"#used":   attrLastUsed,
		"#total":  attrTotalRequests,
	}
	values := map[string]types.AttributeValue{
		":hash":   &types.AttributeValueMemberB{Value: hash[:]},
		":active": &types.AttributeValueMemberS{Value: string(keys.StatusActive)},
		":now":    numberValue(req.Now.UnixMilli()),
		":zero":   numberValue(0),
		":one":    numberValue(1),
		":start":  numberValue(req.Window.Start.Unix()),
		":limit":  numberValue(req.Limit),
		":guard":  numberValue(c.value),
	}
	update := "SET #cur = if_not_exists(#cur, :zero) + :one, #last = :start, #used = :now ADD #total :one"
	if len(c.remove) > 0 {
		refs := make([]string, len(c.remove))
		for i, name := range c.remove {
			refs[i] = "#r" + strconv.Itoa(i)
			names[refs[i]] = name
		}
		update += " REMOVE " + strings.Join(refs, ", ")
	}
	cond := "attribute_exists(#pk) AND #hash = :hash AND #status = :active" +
		" AND (attribute_not_exists(#exp) OR #exp > :now)" +
		" AND (attribute_not_exists(#cur) OR #cur < :limit) AND " + c.guard
	if req.Project != "" {
		names["#project"] = attrProject
		values[":project"] = &types.AttributeValueMemberS{Value: req.Project}
		cond += " AND #project = :project"
	}
	return &dynamodb.UpdateItemInput{
		TableName:                           &s.table,
		Key:                                 itemKey(keyPK(req.ID), keySK),
		UpdateExpression:                    &update,
		ConditionExpression:                 &cond,
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
}

// refusal tells why a use's condition failed from the item as it was
// before the write. It returns the old item, for a sweep, when the guard on
// lastWindow alone failed.
func refusal(old map[string]types.AttributeValue, req authorizer.UseRequest, c windowCleanup) (authorizer.UseResult, map[string]types.AttributeValue, error) {
	if len(old) == 0 {
		return authorizer.UseResult{Outcome: authorizer.NotFound}, nil, nil
	}
	k, err := keyFromItem(old)
	if err != nil {
		return authorizer.UseResult{}, nil, err
	}
	if o := standing(k, req); o != authorizer.Allowed {
		return refused(o, k), nil, nil
	}
	count, _ := itemNumber(old, windowAttr(req.Window.Start.Unix()))
	if count >= req.Limit {
		return authorizer.UseResult{Outcome: authorizer.RateLimited, Key: k, Count: count}, nil, nil
	}
	if last, present := itemNumber(old, attrLastWindow); c.admits(last, present) {
		return authorizer.UseResult{}, nil, fmt.Errorf("count use of %s: condition failed for no reason the item shows", req.ID)
	}
	return authorizer.UseResult{}, old, nil
}

// standing checks a stored key against a use, rate window aside: Allowed,
// or the reason it may not be used.
func standing(k *keys.Key, req authorizer.UseRequest) authorizer.Outcome {
	switch {
	// The id carries 96 bits of the hash; the full stored hash is what
	// authenticates, compared in constant time.
	case subtle.ConstantTimeCompare(k.Hash[:], req.Hash[:]) != 1,
		req.Project != "" && k.Project != req.Project,
		k.GoneAt(req.Now):
		return authorizer.NotFound
	case k.Status != keys.StatusActive:
		return authorizer.Revoked
	case k.ExpiresAt != nil && k.ExpiresAt.UnixMilli() <= req.Now.UnixMilli():
		return authorizer.Expired
	}
	return authorizer.Allowed
}

// refused is the result of a refusal: a key not found stays unseen.
func refused(o authorizer.Outcome, k *keys.Key) authorizer.UseResult {
	if o == authorizer.NotFound {
		return authorizer.UseResult{Outcome: o}
	}
	return authorizer.UseResult{Outcome: o, Key: k}
}

func keyFromItem(item map[string]types.AttributeValue) (*keys.Key, error) {
	var r keyRecord
	if err := attributevalue.UnmarshalMap(item, &r); err != nil {
		return nil, fmt.Errorf("decode key: %w", err)
	}
	return r.key(), nil
}

func numberValue(n int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func itemNumber(item map[string]types.AttributeValue, name string) (int64, bool) {
	n, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	return v, err == nil
}
