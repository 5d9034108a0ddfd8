package contract

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/samtemplate"
)

// TestDocumentIsValid: the document is valid OpenAPI 3.1, and each of its
// examples matches its schema.
func TestDocumentIsValid(t *testing.T) {
	d, err := load()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.spec.Validate(context.Background()); err != nil {
		t.Fatalf("%s is not a valid OpenAPI document: %v", Source, err)
	}
}

// TestDocumentMatchesTemplate: every route of template.yaml's API is an
// operation of the document, and every operation of the document is a route
// of template.yaml. API Gateway's greedy {proxy+} is the document's {proxy}.
func TestDocumentMatchesTemplate(t *testing.T) {
	tpl, err := samtemplate.LoadModule()
	if err != nil {
		t.Fatal(err)
	}
	var template []string
	for _, r := range tpl.Routes() {
		template = append(template, r.Method+" "+strings.ReplaceAll(r.Path, "{"+GreedyParameter+"+}", "{"+GreedyParameter+"}"))
	}
	d, err := load()
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, item := range d.spec.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(template)
	slices.Sort(documented)
	for _, r := range template {
		if !slices.Contains(documented, r) {
			t.Errorf("template.yaml's route %s is not in %s", r, Source)
		}
	}
	for _, r := range documented {
		if !slices.Contains(template, r) {
			t.Errorf("%s's operation %s is no route of template.yaml", Source, r)
		}
	}
	if len(template) < 30 {
		t.Errorf("only %d routes read from template.yaml", len(template))
	}
}

// TestEveryOperationIsDescribed: an id, a summary, a tag, and its answers;
// every authorized operation lists the authorizer's 401 and 403, and every
// operation the error answers any route may get.
func TestEveryOperationIsDescribed(t *testing.T) {
	d, err := load()
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range d.spec.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if op.OperationID == "" || op.Summary == "" || len(op.Tags) == 0 {
				t.Errorf("%s: want an operationId, a summary and a tag", name)
			}
			public := op.Security != nil && len(*op.Security) == 0
			if strings.HasPrefix(path, "/console") || strings.HasPrefix(path, "/portal") {
				if !public || op.Responses.Default() == nil {
					t.Errorf("%s: the browser's routes are public, with a default answer", name)
				}
				continue
			}
			want := []string{"400", "404", "413", "429", "500", "503"}
			if !public {
				want = append(want, "401", "403")
			}
			for _, status := range want {
				if op.Responses.Value(status) == nil {
					t.Errorf("%s: no %s answer", name, status)
				}
			}
		}
	}
}

// TestValidate: the check can fail, and says why.
func TestValidate(t *testing.T) {
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	notFound := `{"success":false,"error":{"code":"not_found","message":"no route","requestId":"r"}}`
	for _, tc := range []struct {
		name, method, target, body string
		resp                       Response
		want                       string // "" for valid
	}{
		{"a key read", "GET", "/v1/api-keys/key_1", "", Response{404, jsonHeader, []byte(`{"success":false,"error":{"code":"not_found","message":"API key not found","requestId":"r"}}`)}, ""},
		{"a code the status does not have", "GET", "/v1/api-keys/key_1", "", Response{404, jsonHeader, []byte(`{"success":false,"error":{"code":"conflict","message":"x","requestId":"r"}}`)}, "does not match operation getKey"},
		{"a status the operation does not have", "GET", "/v1/api-keys/key_1", "", Response{409, jsonHeader, []byte(`{"success":false,"error":{"code":"conflict","message":"x","requestId":"r"}}`)}, "does not match operation getKey"},
		{"an unknown route answered 404", "GET", "/v1/nothing", "", Response{404, jsonHeader, []byte(notFound)}, ""},
		{"an unknown route answered", "GET", "/v1/nothing", "", Response{200, jsonHeader, []byte(`{"success":true}`)}, "has no operation GET /v1/nothing"},
		{"an unknown method", "DELETE", "/v1/whoami", "", Response{404, jsonHeader, []byte(notFound)}, ""},
		{"a request refused", "POST", "/v1/api-keys", `{"name":"a"}`, Response{400, jsonHeader, []byte(`{"success":false,"error":{"code":"bad_request","message":"tier: required","requestId":"r"}}`)}, ""},
		{"a request the document refuses, accepted", "POST", "/v1/api-keys/key_1/credits", `{"op":"double","value":1}`, Response{200, jsonHeader, []byte(`{"success":true,"data":{}}`)}, "the document refuses this request"},
		{"a greedy parameter", "GET", "/console/api/v1/api-keys", "", Response{401, jsonHeader, []byte(`{}`)}, ""},
		{"a greedy parameter takes one segment at least", "GET", "/console/", "", Response{200, jsonHeader, []byte(`{}`)}, "has no operation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://keygate.test"+tc.target, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			err = Validate(req, []byte(tc.body), tc.resp)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("want valid, got %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("want an error containing %q, got %v", tc.want, err)
			}
		})
	}
}
