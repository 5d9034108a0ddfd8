package streams

// Records as Lambda delivers them: the Streams API's record, in
// aws-lambda-go's event types, with the stream's ARN added.

import (
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// eventRecord is r as an event source mapping on streamARN hands it to a function.
func eventRecord(r types.Record, streamARN string) (events.DynamoDBEventRecord, error) {
	out := events.DynamoDBEventRecord{
		AWSRegion:      aws.ToString(r.AwsRegion),
		EventID:        aws.ToString(r.EventID),
		EventName:      string(r.EventName),
		EventSource:    aws.ToString(r.EventSource),
		EventVersion:   aws.ToString(r.EventVersion),
		EventSourceArn: streamARN,
	}
	// Only a deletion by time to live has one.
	if id := r.UserIdentity; id != nil {
		out.UserIdentity = &events.DynamoDBUserIdentity{Type: aws.ToString(id.Type), PrincipalID: aws.ToString(id.PrincipalId)}
	}
	c := r.Dynamodb
	if c == nil {
		return events.DynamoDBEventRecord{}, fmt.Errorf("record %s has no dynamodb part", out.EventID)
	}
	out.Change = events.DynamoDBStreamRecord{
		SequenceNumber: aws.ToString(c.SequenceNumber),
		SizeBytes:      aws.ToInt64(c.SizeBytes),
		StreamViewType: string(c.StreamViewType),
	}
	if t := c.ApproximateCreationDateTime; t != nil {
		out.Change.ApproximateCreationDateTime = events.SecondsEpochTime{Time: *t}
	}
	var err error
	for _, image := range []struct {
		from map[string]types.AttributeValue
		to   *map[string]events.DynamoDBAttributeValue
	}{
		{c.Keys, &out.Change.Keys},
		{c.NewImage, &out.Change.NewImage},
		{c.OldImage, &out.Change.OldImage},
	} {
		if *image.to, err = attributeMap(image.from); err != nil {
			return events.DynamoDBEventRecord{}, fmt.Errorf("record %s: %w", out.EventID, err)
		}
	}
	return out, nil
}

// attributeMap converts a map of attributes; nil stays nil, so that an
// image the record lacks is absent from the event's JSON, as in Lambda's.
func attributeMap(m map[string]types.AttributeValue) (map[string]events.DynamoDBAttributeValue, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]events.DynamoDBAttributeValue, len(m))
	for name, v := range m {
		av, err := attributeValue(v)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", name, err)
		}
		out[name] = av
	}
	return out, nil
}

// attributeValue converts one attribute value of every kind, lists and maps
// included.
func attributeValue(v types.AttributeValue) (events.DynamoDBAttributeValue, error) {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return events.NewStringAttribute(v.Value), nil
	case *types.AttributeValueMemberN:
		return events.NewNumberAttribute(v.Value), nil
	case *types.AttributeValueMemberB:
		return events.NewBinaryAttribute(v.Value), nil
	case *types.AttributeValueMemberBOOL:
		return events.NewBooleanAttribute(v.Value), nil
	case *types.AttributeValueMemberNULL:
		return events.NewNullAttribute(), nil
	case *types.AttributeValueMemberSS:
		return events.NewStringSetAttribute(v.Value), nil
	case *types.AttributeValueMemberNS:
		return events.NewNumberSetAttribute(v.Value), nil
	case *types.AttributeValueMemberBS:
		return events.NewBinarySetAttribute(v.Value), nil
	case *types.AttributeValueMemberL:
		list := make([]events.DynamoDBAttributeValue, len(v.Value))
		for i, item := range v.Value {
			av, err := attributeValue(item)
			if err != nil {
				return events.DynamoDBAttributeValue{}, fmt.Errorf("[%d]: %w", i, err)
			}
			list[i] = av
		}
		return events.NewListAttribute(list), nil
	case *types.AttributeValueMemberM:
		m, err := attributeMap(v.Value)
		if err != nil {
			return events.DynamoDBAttributeValue{}, err
		}
		return events.NewMapAttribute(m), nil
	}
	return events.DynamoDBAttributeValue{}, fmt.Errorf("attribute value of unknown kind %T", v)
}
