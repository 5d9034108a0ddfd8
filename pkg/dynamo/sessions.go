package dynamo

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/console"
	"github.com/keygate/keygate/pkg/keys"
)

// sessionPK is a console session's item: its token's hash, so that the
// table holds nothing that opens the session.
func sessionPK(tokenHash [32]byte) string { return "SESSION#" + hex.EncodeToString(tokenHash[:]) }

const sessionSK = "SESSION"

// sessionRecord is a console session as stored.
type sessionRecord struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	ID        string `dynamodbav:"id"`
	KeyID     string `dynamodbav:"keyId"`
	KeyHash   []byte `dynamodbav:"keyHash"`
	TierCode  string `dynamodbav:"tierCode"`
	Project   string `dynamodbav:"project"`
	CSRF      string `dynamodbav:"csrf"`
	CreatedAt int64  `dynamodbav:"createdAt"`
	ExpiresAt int64  `dynamodbav:"expiresAt"`
	TTL       int64  `dynamodbav:"ttl"`
}

// StartSession writes a session and its audit event in one transaction.
func (s *Store) StartSession(ctx context.Context, ses *console.Session, ev *keys.AuditEvent) error {
	item, err := attributevalue.MarshalMap(sessionRecord{
		PK: sessionPK(ses.TokenHash), SK: sessionSK, ID: ses.ID, KeyID: ses.KeyID, KeyHash: ses.Key.Hash[:],
		TierCode: ses.Key.TierCode, Project: ses.Project, CSRF: ses.CSRF,
		CreatedAt: ses.CreatedAt.UnixMilli(), ExpiresAt: ses.ExpiresAt.UnixMilli(), TTL: ttlSeconds(&ses.ExpiresAt),
	})
	if err != nil {
		return fmt.Errorf("encode session: %w", err)
	}
	put, err := s.putEvent(ev)
	if err != nil {
		return err
	}
	_, err = s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: &s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(" + attrPK + ")")}},
		{Put: put},
	}})
	return storeError("start session", err)
}

// GetSession reads a session; one past its expiry is not found, whether or
// not TTL has deleted it yet.
func (s *Store) GetSession(ctx context.Context, tokenHash [32]byte, now time.Time) (*console.Session, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: itemKey(sessionPK(tokenHash), sessionSK), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, storeError("get session", err)
	}
	if out.Item == nil {
		return nil, keys.ErrNotFound
	}
	var r sessionRecord
	if err := attributevalue.UnmarshalMap(out.Item, &r); err != nil {
		return nil, fmt.Errorf("decode session: %w", err)
	}
	ses := &console.Session{
		ID: r.ID, TokenHash: tokenHash, KeyID: r.KeyID, Key: authorizer.HeldKey{TierCode: r.TierCode}, Project: r.Project, CSRF: r.CSRF,
		CreatedAt: timeOf(r.CreatedAt), ExpiresAt: timeOf(r.ExpiresAt),
	}
	if copy(ses.Key.Hash[:], r.KeyHash) != len(ses.Key.Hash) {
		return nil, fmt.Errorf("decode session %s: key hash of %d bytes", r.ID, len(r.KeyHash))
	}
	if !ses.LiveAt(now) {
		return nil, keys.ErrNotFound
	}
	return ses, nil
}

// EndSession deletes a session and writes its event, unless it was gone.
func (s *Store) EndSession(ctx context.Context, ses *console.Session, ev *keys.AuditEvent) (bool, error) {
	return s.deleteWithEvent(ctx, itemKey(sessionPK(ses.TokenHash), sessionSK), ev)
}
