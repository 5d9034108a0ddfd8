// Package ddbcount counts the operations a DynamoDB client sends, with a
// middleware on the SDK client's stack, so tests and benchmarks can prove
// how many DynamoDB requests something costs and, with
// WithConsumedCapacity, how many capacity units.
package ddbcount

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// Counter counts operations by name ("UpdateItem", "GetItem", ...). It
// counts each call once, at the stack's Initialize step, before the SDK's
// retries: a count is the number of requests the code made.
type Counter struct {
	mu       sync.Mutex
	ops      map[string]int64
	capacity map[string]*Capacity
	accesses []Access
}

// Capacity is the capacity DynamoDB reported consumed, in capacity units
// (read units for GetItem, write units for the writes).
type Capacity struct {
	// Total is what the operations consumed in all: the table and every
	// index.
	Total float64
	// Table is the table's own share.
	Table float64
	// Indexes are the shares of the secondary indexes, by index name; an
	// index the operations did not touch is absent.
	Indexes map[string]float64
}

// Option changes what Instrument records.
type Option func(*options)

type options struct {
	capacity     bool
	partitionKey string // WithAccesses's; "" records none
}

// WithConsumedCapacity makes the counted client ask DynamoDB for the
// capacity each GetItem, PutItem, UpdateItem and DeleteItem consumes
// (ReturnConsumedCapacity INDEXES, unless the caller asked for it already)
// and records it: see Counter.Capacity. Only answered requests report
// capacity: a write refused by its condition consumes a write unit too,
// but DynamoDB's error carries no figure, so it is not recorded.
func WithConsumedCapacity() Option { return func(o *options) { o.capacity = true } }

// Instrument returns a client like client that counts every operation it
// sends in the returned Counter. client itself is unchanged.
func Instrument(client *dynamodb.Client, opts ...Option) (*dynamodb.Client, *Counter) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	c := &Counter{ops: map[string]int64{}, capacity: map[string]*Capacity{}}
	counted := dynamodb.New(client.Options(), func(do *dynamodb.Options) {
		do.APIOptions = append(do.APIOptions, c.register)
		if o.capacity {
			do.APIOptions = append(do.APIOptions, c.registerCapacity)
		}
		if o.partitionKey != "" {
			do.APIOptions = append(do.APIOptions, c.registerAccesses(o.partitionKey))
		}
	})
	return counted, c
}

func (c *Counter) register(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("ddbcount", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		c.add(awsmiddleware.GetOperationName(ctx))
		return next.HandleInitialize(ctx, in)
	}), middleware.After)
}

// registerCapacity sets ReturnConsumedCapacity on a copy of the input (the
// caller's input stays as it was) and records the output's figure.
func (c *Counter) registerCapacity(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("ddbcount-capacity", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		in.Parameters = askCapacity(in.Parameters)
		out, md, err := next.HandleInitialize(ctx, in)
		if err == nil {
			if cc := consumed(out.Result); cc != nil {
				c.record(awsmiddleware.GetOperationName(ctx), cc)
			}
		}
		return out, md, err
	}), middleware.After)
}

func askCapacity(params any) any {
	switch p := params.(type) {
	case *dynamodb.GetItemInput:
		cp := *p
		cp.ReturnConsumedCapacity = orIndexes(cp.ReturnConsumedCapacity)
		return &cp
	case *dynamodb.PutItemInput:
		cp := *p
		cp.ReturnConsumedCapacity = orIndexes(cp.ReturnConsumedCapacity)
		return &cp
	case *dynamodb.UpdateItemInput:
		cp := *p
		cp.ReturnConsumedCapacity = orIndexes(cp.ReturnConsumedCapacity)
		return &cp
	case *dynamodb.DeleteItemInput:
		cp := *p
		cp.ReturnConsumedCapacity = orIndexes(cp.ReturnConsumedCapacity)
		return &cp
	}
	return params
}

func orIndexes(v types.ReturnConsumedCapacity) types.ReturnConsumedCapacity {
	if v == "" || v == types.ReturnConsumedCapacityNone {
		return types.ReturnConsumedCapacityIndexes
	}
	return v
}

func consumed(result any) *types.ConsumedCapacity {
	switch r := result.(type) {
	case *dynamodb.GetItemOutput:
		return r.ConsumedCapacity
	case *dynamodb.PutItemOutput:
		return r.ConsumedCapacity
	case *dynamodb.UpdateItemOutput:
		return r.ConsumedCapacity
	case *dynamodb.DeleteItemOutput:
		return r.ConsumedCapacity
	}
	return nil
}

func (c *Counter) add(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops[op]++
}

func (c *Counter) record(op string, cc *types.ConsumedCapacity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sum := c.capacity[op]
	if sum == nil {
		sum = &Capacity{Indexes: map[string]float64{}}
		c.capacity[op] = sum
	}
	sum.Total += aws.ToFloat64(cc.CapacityUnits)
	if cc.Table != nil {
		sum.Table += aws.ToFloat64(cc.Table.CapacityUnits)
	}
	for name, idx := range cc.GlobalSecondaryIndexes {
		sum.Indexes[name] += aws.ToFloat64(idx.CapacityUnits)
	}
	for name, idx := range cc.LocalSecondaryIndexes {
		sum.Indexes[name] += aws.ToFloat64(idx.CapacityUnits)
	}
}

// Total is how many operations were sent, of any kind.
func (c *Counter) Total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, v := range c.ops {
		n += v
	}
	return n
}

// Of is how many operations named op were sent.
func (c *Counter) Of(op string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ops[op]
}

// Capacity is the capacity the operations named op consumed, as DynamoDB
// reported it: zero unless the Counter comes from Instrument with
// WithConsumedCapacity.
func (c *Counter) Capacity(op string) Capacity {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := Capacity{Indexes: map[string]float64{}}
	if sum := c.capacity[op]; sum != nil {
		out.Total, out.Table = sum.Total, sum.Table
		for name, v := range sum.Indexes {
			out.Indexes[name] = v
		}
	}
	return out
}

// Reset forgets every count, every recorded capacity and every access.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.ops)
	clear(c.capacity)
	c.accesses = nil
}
