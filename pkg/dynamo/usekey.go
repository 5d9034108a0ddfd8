package dynamo

import (
	"cmp"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/wait"
)

// useKeyBudget bounds one UseKey call, every write and retry included, so
// that it fails closed (keys.ErrUnavailable) well inside the authorizer
// function's 5 s timeout; see docs/rate-window.md.
const useKeyBudget = 3 * time.Second

// maxUseWrites bounds the writes of one use on one item: each write that
// fails for no refusal learns something (a plan, a successor, a refill, a
// window moved) and the next uses it.
const maxUseWrites = 6

// transactionConflictPause is how long UseKey waits before its one retry
// after a TransactionConflictException: a management transaction on the
// key is in flight, and transactions take some tens of milliseconds, so
// retrying at once would likely meet it again.
const transactionConflictPause = 25 * time.Millisecond

var _ authorizer.Store = (*Store)(nil)

// UseKey checks and counts one use of a key with a single strongly
// consistent conditional UpdateItem on the key item, and, for a key whose
// owner has limits, one more on the owner's; docs/limits.md explains the
// writes, their conditions and what a refusal's old item tells.
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
	res, owner, err := s.useKeyItem(ctx, req)
	if err != nil || res.Outcome != authorizer.Allowed || !owner {
		return res, err
	}
	ownerRes, err := s.useOwner(ctx, req, req.GiveBack.For(res.CountedOn), res.Key)
	if err != nil || ownerRes.outcome == authorizer.Allowed {
		res.Limits = append(res.Limits, ownerRes.limits...)
		res.OwnerCredits, res.OwnerVersion = ownerRes.credits, ownerRes.version
		return res, err
	}
	// The owner refused: the key's count goes back, so that the refusal
	// spends nothing. The owner's limits stay exact; the key's may refuse
	// a concurrent request for the few milliseconds this holds a unit.
	if err := s.ReturnUse(ctx, req, res); err != nil {
		return authorizer.UseResult{GaveBack: res.GaveBack}, err // the key's write was applied
	}
	res = res.Returned(req)
	res.Outcome, res.Refused = ownerRes.outcome, len(res.Limits)+ownerRes.refused
	res.Limits = append(res.Limits, ownerRes.limits...)
	res.OwnerCredits = ownerRes.credits
	return res, nil
}

// keyUse is one use of a key on an item: the key's own, or, within a
// rotation's grace, its successor's.
type keyUse struct {
	req  authorizer.UseRequest
	item string // the id of the item written
	// grace is set when item is the successor's: the key's hash is then
	// its graceHash, and the key itself (as found on its own item) is key.
	grace bool
	key   *keys.Key
	plan  keyPlan
	meter meterUse
}

// useKeyItem runs the key's write until it is counted or refused, and
// reports whether the key's owner has limits to count too. When DynamoDB
// throttles a write for the partition of the item counted on, that item
// took all the writes DynamoDB lets one item take in a second: the use is
// refused as rate limited, not failed, since a store that throttles one key
// is not down (docs/limits.md).
func (s *Store) useKeyItem(ctx context.Context, req authorizer.UseRequest) (authorizer.UseResult, bool, error) {
	res, owner, err := s.writeKeyItem(ctx, req)
	if isKeyRangeThrottle(err) {
		return authorizer.UseResult{Outcome: authorizer.RateLimited, Throttled: true}, false, nil
	}
	return res, owner, err
}

// writeKeyItem is useKeyItem's writes, each on the item counted on: the
// key's or its successor's.
func (s *Store) writeKeyItem(ctx context.Context, req authorizer.UseRequest) (authorizer.UseResult, bool, error) {
	u := &keyUse{req: req, item: req.ID}
	u.setPlan(s.plans.key(req.ID))
	conflictRetried := false
	for writes := 0; writes < maxUseWrites; {
		out, err := s.client.UpdateItem(ctx, u.input(s.table))
		var failed *types.ConditionalCheckFailedException
		switch {
		case isTransactionConflict(err) && !conflictRetried:
			conflictRetried = true
			if err := wait.For(ctx, transactionConflictPause); err != nil {
				return authorizer.UseResult{}, false, storeError("count key use", err)
			}
			continue // the same write again; it was not applied
		case errors.As(err, &failed):
			res, again, err := s.explainKey(ctx, u, failed.Item)
			if err != nil || !again {
				return res, false, err
			}
		case err != nil:
			return authorizer.UseResult{}, false, storeError("count key use", err)
		default:
			return s.counted(ctx, u, out.Attributes)
		}
		writes++
	}
	return authorizer.UseResult{}, false, fmt.Errorf("count use of %s: %w: the key's item changed under every write", req.ID, keys.ErrUnavailable)
}

func (u *keyUse) setPlan(p keyPlan) {
	u.plan = p
	u.meter = newMeterUse(p.meter(u.req.TierLimits), u.req, u.req.GiveBack.ForKey(u.item), false)
}

// input is the key's write: the key's standing, scopes, plan and meter in
// the condition; the use counted in the update.
func (u *keyUse) input(table string) *dynamodb.UpdateItemInput {
	e := newExpr()
	req := u.req
	e.require("attribute_exists(" + e.name(attrPK) + ")")
	hash := e.value(&types.AttributeValueMemberB{Value: req.Hash[:]})
	now := e.number(req.Now.UnixMilli())
	if u.grace {
		e.require(e.name(attrGraceHash) + " = " + hash + " AND " + e.name(attrGraceUntil) + " > " + now)
	} else {
		e.require(e.name(attrKeyHash) + " = " + hash)
	}
	// A rotated key's budget is its successor's; and a successor rotated
	// in turn holds no budget for its predecessor (keys.Service refuses
	// that rotation while the predecessor's grace runs).
	e.require("attribute_not_exists(" + e.name(attrRotatedTo) + ")")
	e.require(e.name(attrStatus) + " = " + e.value(&types.AttributeValueMemberS{Value: string(keys.StatusActive)}))
	exp := e.name(attrExpiresAt)
	e.require("(attribute_not_exists(" + exp + ") OR " + exp + " > " + now + ")")
	if req.Project != "" {
		e.require(e.name(attrProject) + " = " + e.value(&types.AttributeValueMemberS{Value: req.Project}))
	}
	for _, scope := range req.Scopes {
		e.require("contains(" + e.name(attrScopes) + ", " + e.value(&types.AttributeValueMemberS{Value: scope}) + ")")
	}
	lv := e.name(attrLimitsVersion)
	if u.plan.version == 0 {
		e.require("attribute_not_exists(" + lv + ")")
	} else {
		e.require(lv + " = " + e.number(u.plan.version))
	}
	u.meter.write(e)
	e.set(e.name(attrLastUsed) + " = " + now)
	if n := req.Count() - req.GiveBack.ForKey(u.item).Uses; n != 0 {
		e.add(e.name(attrTotalRequests) + " " + e.number(n))
	}
	return returning(e.updateItem(table, itemKey(keyPK(u.item), keySK)))
}

// counted is the result of a write that counted the use: the key used,
// with the allowlist and metadata its answer carries.
func (s *Store) counted(ctx context.Context, u *keyUse, item map[string]types.AttributeValue) (authorizer.UseResult, bool, error) {
	stored, err := keyFromItem(item)
	if err != nil {
		return authorizer.UseResult{}, false, err
	}
	k := stored
	if u.grace {
		k = u.key // the key used is the old one (filled by explainKey); its budget is the successor's
	} else if err := s.fillDetails(ctx, k, item); err != nil {
		return authorizer.UseResult{GaveBack: true}, false, err // the write, and its give-back, were applied
	}
	return authorizer.UseResult{
		Outcome: authorizer.Allowed, Key: k, Limits: u.meter.counts(item, false),
		Credits: stored.Credits, CountedOn: u.item, GaveBack: true, Version: stored.Version,
	}, u.plan.ownerLimited, nil
}

// explainKey tells why the key's write failed from the item as it was,
// in the contract's order. again is set when the write must run again:
// on the successor's item, with the current plan, after a refill, or in
// moved windows.
func (s *Store) explainKey(ctx context.Context, u *keyUse, old map[string]types.AttributeValue) (res authorizer.UseResult, again bool, err error) {
	if len(old) == 0 {
		return authorizer.UseResult{Outcome: authorizer.NotFound}, false, nil
	}
	k, err := keyFromItem(old)
	if err != nil {
		return authorizer.UseResult{}, false, err
	}
	o := u.standing(k, old)
	if o == authorizer.NotFound {
		return refusalResult(o, nil), false, nil
	}
	// A refusal shows the key as an allowed answer would (verify returns
	// its metadata); on the successor's item, the key shown is u.key,
	// filled when the grace began.
	if !u.grace {
		// A refused key whose details are gone (TTL deletes its two items
		// apart) is refused all the same, shown without them.
		if err := s.fillDetails(ctx, k, old); err != nil && (o == authorizer.Allowed || !errors.Is(err, errNoDetails)) {
			return authorizer.UseResult{}, false, err
		}
	}
	if o != authorizer.Allowed {
		return refusalResult(o, u.shown(k)), false, nil
	}
	if !k.HoldsScopes(u.req.Scopes) {
		return authorizer.UseResult{Outcome: authorizer.InsufficientScope, Key: u.shown(k)}, false, nil
	}
	switch {
	case u.grace && k.RotatedTo != "":
		return refusalResult(authorizer.Expired, u.shown(k)), false, nil
	case k.RotatedTo != "":
		// Rotated, and within its grace (standing checked its expiry): the
		// successor's item holds the budget.
		u.grace, u.key, u.item = true, k, k.RotatedTo
		u.setPlan(s.plans.key(u.item))
		return authorizer.UseResult{}, true, nil
	}
	if p := planOf(k); p.version != u.plan.version {
		if err := p.check(); err != nil {
			return authorizer.UseResult{}, false, fmt.Errorf("count use of %s: %w", u.req.ID, err)
		}
		s.plans.setKey(u.item, p)
		u.setPlan(p)
		return authorizer.UseResult{}, true, nil
	}
	verdict := u.meter.explain(old)
	switch {
	case verdict.outcome != "":
		return authorizer.UseResult{
			Outcome: verdict.outcome, Key: u.shown(k), Limits: u.meter.counts(old, false),
			Refused: verdict.refused, Credits: k.Credits, CountedOn: u.item,
		}, false, nil
	case verdict.refill != nil:
		return authorizer.UseResult{}, true, s.refill(ctx, itemKey(keyPK(u.item), keySK), k.Credits, *verdict.refill, u.req.Now)
	case verdict.moved:
		return authorizer.UseResult{}, true, nil
	}
	return authorizer.UseResult{}, false, fmt.Errorf("count use of %s: condition failed for no reason the item shows", u.req.ID)
}

// shown is the key a refusal shows: the key used, not its successor.
func (u *keyUse) shown(k *keys.Key) *keys.Key {
	if u.grace {
		return u.key
	}
	return k
}

// standing checks a stored key against a use, limits aside: Allowed, or
// the reason it may not be used. On a successor's item, the old key's
// hash must be its graceHash, within the grace.
func (u *keyUse) standing(k *keys.Key, old map[string]types.AttributeValue) authorizer.Outcome {
	req := u.req
	stored := k.Hash[:]
	if u.grace {
		b, _ := old[attrGraceHash].(*types.AttributeValueMemberB)
		if b == nil {
			return authorizer.Expired // the successor carries no grace: it has ended
		}
		stored = b.Value
	}
	switch {
	// The id carries 96 bits of the hash; the full stored hash is what
	// authenticates, compared in constant time.
	case subtle.ConstantTimeCompare(stored, req.Hash[:]) != 1,
		req.Project != "" && k.Project != req.Project,
		k.GoneAt(req.Now):
		return authorizer.NotFound
	case k.Status != keys.StatusActive:
		return authorizer.Revoked
	case k.ExpiresAt != nil && k.ExpiresAt.UnixMilli() <= req.Now.UnixMilli():
		return authorizer.Expired
	}
	if until, ok := itemNumber(old, attrGraceUntil); u.grace && (!ok || until <= req.Now.UnixMilli()) {
		return authorizer.Expired
	}
	return authorizer.Allowed
}

// refill sets due credits to the refill amount, exactly once: on
// condition that nextRefill is still the one found due. A failed
// condition means another use refilled first.
func (s *Store) refill(ctx context.Context, key map[string]types.AttributeValue, c *keys.Credits, due int64, now time.Time) error {
	if c == nil || c.Refill == nil {
		return fmt.Errorf("refill: the item holds no refill")
	}
	e := newExpr()
	next := e.name(attrNextRefill)
	e.set(e.name(attrCredits) + " = " + e.number(c.Refill.Amount))
	e.set(next + " = " + e.number(c.Refill.NextAfter(now).UnixMilli()))
	e.require(next + " = " + e.number(due))
	_, err := s.client.UpdateItem(ctx, e.updateItem(s.table, key))
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return nil
	}
	return storeError("refill credits", err)
}

// ownerUse is what counting on the owner's item found.
type ownerUse struct {
	version int64 // the owner's limits item's, when counted
	outcome authorizer.Outcome
	limits  []authorizer.LimitCount
	refused int
	credits *keys.Credits
}

// useOwner counts the use on the limits item of k's owner. A container
// that has not seen the owner reads its plan first; an owner whose limits
// item is gone has no limits.
func (s *Store) useOwner(ctx context.Context, req authorizer.UseRequest, back authorizer.Unspent, k *keys.Key) (ownerUse, error) {
	ref, key := k.Project+"#"+k.Owner, itemKey(ownerLimitsPK(k.Project, k.Owner), ownerLimitsSK)
	plan, ok := s.plans.owner(ref)
	// A plan that counts nothing writes nothing, so no write would check
	// its version: it is read afresh each time (owners without limits
	// whose keys are still flagged are a PUT's transient).
	if !ok || plan.countsNothing(req.Cost) {
		out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return ownerUse{}, storeError("read owner limits", err)
		}
		if len(out.Item) == 0 {
			return ownerUse{outcome: authorizer.Allowed}, nil
		}
		if plan, err = ownerPlanOf(out.Item); err != nil {
			return ownerUse{}, fmt.Errorf("decode owner limits: %w", err)
		}
		s.plans.setOwner(ref, plan)
	}
	m := newMeterUse(plan.meterPlan, req, back, true)
	for writes := 0; writes < maxUseWrites; writes++ {
		e := newExpr()
		e.require("attribute_exists(" + e.name(attrPK) + ")")
		e.require(e.name(attrVersion) + " = " + e.number(plan.version))
		m.write(e)
		if plan.countsNothing(req.Cost) {
			return ownerUse{outcome: authorizer.Allowed}, nil // as the owner's item now says
		}
		out, err := s.client.UpdateItem(ctx, returning(e.updateItem(s.table, key)))
		var failed *types.ConditionalCheckFailedException
		switch {
		case errors.As(err, &failed):
		case err != nil:
			return ownerUse{}, storeError("count owner use", err)
		default:
			return ownerUse{outcome: authorizer.Allowed, limits: m.counts(out.Attributes, true), credits: ownerCredits(out.Attributes), version: plan.version}, nil
		}
		old := failed.Item
		if len(old) == 0 {
			return ownerUse{outcome: authorizer.Allowed}, nil // the owner's limits were removed
		}
		current, err := ownerPlanOf(old)
		if err != nil {
			return ownerUse{}, fmt.Errorf("decode owner limits: %w", err)
		}
		if current.version != plan.version {
			plan = current
			s.plans.setOwner(ref, plan)
			m = newMeterUse(plan.meterPlan, req, back, true)
			continue
		}
		verdict := m.explain(old)
		switch {
		case verdict.outcome != "":
			return ownerUse{outcome: verdict.outcome, limits: m.counts(old, true), refused: verdict.refused, credits: ownerCredits(old)}, nil
		case verdict.refill != nil:
			if err := s.refill(ctx, key, ownerCredits(old), *verdict.refill, req.Now); err != nil {
				return ownerUse{}, err
			}
		case !verdict.moved:
			return ownerUse{}, fmt.Errorf("count owner use of %s: condition failed for no reason the item shows", req.ID)
		}
	}
	return ownerUse{}, fmt.Errorf("count owner use of %s: %w: the owner's item changed under every write", req.ID, keys.ErrUnavailable)
}

func ownerCredits(item map[string]types.AttributeValue) *keys.Credits {
	var r limitsRecord
	if err := attributevalue.UnmarshalMap(item, &r); err != nil {
		return nil
	}
	return r.credits()
}

// ReturnUse takes back the uses counted on the item they counted on: each
// window count while its window is still the limit's latest, the credits
// spent while no refill came since, and totalRequests, each only while it
// holds them and on the key whose hash was counted. When a window has
// moved on or a refill came since, only the total goes back. An owner's count goes back alike.
func (s *Store) ReturnUse(ctx context.Context, req authorizer.UseRequest, used authorizer.UseResult) error {
	ctx, cancel := context.WithTimeout(ctx, useKeyBudget)
	defer cancel()
	var own, owner []authorizer.LimitCount
	for _, l := range used.Limits {
		if l.Owner {
			owner = append(owner, l)
		} else {
			own = append(own, l)
		}
	}
	item := cmp.Or(used.CountedOn, req.ID)
	hashAttr := attrKeyHash
	if item != req.ID {
		hashAttr = attrGraceHash
	}
	keyItem := itemKey(keyPK(item), keySK)
	err := s.giveBack(ctx, keyItem, own, used.Credits, req, func(e *expr) {
		e.require(e.name(hashAttr) + " = " + e.value(&types.AttributeValueMemberB{Value: req.Hash[:]}))
		// The time of the use given back, for usage to take it from its
		// own hour (lastUsed may be a later use's by now).
		e.set(e.name(attrReturnedUse) + " = " + e.number(req.Now.UnixMilli()))
		total := e.name(attrTotalRequests)
		e.set(total + " = " + total + " - " + e.number(req.Count()))
		e.require(total + " >= " + e.number(req.Count()))
	})
	if err != nil || len(owner) == 0 && used.OwnerCredits == nil || used.Key == nil {
		return err
	}
	ownerItem := itemKey(ownerLimitsPK(used.Key.Project, used.Key.Owner), ownerLimitsSK)
	return s.giveBack(ctx, ownerItem, owner, used.OwnerCredits, req, func(e *expr) {
		e.require("attribute_exists(" + e.name(attrPK) + ")")
	})
}

// giveBack writes a return on one item: the counts and credits, then, if a
// window moved on, what base alone writes.
func (s *Store) giveBack(ctx context.Context, key map[string]types.AttributeValue, limits []authorizer.LimitCount, credits *keys.Credits, req authorizer.UseRequest, base func(*expr)) error {
	for _, whole := range []bool{true, false} {
		e := newExpr()
		base(e)
		if whole {
			for _, l := range limits {
				cur := e.name(counterAttr(l.Counter(), l.Window.Start.Unix()))
				e.set(cur + " = " + cur + " - " + e.number(req.Count()))
				e.require(cur + " >= " + e.number(req.Count()))
				e.require(e.name(lastWindowAttr(l.Counter())) + " = " + e.number(l.Window.Start.Unix()))
			}
			if credits != nil && req.Cost > 0 {
				// Only into the period they were spent in: after a refill
				// they would overfill the new one.
				c, next := e.name(attrCredits), e.name(attrNextRefill)
				e.set(c + " = " + c + " + " + e.number(req.Cost))
				e.require("attribute_exists(" + c + ")")
				if credits.NextRefillAt != nil {
					e.require(next + " = " + e.number(credits.NextRefillAt.UnixMilli()))
				} else {
					e.require("attribute_not_exists(" + next + ")")
				}
			}
		}
		if len(e.sets) == 0 {
			return nil
		}
		_, err := s.client.UpdateItem(ctx, e.updateItem(s.table, key))
		var failed *types.ConditionalCheckFailedException
		if !errors.As(err, &failed) {
			return storeError("return key use", err)
		}
	}
	return nil // the key is gone or replaced, or nothing was counted
}

// refusalResult is the result of a refusal: a key not found stays unseen.
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
