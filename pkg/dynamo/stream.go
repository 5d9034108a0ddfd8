package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	kgevents "github.com/keygate/keygate/pkg/events"
	"github.com/keygate/keygate/pkg/keys"
)

// DecodeChange reads a stream record of the table as the event dispatcher
// needs it: an audit item or event item made, or a key's or owner's
// limits item changed (its counts, for usage thresholds). Any other
// record is an empty Change.
func DecodeChange(r events.DynamoDBEventRecord) (kgevents.Change, error) {
	c := kgevents.Change{At: r.Change.ApproximateCreationDateTime.UTC()}
	pk := r.Change.Keys[attrPK]
	if pk.DataType() != events.DataTypeString {
		return c, nil
	}
	switch p := pk.String(); {
	case strings.HasPrefix(p, "AUDIT#") && r.EventName == "INSERT":
		var rec eventRecord
		if err := decodeImage(r.Change.NewImage, &rec); err != nil {
			return c, err
		}
		ev, err := rec.event()
		c.Audit = ev
		return c, err
	case strings.HasPrefix(p, "EVENT#") && r.EventName == "INSERT":
		var item eventItem
		if err := decodeImage(r.Change.NewImage, &item); err != nil {
			return c, err
		}
		c.Event = &kgevents.Event{ID: item.ID, Type: item.Type, Project: item.Project, CreatedAt: timeOf(item.CreatedAt), Data: readableJSON(item.Data)}
		c.Webhook = item.Webhook
		return c, nil
	case strings.HasPrefix(p, "KEY#") && r.EventName == "MODIFY" && isKeyItem(r.Change.Keys):
		old, err := countedKey(r.Change.OldImage)
		if err != nil {
			return c, err
		}
		cur, err := countedKey(r.Change.NewImage)
		c.Old, c.New = old, cur
		return c, err
	case strings.HasPrefix(p, "OWNERLIMITS#") && r.EventName == "MODIFY":
		old, err := countedOwner(r.Change.OldImage)
		if err != nil {
			return c, err
		}
		cur, err := countedOwner(r.Change.NewImage)
		c.Old, c.New = old, cur
		return c, err
	}
	return c, nil
}

// WithDetails is k, decoded from its key item's stream record, with what
// its details item holds (name, start, metadata, allowlist, times): the
// event dispatcher's, for a usage threshold's key. A key gone since is k.
func (s *Store) WithDetails(ctx context.Context, k *keys.Key) (*keys.Key, error) {
	full, err := s.GetKey(ctx, k.ID)
	if errors.Is(err, keys.ErrNotFound) {
		return k, nil
	}
	if err != nil {
		return nil, err
	}
	out := *k
	out.Name, out.Start, out.Metadata, out.IPAllowlist = full.Name, full.Start, full.Metadata, full.IPAllowlist
	out.CreatedAt, out.UpdatedAt, out.RevokedAt = full.CreatedAt, full.UpdatedAt, full.RevokedAt
	out.RotatedFrom, out.CreatedBy = full.RotatedFrom, full.CreatedBy
	return &out, nil
}

// isKeyItem tells a key item from a details item, which holds no counts.
func isKeyItem(key map[string]events.DynamoDBAttributeValue) bool {
	sk := key[attrSK]
	return sk.DataType() == events.DataTypeString && sk.String() == keySK
}

func countedKey(image map[string]events.DynamoDBAttributeValue) (*kgevents.Counted, error) {
	item, err := fromImage(image)
	if err != nil {
		return nil, err
	}
	k, err := storedKey(item)
	if err != nil {
		return nil, err
	}
	return &kgevents.Counted{Project: k.Project, Owner: k.Owner, Key: k, Credits: k.Credits, Version: k.Version, Windows: windows(item)}, nil
}

// windows reads an item's window counters: by limit (its Counter()), the
// count of each window start (Unix seconds).
func windows(item map[string]types.AttributeValue) map[string]map[int64]int64 {
	out := map[string]map[int64]int64{}
	for name := range item {
		rest, ok := strings.CutPrefix(name, "w.")
		dot := strings.LastIndexByte(rest, '.')
		if !ok || dot < 0 {
			continue
		}
		start, err := strconv.ParseInt(rest[dot+1:], 10, 64)
		n, isNumber := itemNumber(item, name)
		if err != nil || !isNumber {
			continue
		}
		counter := rest[:dot]
		if out[counter] == nil {
			out[counter] = map[int64]int64{}
		}
		out[counter][start] = n
	}
	return out
}

func countedOwner(image map[string]events.DynamoDBAttributeValue) (*kgevents.Counted, error) {
	item, err := fromImage(image)
	if err != nil {
		return nil, err
	}
	var r ownerRecord
	if err := attributevalue.UnmarshalMap(item, &r); err != nil {
		return nil, fmt.Errorf("decode owner limits: %w", err)
	}
	limits, _ := r.rateLimits()
	return &kgevents.Counted{Project: r.Project, Owner: r.Owner, RateLimits: limits, Credits: r.credits(), Version: r.Version, Windows: windows(item)}, nil
}

func decodeImage(image map[string]events.DynamoDBAttributeValue, out any) error {
	item, err := fromImage(image)
	if err != nil {
		return err
	}
	if err := attributevalue.UnmarshalMap(item, out); err != nil {
		return fmt.Errorf("decode stream image: %w", err)
	}
	return nil
}

// fromImage converts a stream image to the SDK's attribute values, which
// the store's decoders read.
func fromImage(image map[string]events.DynamoDBAttributeValue) (map[string]types.AttributeValue, error) {
	if image == nil {
		return nil, fmt.Errorf("stream record without its image")
	}
	out := make(map[string]types.AttributeValue, len(image))
	for name, v := range image {
		av, err := fromStreamValue(v)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", name, err)
		}
		out[name] = av
	}
	return out, nil
}

func fromStreamValue(v events.DynamoDBAttributeValue) (types.AttributeValue, error) {
	switch v.DataType() {
	case events.DataTypeString:
		return &types.AttributeValueMemberS{Value: v.String()}, nil
	case events.DataTypeNumber:
		return &types.AttributeValueMemberN{Value: v.Number()}, nil
	case events.DataTypeBinary:
		return &types.AttributeValueMemberB{Value: v.Binary()}, nil
	case events.DataTypeBoolean:
		return &types.AttributeValueMemberBOOL{Value: v.Boolean()}, nil
	case events.DataTypeNull:
		return &types.AttributeValueMemberNULL{Value: true}, nil
	case events.DataTypeStringSet:
		return &types.AttributeValueMemberSS{Value: v.StringSet()}, nil
	case events.DataTypeNumberSet:
		return &types.AttributeValueMemberNS{Value: v.NumberSet()}, nil
	case events.DataTypeBinarySet:
		return &types.AttributeValueMemberBS{Value: v.BinarySet()}, nil
	case events.DataTypeList:
		list := v.List()
		out := make([]types.AttributeValue, len(list))
		for i, item := range list {
			av, err := fromStreamValue(item)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = av
		}
		return &types.AttributeValueMemberL{Value: out}, nil
	case events.DataTypeMap:
		m := v.Map()
		out := make(map[string]types.AttributeValue, len(m))
		for name, item := range m {
			av, err := fromStreamValue(item)
			if err != nil {
				return nil, fmt.Errorf(".%s: %w", name, err)
			}
			out[name] = av
		}
		return &types.AttributeValueMemberM{Value: out}, nil
	}
	return nil, fmt.Errorf("unknown attribute type %v", v.DataType())
}
