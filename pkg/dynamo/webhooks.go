package dynamo

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/webhooks"
)

// Webhook items:
//
//	webhook:   pk = WEBHOOKS#<project>                sk = <webhook id>
//	delivery:  pk = DELIVERIES#<project>#<webhook id> sk = <event's createdAt ms, 13 digits>#<event id>
//	           gsi1pk = WEBHOOKDUE#<0-3>  gsi1sk = <next attempt ms, 13 digits>#<event id>   (while pending)
//
// A delivery's key derives from its event and webhook alone, so that the
// dispatcher, handed a record again, finds the delivery it made. Pending
// deliveries are spread over dueShards partitions of gsi1 (a busy day's
// retries are not one hot partition) and leave it once done (sparse).
func webhooksPK(project string) string            { return "WEBHOOKS#" + project }
func deliveriesPK(project, webhook string) string { return "DELIVERIES#" + project + "#" + webhook }

const dueShards = 4

func duePK(shard int) string { return "WEBHOOKDUE#" + strconv.Itoa(shard) }

func dueShard(pk, sk string) int {
	h := fnv.New32a()
	h.Write([]byte(pk))
	h.Write([]byte(sk))
	return int(h.Sum32() % dueShards)
}

// deliveryLife is how long a delivery is kept after it was made.
const deliveryLife = 30 * 24 * time.Hour

type webhookRecord struct {
	PK             string   `dynamodbav:"pk"`
	SK             string   `dynamodbav:"sk"`
	ID             string   `dynamodbav:"id"`
	Project        string   `dynamodbav:"project"`
	URL            string   `dynamodbav:"url"`
	Events         []string `dynamodbav:"events"`
	Description    string   `dynamodbav:"description,omitempty"`
	Status         string   `dynamodbav:"status"`
	DisabledReason string   `dynamodbav:"disabledReason,omitempty"`
	DisabledAt     int64    `dynamodbav:"disabledAt,omitempty"`
	FailingSince   int64    `dynamodbav:"failingSince,omitempty"`
	CreatedAt      int64    `dynamodbav:"createdAt"`
	UpdatedAt      int64    `dynamodbav:"updatedAt"`
	CreatedBy      string   `dynamodbav:"createdBy"`
	Secret         string   `dynamodbav:"secret"`
	Version        int64    `dynamodbav:"version"`
}

func toWebhookRecord(w *webhooks.Webhook) webhookRecord {
	return webhookRecord{
		PK: webhooksPK(w.Project), SK: w.ID, ID: w.ID, Project: w.Project, URL: w.URL, Events: w.Events,
		Description: w.Description, Status: w.Status, DisabledReason: w.DisabledReason, DisabledAt: millis(w.DisabledAt),
		FailingSince: millis(w.FailingSince), CreatedAt: w.CreatedAt.UnixMilli(), UpdatedAt: w.UpdatedAt.UnixMilli(),
		CreatedBy: w.CreatedBy, Secret: w.Secret, Version: w.Version,
	}
}

func (r webhookRecord) webhook() *webhooks.Webhook {
	return &webhooks.Webhook{
		ID: r.ID, Project: r.Project, URL: r.URL, Events: r.Events, Description: r.Description, Status: r.Status,
		DisabledReason: r.DisabledReason, DisabledAt: fromMillis(r.DisabledAt), FailingSince: fromMillis(r.FailingSince),
		CreatedAt: timeOf(r.CreatedAt), UpdatedAt: timeOf(r.UpdatedAt), CreatedBy: r.CreatedBy, Secret: r.Secret, Version: r.Version,
	}
}

// WebhookStore is webhooks' store (webhooks.Store) on the table.
type WebhookStore struct{ s *Store }

// Webhooks is the webhooks' store on the same table.
func (s *Store) Webhooks() *WebhookStore { return &WebhookStore{s} }

var _ webhooks.Store = (*WebhookStore)(nil)

// writeWithEvent writes item and ev, after the caller check, in one
// transaction.
func (w *WebhookStore) writeWithEvent(ctx context.Context, item types.TransactWriteItem, ev *keys.AuditEvent, caller *keys.CallerCheck) error {
	put, err := w.s.putEvent(ev)
	if err != nil {
		return err
	}
	return w.s.transact(ctx, caller, []types.TransactWriteItem{item, {Put: put}})
}

// PutWebhook writes a new webhook with its audit event.
func (w *WebhookStore) PutWebhook(ctx context.Context, hook *webhooks.Webhook, ev *keys.AuditEvent, caller *keys.CallerCheck) error {
	item, err := attributevalue.MarshalMap(toWebhookRecord(hook))
	if err != nil {
		return fmt.Errorf("encode webhook: %w", err)
	}
	return w.writeWithEvent(ctx, types.TransactWriteItem{Put: &types.Put{
		TableName: &w.s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(" + attrPK + ")"),
	}}, ev, caller)
}

// UpdateWebhook rewrites a webhook whose stored version is hook.Version,
// advancing it.
func (w *WebhookStore) UpdateWebhook(ctx context.Context, hook *webhooks.Webhook, ev *keys.AuditEvent, caller *keys.CallerCheck) error {
	r := toWebhookRecord(hook)
	r.Version++
	item, err := attributevalue.MarshalMap(r)
	if err != nil {
		return fmt.Errorf("encode webhook: %w", err)
	}
	expr, err := expression.NewBuilder().WithCondition(expression.Name(attrVersion).Equal(expression.Value(hook.Version))).Build()
	if err != nil {
		return fmt.Errorf("build webhook condition: %w", err)
	}
	return w.writeWithEvent(ctx, types.TransactWriteItem{Put: &types.Put{
		TableName: &w.s.table, Item: item, ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	}}, ev, caller)
}

// DeleteWebhook deletes a webhook with its audit event; false, and nothing
// written, when it was not there.
func (w *WebhookStore) DeleteWebhook(ctx context.Context, project, id string, ev *keys.AuditEvent, caller *keys.CallerCheck) (bool, error) {
	err := w.writeWithEvent(ctx, types.TransactWriteItem{Delete: &types.Delete{
		TableName: &w.s.table, Key: itemKey(webhooksPK(project), id), ConditionExpression: aws.String("attribute_exists(" + attrPK + ")"),
	}}, ev, caller)
	if errors.Is(err, keys.ErrConflict) {
		// Either it was gone, or another write held it (a delivery's health
		// record): only a read tells, and only the first is "none".
		if _, getErr := w.GetWebhook(ctx, project, id); errors.Is(getErr, keys.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	return err == nil, err
}

// GetWebhook reads a webhook, consistently.
func (w *WebhookStore) GetWebhook(ctx context.Context, project, id string) (*webhooks.Webhook, error) {
	out, err := w.s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &w.s.table, Key: itemKey(webhooksPK(project), id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, storeError("get webhook", err)
	}
	if out.Item == nil {
		return nil, keys.ErrNotFound
	}
	var r webhookRecord
	if err := attributevalue.UnmarshalMap(out.Item, &r); err != nil {
		return nil, fmt.Errorf("decode webhook: %w", err)
	}
	return r.webhook(), nil
}

// Webhooks reads a project's webhooks by id, consistently: a webhook made
// a moment ago gets the next event.
func (w *WebhookStore) Webhooks(ctx context.Context, project string) ([]*webhooks.Webhook, error) {
	in := &dynamodb.QueryInput{
		TableName: &w.s.table, ConsistentRead: aws.Bool(true),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: webhooksPK(project)}},
	}
	var list []*webhooks.Webhook
	for {
		out, err := w.s.client.Query(ctx, in)
		if err != nil {
			return nil, storeError("query webhooks", err)
		}
		for _, item := range out.Items {
			var r webhookRecord
			if err := attributevalue.UnmarshalMap(item, &r); err != nil {
				return nil, fmt.Errorf("decode webhook: %w", err)
			}
			list = append(list, r.webhook())
		}
		if out.LastEvaluatedKey == nil {
			return list, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// webhookUpdate runs an UpdateItem on a webhook that exists.
func (w *WebhookStore) webhookUpdate(ctx context.Context, project, id string, upd expression.UpdateBuilder, cond expression.ConditionBuilder) (*dynamodb.UpdateItemOutput, error) {
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(expression.AttributeExists(expression.Name(attrPK)).And(cond)).Build()
	if err != nil {
		return nil, fmt.Errorf("build webhook update: %w", err)
	}
	return w.s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &w.s.table, Key: itemKey(webhooksPK(project), id), UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(), ReturnValues: types.ReturnValueAllNew,
	})
}

// MarkFailing sets failingSince unless set; zero when the webhook is gone.
// Like every write of a webhook it moves the version, so that an edit read
// before it, which rewrites the item, fails and reads again instead of
// erasing it.
func (w *WebhookStore) MarkFailing(ctx context.Context, project, id string, at time.Time) (time.Time, error) {
	name := expression.Name(attrFailingSince)
	upd := expression.Set(name, expression.IfNotExists(name, expression.Value(at.UnixMilli()))).Add(expression.Name(attrVersion), expression.Value(1))
	out, err := w.webhookUpdate(ctx, project, id, upd, expression.AttributeExists(expression.Name(attrPK)))
	if conditionFailed(err) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, storeError("mark webhook failing", err)
	}
	ms, _ := itemNumber(out.Attributes, attrFailingSince)
	return timeOf(ms), nil
}

// ClearFailing ends a webhook's failing streak.
func (w *WebhookStore) ClearFailing(ctx context.Context, project, id string) error {
	upd := expression.Remove(expression.Name(attrFailingSince)).Add(expression.Name(attrVersion), expression.Value(1))
	_, err := w.webhookUpdate(ctx, project, id, upd, expression.AttributeExists(expression.Name(attrPK)))
	if conditionFailed(err) {
		return nil
	}
	return storeError("clear webhook failing", err)
}

// DisableWebhook disables an enabled webhook still failing since since; a
// success or a re-enable in between leaves it as it is. It moves the
// version, so that an edit computed before does not re-enable it.
func (w *WebhookStore) DisableWebhook(ctx context.Context, project, id, reason string, since, at time.Time) error {
	upd := expression.Set(expression.Name(attrStatus), expression.Value(webhooks.StatusDisabled)).
		Set(expression.Name(attrDisabledAt), expression.Value(at.UnixMilli())).
		Set(expression.Name(attrDisabledReason), expression.Value(reason)).
		Set(expression.Name(attrUpdatedAt), expression.Value(at.UnixMilli())).
		Add(expression.Name(attrVersion), expression.Value(1))
	cond := expression.Name(attrStatus).Equal(expression.Value(webhooks.StatusEnabled)).
		And(expression.Name(attrFailingSince).Equal(expression.Value(since.UnixMilli())))
	_, err := w.webhookUpdate(ctx, project, id, upd, cond)
	if conditionFailed(err) {
		return nil
	}
	return storeError("disable webhook", err)
}

// Attributes of webhooks and deliveries.
const (
	attrFailingSince   = "failingSince"
	attrDisabledAt     = "disabledAt"
	attrDisabledReason = "disabledReason"
	attrUpdatedAt      = "updatedAt"
	attrState          = "state"
	attrNextAttemptAt  = "nextAttemptAt"
)

type deliveryRecord struct {
	PK             string `dynamodbav:"pk"`
	SK             string `dynamodbav:"sk"`
	GSI1PK         string `dynamodbav:"gsi1pk,omitempty"`
	GSI1SK         string `dynamodbav:"gsi1sk,omitempty"`
	ID             string `dynamodbav:"id"`
	Project        string `dynamodbav:"project"`
	Webhook        string `dynamodbav:"webhook"`
	EventType      string `dynamodbav:"eventType"`
	State          string `dynamodbav:"state"`
	Attempts       int    `dynamodbav:"attempts"`
	LastStatusCode int    `dynamodbav:"lastStatusCode,omitempty"`
	LastError      string `dynamodbav:"lastError,omitempty"`
	LastLatencyMs  int64  `dynamodbav:"lastLatencyMs,omitempty"`
	LastAttemptAt  int64  `dynamodbav:"lastAttemptAt,omitempty"`
	NextAttemptAt  int64  `dynamodbav:"nextAttemptAt,omitempty"`
	EventAt        int64  `dynamodbav:"eventAt"`
	CreatedAt      int64  `dynamodbav:"createdAt"`
	Body           string `dynamodbav:"body"`
	TTL            int64  `dynamodbav:"ttl"`
}

func (r deliveryRecord) delivery() *webhooks.Delivery {
	return &webhooks.Delivery{
		ID: r.ID, EventType: r.EventType, State: r.State, Attempts: r.Attempts, LastStatusCode: r.LastStatusCode,
		LastError: r.LastError, LastLatencyMs: r.LastLatencyMs, LastAttemptAt: fromMillis(r.LastAttemptAt),
		NextAttemptAt: fromMillis(r.NextAttemptAt), EventAt: timeOf(r.EventAt), CreatedAt: timeOf(r.CreatedAt),
		Project: r.Project, Webhook: r.Webhook, Body: []byte(r.Body),
	}
}

func deliveryKey(d *webhooks.Delivery) (pk, sk string) {
	return deliveriesPK(d.Project, d.Webhook), sortKey(d.EventAt, d.ID)
}

// CreateDelivery writes a pending delivery unless the webhook has one of
// the event: false then.
func (w *WebhookStore) CreateDelivery(ctx context.Context, d *webhooks.Delivery) (bool, error) {
	pk, sk := deliveryKey(d)
	expires := d.CreatedAt.Add(deliveryLife)
	r := deliveryRecord{
		PK: pk, SK: sk, ID: d.ID, Project: d.Project, Webhook: d.Webhook, EventType: d.EventType, State: d.State,
		EventAt: d.EventAt.UnixMilli(), CreatedAt: d.CreatedAt.UnixMilli(), Body: string(d.Body), TTL: ttlSeconds(&expires),
	}
	if d.NextAttemptAt != nil {
		r.NextAttemptAt = d.NextAttemptAt.UnixMilli()
		r.GSI1PK, r.GSI1SK = duePK(dueShard(pk, sk)), sortKey(*d.NextAttemptAt, d.ID)
	}
	item, err := attributevalue.MarshalMap(r)
	if err != nil {
		return false, fmt.Errorf("encode delivery: %w", err)
	}
	return w.s.putIfAbsent(ctx, item, "write delivery")
}

// ClaimDelivery moves a pending delivery's next attempt from the one read
// to until.
func (w *WebhookStore) ClaimDelivery(ctx context.Context, d *webhooks.Delivery, until time.Time) (bool, error) {
	if d.NextAttemptAt == nil {
		return false, nil
	}
	pk, sk := deliveryKey(d)
	upd := expression.Set(expression.Name(attrNextAttemptAt), expression.Value(until.UnixMilli())).
		Set(expression.Name(attrGSI1SK), expression.Value(sortKey(until, d.ID)))
	cond := expression.Name(attrState).Equal(expression.Value(webhooks.StatePending)).
		And(expression.Name(attrNextAttemptAt).Equal(expression.Value(d.NextAttemptAt.UnixMilli())))
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return false, fmt.Errorf("build delivery claim: %w", err)
	}
	_, err = w.s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &w.s.table, Key: itemKey(pk, sk), UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if conditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, storeError("claim delivery", err)
	}
	d.NextAttemptAt = &until
	return true, nil
}

// SaveAttempt writes an attempt's outcome; a delivery done leaves the due
// index.
func (w *WebhookStore) SaveAttempt(ctx context.Context, d *webhooks.Delivery) error {
	pk, sk := deliveryKey(d)
	upd := expression.Set(expression.Name(attrState), expression.Value(d.State)).
		Set(expression.Name("attempts"), expression.Value(d.Attempts)).
		Set(expression.Name("lastStatusCode"), expression.Value(d.LastStatusCode)).
		Set(expression.Name("lastError"), expression.Value(d.LastError)).
		Set(expression.Name("lastLatencyMs"), expression.Value(d.LastLatencyMs)).
		Set(expression.Name("lastAttemptAt"), expression.Value(millis(d.LastAttemptAt)))
	if d.NextAttemptAt != nil {
		upd = upd.Set(expression.Name(attrNextAttemptAt), expression.Value(d.NextAttemptAt.UnixMilli())).
			Set(expression.Name(attrGSI1PK), expression.Value(duePK(dueShard(pk, sk)))).
			Set(expression.Name(attrGSI1SK), expression.Value(sortKey(*d.NextAttemptAt, d.ID)))
	} else {
		upd = upd.Remove(expression.Name(attrNextAttemptAt)).Remove(expression.Name(attrGSI1PK)).Remove(expression.Name(attrGSI1SK))
	}
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(expression.AttributeExists(expression.Name(attrPK))).Build()
	if err != nil {
		return fmt.Errorf("build delivery update: %w", err)
	}
	_, err = w.s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &w.s.table, Key: itemKey(pk, sk), UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if conditionFailed(err) {
		return nil // expired and deleted meanwhile: nothing to record on
	}
	return storeError("save delivery", err)
}

// DueDeliveries reads pending deliveries due at now from each shard of
// the due index, then the deliveries themselves, consistently (the index
// may lag, and holds only their keys).
func (w *WebhookStore) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]*webhooks.Delivery, error) {
	var keysDue []map[string]types.AttributeValue
	for shard := range dueShards {
		out, err := w.s.client.Query(ctx, &dynamodb.QueryInput{
			TableName: &w.s.table, IndexName: aws.String(indexByProject),
			KeyConditionExpression:    aws.String("#pk = :pk AND #sk < :due"),
			ExpressionAttributeNames:  map[string]string{"#pk": attrGSI1PK, "#sk": attrGSI1SK},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: duePK(shard)}, ":due": &types.AttributeValueMemberS{Value: fmt.Sprintf("%013d$", now.UnixMilli())}},
			Limit:                     aws.Int32(int32(limit)),
		})
		if err != nil {
			return nil, storeError("query due deliveries", err)
		}
		for _, item := range out.Items {
			keysDue = append(keysDue, itemKey(stringAttr(item, attrPK), stringAttr(item, attrSK)))
		}
	}
	var due []*webhooks.Delivery
	for _, key := range keysDue {
		if len(due) == limit {
			break
		}
		out, err := w.s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &w.s.table, Key: key, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return nil, storeError("get delivery", err)
		}
		var r deliveryRecord
		if out.Item == nil || attributevalue.UnmarshalMap(out.Item, &r) != nil {
			continue
		}
		if r.State == webhooks.StatePending && r.NextAttemptAt <= now.UnixMilli() && now.Unix() < r.TTL {
			due = append(due, r.delivery())
		}
	}
	return due, nil
}

// Deliveries pages through a webhook's deliveries, newest event first.
func (w *WebhookStore) Deliveries(ctx context.Context, project, webhook string, limit int, cursor string, now time.Time) ([]*webhooks.Delivery, string, error) {
	pk := deliveriesPK(project, webhook)
	p := partition{pkAttr: attrPK, pkValue: pk, skAttr: attrSK, query: strings.Join([]string{"deliveries", project, webhook}, "\x00"),
		startKey: func(sk, _ string) map[string]types.AttributeValue { return itemKey(pk, sk) }}
	items, next, err := w.s.page(ctx, p, notPurged(now.Unix()), limit, cursor)
	if err != nil {
		return nil, "", err
	}
	out := make([]*webhooks.Delivery, 0, len(items))
	for _, item := range items {
		var r deliveryRecord
		if err := attributevalue.UnmarshalMap(item, &r); err != nil {
			return nil, "", fmt.Errorf("decode delivery: %w", err)
		}
		out = append(out, r.delivery())
	}
	return out, next, nil
}
