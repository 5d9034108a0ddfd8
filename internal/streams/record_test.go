package streams

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

const sampleStreamARN = "arn:aws:dynamodb:us-east-1:123456789012:table/keys/stream/2016-12-01T00:00:00.000"

// sampleRecords are testdata/dynamodb-event.json's records as the Streams
// API returns them: the event Lambda would make of them.
func sampleRecords() []types.Record {
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	keys := map[string]types.AttributeValue{"pk": s("KEY#key_1"), "sk": s("KEY")}
	item := func(count string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"pk": s("KEY#key_1"), "sk": s("KEY"), "count": n(count)}
	}
	record := func(id string, name types.OperationType, second int64, seq string, size int64, newImage, oldImage map[string]types.AttributeValue) types.Record {
		return types.Record{
			AwsRegion: aws.String("us-east-1"), EventID: aws.String(id), EventName: name,
			EventSource: aws.String("aws:dynamodb"), EventVersion: aws.String("1.1"),
			Dynamodb: &types.StreamRecord{
				ApproximateCreationDateTime: aws.Time(time.Unix(second, 0)),
				Keys:                        keys, NewImage: newImage, OldImage: oldImage,
				SequenceNumber: aws.String(seq), SizeBytes: aws.Int64(size), StreamViewType: types.StreamViewTypeNewAndOldImages,
			},
		}
	}
	bin := []byte{0, 1, 42, 65}
	inserted := item("123.45")
	for name, v := range map[string]types.AttributeValue{
		"hash":   &types.AttributeValueMemberB{Value: bin},
		"active": &types.AttributeValueMemberBOOL{Value: true},
		"note":   &types.AttributeValueMemberNULL{Value: true},
		"scopes": &types.AttributeValueMemberSS{Value: []string{"admin", "verify"}},
		"sizes":  &types.AttributeValueMemberNS{Value: []string{"1234", "567.8"}},
		"blobs":  &types.AttributeValueMemberBS{Value: [][]byte{bin, {65, 42, 1, 0}}},
		"history": &types.AttributeValueMemberL{Value: []types.AttributeValue{
			s("Cookies"), n("3.14159"), &types.AttributeValueMemberL{Value: []types.AttributeValue{}},
			&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"deep": &types.AttributeValueMemberBOOL{}}},
		}},
		"limits": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"Name": s("Joe"), "Age": n("35"),
			"Tags": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberSS{Value: []string{"a"}}}},
		}},
	} {
		inserted[name] = v
	}
	removed := record("eccbc87e4b5ce2fe28308fd9f2a7baf3", types.OperationTypeRemove, 1480642022, "333", 38, nil, item("124"))
	removed.UserIdentity = &types.Identity{Type: aws.String("Service"), PrincipalId: aws.String("dynamodb.amazonaws.com")}
	return []types.Record{
		record("c4ca4238a0b923820dcc509a6f75849b", types.OperationTypeInsert, 1480642020, "111", 26, inserted, nil),
		record("c81e728d9d4c2f636f067f89cc14862c", types.OperationTypeModify, 1480642021, "222", 59, item("124"), item("123.45")),
		removed,
	}
}

// TestEventAsLambdaDelivers: the event made of the Streams API's records is,
// in JSON, the event Lambda hands a function, field for field.
func TestEventAsLambdaDelivers(t *testing.T) {
	var ev events.DynamoDBEvent
	for _, r := range sampleRecords() {
		converted, err := eventRecord(r, sampleStreamARN)
		if err != nil {
			t.Fatal(err)
		}
		ev.Records = append(ev.Records, converted)
	}
	got, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/dynamodb-event.json")
	if err != nil {
		t.Fatal(err)
	}
	if g, w := decodeJSON(t, got), decodeJSON(t, want); !reflect.DeepEqual(g, w) {
		t.Errorf("event\n\t%s\nwant testdata/dynamodb-event.json's", got)
	}
	// And a handler decoding Lambda's JSON gets what Run hands it directly.
	var lambdas events.DynamoDBEvent
	if err := json.Unmarshal(want, &lambdas); err != nil {
		t.Fatal(err)
	}
	for i := range lambdas.Records {
		if g, w := ev.Records[i], lambdas.Records[i]; !reflect.DeepEqual(g.Change.NewImage, w.Change.NewImage) || !reflect.DeepEqual(g.Change.OldImage, w.Change.OldImage) || g.EventName != w.EventName {
			t.Errorf("record %d: %+v, Lambda's %+v", i, g, w)
		}
	}
}

func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestEventRecordRefuses(t *testing.T) {
	unknown := sampleRecords()[1]
	unknown.Dynamodb.NewImage = map[string]types.AttributeValue{"x": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.UnknownUnionMember{Tag: "Z"}}}}
	noChange := sampleRecords()[1]
	noChange.Dynamodb = nil
	for name, c := range map[string]struct {
		r    types.Record
		want string
	}{
		"a kind of attribute value it does not know": {unknown, "attribute x: [0]: attribute value of unknown kind"},
		"a record without its dynamodb part":         {noChange, "no dynamodb part"},
	} {
		if _, err := eventRecord(c.r, sampleStreamARN); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
	}
}
