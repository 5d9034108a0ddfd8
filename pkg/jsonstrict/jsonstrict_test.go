package jsonstrict

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name, doc string
		path      string // "" with ok
		ok        bool
		syntax    bool
	}{
		{name: "plain object", doc: `{"name":"a","n":1,"list":[1,2,{"x":true}]}`, ok: true},
		{name: "scalars", doc: `"s"`, ok: true},
		{name: "same key in sibling objects", doc: `[{"a":1},{"a":2}]`, ok: true},
		{name: "same key at two depths", doc: `{"a":{"a":1}}`, ok: true},
		{name: "largest float", doc: `{"n":1.7976931348623157e308}`, ok: true},
		{name: "huge integer is kept, not refused", doc: `{"n":12345678901234567890123}`, ok: true},
		{name: "tiny number underflows to zero", doc: `{"n":1e-400}`, ok: true},
		{name: "duplicate", doc: `{"name":"a","name":"b"}`, path: "name"},
		{name: "case variant", doc: `{"tier":"public","Tier":"internal"}`, path: "Tier"},
		{name: "long s folds to s, as encoding/json matches it", doc: `{"scopes":[],"\u017fcopes":["admin"]}`, path: "\u017fcopes"},
		{name: "Kelvin sign folds to k", doc: `{"key":"a","\u212aey":"b"}`, path: "\u212aey"},
		{name: "nested duplicate", doc: `{"metadata":{"role":"user","role":"admin"}}`, path: "metadata.role"},
		{name: "duplicate inside array", doc: `{"a":[{"k":1,"K":2}]}`, path: "a.K"},
		{name: "negative overflow", doc: `{"n":-1e309}`, path: "n"},
		{name: "overflow in array", doc: `{"m":{"v":[1,1e400]}}`, path: "m.v"},
		{name: "overflow at top", doc: `1e999`, path: ""},
		{name: "truncated", doc: `{"a":`, syntax: true},
		{name: "empty", doc: ``, syntax: true},
		{name: "bad token", doc: `{"a":tru}`, syntax: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Check([]byte(tc.doc))
			var e *Error
			switch {
			case tc.ok:
				if err != nil {
					t.Fatalf("Check(%s) = %v, want nil", tc.doc, err)
				}
			case tc.syntax:
				if !errors.Is(err, ErrSyntax) {
					t.Fatalf("Check(%s) = %v, want ErrSyntax", tc.doc, err)
				}
			case !errors.As(err, &e):
				t.Fatalf("Check(%s) = %v, want *Error at %q", tc.doc, err, tc.path)
			case e.Path != tc.path:
				t.Fatalf("Check(%s) path = %q, want %q (%v)", tc.doc, e.Path, tc.path, err)
			}
		})
	}
}

func TestCheckShortensEchoedNumbers(t *testing.T) {
	err := Check([]byte(`{"n":1` + strings.Repeat("0", 5000) + `}`))
	if err == nil || len(err.Error()) > 80 {
		t.Fatalf("Check of a 5000-digit number = %v, want a short error", err)
	}
}

// FuzzCheck: whatever Check accepts, encoding/json decodes into any
// without error, so no accepted value can fail a later read.
func FuzzCheck(f *testing.F) {
	for _, seed := range []string{`{"a":1}`, `{"a":1,"A":2}`, `[1e309]`, `{"x":{"y":[{"z":null}]}}`, `"\u202e"`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if Check(doc) != nil {
			return
		}
		dec := json.NewDecoder(strings.NewReader(string(doc)))
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("Check accepted %q, which encoding/json refuses: %v", doc, err)
		}
	})
}
