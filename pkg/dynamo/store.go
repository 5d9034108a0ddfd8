package dynamo

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
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

// Client is the part of the DynamoDB API the store uses.
type Client interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Store implements keys.Store on one DynamoDB table.
type Store struct {
	client  Client
	table   string
	cursors cursorSecret
	plans   planCache // the authorizer's, per container
	details detailsCache
}

// New returns a Store on the named table.
func New(client Client, table string) *Store { return &Store{client: client, table: table} }

var _ keys.Store = (*Store)(nil)

// keyRecord is a key item as stored. Times are Unix milliseconds, ttl Unix seconds.
type keyRecord struct {
	PK            string   `dynamodbav:"pk"`
	SK            string   `dynamodbav:"sk"`
	GSI1PK        string   `dynamodbav:"gsi1pk"`
	GSI1SK        string   `dynamodbav:"gsi1sk"`
	GSI2PK        string   `dynamodbav:"gsi2pk,omitempty"`
	GSI2SK        string   `dynamodbav:"gsi2sk,omitempty"`
	GSI3PK        string   `dynamodbav:"gsi3pk,omitempty"`
	GSI3SK        string   `dynamodbav:"gsi3sk,omitempty"`
	GSI4PK        string   `dynamodbav:"gsi4pk,omitempty"`
	GSI4SK        string   `dynamodbav:"gsi4sk,omitempty"`
	ID            string   `dynamodbav:"id"`
	Name          string   `dynamodbav:"name"`
	Start         string   `dynamodbav:"start"`
	Tier          string   `dynamodbav:"tier"`
	Scopes        []string `dynamodbav:"scopes,omitempty"`
	Project       string   `dynamodbav:"project"`
	Owner         string   `dynamodbav:"owner,omitempty"`
	Status        string   `dynamodbav:"status"`
	KeyHash       []byte   `dynamodbav:"keyHash"`
	TotalRequests int64    `dynamodbav:"totalRequests"`
	LastUsed      int64    `dynamodbav:"lastUsed,omitempty"`
	IPAllowlist   []string `dynamodbav:"ipAllowlist,omitempty"`
	Metadata      string   `dynamodbav:"metadata,omitempty"`
	ExpiresAt     int64    `dynamodbav:"expiresAt,omitempty"`
	CreatedAt     int64    `dynamodbav:"createdAt"`
	UpdatedAt     int64    `dynamodbav:"updatedAt"`
	RevokedAt     int64    `dynamodbav:"revokedAt,omitempty"`
	RotatedFrom   string   `dynamodbav:"rotatedFrom,omitempty"`
	RotatedTo     string   `dynamodbav:"rotatedTo,omitempty"`
	CreatedBy     string   `dynamodbav:"createdBy,omitempty"`
	Version       int64    `dynamodbav:"version"`
	TTL           int64    `dynamodbav:"ttl,omitempty"`
	limitsRecord
	LimitsVersion int64 `dynamodbav:"lv,omitempty"`
	// Mode is the key's own mode; absent, its tier's.
	Mode         string `dynamodbav:"mode,omitempty"` // attrMode
	OwnerLimited bool   `dynamodbav:"ownerLimits,omitempty"`
	GraceHash    []byte `dynamodbav:"graceHash,omitempty"`
	GraceUntil   int64  `dynamodbav:"graceUntil,omitempty"`
}

// limitsRecord is the limits part of a key or owner item.
type limitsRecord struct {
	// RateLimits is nil (absent) on a key that follows its tier; an empty
	// list is no limit.
	RateLimits *[]rateLimitRecord `dynamodbav:"rateLimits,omitempty"`
	Credits    *int64             `dynamodbav:"credits,omitempty"`
	// CreditsGranted is the credits a management write last set
	// (keys.Credits.Granted); uses leave it.
	CreditsGranted *int64        `dynamodbav:"creditsGranted,omitempty"`
	CreditRefill   *refillRecord `dynamodbav:"creditRefill,omitempty"`
	NextRefill     int64         `dynamodbav:"nextRefill,omitempty"`
}

type rateLimitRecord struct {
	Name          string `dynamodbav:"name"`
	Limit         int64  `dynamodbav:"limit"`
	WindowSeconds int64  `dynamodbav:"windowSeconds"`
}

type refillRecord struct {
	Interval  string `dynamodbav:"interval"`
	Amount    int64  `dynamodbav:"amount"`
	RefillDay int    `dynamodbav:"refillDay,omitempty"`
}

func toLimitsRecord(limits []keys.RateLimit, fromTier bool, c *keys.Credits) limitsRecord {
	var r limitsRecord
	if !fromTier {
		list := make([]rateLimitRecord, len(limits))
		for i, l := range limits {
			list[i] = rateLimitRecord(l)
		}
		r.RateLimits = &list
	}
	if c != nil {
		remaining := c.Remaining
		r.Credits, r.CreditsGranted = &remaining, &remaining
		if c.Refill != nil {
			r.CreditRefill = &refillRecord{Interval: string(c.Refill.Interval), Amount: c.Refill.Amount, RefillDay: c.Refill.RefillDay}
		}
		r.NextRefill = millis(c.NextRefillAt)
	}
	return r
}

// rateLimits returns the limits the record holds, and whether it holds
// none of its own (a key following its tier).
func (r limitsRecord) rateLimits() ([]keys.RateLimit, bool) {
	if r.RateLimits == nil {
		return nil, true
	}
	out := make([]keys.RateLimit, len(*r.RateLimits))
	for i, l := range *r.RateLimits {
		out[i] = keys.RateLimit(l)
	}
	return out, false
}

func (r limitsRecord) credits() *keys.Credits {
	if r.Credits == nil {
		return nil
	}
	c := &keys.Credits{Remaining: *r.Credits, NextRefillAt: fromMillis(r.NextRefill)}
	if r.CreditsGranted != nil {
		c.Granted = *r.CreditsGranted
	}
	if f := r.CreditRefill; f != nil {
		c.Refill = &keys.Refill{Interval: keys.RefillInterval(f.Interval), Amount: f.Amount, RefillDay: f.RefillDay}
	}
	return c
}

func toRecord(k *keys.Key) keyRecord {
	r := keyRecord{
		PK: keyPK(k.ID), SK: keySK,
		GSI1PK: projectPK(k.Project), GSI1SK: sortKey(k.CreatedAt, k.ID),
		ID: k.ID, Name: k.Name, Start: k.Start, Tier: k.Tier, Scopes: k.Scopes,
		Project: k.Project, Owner: k.Owner, Status: string(k.Status), KeyHash: k.Hash[:],
		TotalRequests: k.Usage.TotalRequests, LastUsed: millis(k.Usage.LastUsed),
		IPAllowlist: k.IPAllowlist, Metadata: string(k.Metadata), ExpiresAt: millis(k.ExpiresAt),
		CreatedAt: k.CreatedAt.UnixMilli(), UpdatedAt: k.UpdatedAt.UnixMilli(), RevokedAt: millis(k.RevokedAt),
		RotatedFrom: k.RotatedFrom, RotatedTo: k.RotatedTo, CreatedBy: k.CreatedBy, Version: k.Version, TTL: ttlSeconds(k.PurgeAt),
		limitsRecord:  toLimitsRecord(k.RateLimits, k.RateLimitsFromTier, k.Credits),
		LimitsVersion: k.LimitsVersion, OwnerLimited: k.OwnerLimited,
	}
	if !k.ModeFromTier {
		r.Mode = string(k.Mode)
	}
	if k.GraceUntil != nil {
		hash := k.GraceHash
		r.GraceHash, r.GraceUntil = hash[:], millis(k.GraceUntil)
	}
	if k.Owner != "" {
		r.GSI2PK, r.GSI2SK = ownerPK(k.Project, k.Owner), r.GSI1SK
	}
	if k.CreatedBy != "" {
		r.GSI3PK, r.GSI3SK = creatorPK(k.Project, k.CreatedBy), r.GSI1SK
	}
	// Only an active key can still expire: a revoked one leaves the index.
	if k.ExpiresAt != nil && k.Status == keys.StatusActive {
		r.GSI4PK, r.GSI4SK = expiryPK(*k.ExpiresAt), sortKey(*k.ExpiresAt, k.ID)
	}
	return r
}

func (r keyRecord) key() *keys.Key {
	k := &keys.Key{
		ID: cmp.Or(r.ID, keyIDFromPK(r.PK)), Name: r.Name, Start: r.Start, Tier: r.Tier, Scopes: r.Scopes, Project: r.Project,
		Owner: r.Owner, Status: keys.Status(r.Status),
		Usage:       keys.Usage{TotalRequests: r.TotalRequests, LastUsed: fromMillis(r.LastUsed)},
		IPAllowlist: r.IPAllowlist, ExpiresAt: fromMillis(r.ExpiresAt),
		CreatedAt: timeOf(r.CreatedAt), UpdatedAt: timeOf(r.UpdatedAt),
		RevokedAt: fromMillis(r.RevokedAt), RotatedFrom: r.RotatedFrom, RotatedTo: r.RotatedTo, CreatedBy: r.CreatedBy, Version: r.Version,
		Credits: r.credits(), LimitsVersion: r.LimitsVersion, OwnerLimited: r.OwnerLimited,
		Mode: keys.Mode(r.Mode),
	}
	k.RateLimits, k.RateLimitsFromTier = r.rateLimits()
	if r.Metadata != "" {
		k.Metadata = readableJSON(r.Metadata)
	}
	copy(k.Hash[:], r.KeyHash)
	if r.GraceUntil != 0 {
		copy(k.GraceHash[:], r.GraceHash)
		k.GraceUntil = fromMillis(r.GraceUntil)
	}
	if r.TTL != 0 {
		t := time.Unix(r.TTL, 0).UTC()
		k.PurgeAt = &t
	}
	return k
}

func millis(t *time.Time) int64 {
	if t == nil {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) *time.Time {
	if ms == 0 {
		return nil
	}
	t := timeOf(ms)
	return &t
}

// Times JSON can carry: RFC 3339 has four-digit years.
var (
	earliestTime = time.Date(0, time.January, 1, 0, 0, 0, 0, time.UTC)
	latestTime   = time.Date(9999, time.December, 31, 23, 59, 59, 999e6, time.UTC)
)

// timeOf reads a stored time in Unix milliseconds. keygate stores only
// times within years 0-9999; one beyond (an item not written by keygate)
// is held at that edge, so that no answer fails to encode.
func timeOf(ms int64) time.Time {
	t := time.UnixMilli(ms).UTC()
	if t.Before(earliestTime) {
		return earliestTime
	}
	if t.After(latestTime) {
		return latestTime
	}
	return t
}

// ttlSeconds rounds up, so that DynamoDB never purges an item before the
// domain would call it gone.
func ttlSeconds(t *time.Time) int64 {
	if t == nil {
		return 0
	}
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// GetKey reads a key, both its items, with one strongly consistent query,
// again when the query caught a write between the two (tornRead): a key
// read half before an edit would write its old details back.
func (s *Store) GetKey(ctx context.Context, id string) (*keys.Key, error) {
	var k *keys.Key
	err := readWhole(func() (torn string, err error) {
		key, details, err := s.queryKeyItems(ctx, id)
		switch {
		case err != nil:
			return "", err
		case key == nil:
			return "", keys.ErrNotFound
		case tornRead(key, details, time.Now()):
			return id, nil
		}
		k, err = storedKey(mergeKeyItems(key, details))
		return "", err
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

func (s *Store) queryKeyItems(ctx context.Context, id string) (key, details map[string]types.AttributeValue, err error) {
	out, err := s.client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 &s.table,
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: keyPK(id)}},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		return nil, nil, storeError("get key", err)
	}
	for _, item := range out.Items {
		switch stringAttr(item, attrSK) {
		case keySK:
			key = item
		case detailsSK:
			details = item
		}
	}
	return key, details, nil
}

// storedKey decodes a key item with its meter: the authorizer's window
// counters, which a rotation carries over to the successor verbatim.
func storedKey(item map[string]types.AttributeValue) (*keys.Key, error) {
	k, err := keyFromItem(item)
	if err != nil {
		return nil, err
	}
	for name := range item {
		if n, ok := itemNumber(item, name); ok && isMeterAttr(name) {
			if k.Meter == nil {
				k.Meter = map[string]int64{}
			}
			k.Meter[name] = n
		}
	}
	return k, nil
}

func itemKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: pk},
		attrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

// Apply writes keys and their audit events in one transaction.
func (s *Store) Apply(ctx context.Context, tx keys.Tx) error {
	var items []types.TransactWriteItem
	for _, k := range tx.Create {
		r := toRecord(k)
		if k.Credits != nil && k.Credits.Granted > 0 {
			// A rotation's successor carries its predecessor's budget: its
			// thresholds are of what was granted, not of what was left.
			granted := k.Credits.Granted
			r.CreditsGranted = &granted
		}
		item, err := attributevalue.MarshalMap(r)
		if err != nil {
			return fmt.Errorf("encode key: %w", err)
		}
		for name, n := range k.Meter {
			if !isMeterAttr(name) {
				return fmt.Errorf("encode key %s: %q is no meter attribute", k.ID, name)
			}
			item[name] = numberValue(n)
		}
		keyItem, details := splitKeyItem(item)
		for _, item := range []map[string]types.AttributeValue{keyItem, details} {
			items = append(items, types.TransactWriteItem{Put: &types.Put{
				TableName:           &s.table,
				Item:                item,
				ConditionExpression: aws.String("attribute_not_exists(" + attrPK + ")"),
			}})
		}
	}
	for _, k := range tx.Update {
		var counted *keys.Counted
		if c, ok := tx.Counted[k.ID]; ok {
			counted = &c
		}
		update, details, err := s.updateKey(k, counted)
		if err != nil {
			return err
		}
		items = append(items, types.TransactWriteItem{Update: update}, types.TransactWriteItem{Update: details})
	}
	for _, w := range tx.Owners {
		update, err := s.writeOwner(w)
		if err != nil {
			return err
		}
		items = append(items, types.TransactWriteItem{Update: update})
	}
	for _, c := range tx.OwnerChecks {
		check, err := s.checkOwner(c)
		if err != nil {
			return err
		}
		items = append(items, types.TransactWriteItem{ConditionCheck: check})
	}
	for _, k := range tx.Revoke {
		update, details, err := s.revokeKey(k)
		if err != nil {
			return err
		}
		items = append(items, types.TransactWriteItem{Update: update}, types.TransactWriteItem{Update: details})
	}
	for _, e := range tx.Events {
		put, err := s.putEvent(e)
		if err != nil {
			return err
		}
		items = append(items, types.TransactWriteItem{Put: put})
	}
	if tx.OwnerRevoked != nil {
		items = append(items, types.TransactWriteItem{Put: s.putOwnerRevoked(tx.OwnerRevoked)})
	}
	return s.transact(ctx, tx.CallerToCheck(), items)
}

// transact writes items in one transaction, after the check that the
// calling key is still active (caller, nil for none), and says why one was
// refused: the caller inactive, a conflict, or DynamoDB unavailable.
func (s *Store) transact(ctx context.Context, caller *keys.CallerCheck, items []types.TransactWriteItem) error {
	if caller != nil { // first, so that its cancellation reason is at index 0
		check, err := s.callerActive(caller)
		if err != nil {
			return err
		}
		items = append([]types.TransactWriteItem{{ConditionCheck: check}}, items...)
	}
	_, err := s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var canceled *types.TransactionCanceledException
	if errors.As(err, &canceled) {
		if reasons := canceled.CancellationReasons; caller != nil && len(reasons) > 0 && aws.ToString(reasons[0].Code) == "ConditionalCheckFailed" {
			return keys.ErrCallerInactive
		}
		for _, r := range canceled.CancellationReasons {
			switch code := aws.ToString(r.Code); code {
			case "ConditionalCheckFailed", "TransactionConflict":
				return fmt.Errorf("%w: %s", keys.ErrConflict, code)
			case "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded":
				return fmt.Errorf("write transaction: %w: %s", keys.ErrUnavailable, code)
			}
		}
	}
	return storeError("write transaction", err)
}

// updateKey writes a key's management fields if its version is unchanged:
// on the key item, and the details item whole. Usage and rate-window
// attributes belong to the authorizer and stay as they are; so do
// credits, which it spends, unless counted is set: then they are written
// if the stored counts are still those counted.
func (s *Store) updateKey(k *keys.Key, counted *keys.Counted) (key, details *types.Update, err error) {
	r := toRecord(k)
	upd := expression.Set(expression.Name(attrStatus), expression.Value(r.Status)).
		Set(expression.Name(attrVersion), expression.Name(attrVersion).Plus(expression.Value(1)))
	optional := []struct {
		name  string
		value any
		empty bool
	}{
		{attrScopes, r.Scopes, len(r.Scopes) == 0},
		{attrExpiresAt, r.ExpiresAt, r.ExpiresAt == 0},
		{attrRotatedTo, r.RotatedTo, r.RotatedTo == ""},
		{attrTTL, r.TTL, r.TTL == 0},
		{attrRateLimits, r.RateLimits, r.RateLimits == nil},
		{attrLimitsVersion, r.LimitsVersion, r.LimitsVersion == 0},
		{attrOwnerLimited, true, !r.OwnerLimited},
		{attrMode, r.Mode, r.Mode == ""},
		{attrDetails, true, len(r.IPAllowlist) == 0 && r.Metadata == ""},
	}
	for _, f := range optional {
		upd = setOrRemove(upd, f.name, f.value, f.empty)
	}
	// A key item written before the split holds its details itself: they
	// move to the details item now.
	for _, name := range slices.Sorted(maps.Keys(detailsOnly)) {
		upd = upd.Remove(expression.Name(name))
	}
	cond := expression.Name(attrVersion).Equal(expression.Value(k.Version)).
		And(expression.Name(attrProject).Equal(expression.Value(k.Project)))
	if counted != nil {
		upd = setCredits(upd, r.limitsRecord)
		cond = cond.And(countedCondition(*counted))
	}
	key, err = s.keyUpdate(k.ID, upd, cond)
	if err != nil {
		return nil, nil, err
	}
	r.Version = k.Version + 1 // as the update leaves the key item
	details, err = s.updateDetails(r)
	return key, details, err
}

// updateDetails writes the management fields of r on its details item,
// within updateKey's transaction, whose condition on the key item guards
// it. What creation fixed is written only where the item lacks it: on a
// key written before the split, whose details move from its key item.
func (s *Store) updateDetails(r keyRecord) (*types.Update, error) {
	item, err := attributevalue.MarshalMap(r)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	_, details := splitKeyItem(item)
	var upd expression.UpdateBuilder
	for _, name := range slices.Sorted(maps.Keys(details)) {
		if name == attrPK || name == attrSK {
			continue
		}
		v := expression.Value(details[name])
		if fixedAtCreation[name] {
			upd = upd.Set(expression.Name(name), expression.IfNotExists(expression.Name(name), v))
		} else {
			upd = upd.Set(expression.Name(name), v)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(detailsOnly)) {
		if _, ok := details[name]; !ok && !fixedAtCreation[name] {
			upd = upd.Remove(expression.Name(name))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(mirrored)) {
		if _, ok := details[name]; !ok && !fixedAtCreation[name] {
			upd = upd.Remove(expression.Name(name))
		}
	}
	return s.detailsUpdate(r.ID, upd)
}

// detailsUpdate is a transaction's update of a key's details item, with no
// condition of its own: the key item's update beside it holds the condition.
func (s *Store) detailsUpdate(id string, upd expression.UpdateBuilder) (*types.Update, error) {
	expr, err := expression.NewBuilder().WithUpdate(upd).Build()
	if err != nil {
		return nil, fmt.Errorf("build details update: %w", err)
	}
	return &types.Update{
		TableName: &s.table, Key: itemKey(keyPK(id), detailsSK),
		UpdateExpression: expr.Update(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	}, nil
}

func setOrRemove(upd expression.UpdateBuilder, name string, value any, empty bool) expression.UpdateBuilder {
	if empty {
		return upd.Remove(expression.Name(name))
	}
	return upd.Set(expression.Name(name), expression.Value(value))
}

// setCredits writes the credits of r: remaining, refill and next refill,
// each removed when absent.
func setCredits(upd expression.UpdateBuilder, r limitsRecord) expression.UpdateBuilder {
	upd = setOrRemove(upd, attrCredits, r.Credits, r.Credits == nil)
	upd = setOrRemove(upd, attrCreditsGranted, r.CreditsGranted, r.CreditsGranted == nil)
	upd = setOrRemove(upd, attrCreditRefill, r.CreditRefill, r.CreditRefill == nil)
	return setOrRemove(upd, attrNextRefill, r.NextRefill, r.NextRefill == 0)
}

// countedCondition requires an item's counts to be those counted: the
// authorizer moves them without touching the version.
func countedCondition(c keys.Counted) expression.ConditionBuilder {
	var cond expression.ConditionBuilder
	if c.Credits == nil {
		cond = expression.AttributeNotExists(expression.Name(attrCredits))
	} else {
		cond = expression.Name(attrCredits).Equal(expression.Value(c.Credits.Remaining))
		if c.Credits.NextRefillAt == nil {
			cond = cond.And(expression.AttributeNotExists(expression.Name(attrNextRefill)))
		} else {
			cond = cond.And(expression.Name(attrNextRefill).Equal(expression.Value(c.Credits.NextRefillAt.UnixMilli())))
		}
	}
	if c.Uses != nil {
		cond = cond.And(expression.Name(attrTotalRequests).Equal(expression.Value(*c.Uses)))
	}
	return cond
}

// keyUpdate is a transaction's conditional update of a key item.
func (s *Store) keyUpdate(id string, upd expression.UpdateBuilder, cond expression.ConditionBuilder) (*types.Update, error) {
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return nil, fmt.Errorf("build key update: %w", err)
	}
	return &types.Update{
		TableName:                 &s.table,
		Key:                       itemKey(keyPK(id), keySK),
		UpdateExpression:          expr.Update(),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	}, nil
}

// callerActive requires the calling key to be active, unexpired and not
// past its purge time, in its project, when the transaction is written.
func (s *Store) callerActive(c *keys.CallerCheck) (*types.ConditionCheck, error) {
	cond := expression.AttributeExists(expression.Name(attrPK)).
		And(expression.Name(attrProject).Equal(expression.Value(c.Project))).
		And(expression.Name(attrStatus).Equal(expression.Value(keys.StatusActive))).
		And(expression.Or(expression.AttributeNotExists(expression.Name(attrExpiresAt)), expression.Name(attrExpiresAt).GreaterThan(expression.Value(c.Now.UnixMilli())))).
		And(notPurged(c.Now.Unix()))
	expr, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		return nil, fmt.Errorf("build caller check: %w", err)
	}
	return &types.ConditionCheck{
		TableName:                 &s.table,
		Key:                       itemKey(keyPK(c.ID), keySK),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	}, nil
}

// revokeKey revokes a key on the sole condition that it is still active in
// its project: whatever edits landed since it was read, the revoke wins.
// Its purge time follows from revokedAt, which is now, before any
// unexpired expiresAt, so no concurrent edit can make it stale. The
// details item is updated, not replaced, for the same reason.
func (s *Store) revokeKey(k *keys.Key) (key, details *types.Update, err error) {
	r := toRecord(k)
	revoke := func(upd expression.UpdateBuilder) expression.UpdateBuilder {
		upd = upd.Set(expression.Name(attrStatus), expression.Value(keys.StatusRevoked)).
			Remove(expression.Name(attrGSI4PK)).Remove(expression.Name(attrGSI4SK)) // on a key item from before the split
		if r.TTL == 0 { // no purge time: never a ttl of 0, which reads as long expired
			return upd.Remove(expression.Name(attrTTL))
		}
		return upd.Set(expression.Name(attrTTL), expression.Value(r.TTL))
	}
	cond := expression.AttributeExists(expression.Name(attrPK)).
		And(expression.Name(attrProject).Equal(expression.Value(k.Project))).
		And(expression.Name(attrStatus).Equal(expression.Value(keys.StatusActive)))
	key, err = s.keyUpdate(k.ID, revoke(expression.Set(expression.Name(attrVersion), expression.Name(attrVersion).Plus(expression.Value(1)))), cond)
	if err != nil {
		return nil, nil, err
	}
	upd := revoke(expression.Set(expression.Name(attrRevokedAt), expression.Value(r.RevokedAt))).
		Set(expression.Name(attrUpdatedAt), expression.Value(r.UpdatedAt)).
		Set(expression.Name(attrVersion), expression.Plus(expression.IfNotExists(expression.Name(attrVersion), expression.Value(0)), expression.Value(1)))
	details, err = s.detailsUpdate(k.ID, upd)
	return key, details, err
}

// eventRecord is an audit event as stored.
type eventRecord struct {
	PK       string `dynamodbav:"pk"`
	SK       string `dynamodbav:"sk"`
	ID       string `dynamodbav:"id"`
	Project  string `dynamodbav:"project"`
	Actor    string `dynamodbav:"actor"`
	Action   string `dynamodbav:"action"`
	Target   string `dynamodbav:"target"`
	Changes  string `dynamodbav:"changes,omitempty"`
	SourceIP string `dynamodbav:"sourceIp,omitempty"`
	Session  string `dynamodbav:"session,omitempty"`
	Time     int64  `dynamodbav:"time"`
	TTL      int64  `dynamodbav:"ttl"`
	// Subject is the key after the change, as JSON (keys.AuditEvent.Subject).
	Subject string `dynamodbav:"subject,omitempty"`
}

func (s *Store) putEvent(e *keys.AuditEvent) (*types.Put, error) {
	changes, err := e.MarshalChanges()
	if err != nil {
		return nil, fmt.Errorf("encode audit changes: %w", err)
	}
	item, err := attributevalue.MarshalMap(eventRecord{
		PK: auditPK(e.Project), SK: sortKey(e.Time, e.ID), ID: e.ID, Project: e.Project, Actor: e.Actor,
		Action: e.Action, Target: e.Target, Changes: changes, SourceIP: e.SourceIP, Session: e.Session,
		Time: e.Time.UnixMilli(), TTL: ttlSeconds(&e.PurgeAt), Subject: string(e.Subject),
	})
	if err != nil {
		return nil, fmt.Errorf("encode audit event: %w", err)
	}
	return &types.Put{TableName: &s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(" + attrPK + ")")}, nil
}

func (r eventRecord) event() (*keys.AuditEvent, error) {
	e := &keys.AuditEvent{
		ID: r.ID, Project: r.Project, Actor: r.Actor, Action: r.Action, Target: r.Target,
		SourceIP: r.SourceIP, Session: r.Session, Time: timeOf(r.Time), PurgeAt: time.Unix(r.TTL, 0).UTC(),
	}
	if r.Subject != "" {
		e.Subject = readableJSON(r.Subject)
	}
	if r.Changes != "" {
		// Each value stays the JSON it was written as: decoding it into Go
		// values would fail on, or round off, numbers float64 cannot hold.
		var raw map[string]struct{ From, To json.RawMessage }
		if err := json.Unmarshal([]byte(r.Changes), &raw); err != nil {
			// Not written by keygate: shown as it is rather than failing
			// the whole page of the audit log.
			raw = map[string]struct{ From, To json.RawMessage }{"unreadable": {From: json.RawMessage("null"), To: readableJSON(r.Changes)}}
		}
		e.Changes = make(map[string]keys.Change, len(raw))
		for field, c := range raw {
			e.Changes[field] = keys.Change{From: c.From, To: c.To}
		}
	}
	return e, nil
}

// readableJSON returns stored JSON as it is, or, if it is not valid JSON
// (an item not written by keygate), as a JSON string: no stored value may
// make an answer fail to encode.
func readableJSON(s string) json.RawMessage {
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(strings.ToValidUTF8(s, "\uFFFD"))
	return b
}
