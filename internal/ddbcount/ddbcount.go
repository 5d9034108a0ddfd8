// Package ddbcount counts the operations a DynamoDB client sends, with a
// middleware on the SDK client's stack, so tests and benchmarks can prove
// how many DynamoDB requests something costs.
package ddbcount

import (
	"context"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
)

// Counter counts operations by name ("UpdateItem", "GetItem", ...). It
// counts each call once, at the stack's Initialize step, before the SDK's
// retries: a count is the number of requests the code made.
type Counter struct {
	mu  sync.Mutex
	ops map[string]int64
}

// Instrument returns a client like client that counts every operation it
// sends in the returned Counter. client itself is unchanged.
func Instrument(client *dynamodb.Client) (*dynamodb.Client, *Counter) {
	c := &Counter{ops: map[string]int64{}}
	counted := dynamodb.New(client.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, c.register)
	})
	return counted, c
}

func (c *Counter) register(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("ddbcount", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		c.add(awsmiddleware.GetOperationName(ctx))
		return next.HandleInitialize(ctx, in)
	}), middleware.After)
}

func (c *Counter) add(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops[op]++
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

// Reset forgets every count.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.ops)
}
