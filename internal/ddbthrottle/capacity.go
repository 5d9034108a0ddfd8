package ddbthrottle

import (
	"errors"
	"math"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// askedCapacity is the ReturnConsumedCapacity the caller set.
func askedCapacity(params any) types.ReturnConsumedCapacity {
	switch p := params.(type) {
	case *dynamodb.GetItemInput:
		return p.ReturnConsumedCapacity
	case *dynamodb.PutItemInput:
		return p.ReturnConsumedCapacity
	case *dynamodb.UpdateItemInput:
		return p.ReturnConsumedCapacity
	case *dynamodb.DeleteItemInput:
		return p.ReturnConsumedCapacity
	case *dynamodb.TransactWriteItemsInput:
		return p.ReturnConsumedCapacity
	case *dynamodb.TransactGetItemsInput:
		return p.ReturnConsumedCapacity
	}
	return ""
}

// withCapacity is a copy of params asking for the capacity by table and
// index, the table's share being the item's partition's.
func withCapacity(params any) any {
	const indexes = types.ReturnConsumedCapacityIndexes
	switch p := params.(type) {
	case *dynamodb.GetItemInput:
		cp := *p
		cp.ReturnConsumedCapacity = indexes
		return &cp
	case *dynamodb.PutItemInput:
		cp := *p
		cp.ReturnConsumedCapacity = indexes
		return &cp
	case *dynamodb.UpdateItemInput:
		cp := *p
		cp.ReturnConsumedCapacity = indexes
		return &cp
	case *dynamodb.DeleteItemInput:
		cp := *p
		cp.ReturnConsumedCapacity = indexes
		return &cp
	case *dynamodb.TransactWriteItemsInput:
		cp := *p
		cp.ReturnConsumedCapacity = indexes
		return &cp
	case *dynamodb.TransactGetItemsInput:
		cp := *p
		cp.ReturnConsumedCapacity = indexes
		return &cp
	}
	return params
}

// consumed is the capacity an output reports, one entry per table.
func consumed(result any) []*types.ConsumedCapacity {
	switch r := result.(type) {
	case *dynamodb.GetItemOutput:
		return []*types.ConsumedCapacity{r.ConsumedCapacity}
	case *dynamodb.PutItemOutput:
		return []*types.ConsumedCapacity{r.ConsumedCapacity}
	case *dynamodb.UpdateItemOutput:
		return []*types.ConsumedCapacity{r.ConsumedCapacity}
	case *dynamodb.DeleteItemOutput:
		return []*types.ConsumedCapacity{r.ConsumedCapacity}
	case *dynamodb.TransactWriteItemsOutput:
		return ptrs(r.ConsumedCapacity)
	case *dynamodb.TransactGetItemsOutput:
		return ptrs(r.ConsumedCapacity)
	}
	return nil
}

func ptrs(ccs []types.ConsumedCapacity) []*types.ConsumedCapacity {
	out := make([]*types.ConsumedCapacity, len(ccs))
	for i := range ccs {
		out[i] = &ccs[i]
	}
	return out
}

// capacityAsAsked trims the capacity of an output to what the caller asked
// for, so that the harness changes nothing the caller sees but throttles.
func capacityAsAsked(result any, asked types.ReturnConsumedCapacity) any {
	if asked == types.ReturnConsumedCapacityIndexes {
		return result
	}
	trim := func(cc *types.ConsumedCapacity) *types.ConsumedCapacity {
		if cc == nil || asked != types.ReturnConsumedCapacityTotal {
			return nil
		}
		return &types.ConsumedCapacity{TableName: cc.TableName, CapacityUnits: cc.CapacityUnits, ReadCapacityUnits: cc.ReadCapacityUnits, WriteCapacityUnits: cc.WriteCapacityUnits}
	}
	trimAll := func(ccs []types.ConsumedCapacity) []types.ConsumedCapacity {
		if asked != types.ReturnConsumedCapacityTotal {
			return nil
		}
		out := make([]types.ConsumedCapacity, len(ccs))
		for i := range ccs {
			out[i] = *trim(&ccs[i])
		}
		return out
	}
	switch r := result.(type) {
	case *dynamodb.GetItemOutput:
		r.ConsumedCapacity = trim(r.ConsumedCapacity)
	case *dynamodb.PutItemOutput:
		r.ConsumedCapacity = trim(r.ConsumedCapacity)
	case *dynamodb.UpdateItemOutput:
		r.ConsumedCapacity = trim(r.ConsumedCapacity)
	case *dynamodb.DeleteItemOutput:
		r.ConsumedCapacity = trim(r.ConsumedCapacity)
	case *dynamodb.TransactWriteItemsOutput:
		r.ConsumedCapacity = trimAll(r.ConsumedCapacity)
	case *dynamodb.TransactGetItemsOutput:
		r.ConsumedCapacity = trimAll(r.ConsumedCapacity)
	}
	return result
}

// costOf is what each touched item cost: the table's share of the
// capacity reported, split evenly over the table's items; for a write
// refused by its condition, the old item's size in write units (1 when the
// error does not return it); otherwise the least cost admission took.
func costOf(req *request, result any, err error) []float64 {
	costs := make([]float64, len(req.items))
	for i, it := range req.items {
		costs[i] = it.least
	}
	var failed *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &failed) && len(req.items) == 1:
		costs[0] = max(1, math.Ceil(float64(ItemSize(failed.Item))/1024))
	case err == nil:
		for _, cc := range consumed(result) {
			if cc == nil {
				continue
			}
			units := cc.CapacityUnits
			if cc.Table != nil {
				units = cc.Table.CapacityUnits
			}
			var of []int
			for i, it := range req.items {
				if cc.TableName != nil && it.table == *cc.TableName {
					of = append(of, i)
				}
			}
			for _, i := range of {
				costs[i] = *units / float64(len(of))
			}
		}
	}
	return costs
}

// ItemSize is an item's size as DynamoDB counts it for capacity: each
// attribute's name and value, a number by its significant digits, a list or
// map 3 bytes plus 1 per element.
func ItemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	n := 0
	switch a := v.(type) {
	case *types.AttributeValueMemberS:
		n = len(a.Value)
	case *types.AttributeValueMemberN:
		n = numberSize(a.Value)
	case *types.AttributeValueMemberB:
		n = len(a.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		n = 1
	case *types.AttributeValueMemberSS:
		for _, s := range a.Value {
			n += len(s)
		}
	case *types.AttributeValueMemberNS:
		for _, s := range a.Value {
			n += numberSize(s)
		}
	case *types.AttributeValueMemberBS:
		for _, b := range a.Value {
			n += len(b)
		}
	case *types.AttributeValueMemberL:
		n = 3
		for _, e := range a.Value {
			n += 1 + valueSize(e)
		}
	case *types.AttributeValueMemberM:
		n = 3
		for k, e := range a.Value {
			n += 1 + len(k) + valueSize(e)
		}
	}
	return n
}

// numberSize is (significant digits / 2) + 1 bytes, rounded up.
func numberSize(s string) int {
	mantissa, _, _ := strings.Cut(strings.ToLower(s), "e")
	digits := strings.Trim(strings.NewReplacer("-", "", "+", "", ".", "").Replace(mantissa), "0")
	return (len(digits)+1)/2 + 1
}
