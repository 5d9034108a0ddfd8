package ddbcount

// Accesses: what each request touches, as IAM authorizes it, so a test can
// hold the calls the code makes to a function's policy.

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// Access is one authorization DynamoDB makes for a request: one per
// request, but one per item of a TransactWriteItems (whose items IAM
// authorizes as PutItem, UpdateItem, ConditionCheckItem and DeleteItem) and
// one per table of a BatchGetItem.
type Access struct {
	// Operation is the request's: "TransactWriteItems".
	Operation string
	// Action is the IAM action: "dynamodb:PutItem".
	Action string
	Table  string
	// Index is a Query's or Scan's IndexName; "" for the table.
	Index string
	// PartitionKeys are the values of the items' partition key (the
	// attribute WithAccesses names) as strings: what the
	// dynamodb:LeadingKeys condition key holds. Nil for Query and Scan,
	// whose partition is in an expression.
	PartitionKeys []string
}

// WithAccesses makes the Counter record every request's Accesses, reading
// partition keys from the attribute partitionKey.
func WithAccesses(partitionKey string) Option {
	return func(o *options) { o.partitionKey = partitionKey }
}

func (c *Counter) registerAccesses(partitionKey string) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("ddbcount-accesses", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			acc := accesses(awsmiddleware.GetOperationName(ctx), in.Parameters, partitionKey)
			c.mu.Lock()
			c.accesses = append(c.accesses, acc...)
			c.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
	}
}

func accesses(op string, params any, pk string) []Access {
	one := func(table *string, index *string, items ...map[string]types.AttributeValue) []Access {
		return []Access{{Operation: op, Action: "dynamodb:" + op, Table: aws.ToString(table), Index: aws.ToString(index), PartitionKeys: keysOf(pk, items)}}
	}
	switch p := params.(type) {
	case *dynamodb.GetItemInput:
		return one(p.TableName, nil, p.Key)
	case *dynamodb.PutItemInput:
		return one(p.TableName, nil, p.Item)
	case *dynamodb.UpdateItemInput:
		return one(p.TableName, nil, p.Key)
	case *dynamodb.DeleteItemInput:
		return one(p.TableName, nil, p.Key)
	case *dynamodb.QueryInput:
		a := one(p.TableName, p.IndexName)
		if p.IndexName == nil {
			// On the table, the partition is the key condition's: what
			// dynamodb:LeadingKeys holds for a Query.
			a[0].PartitionKeys = queryPartition(pk, p)
		}
		return a
	case *dynamodb.ScanInput:
		return one(p.TableName, p.IndexName)
	case *dynamodb.BatchGetItemInput:
		var out []Access
		for _, table := range slices.Sorted(maps.Keys(p.RequestItems)) {
			out = append(out, one(&table, nil, p.RequestItems[table].Keys...)...)
		}
		return out
	case *dynamodb.TransactWriteItemsInput:
		var out []Access
		for _, it := range p.TransactItems {
			a := Access{Operation: op}
			switch {
			case it.Put != nil:
				a.Action, a.Table, a.PartitionKeys = "dynamodb:PutItem", aws.ToString(it.Put.TableName), keysOf(pk, []map[string]types.AttributeValue{it.Put.Item})
			case it.Update != nil:
				a.Action, a.Table, a.PartitionKeys = "dynamodb:UpdateItem", aws.ToString(it.Update.TableName), keysOf(pk, []map[string]types.AttributeValue{it.Update.Key})
			case it.ConditionCheck != nil:
				a.Action, a.Table, a.PartitionKeys = "dynamodb:ConditionCheckItem", aws.ToString(it.ConditionCheck.TableName), keysOf(pk, []map[string]types.AttributeValue{it.ConditionCheck.Key})
			case it.Delete != nil:
				a.Action, a.Table, a.PartitionKeys = "dynamodb:DeleteItem", aws.ToString(it.Delete.TableName), keysOf(pk, []map[string]types.AttributeValue{it.Delete.Key})
			}
			out = append(out, a)
		}
		return out
	}
	// An operation not modelled: its action, with no table, so that a
	// policy check refuses it rather than miss it.
	return []Access{{Operation: op, Action: "dynamodb:" + op}}
}

// queryPartition reads the partition a Query on the table names in its key
// condition ("#n = :v" or "pk = :v" with the attribute named pk); nil when
// it cannot tell.
func queryPartition(pk string, q *dynamodb.QueryInput) []string {
	names := []string{pk}
	for ref, name := range q.ExpressionAttributeNames {
		if name == pk {
			names = append(names, ref)
		}
	}
	for _, cond := range strings.Split(aws.ToString(q.KeyConditionExpression), " AND ") {
		left, right, ok := strings.Cut(cond, "=")
		if !ok || !slices.Contains(names, strings.TrimSpace(left)) {
			continue
		}
		if v, ok := q.ExpressionAttributeValues[strings.TrimSpace(right)].(*types.AttributeValueMemberS); ok {
			return []string{v.Value}
		}
	}
	return nil
}

// keysOf reads the partition key of items; an item without a string, number
// or binary one gives "".
func keysOf(pk string, items []map[string]types.AttributeValue) []string {
	if len(items) == 0 {
		return nil
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		var v string
		switch a := it[pk].(type) {
		case *types.AttributeValueMemberS:
			v = a.Value
		case *types.AttributeValueMemberN:
			v = a.Value
		case *types.AttributeValueMemberB:
			v = string(a.Value)
		}
		out = append(out, v)
	}
	return out
}

// Accesses are the accesses recorded since the last Reset, in order; none
// unless the Counter comes from Instrument with WithAccesses.
func (c *Counter) Accesses() []Access {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.accesses)
}
