package streams

// Event filtering: an event source mapping's FilterCriteria, matched as
// Lambda matches them, on the record's JSON as the function would get it.
// Only the part of Lambda's filter rule syntax read here is accepted
// (nested fields, lists of exact values and prefixes); any other rule is an
// error, rather than a filter that lets through what Lambda would not.

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// pattern is one parsed filter: a JSON object whose leaves are lists of rules.
type pattern map[string]any

func parsePatterns(filters []string) ([]pattern, error) {
	var out []pattern
	for _, f := range filters {
		var p pattern
		if err := json.Unmarshal([]byte(f), &p); err != nil {
			return nil, fmt.Errorf("filter %s: %w", f, err)
		}
		if err := validPattern(p); err != nil {
			return nil, fmt.Errorf("filter %s: %w", f, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// validPattern accepts objects of fields, each an object or a list of
// rules: a string, number, boolean or null matches itself, and
// {"prefix": "..."} a string that starts so.
func validPattern(p map[string]any) error {
	if len(p) == 0 {
		return fmt.Errorf("an empty object matches nothing in Lambda's syntax")
	}
	for field, v := range p {
		switch v := v.(type) {
		case map[string]any:
			if err := validPattern(v); err != nil {
				return fmt.Errorf("%s.%w", field, err)
			}
		case []any:
			for _, rule := range v {
				obj, ok := rule.(map[string]any)
				if !ok {
					continue // a value to match exactly
				}
				if prefix, ok := obj["prefix"].(string); !ok || len(obj) != 1 || prefix == "" {
					return fmt.Errorf("%s: rule %v: only exact values and {\"prefix\": \"...\"} are read", field, obj)
				}
			}
		default:
			return fmt.Errorf("%s: want an object or a list of rules, got %v", field, v)
		}
	}
	return nil
}

// matches reports whether the event JSON (decoded into any) has every field
// of p, each matching one of its rules.
func (p pattern) matches(event map[string]any) bool {
	for field, want := range p {
		got, ok := event[field]
		if !ok {
			return false
		}
		switch want := want.(type) {
		case map[string]any:
			nested, ok := got.(map[string]any)
			if !ok || !pattern(want).matches(nested) {
				return false
			}
		case []any:
			// A list in the event matches when one of its items does.
			values := []any{got}
			if list, ok := got.([]any); ok {
				values = list
			}
			if !slices.ContainsFunc(values, func(v any) bool {
				return slices.ContainsFunc(want, func(rule any) bool { return ruleMatches(rule, v) })
			}) {
				return false
			}
		}
	}
	return true
}

func ruleMatches(rule, v any) bool {
	if obj, ok := rule.(map[string]any); ok {
		s, isString := v.(string)
		return isString && strings.HasPrefix(s, obj["prefix"].(string))
	}
	return rule == v
}

// admits reports whether r invokes the function: without filters every
// record does, with them one that matches one of them.
func admits(patterns []pattern, r events.DynamoDBEventRecord) (bool, error) {
	if len(patterns) == 0 {
		return true, nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return false, err
	}
	var event map[string]any
	if err := json.Unmarshal(b, &event); err != nil {
		return false, err
	}
	return slices.ContainsFunc(patterns, func(p pattern) bool { return p.matches(event) }), nil
}
