package dynamo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
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
	BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Store implements keys.Store on one DynamoDB table.
type Store struct {
	client Client
	table  string
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
	Version       int64    `dynamodbav:"version"`
	TTL           int64    `dynamodbav:"ttl,omitempty"`
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
		RotatedFrom: k.RotatedFrom, RotatedTo: k.RotatedTo, Version: k.Version, TTL: ttlSeconds(k.PurgeAt),
	}
	if k.Owner != "" {
		r.GSI2PK, r.GSI2SK = ownerPK(k.Project, k.Owner), r.GSI1SK
	}
	return r
}

func (r keyRecord) key() *keys.Key {
	k := &keys.Key{
		ID: r.ID, Name: r.Name, Start: r.Start, Tier: r.Tier, Scopes: r.Scopes, Project: r.Project,
		Owner: r.Owner, Status: keys.Status(r.Status),
		Usage:       keys.Usage{TotalRequests: r.TotalRequests, LastUsed: fromMillis(r.LastUsed)},
		IPAllowlist: r.IPAllowlist, ExpiresAt: fromMillis(r.ExpiresAt),
		CreatedAt: time.UnixMilli(r.CreatedAt).UTC(), UpdatedAt: time.UnixMilli(r.UpdatedAt).UTC(),
		RevokedAt: fromMillis(r.RevokedAt), RotatedFrom: r.RotatedFrom, RotatedTo: r.RotatedTo, Version: r.Version,
	}
	if r.Metadata != "" {
		k.Metadata = json.RawMessage(r.Metadata)
	}
	copy(k.Hash[:], r.KeyHash)
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
	t := time.UnixMilli(ms).UTC()
	return &t
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

// GetKey reads a key with a strongly consistent read.
func (s *Store) GetKey(ctx context.Context, id string) (*keys.Key, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            itemKey(keyPK(id), keySK),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, classify("get key", err)
	}
	if out.Item == nil {
		return nil, keys.ErrNotFound
	}
	var r keyRecord
	if err := attributevalue.UnmarshalMap(out.Item, &r); err != nil {
		return nil, fmt.Errorf("decode key: %w", err)
	}
	return r.key(), nil
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
		item, err := attributevalue.MarshalMap(toRecord(k))
		if err != nil {
			return fmt.Errorf("encode key: %w", err)
		}
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName:           &s.table,
			Item:                item,
			ConditionExpression: aws.String("attribute_not_exists(" + attrPK + ")"),
		}})
	}
	for _, k := range tx.Update {
		update, err := s.updateKey(k)
		if err != nil {
			return err
		}
		items = append(items, types.TransactWriteItem{Update: update})
	}
	for _, e := range tx.Events {
		put, err := s.putEvent(e)
		if err != nil {
			return err
		}
		items = append(items, types.TransactWriteItem{Put: put})
	}
	_, err := s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var canceled *types.TransactionCanceledException
	if errors.As(err, &canceled) {
		for _, r := range canceled.CancellationReasons {
			switch code := aws.ToString(r.Code); code {
			case "ConditionalCheckFailed", "TransactionConflict":
				return fmt.Errorf("%w: %s", keys.ErrConflict, code)
			case "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded":
				return fmt.Errorf("write transaction: %w: %s", keys.ErrUnavailable, code)
			}
		}
	}
	if err != nil {
		return classify("write transaction", err)
	}
	return nil
}

// updateKey writes a key's management fields if its version is unchanged.
// Usage and rate-window attributes belong to the authorizer and stay as
// they are.
func (s *Store) updateKey(k *keys.Key) (*types.Update, error) {
	r := toRecord(k)
	upd := expression.Set(expression.Name("name"), expression.Value(r.Name)).
		Set(expression.Name(attrStatus), expression.Value(r.Status)).
		Set(expression.Name("updatedAt"), expression.Value(r.UpdatedAt)).
		Set(expression.Name(attrVersion), expression.Name(attrVersion).Plus(expression.Value(1)))
	optional := []struct {
		name  string
		value any
		empty bool
	}{
		{"scopes", r.Scopes, len(r.Scopes) == 0},
		{"ipAllowlist", r.IPAllowlist, len(r.IPAllowlist) == 0},
		{"metadata", r.Metadata, r.Metadata == ""},
		{attrExpiresAt, r.ExpiresAt, r.ExpiresAt == 0},
		{"revokedAt", r.RevokedAt, r.RevokedAt == 0},
		{"rotatedTo", r.RotatedTo, r.RotatedTo == ""},
		{attrTTL, r.TTL, r.TTL == 0},
	}
	for _, f := range optional {
		if f.empty {
			upd = upd.Remove(expression.Name(f.name))
		} else {
			upd = upd.Set(expression.Name(f.name), expression.Value(f.value))
		}
	}
	cond := expression.Name(attrVersion).Equal(expression.Value(k.Version)).
		And(expression.Name(attrProject).Equal(expression.Value(k.Project)))
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return nil, fmt.Errorf("build update: %w", err)
	}
	return &types.Update{
		TableName:                 &s.table,
		Key:                       itemKey(keyPK(k.ID), keySK),
		UpdateExpression:          expr.Update(),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	}, nil
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
	Time     int64  `dynamodbav:"time"`
	TTL      int64  `dynamodbav:"ttl"`
}

func (s *Store) putEvent(e *keys.AuditEvent) (*types.Put, error) {
	changes, err := e.MarshalChanges()
	if err != nil {
		return nil, fmt.Errorf("encode audit changes: %w", err)
	}
	item, err := attributevalue.MarshalMap(eventRecord{
		PK: auditPK(e.Project), SK: sortKey(e.Time, e.ID), ID: e.ID, Project: e.Project, Actor: e.Actor,
		Action: e.Action, Target: e.Target, Changes: changes, SourceIP: e.SourceIP,
		Time: e.Time.UnixMilli(), TTL: ttlSeconds(&e.PurgeAt),
	})
	if err != nil {
		return nil, fmt.Errorf("encode audit event: %w", err)
	}
	return &types.Put{TableName: &s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(" + attrPK + ")")}, nil
}

func (r eventRecord) event() (*keys.AuditEvent, error) {
	e := &keys.AuditEvent{
		ID: r.ID, Project: r.Project, Actor: r.Actor, Action: r.Action, Target: r.Target,
		SourceIP: r.SourceIP, Time: time.UnixMilli(r.Time).UTC(), PurgeAt: time.Unix(r.TTL, 0).UTC(),
	}
	if r.Changes != "" {
		if err := json.Unmarshal([]byte(r.Changes), &e.Changes); err != nil {
			return nil, fmt.Errorf("decode audit changes: %w", err)
		}
	}
	return e, nil
}

// cursor is what a page's cursor carries: the sort key of the last item
// returned. The partition comes from the caller's own query, so a cursor
// can never lead into another project.
type cursor struct {
	SortKey string `json:"s"`
}

func encodeCursor(sk string) string {
	b, _ := json.Marshal(cursor{SortKey: sk})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (sk string, id string, err error) {
	bad := &keys.InvalidError{Field: "cursor", Message: "not a cursor from a previous page"}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return "", "", bad
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil {
		return "", "", bad
	}
	_, id, ok := parseSortKey(c.SortKey)
	if !ok {
		return "", "", bad
	}
	return c.SortKey, id, nil
}
