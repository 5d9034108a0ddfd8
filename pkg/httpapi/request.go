package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"

	"github.com/keygate/keygate/pkg/authorizer"
	"github.com/keygate/keygate/pkg/jsonstrict"
	"github.com/keygate/keygate/pkg/keys"
)

// MaxBodyBytes is the largest request body accepted.
const MaxBodyBytes = 64 << 10

// CallerFrom reads the caller's identity from the authorizer context that
// API Gateway handed to the function. Without one the request is refused.
func CallerFrom(r *http.Request) (keys.Caller, error) {
	ctx, ok := core.GetAPIGatewayContextFromContext(r.Context())
	if !ok {
		return keys.Caller{}, keys.ErrUnauthorized
	}
	str := func(name string) string { return authorizerValue(ctx, name) }
	c := keys.Caller{
		Project:  str(authorizer.ContextProject),
		KeyID:    str(authorizer.ContextKeyID),
		Owner:    str(authorizer.ContextOwner),
		Tier:     str(authorizer.ContextTier),
		Session:  str(authorizer.ContextSession),
		SourceIP: ctx.Identity.SourceIP,
	}
	if c.Project == "" || c.KeyID == "" {
		return keys.Caller{}, keys.ErrUnauthorized
	}
	if s := str(authorizer.ContextScopes); s != "" {
		c.Scopes = strings.Split(s, ",")
	}
	if s := str(authorizer.ContextIPAllowlist); s != "" {
		c.IPAllowlist = strings.Split(s, ",")
	}
	if s := str(authorizer.ContextExpiresAt); s != "" {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return keys.Caller{}, keys.ErrUnauthorized // never from our authorizer: fail closed
		}
		t := time.UnixMilli(ms).UTC()
		c.ExpiresAt = &t
	}
	return c, nil
}

// authorizerValue is a value of the authorizer context, "" when absent:
// the authorizer hands on strings only.
func authorizerValue(ctx events.APIGatewayProxyRequestContext, name string) string {
	s, _ := ctx.Authorizer[name].(string)
	return s
}

func requestID(r *http.Request) string {
	if ctx, ok := core.GetAPIGatewayContextFromContext(r.Context()); ok {
		return ctx.RequestID
	}
	return ""
}

// DecodeBody reads a JSON object into dst strictly: at most MaxBodyBytes,
// no unknown fields, no trailing data. Errors name the field.
func DecodeBody(w http.ResponseWriter, r *http.Request, dst any) error {
	return decodeOptionalBody(w, r, dst, false)
}

// decodeOptionalBody is decodeBody where an empty body may leave dst as it is.
func decodeOptionalBody(w http.ResponseWriter, r *http.Request, dst any, optional bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return &keys.InvalidError{Message: "request body required: a JSON object"}
	}
	if err := checkStrict(body, dst); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	// More() is false before a stray '}' or ']': only EOF means no trailing data.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &keys.InvalidError{Message: "malformed JSON: one object expected"}
	}
	return nil
}

// checkStrict refuses what encoding/json would quietly resolve: a key given
// twice (the last would win), a number beyond float64, and a key that
// matches one of dst's fields only in another letter case ("Tier" would
// set tier).
func checkStrict(body []byte, dst any) error {
	var strict *jsonstrict.Error
	if err := jsonstrict.Check(body); errors.As(err, &strict) {
		return &keys.InvalidError{Field: strict.Path, Message: strict.Message}
	} else if err != nil {
		return &keys.InvalidError{Message: "malformed JSON"}
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return nil // not an object: Decode names the problem
	}
	fields := jsonFields(reflect.TypeOf(dst).Elem())
	nullable, checksNull := dst.(interface{ Nullable(field string) bool })
	for key, raw := range top {
		for _, f := range fields {
			if key != f && strings.EqualFold(key, f) {
				return &keys.InvalidError{Field: key, Message: fmt.Sprintf("unknown field (field names are case-sensitive: %q)", f)}
			}
		}
		// A null where null means nothing would read as "leave it": say so
		// instead of quietly doing nothing.
		if checksNull && string(raw) == "null" && slices.Contains(fields, key) && !nullable.Nullable(key) {
			return &keys.InvalidError{Field: key, Message: "want a value, not null (leave the field out to keep it)"}
		}
	}
	return nil
}

// jsonFields are the JSON names of a struct's fields.
func jsonFields(t reflect.Type) []string {
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		if name != "-" && f.IsExported() {
			names = append(names, name)
		}
	}
	return names
}

func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return &keys.InvalidError{Message: "request body must be a JSON object"}
		}
		return &keys.InvalidError{Field: typeErr.Field, Message: "want " + jsonType(typeErr.Type.Kind().String())}
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return &keys.InvalidError{Message: "malformed JSON"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		switch field {
		case "project":
			return &keys.InvalidError{Field: field, Message: "cannot be set: a key belongs to the caller's project"}
		case "tier":
			return &keys.InvalidError{Field: field, Message: "cannot be changed"}
		}
		return &keys.InvalidError{Field: field, Message: "unknown field"}
	}
	return &keys.InvalidError{Message: "malformed JSON"}
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "int", "int64", "int32", "float64", "uint", "uint64":
		return "a number"
	case "bool":
		return "true or false"
	case "map", "struct", "ptr":
		return "an object"
	}
	return "another type"
}

// queryParams reads the query string, refusing names not in allowed and
// names given twice.
func queryParams(r *http.Request, allowed ...string) (map[string]string, error) {
	out := map[string]string{}
	for name, values := range r.URL.Query() {
		if !slices.Contains(allowed, name) {
			return nil, &keys.InvalidError{Field: name, Message: fmt.Sprintf("unknown query parameter (known: %s)", strings.Join(allowed, ", "))}
		}
		if len(values) != 1 {
			return nil, &keys.InvalidError{Field: name, Message: "given more than once"}
		}
		out[name] = values[0]
	}
	return out, nil
}

// boolParam reads an optional true/false query parameter.
func boolParam(q map[string]string, name string) (bool, error) {
	switch q[name] {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, &keys.InvalidError{Field: name, Message: "want true or false"}
}

// pageParams reads a listing's query: its filters, limit and cursor.
func pageParams(r *http.Request, filters ...string) (map[string]string, int, error) {
	q, err := queryParams(r, append(filters, "limit", "cursor")...)
	if err != nil {
		return nil, 0, err
	}
	s := q["limit"]
	if s == "" {
		return q, 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n == 0 {
		return nil, 0, &keys.InvalidError{Field: "limit", Message: fmt.Sprintf("want 1-%d", keys.MaxPageSize)}
	}
	return q, n, nil
}
