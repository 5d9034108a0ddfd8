package dynamo

import (
	"context"
	"crypto/subtle"
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

// windowsSwept is K: how many windows before the current one each use
// removes the counters of.
const windowsSwept = 4

// useKeyBudget bounds one UseKey call, every write and retry included, so
// that it fails closed (keys.ErrUnavailable) well inside the authorizer
// function's 5 s timeout; see docs/rate-window.md.
const useKeyBudget = 3 * time.Second

// maxUseWrites bounds the conditional writes of one use; see UseKey.
const maxUseWrites = 3

// transactionConflictPause is how long UseKey waits before its one retry
// after a TransactionConflictException: a management transaction on the
// key is in flight, and transactions take some tens of milliseconds, so
// retrying at once would likely meet it again.
const transactionConflictPause = 25 * time.Millisecond

var _ authorizer.Store = (*Store)(nil)

// UseKey checks and counts one use of a key with a single strongly
// consistent conditional UpdateItem on the key item; docs/rate-window.md
// explains the write, its condition and what a refusal's old item tells.
func (s *Store) UseKey(ctx context.Context, req authorizer.UseRequest) (authorizer.UseResult, error) {
	ctx, cancel := context.WithTimeout(ctx, useKeyBudget)
	defer cancel()
	res, err := s.useKey(ctx, req)
	if err != nil && ctx.Err() != nil && !errors.Is(err, keys.ErrUnavailable) {
		err = fmt.Errorf("count use of %s: %w: %w", req.ID, keys.ErrUnavailable, err)
	}
	return res, err
}

func (s *Store) useKey(ctx context.Context, req authorizer.UseRequest) (authorizer.UseResult, error) {
	c := recentWindows(req.Window)
	conflictRetried, shifted := false, false
	for writes := 0; ; {
		res, next, err := s.countUse(ctx, req, c)
		if isTransactionConflict(err) && !conflictRetried {
			conflictRetried = true
			if err := pause(ctx, transactionConflictPause); err != nil {
				return authorizer.UseResult{}, storeError("count key use", err)
			}
			continue // the same write again; it was not applied
		}
		writes++
		if err != nil || next == nil {
			if err == nil && shifted {
				res.Window = req.Window
			}
			return res, err
		}
		if writes == maxUseWrites || next.behind && shifted {
			return authorizer.UseResult{}, fmt.Errorf("count use of %s: %w: rate window moved under concurrent requests", req.ID, keys.ErrUnavailable)
		}
		if next.behind {
			shifted = true
			req.Window = next.window
		}
		c = next.cleanup
	}
}

// ReturnUse takes back one counted use: the window's count, while the
// window is still held, and totalRequests, each only while above zero and
// on the key whose hash was counted.
func (s *Store) ReturnUse(ctx context.Context, req authorizer.UseRequest, w authorizer.Window) error {
	ctx, cancel := context.WithTimeout(ctx, useKeyBudget)
	defer cancel()
	names := map[string]string{"#hash": attrKeyHash, "#total": attrTotalRequests, "#cur": windowAttr(w.Start.Unix())}
	values := map[string]types.AttributeValue{":hash": &types.AttributeValueMemberB{Value: req.Hash[:]}, ":one": numberValue(1), ":zero": numberValue(0)}
	in := &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       itemKey(keyPK(req.ID), keySK),
		UpdateExpression:          aws.String("SET #cur = #cur - :one, #total = #total - :one"),
		ConditionExpression:       aws.String("#hash = :hash AND #cur > :zero AND #total > :zero"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}
	_, err := s.client.UpdateItem(ctx, in)
	var failed *types.ConditionalCheckFailedException
	if !errors.As(err, &failed) {
		return storeError("return key use", err)
	}
	// The window rolled over since (its counter is gone): the total alone.
	delete(names, "#cur")
	in.UpdateExpression = aws.String("SET #total = #total - :one")
	in.ConditionExpression = aws.String("#hash = :hash AND #total > :zero")
	_, err = s.client.UpdateItem(ctx, in)
	if errors.As(err, &failed) {
		return nil // the key is gone or replaced: nothing to return
	}
	return storeError("return key use", err)
}

// pause waits d, or until ctx is done.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// nextWrite is what a use whose lastWindow bound failed does next.
type nextWrite struct {
	// behind is set when the item's lastWindow is past the request's
	// window: the use runs again in window, the item's.
	behind  bool
	window  authorizer.Window
	cleanup windowCleanup
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

// windowAttr names the counter of the rate window starting at start (Unix
// seconds); attrLastWindow holds the start of the latest window counted in.
func windowAttr(start int64) string { return "w" + strconv.FormatInt(start, 10) }

const attrLastWindow = "lastWindow"

// isWindowAttr reports whether name is a window counter: "w" and digits.
func isWindowAttr(name string) bool {
	if len(name) < 2 || name[0] != 'w' {
		return false
	}
	_, err := strconv.ParseUint(name[1:], 10, 64)
	return err == nil
}

// countUse runs one conditional UpdateItem. It returns the write to make
// next when nothing but a bound on lastWindow failed.
func (s *Store) countUse(ctx context.Context, req authorizer.UseRequest, c windowCleanup) (authorizer.UseResult, *nextWrite, error) {
	out, err := s.client.UpdateItem(ctx, s.useInput(req, c))
	var failed *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &failed):
		return explainFailure(failed.Item, req, c)
	case err != nil:
		return authorizer.UseResult{}, nil, storeError("count key use", err)
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
		" AND (attribute_not_exists(#cur) OR #cur < :limit)" +
		" AND (attribute_not_exists(#last) OR #last <= :start) AND " + c.guard
	if req.Project != "" {
		names["#project"] = attrProject
		values[":project"] = &types.AttributeValueMemberS{Value: req.Project}
		cond += " AND #project = :project"
	}
	if len(req.Scopes) > 0 {
		names["#scopes"] = attrScopes
		for i, scope := range req.Scopes {
			ref := ":scope" + strconv.Itoa(i)
			values[ref] = &types.AttributeValueMemberS{Value: scope}
			cond += " AND contains(#scopes, " + ref + ")"
		}
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
// before the write. When a bound on lastWindow alone failed, it returns the
// write to make next: the use in the item's window when the request is
// behind it; the plain use again when a sweep lost its race; else (the key
// sat idle) a sweep of the old item's counters.
func explainFailure(old map[string]types.AttributeValue, req authorizer.UseRequest, c windowCleanup) (authorizer.UseResult, *nextWrite, error) {
	if len(old) == 0 {
		return authorizer.UseResult{Outcome: authorizer.NotFound}, nil, nil
	}
	k, err := keyFromItem(old)
	if err != nil {
		return authorizer.UseResult{}, nil, err
	}
	if o := standing(k, req); o != authorizer.Allowed {
		return refusalResult(o, k), nil, nil
	}
	if !k.HoldsScopes(req.Scopes) {
		return authorizer.UseResult{Outcome: authorizer.InsufficientScope, Key: k}, nil, nil
	}
	count, _ := itemNumber(old, windowAttr(req.Window.Start.Unix()))
	if count >= req.Limit {
		return authorizer.UseResult{Outcome: authorizer.RateLimited, Key: k, Count: count}, nil, nil
	}
	last, present := itemNumber(old, attrLastWindow)
	switch {
	case present && last > req.Window.Start.Unix():
		w := authorizer.Window{Start: time.Unix(last, 0).UTC(), Length: req.Window.Length}
		return authorizer.UseResult{}, &nextWrite{behind: true, window: w, cleanup: recentWindows(w)}, nil
	case !c.admits(last, present) && c.exact:
		// A sweep lost its race: another use moved lastWindow, so the
		// counters are current again.
		return authorizer.UseResult{}, &nextWrite{window: req.Window, cleanup: recentWindows(req.Window)}, nil
	case !c.admits(last, present):
		return authorizer.UseResult{}, &nextWrite{window: req.Window, cleanup: idleWindows(req.Window, old)}, nil
	}
	return authorizer.UseResult{}, nil, fmt.Errorf("count use of %s: condition failed for no reason the item shows", req.ID)
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
func refusalResult(o authorizer.Outcome, k *keys.Key) authorizer.UseResult {
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
