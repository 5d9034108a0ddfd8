package dynamo

import (
	"context"
	"encoding/hex"
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

	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/portal"
)

// Portal items: a link and a session by their token's hash, and an
// owner's key-making lock.
func portalLinkPK(tokenHash [32]byte) string    { return "PORTALLINK#" + hex.EncodeToString(tokenHash[:]) }
func portalSessionPK(tokenHash [32]byte) string { return "PORTAL#" + hex.EncodeToString(tokenHash[:]) }
func portalLockPK(project, owner string) string { return "PORTALLOCK#" + project + "#" + owner }

const (
	portalSK        = "PORTAL"
	attrLockedUntil = "lockedUntil"
	attrRecent      = "recent" // M: id -> Unix ms, the keys made under the lock lately
)

// portalRecord is a link or a session as stored; a link has no id.
type portalRecord struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	ID        string `dynamodbav:"id,omitempty"`
	Project   string `dynamodbav:"project"`
	Grant     string `dynamodbav:"grant"` // JSON
	CreatedBy string `dynamodbav:"createdBy"`
	IssuedAt  int64  `dynamodbav:"issuedAt,omitempty"`
	CSRF      string `dynamodbav:"csrf,omitempty"`
	CreatedAt int64  `dynamodbav:"createdAt"`
	ExpiresAt int64  `dynamodbav:"expiresAt"`
	TTL       int64  `dynamodbav:"ttl"`
}

func (r portalRecord) grant() (portal.Grant, error) {
	var g portal.Grant
	if err := json.Unmarshal([]byte(r.Grant), &g); err != nil {
		return g, fmt.Errorf("decode portal grant: %w", err)
	}
	return g, nil
}

func encodeGrant(g portal.Grant) string {
	b, _ := json.Marshal(g) // strings and ints only: cannot fail
	return string(b)
}

// PortalStore is the customer portal's store (portal.Store) on the table.
type PortalStore struct{ s *Store }

// Portal is the portal's store on the same table.
func (s *Store) Portal() *PortalStore { return &PortalStore{s} }

var _ portal.Store = (*PortalStore)(nil)

// PutLink writes a link and its audit event in one transaction.
func (p *PortalStore) PutLink(ctx context.Context, l *portal.Link, ev *keys.AuditEvent) error {
	item, err := attributevalue.MarshalMap(portalRecord{
		PK: portalLinkPK(l.TokenHash), SK: portalSK, Project: l.Project, Grant: encodeGrant(l.Grant), CreatedBy: l.CreatedBy,
		CreatedAt: l.CreatedAt.UnixMilli(), ExpiresAt: l.ExpiresAt.UnixMilli(), TTL: ttlSeconds(&l.ExpiresAt),
	})
	if err != nil {
		return fmt.Errorf("encode portal link: %w", err)
	}
	put, err := p.s.putEvent(ev)
	if err != nil {
		return err
	}
	_, err = p.s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: &p.s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(" + attrPK + ")")}},
		{Put: put},
	}})
	return storeError("put portal link", err)
}

// GetLink reads a live link.
func (p *PortalStore) GetLink(ctx context.Context, tokenHash [32]byte, now time.Time) (*portal.Link, error) {
	r, err := p.s.getPortal(ctx, portalLinkPK(tokenHash), now)
	if err != nil {
		return nil, err
	}
	g, err := r.grant()
	if err != nil {
		return nil, err
	}
	return &portal.Link{TokenHash: tokenHash, Project: r.Project, Grant: g, CreatedBy: r.CreatedBy, CreatedAt: timeOf(r.CreatedAt), ExpiresAt: timeOf(r.ExpiresAt)}, nil
}

// OpenLink takes the link and writes the session in one transaction,
// conditioned on the link being there still and live: once only.
func (p *PortalStore) OpenLink(ctx context.Context, l *portal.Link, ses *portal.Session, ev *keys.AuditEvent, now time.Time) error {
	item, err := attributevalue.MarshalMap(portalRecord{
		PK: portalSessionPK(ses.TokenHash), SK: portalSK, ID: ses.ID, Project: ses.Project, Grant: encodeGrant(ses.Grant),
		CreatedBy: ses.CreatedBy, IssuedAt: ses.IssuedAt.UnixMilli(), CSRF: ses.CSRF,
		CreatedAt: ses.CreatedAt.UnixMilli(), ExpiresAt: ses.ExpiresAt.UnixMilli(), TTL: ttlSeconds(&ses.ExpiresAt),
	})
	if err != nil {
		return fmt.Errorf("encode portal session: %w", err)
	}
	put, err := p.s.putEvent(ev)
	if err != nil {
		return err
	}
	_, err = p.s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Delete: &types.Delete{
			TableName: &p.s.table, Key: itemKey(portalLinkPK(l.TokenHash), portalSK),
			ConditionExpression:       aws.String("attribute_exists(" + attrPK + ") AND " + attrExpiresAt + " > :now"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":now": numberValue(now.UnixMilli())},
		}},
		{Put: &types.Put{TableName: &p.s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(" + attrPK + ")")}},
		{Put: put},
	}})
	if firstConditionFailed(err) {
		return keys.ErrNotFound
	}
	return storeError("open portal link", err)
}

// EndSession deletes a portal session and writes its event, unless it was gone.
func (p *PortalStore) EndSession(ctx context.Context, ses *portal.Session, ev *keys.AuditEvent) (bool, error) {
	return p.s.deleteWithEvent(ctx, itemKey(portalSessionPK(ses.TokenHash), portalSK), ev)
}

// LockOwner takes an owner's key-making lock until until, unless another
// holder's has not run out by now, and reads the keys made under it lately.
func (p *PortalStore) LockOwner(ctx context.Context, project, owner string, until, now time.Time) (*portal.OwnerLock, bool, error) {
	out, err := p.s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &p.s.table, Key: itemKey(portalLockPK(project, owner), portalSK),
		UpdateExpression:          aws.String("SET " + attrLockedUntil + " = :until, #ttl = :ttl"), // ttl is a reserved word
		ExpressionAttributeNames:  map[string]string{"#ttl": attrTTL},
		ConditionExpression:       aws.String("attribute_not_exists(" + attrLockedUntil + ") OR " + attrLockedUntil + " < :now"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":until": numberValue(until.UnixMilli()), ":now": numberValue(now.UnixMilli()), ":ttl": numberValue(until.Add(time.Hour).Unix())},
		ReturnValues:              types.ReturnValueAllNew,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, storeError("lock owner", err)
	}
	lock := &portal.OwnerLock{Project: project, Owner: owner, Until: until, Recent: map[string]time.Time{}}
	if m, ok := out.Attributes[attrRecent].(*types.AttributeValueMemberM); ok {
		for id, v := range m.Value {
			if n, ok := v.(*types.AttributeValueMemberN); ok {
				if ms, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
					lock.Recent[id] = timeOf(ms)
				}
			}
		}
	}
	return lock, true, nil
}

// UnlockOwner frees the lock if it is still ours, records the key made
// under it, and forgets keys made before forget. A failure leaves the lock
// to run out by itself.
func (p *PortalStore) UnlockOwner(ctx context.Context, lock *portal.OwnerLock, made string, now, forget time.Time) {
	names := map[string]string{"#r": attrRecent}
	values := map[string]types.AttributeValue{":until": numberValue(lock.Until.UnixMilli()), ":free": numberValue(0)}
	set := []string{attrLockedUntil + " = :free"}
	var remove []string
	if made != "" {
		names["#made"] = made
		values[":made"] = numberValue(now.UnixMilli())
		set = append(set, "#r.#made = :made")
		if len(lock.Recent) == 0 {
			// The map must exist before a path into it can be set.
			set = []string{attrLockedUntil + " = :free", "#r = :first"}
			values[":first"] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{made: numberValue(now.UnixMilli())}}
			delete(names, "#made")
			delete(values, ":made")
		}
	}
	i := 0
	for id, at := range lock.Recent {
		if at.Before(forget) {
			name := "#old" + strconv.Itoa(i)
			names[name] = id
			remove = append(remove, "#r."+name)
			i++
		}
	}
	update := "SET " + strings.Join(set, ", ")
	if len(remove) > 0 {
		update += " REMOVE " + strings.Join(remove, ", ")
	}
	if !strings.Contains(update, "#r") {
		delete(names, "#r") // DynamoDB refuses a name no expression uses
	}
	if len(names) == 0 {
		names = nil
	}
	_, _ = p.s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &p.s.table, Key: itemKey(portalLockPK(lock.Project, lock.Owner), portalSK),
		UpdateExpression: aws.String(update), ConditionExpression: aws.String(attrLockedUntil + " = :until"),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	})
}

// UseSession counts a request of a live session in its minute's budget,
// in the one write that reads it.
func (p *PortalStore) UseSession(ctx context.Context, tokenHash [32]byte, now time.Time, perMinute int) (*portal.Session, error) {
	minute := "m" + strconv.FormatInt(now.Unix()/60, 10)
	out, err := p.s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &p.s.table, Key: itemKey(portalSessionPK(tokenHash), portalSK),
		UpdateExpression:                    aws.String("ADD #m :one"),
		ConditionExpression:                 aws.String("attribute_exists(" + attrPK + ") AND " + attrExpiresAt + " > :now AND (attribute_not_exists(#m) OR #m < :max)"),
		ExpressionAttributeNames:            map[string]string{"#m": minute},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":one": numberValue(1), ":now": numberValue(now.UnixMilli()), ":max": numberValue(int64(perMinute))},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		var r portalRecord
		if failed.Item == nil || attributevalue.UnmarshalMap(failed.Item, &r) != nil || !now.Before(timeOf(r.ExpiresAt)) {
			return nil, keys.ErrNotFound
		}
		return nil, portal.ErrSessionBusy
	}
	if err != nil {
		return nil, storeError("use portal session", err)
	}
	var r portalRecord
	if err := attributevalue.UnmarshalMap(out.Attributes, &r); err != nil {
		return nil, fmt.Errorf("decode portal session: %w", err)
	}
	g, err := r.grant()
	if err != nil {
		return nil, err
	}
	return &portal.Session{
		ID: r.ID, TokenHash: tokenHash, Project: r.Project, Grant: g, CreatedBy: r.CreatedBy, IssuedAt: timeOf(r.IssuedAt),
		CSRF: r.CSRF, CreatedAt: timeOf(r.CreatedAt), ExpiresAt: timeOf(r.ExpiresAt),
	}, nil
}

// getPortal reads a link or session item, live at now.
func (s *Store) getPortal(ctx context.Context, pk string, now time.Time) (portalRecord, error) {
	var r portalRecord
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: itemKey(pk, portalSK), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return r, storeError("get portal item", err)
	}
	if out.Item == nil {
		return r, keys.ErrNotFound
	}
	if err := attributevalue.UnmarshalMap(out.Item, &r); err != nil {
		return r, fmt.Errorf("decode portal item: %w", err)
	}
	if !now.Before(timeOf(r.ExpiresAt)) {
		return r, keys.ErrNotFound // expired: DynamoDB's TTL deletes it within days
	}
	return r, nil
}

// deleteWithEvent deletes an item that must exist and writes ev, in one
// transaction; false, and nothing written, when the item was gone.
func (s *Store) deleteWithEvent(ctx context.Context, key map[string]types.AttributeValue, ev *keys.AuditEvent) (bool, error) {
	put, err := s.putEvent(ev)
	if err != nil {
		return false, err
	}
	_, err = s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Delete: &types.Delete{TableName: &s.table, Key: key, ConditionExpression: aws.String("attribute_exists(" + attrPK + ")")}},
		{Put: put},
	}})
	if firstConditionFailed(err) {
		return false, nil
	}
	return err == nil, storeError("delete with event", err)
}

// firstConditionFailed reports whether err is a transaction cancelled by
// its first item's condition.
func firstConditionFailed(err error) bool {
	var canceled *types.TransactionCanceledException
	return errors.As(err, &canceled) && len(canceled.CancellationReasons) > 0 && aws.ToString(canceled.CancellationReasons[0].Code) == "ConditionalCheckFailed"
}
