package openapi_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/keygate/keygate/pkg/openapi"
)

func TestToJSON(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want, err string
	}{
		{"keys keep their order", "b: 1\na: 2\n", `{"b":1,"a":2}`, ""},
		{"a numeric key is a string", "200: ok\n", `{"200":"ok"}`, ""},
		{"scalars keep their types", "a: [1, 1.5, true, null, x, \"2\"]\n", `{"a":[1,1.5,true,null,"x","2"]}`, ""},
		{"a timestamp stays as written", "at: 2026-12-02T12:00:00Z\n", `{"at":"2026-12-02T12:00:00Z"}`, ""},
		{"HTML characters are not escaped", "d: <key> & more\n", `{"d":"<key> & more"}`, ""},
		{"aliases are resolved", "a: &x {k: v}\nb: *x\n", `{"a":{"k":"v"},"b":{"k":"v"}}`, ""},
		{"no JSON number for infinity", "a: .inf\n", "", "line 1"},
		{"a complex key", "? [a]\n: b\n", "", "want a plain key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := openapi.ToJSON([]byte(tc.yaml))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ToJSON(%q) = %s, %v; want an error containing %q", tc.yaml, got, err, tc.err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("ToJSON(%q) = %s, %v; want %s", tc.yaml, got, err, tc.want)
			}
		})
	}
}

// TestDocumentLoads: the embedded document converts, and is the OpenAPI 3.1
// document the function serves.
func TestDocumentLoads(t *testing.T) {
	doc, err := openapi.Load()
	if err != nil {
		t.Fatal(err)
	}
	var head struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(doc.JSON, &head); err != nil {
		t.Fatal(err)
	}
	if head.OpenAPI != "3.1.0" || len(head.Paths) == 0 {
		t.Errorf("openapi %q with %d paths", head.OpenAPI, len(head.Paths))
	}
	if len(doc.ETag) < 3 || doc.ETag[0] != '"' || doc.ETag[len(doc.ETag)-1] != '"' {
		t.Errorf("ETag %s is not a quoted entity tag", doc.ETag)
	}
}
