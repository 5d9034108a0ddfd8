package streams

import (
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func TestParsePatternsRefuses(t *testing.T) {
	for name, c := range map[string]struct{ filter, want string }{
		"not JSON":              {`{"dynamodb":`, "unexpected end"},
		"not an object":         {`["KEY#"]`, "cannot unmarshal array"},
		"an empty object":       {`{}`, "an empty object"},
		"a bare value":          {`{"eventName": "INSERT"}`, "eventName: want an object or a list"},
		"a nested bare value":   {`{"dynamodb": {"Keys": {"pk": {"S": "KEY#"}}}}`, "dynamodb.Keys.pk.S: want an object or a list"},
		"another operator":      {`{"eventName": [{"anything-but": ["REMOVE"]}]}`, "only exact values and"},
		"exists":                {`{"dynamodb": {"OldImage": [{"exists": false}]}}`, "dynamodb.OldImage: rule"},
		"a prefix and more":     {`{"eventName": [{"prefix": "IN", "suffix": "RT"}]}`, "only exact values"},
		"a prefix not a string": {`{"eventName": [{"prefix": 1}]}`, "only exact values"},
		"an empty prefix":       {`{"eventName": [{"prefix": ""}]}`, "only exact values"},
	} {
		if _, err := parsePatterns([]string{`{"eventName": ["INSERT"]}`, c.filter}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
	}
}

func TestAdmits(t *testing.T) {
	record := func(name, pk string) events.DynamoDBEventRecord {
		return events.DynamoDBEventRecord{EventName: name, Change: events.DynamoDBStreamRecord{
			Keys:     map[string]events.DynamoDBAttributeValue{"pk": events.NewStringAttribute(pk)},
			NewImage: map[string]events.DynamoDBAttributeValue{"scopes": events.NewStringSetAttribute([]string{"admin", "verify"}), "on": events.NewBooleanAttribute(true)},
		}}
	}
	const keysAndRefusals = `{"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "KEY#"}, {"prefix": "REFUSALS#"}]}}}}`
	for _, c := range []struct {
		name    string
		filters []string
		r       events.DynamoDBEventRecord
		want    bool
	}{
		{"no filter", nil, record("INSERT", "USAGE#x"), true},
		{"the first prefix", []string{keysAndRefusals}, record("MODIFY", "KEY#key_1"), true},
		{"the second prefix", []string{keysAndRefusals}, record("INSERT", "REFUSALS#acme"), true},
		{"neither prefix", []string{keysAndRefusals}, record("INSERT", "USAGE#KEY#key_1"), false},
		{"a prefix is no infix", []string{keysAndRefusals}, record("INSERT", "XKEY#key_1"), false},
		{"the prefix of the prefix", []string{keysAndRefusals}, record("INSERT", "KEY"), false},
		{"a missing field", []string{`{"dynamodb": {"OldImage": {"pk": {"S": ["KEY#key_1"]}}}}`}, record("INSERT", "KEY#key_1"), false},
		{"a field of another type", []string{`{"dynamodb": {"Keys": {"pk": {"N": ["1"]}}}}`}, record("INSERT", "1"), false},
		{"an object where a value is", []string{`{"eventName": {"x": ["INSERT"]}}`}, record("INSERT", "KEY#a"), false},
		{"a value where an object is", []string{`{"dynamodb": ["x"]}`}, record("INSERT", "KEY#a"), false},
		{"an exact value", []string{`{"eventName": ["REMOVE", "INSERT"]}`}, record("INSERT", "KEY#a"), true},
		{"another exact value", []string{`{"eventName": ["REMOVE"]}`}, record("INSERT", "KEY#a"), false},
		{"fields are and-ed", []string{`{"eventName": ["REMOVE"], "dynamodb": {"Keys": {"pk": {"S": [{"prefix": "KEY#"}]}}}}`}, record("INSERT", "KEY#a"), false},
		{"filters are or-ed", []string{`{"eventName": ["REMOVE"]}`, keysAndRefusals}, record("INSERT", "KEY#a"), true},
		{"a list matches by an item", []string{`{"dynamodb": {"NewImage": {"scopes": {"SS": ["verify"]}}}}`}, record("INSERT", "KEY#a"), true},
		{"a list without the item", []string{`{"dynamodb": {"NewImage": {"scopes": {"SS": ["embed"]}}}}`}, record("INSERT", "KEY#a"), false},
		{"a boolean", []string{`{"dynamodb": {"NewImage": {"on": {"BOOL": [true]}}}}`}, record("INSERT", "KEY#a"), true},
	} {
		patterns, err := parsePatterns(c.filters)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got, err := admits(patterns, c.r); err != nil || got != c.want {
			t.Errorf("%s: admits = %v, %v; want %v", c.name, got, err, c.want)
		}
	}
}
