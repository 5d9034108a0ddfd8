package dynamo

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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

// GetSession reads a live portal session.
func (p *PortalStore) GetSession(ctx context.Context, tokenHash [32]byte, now time.Time) (*portal.Session, error) {
	r, err := p.s.getPortal(ctx, portalSessionPK(tokenHash), now)
	if err != nil {
		return nil, err
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

// EndSession deletes a portal session and writes its event, unless it was gone.
func (p *PortalStore) EndSession(ctx context.Context, ses *portal.Session, ev *keys.AuditEvent) (bool, error) {
	return p.s.deleteWithEvent(ctx, itemKey(portalSessionPK(ses.TokenHash), portalSK), ev)
}

// LockOwner takes an owner's key-making lock until until, unless another
// holder's has not run out by now; release deletes it if it is still ours.
func (p *PortalStore) LockOwner(ctx context.Context, project, owner string, until, now time.Time) (func(context.Context), bool, error) {
	key := itemKey(portalLockPK(project, owner), portalSK)
	item := itemKey(portalLockPK(project, owner), portalSK)
	item[attrLockedUntil] = numberValue(until.UnixMilli())
	item[attrTTL] = numberValue(until.Add(time.Hour).Unix())
	_, err := p.s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &p.s.table, Item: item,
		ConditionExpression:       aws.String("attribute_not_exists(" + attrPK + ") OR " + attrLockedUntil + " < :now"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": numberValue(now.UnixMilli())},
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, storeError("lock owner", err)
	}
	release := func(ctx context.Context) {
		// A release that fails leaves the lock to run out by itself.
		_, _ = p.s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName: &p.s.table, Key: key,
			ConditionExpression:       aws.String(attrLockedUntil + " = :until"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":until": numberValue(until.UnixMilli())},
		})
	}
	return release, true, nil
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
