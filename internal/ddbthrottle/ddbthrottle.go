// Package ddbthrottle is test code: it puts DynamoDB's per-partition
// throughput ceilings in front of DynamoDB Local, which never throttles, so
// that tests can see what a hot key does in AWS. Like internal/ddbcount it
// is a middleware on the SDK client's stack: each attempt of a request (the
// SDK's retries included) on an item whose key has spent its units gets the
// HTTP answer DynamoDB sends, decoded by the SDK's own deserializer, so the
// caller sees the very error types, codes and retries it would in AWS.
//
// What it models:
//
//   - Per item key (table, pk, sk): 1,000 write units and 3,000 read units a
//     second, each a token bucket holding at most one second of units.
//     DynamoDB's burst capacity (up to 300 s of unused capacity) is the
//     table's, and never lifts a partition past these ceilings, so a hot item
//     gets no burst beyond one second's worth.
//   - Units as DynamoDB charges them: a write ceil(size/1 KB), a strongly
//     consistent read ceil(size/4 KB), an eventually consistent one half of
//     that, every item of a transaction double. The figure is DynamoDB
//     Local's ConsumedCapacity (asked for on a copy of the input and left out
//     of the caller's output unless it asked), the table's share, split evenly
//     over a transaction's items of the table; a write refused by its
//     condition, which DynamoDB charges but reports no figure for, costs the
//     size of the old item when the error returns it, else 1 unit.
//   - Admission as DynamoDB does it for a request whose cost it cannot know
//     in advance: a request is admitted while its item has at least the
//     request's least cost (1 write unit; 1 read unit, 0.5 eventually
//     consistent; doubled in a transaction), which is taken at once; the rest
//     of the cost is taken from the answer, and may leave the bucket in debt.
//   - The answer: ThrottlingException (an on-demand table, as keygate's) or
//     ProvisionedThroughputExceededException (Provisioned), with the
//     ThrottlingReasons DynamoDB sends for a hot partition:
//     TableWriteKeyRangeThroughputExceeded or TableReadKeyRangeThroughputExceeded,
//     naming the table's ARN. A transaction is cancelled instead
//     (TransactionCanceledException), the refused item's reason being
//     ThrottlingError, as DynamoDB answers a transaction.
//
// Not modelled: index partitions, Query, Scan and the batch operations
// (they pass unthrottled), and table or account quotas.
package ddbthrottle

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// DynamoDB's per-partition ceilings, in units a second.
const (
	WriteUnitsPerSecond = 1000
	ReadUnitsPerSecond  = 3000
)

// Reasons DynamoDB gives for a hot partition of a table.
const (
	ReasonWriteKeyRange = "TableWriteKeyRangeThroughputExceeded"
	ReasonReadKeyRange  = "TableReadKeyRangeThroughputExceeded"
)

// Options configure a Throttle.
type Options struct {
	// Now is the clock the buckets refill by; time.Now when nil. A test
	// that holds it still decides exactly which request is throttled.
	Now func() time.Time
	// Provisioned answers ProvisionedThroughputExceededException, as for a
	// table in provisioned mode, rather than ThrottlingException.
	Provisioned bool
	// WriteUnits and ReadUnits are an item's ceilings a second; 0 for
	// DynamoDB's. A lower one lets a test reach it with fewer requests:
	// DynamoDB Local writes one item some 30-50 ms at a time.
	WriteUnits, ReadUnits float64
}

// keyAttributes are the key attributes of keygate's table.
var keyAttributes = []string{"pk", "sk"}

// Throttle holds the buckets of every item key a client touched.
type Throttle struct {
	opts      Options
	region    string
	mu        sync.Mutex
	buckets   map[bucketKey]*bucket
	throttled int64
}

type bucketKey struct {
	item  string // table and key values
	write bool
}

type bucket struct {
	tokens float64
	at     time.Time
}

// Instrument returns a client like client whose requests are throttled per
// item key as DynamoDB throttles them; client itself is unchanged.
func Instrument(client *dynamodb.Client, opts Options) (*dynamodb.Client, *Throttle) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	t := &Throttle{opts: opts, region: client.Options().Region, buckets: map[bucketKey]*bucket{}}
	throttled := dynamodb.New(client.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, t.register)
	})
	return throttled, t
}

// Throttled is how many attempts were answered with a throttle.
func (t *Throttle) Throttled() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.throttled
}

type requestKey struct{}

// request is what one call touches, shared by its attempts.
type request struct {
	items       []touch
	transaction bool
}

// touch is one item a request reads or writes, and its least cost.
type touch struct {
	table, item string
	write       bool
	least       float64
}

// register adds two steps: at Initialize, once per call, asking for the
// consumed capacity and charging it from the answer; at the end of
// Deserialize, once per attempt, where the transport would send it,
// admitting or throttling.
func (t *Throttle) register(stack *middleware.Stack) error {
	err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("ddbthrottle-charge", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		req := touches(in.Parameters)
		if req == nil {
			return next.HandleInitialize(ctx, in)
		}
		asked := askedCapacity(in.Parameters)
		in.Parameters = withCapacity(in.Parameters)
		ctx = middleware.WithStackValue(ctx, requestKey{}, req)
		out, md, err := next.HandleInitialize(ctx, in)
		t.charge(req, out.Result, err)
		out.Result = capacityAsAsked(out.Result, asked)
		return out, md, err
	}), middleware.After)
	if err != nil {
		return err
	}
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("ddbthrottle-admit", func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
		req, _ := middleware.GetStackValue(ctx, requestKey{}).(*request)
		if req == nil {
			return next.HandleDeserialize(ctx, in)
		}
		if refused, ok := t.admit(req); !ok {
			return middleware.DeserializeOutput{RawResponse: t.throttleResponse(awsmiddleware.GetOperationName(ctx), req, refused)}, middleware.Metadata{}, nil
		}
		return next.HandleDeserialize(ctx, in)
	}), middleware.After)
}

// admit takes every touched item's least cost if each has it, all or
// none; otherwise it returns the index of the first item refused.
func (t *Throttle) admit(req *request) (refused int, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.opts.Now()
	for i, it := range req.items {
		if b := t.bucket(it, now); b.tokens < it.least {
			t.throttled++
			return i, false
		}
	}
	for _, it := range req.items {
		t.bucket(it, now).tokens -= it.least
	}
	return 0, true
}

// bucket is it's bucket, refilled to now. Call with t.mu held.
func (t *Throttle) bucket(it touch, now time.Time) *bucket {
	rate := cmp.Or(t.opts.ReadUnits, ReadUnitsPerSecond)
	if it.write {
		rate = cmp.Or(t.opts.WriteUnits, WriteUnitsPerSecond)
	}
	k := bucketKey{item: it.item, write: it.write}
	b := t.buckets[k]
	if b == nil {
		b = &bucket{tokens: rate, at: now}
		t.buckets[k] = b
	}
	if now.After(b.at) {
		b.tokens = min(rate, b.tokens+rate*now.Sub(b.at).Seconds())
		b.at = now
	}
	return b
}

// charge takes what the call cost beyond what admitting it took.
func (t *Throttle) charge(req *request, result any, err error) {
	costs := costOf(req, result, err)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.opts.Now()
	for i, it := range req.items {
		if extra := costs[i] - it.least; extra > 0 {
			t.bucket(it, now).tokens -= extra
		}
	}
}

// throttleResponse is DynamoDB's answer to a throttled request, as it
// sends it (awsJson1_0), for the SDK to decode: a transaction is cancelled,
// with ThrottlingError as the reason of the item refused.
func (t *Throttle) throttleResponse(op string, req *request, refused int) *smithyhttp.Response {
	it := req.items[refused]
	reason, kind := ReasonReadKeyRange, "read"
	if it.write {
		reason, kind = ReasonWriteKeyRange, "write"
	}
	msg := fmt.Sprintf("%s: the %s throughput of the partition of this key range is exceeded", op, kind)
	var body map[string]any
	switch {
	case req.transaction:
		reasons := make([]map[string]string, len(req.items))
		codes := make([]string, len(req.items))
		for i := range req.items {
			reasons[i], codes[i] = map[string]string{"Code": "None"}, "None"
		}
		reasons[refused], codes[refused] = map[string]string{"Code": "ThrottlingError", "Message": msg}, "ThrottlingError"
		body = map[string]any{
			"__type":              "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
			"Message":             "Transaction cancelled, please refer cancellation reasons for specific reasons [" + strings.Join(codes, ", ") + "]",
			"CancellationReasons": reasons,
		}
	default:
		code, reasonsField := "ThrottlingException", "throttlingReasons"
		if t.opts.Provisioned {
			code, reasonsField = "ProvisionedThroughputExceededException", "ThrottlingReasons"
		}
		body = map[string]any{
			"__type":  "com.amazonaws.dynamodb.v20120810#" + code,
			"message": msg,
			reasonsField: []map[string]string{{
				"reason":   reason,
				"resource": "arn:aws:dynamodb:" + t.region + ":000000000000:table/" + it.table,
			}},
		}
	}
	raw, _ := json.Marshal(body) // strings only: cannot fail
	h := http.Header{}
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("X-Amzn-Requestid", "ddbthrottle")
	return &smithyhttp.Response{Response: &http.Response{
		StatusCode: http.StatusBadRequest, Status: "400 Bad Request", Header: h,
		Body: io.NopCloser(bytes.NewReader(raw)), ContentLength: int64(len(raw)),
	}}
}

// itemID names an item by its table and key values.
func itemID(table string, item map[string]types.AttributeValue) string {
	var b strings.Builder
	b.WriteString(table)
	for _, name := range keyAttributes {
		b.WriteByte(0)
		if v, ok := item[name]; ok {
			fmt.Fprintf(&b, "%T:%v", v, keyValue(v))
		}
	}
	return b.String()
}

func keyValue(v types.AttributeValue) any {
	switch a := v.(type) {
	case *types.AttributeValueMemberS:
		return a.Value
	case *types.AttributeValueMemberN:
		return a.Value
	case *types.AttributeValueMemberB:
		return string(a.Value)
	}
	return nil
}

// touches is what a call touches; nil for an operation not modelled.
func touches(params any) *request {
	one := func(table *string, key map[string]types.AttributeValue, write bool, least float64) *request {
		return &request{items: []touch{{table: aws.ToString(table), item: itemID(aws.ToString(table), key), write: write, least: least}}}
	}
	switch p := params.(type) {
	case *dynamodb.GetItemInput:
		least := 0.5
		if p.ConsistentRead != nil && *p.ConsistentRead {
			least = 1
		}
		return one(p.TableName, p.Key, false, least)
	case *dynamodb.PutItemInput:
		return one(p.TableName, p.Item, true, 1)
	case *dynamodb.UpdateItemInput:
		return one(p.TableName, p.Key, true, 1)
	case *dynamodb.DeleteItemInput:
		return one(p.TableName, p.Key, true, 1)
	case *dynamodb.TransactWriteItemsInput:
		r := &request{transaction: true}
		for _, it := range p.TransactItems {
			table, key := writeItem(it)
			r.items = append(r.items, touch{table: table, item: itemID(table, key), write: true, least: 2})
		}
		return r
	case *dynamodb.TransactGetItemsInput:
		r := &request{transaction: true}
		for _, it := range p.TransactItems {
			if it.Get != nil {
				table := aws.ToString(it.Get.TableName)
				r.items = append(r.items, touch{table: table, item: itemID(table, it.Get.Key), least: 2})
			}
		}
		return r
	}
	return nil
}

// writeItem is the table and key of one item of a TransactWriteItems; a
// ConditionCheck is charged as a write, as DynamoDB does.
func writeItem(it types.TransactWriteItem) (string, map[string]types.AttributeValue) {
	switch {
	case it.Put != nil:
		return aws.ToString(it.Put.TableName), it.Put.Item
	case it.Update != nil:
		return aws.ToString(it.Update.TableName), it.Update.Key
	case it.Delete != nil:
		return aws.ToString(it.Delete.TableName), it.Delete.Key
	case it.ConditionCheck != nil:
		return aws.ToString(it.ConditionCheck.TableName), it.ConditionCheck.Key
	}
	return "", nil
}
